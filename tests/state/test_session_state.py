"""The shared session state: guard, logout, healing, client storage tampering."""

from __future__ import annotations

import pytest
from reflex_base.constants.state import FIELD_MARKER

from onboard_app.services.users import get_user_by_email
from onboard_app.state.onboarding import OnboardingState
from onboard_app.state.session import SessionState
from tests.state.harness import Client, redirects, toasts

pytestmark = pytest.mark.asyncio


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("/", ["/login"]),
        ("/explore", ["/login?next=/explore"]),
        ("/settings", ["/login?next=/settings"]),
        ("/onboarding/review", ["/login?next=/onboarding/review"]),
        ("/login", []),
        ("/signup", []),
    ],
)
async def test_anonymous_guard(client: Client, path: str, expected: list[str]) -> None:
    client.navigate(path)
    assert redirects(await client.call(SessionState.guard)) == expected
    assert client.state(SessionState).signed_in is False


@pytest.mark.parametrize(
    "garbage", ["", "x", "a.b.c", "e30.e30.e30", "A" * 10_000, 42, None, {"sub": "1"}]
)
async def test_garbage_in_storage_is_anonymous(client: Client, garbage) -> None:
    client.state(SessionState).token = garbage
    client.navigate("/explore")
    assert redirects(await client.call(SessionState.guard)) == ["/login?next=/explore"]
    assert client.state(SessionState).token == ""


async def test_signed_in_user_is_kept_in_onboarding(client: Client, signed_up) -> None:
    await signed_up(client)
    for path in ("/", "/login", "/signup", "/explore", "/settings", "/nowhere"):
        client.navigate(path)
        assert redirects(await client.call(SessionState.guard)) == ["/onboarding/profile"], path
    client.navigate("/onboarding/profile")
    assert await client.call(SessionState.guard) == []


async def test_log_out_kills_every_copy_of_the_token(client: Client, signed_up) -> None:
    email = await signed_up(client)
    token = client.state(SessionState).token
    version = get_user_by_email(email).token_version
    other_tab = Client()
    other_tab.state(SessionState).token = token
    events = await client.call(SessionState.log_out)
    assert redirects(events) == ["/login"]
    assert client.state(SessionState).token == ""
    assert client.state(SessionState).signed_in is False
    assert get_user_by_email(email).token_version == version + 1
    # The same token, replayed from another tab (or stolen), no longer works.
    other_tab.navigate("/onboarding/profile")
    assert redirects(await other_tab.call(OnboardingState.open_step)) == [
        "/login?next=/onboarding/profile"
    ]


async def test_session_lost_var_follows_storage(client: Client, signed_up) -> None:
    await signed_up(client)
    session = client.state(SessionState)
    assert session.session_lost is False
    session.token = ""  # what the storage sync does when another tab logs out
    assert session.session_lost is True


async def test_expired_session_goes_to_login_with_a_notice(
    client: Client, signed_up, app_db
) -> None:
    import time

    from onboard_app.services.tokens import mint_session_token

    email = await signed_up(client)
    user = get_user_by_email(email)
    long_ago = int(time.time()) - app_db.token_ttl - 120
    client.state(SessionState).token = mint_session_token(user, app_db, now=long_ago)
    client.navigate("/onboarding/profile")
    events = await client.call(SessionState.guard)
    assert redirects(events) == ["/login?next=/onboarding/profile"]
    assert any("session has expired" in t for t in toasts(events))
    # A visitor who simply never logged in gets no such notice.
    fresh = Client()
    fresh.navigate("/explore")
    assert toasts(await fresh.call(SessionState.guard)) == []


async def test_an_event_sends_and_saves_the_session_state_only_when_it_changed(
    client: Client, signed_up
) -> None:
    await signed_up(client)
    client.navigate("/onboarding/profile")
    await client.call(SessionState.guard)
    session = client.state(SessionState)
    client.root._clean()
    session._was_touched = False
    await client.call(SessionState.guard)  # the gate verified the same session again
    assert session.get_full_name() not in client.root.get_delta()
    assert session._was_touched is False  # Reflex would not save it again
    session.user_name = "stale"
    client.root._clean()
    await client.call(SessionState.guard)
    sent = client.root.get_delta()[session.get_full_name()]
    assert {key.removesuffix(FIELD_MARKER) for key in sent} == {"user_name", "user_initials"}
    assert session.user_name == ""
