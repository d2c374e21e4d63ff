"""What one worker does, the other sees: logout and login throttling across two workers.

Each tab is a protocol-level client (bench/reflex_client.py) whose websocket is traced to
the worker process that accepted it (kernel socket tables), so every assertion about "the
other worker" is about a pid the test saw.
"""

from __future__ import annotations

import secrets
from typing import cast

import redis
import sqlalchemy as sa

from onboard_app.services.db import get_engine
from tests.e2e.conftest import mailed_code
from tests.scale.conftest import LoopThread, ScaleApp, Tabs

PASSWORD = "correct horse battery staple"
WRONG = "not the password at all"
GENERIC_FAILURE = "Email or password is incorrect."


def new_email(prefix: str) -> str:
    return f"{prefix}-{secrets.token_hex(5)}@example.com"


def token_version(app: ScaleApp, user_id: int) -> int:
    with get_engine(app.database_url).connect() as db:
        return int(
            db.execute(
                sa.text("SELECT token_version FROM users WHERE id = :id"), {"id": user_id}
            ).scalar_one()
        )


def test_logout_on_one_worker_rejects_the_token_on_the_other(
    scale_app: ScaleApp, tabs: Tabs, loop_thread: LoopThread
) -> None:
    loop_thread.run(_logout_across_workers(scale_app, tabs))


async def _logout_across_workers(scale_app: ScaleApp, tabs: Tabs) -> None:
    first, first_pid = await tabs.open("/signup")
    email = new_email("logout")
    await first.sign_up(email, PASSWORD, mailed_code)
    assert first.path == "/onboarding/profile"
    token = first.token
    user_id = int(first.claims()["sub"])

    # The same token in a tab whose socket is on the other worker: it is signed in there.
    second, second_pid = await tabs.open(
        "/onboarding/profile", avoid=first_pid, local_storage={"onboard_session": token}
    )
    assert {first_pid, second_pid} == set(scale_app.workers())
    assert second.path == "/onboarding/profile"
    assert second.var(second.names.session, "signed_in") is True
    # More checks on that worker, so it has seen the token valid before the logout below.
    for _ in range(2):
        await second.navigate("/onboarding/profile")
        assert second.path == "/onboarding/profile"
    version = token_version(scale_app, user_id)

    await first.log_out()
    assert first.path == "/login" and first.token == ""
    assert scale_app.worker_of(first) == first_pid, "the logout ran on the first worker"
    assert token_version(scale_app, user_id) == version + 1

    # The other worker never saw the logout event; its next check of the token fails.
    await second.navigate("/onboarding/interests")
    assert second.path.startswith("/login"), second.path
    assert second.token == "", "the rejected token must be cleared from the tab"
    assert second.var(second.names.session, "signed_in") is False
    assert scale_app.worker_of(second) == second_pid

    # Replaying the old token in yet another tab on the second worker does not help...
    replay, _ = await tabs.open(
        "/onboarding/profile", on=second_pid, local_storage={"onboard_session": token}
    )
    assert replay.path.startswith("/login") and replay.token == ""
    # ...while a fresh login on that worker works: the rejection was the revocation.
    await replay.log_in(email, PASSWORD)
    assert replay.path == "/onboarding/profile"
    assert replay.claims()["ver"] == version + 1


def test_login_throttle_counts_failures_across_workers(
    scale_app: ScaleApp, tabs: Tabs, loop_thread: LoopThread
) -> None:
    loop_thread.run(_throttle_across_workers(scale_app, tabs))


async def _throttle_across_workers(scale_app: ScaleApp, tabs: Tabs) -> None:
    owner, _ = await tabs.open("/signup")
    email = new_email("throttle")
    await owner.sign_up(email, PASSWORD, mailed_code)
    await owner.close()

    on_a, pid_a = await tabs.open("/login")
    on_b, pid_b = await tabs.open("/login", avoid=pid_a)
    assert {pid_a, pid_b} == set(scale_app.workers())

    # Five failures (the per-account limit), split so that neither worker alone sees five.
    for tab, attempts in ((on_a, 3), (on_b, 2)):
        for _ in range(attempts):
            await tab.log_in(email, WRONG)
            assert tab.form_error == GENERIC_FAILURE
            assert tab.path == "/login" and tab.token == ""

    # The right password is now refused on both workers: they share the counter.
    for tab in (on_a, on_b):
        await tab.log_in(email, PASSWORD)
        assert tab.form_error.startswith("Too many failed attempts"), tab.form_error
        assert tab.path == "/login" and tab.token == ""
    assert scale_app.worker_of(on_a) == pid_a and scale_app.worker_of(on_b) == pid_b

    # The counter is in the claimed Redis database (not in either worker's memory).
    stored = cast("list[bytes]", redis.Redis.from_url(scale_app.redis_url).keys("*login*"))
    keys = [key.decode() for key in stored]
    assert any(email in key for key in keys), keys
