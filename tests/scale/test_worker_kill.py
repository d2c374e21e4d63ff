"""A worker killed with SIGKILL mid-wizard: it is replaced, its tab carries on, nothing is lost.

Runs last among the scale tests (it kills a worker of the shared app). The browser's socket
is traced to its worker: the tab's client token names the owning worker instance in Redis,
and probe connections (whose accepting pid the kernel shows) name each instance's pid.
"""

from __future__ import annotations

import os
import signal
import time
import urllib.request
from typing import Any

from playwright.sync_api import expect

from bench.reflex_client import FrontendBuild, ReflexClient
from tests.e2e.conftest import ROOT, at, new_email, sign_up, stored_token, token_claims
from tests.e2e.wizard import complete_interests, complete_preferences, complete_profile
from tests.scale.conftest import MAX_CONNECT_TRIES, WORKERS, BrowserThread, LoopThread, ScaleApp
from tests.scale.infra import socket_record_instance
from tests.scale.test_journey_two_workers import client_token

#: Seconds a loaded 2-core machine may take to notice the death and fork a replacement
#: (Granian does it within a second here).
REPLACE_WAIT = 30.0
#: Seconds from the kill until the tab, reconnected to a live worker, has its next click
#: answered (measured below; bounded for a loaded machine).
RECONNECT_WAIT = 40.0


async def instance_pids(app: ScaleApp) -> dict[str, int]:
    """Map each worker's Reflex instance id to its pid, with short-lived probe sockets."""
    found: dict[str, int] = {}
    build = FrontendBuild.load(ROOT / ".web")
    for _ in range(MAX_CONNECT_TRIES):
        probe = ReflexClient(app.socket_url, build=build, origin=app.url)
        try:
            await probe.connect("/login")
            pid = app.worker_of(probe)
            instance = socket_record_instance(app.redis_url, probe.client_token)
            if pid is not None and instance is not None:
                found[instance] = pid
        finally:
            await probe.close()
        if len(set(found.values())) == len(app.workers()):
            return found
    raise AssertionError(f"could not reach every worker with {MAX_CONNECT_TRIES} probes")


def answers_ping(app: ScaleApp, tries: int = 3) -> None:
    """The app's port answers (a surviving worker serves while the dead one is replaced).

    A connection the kernel gave the dying worker's socket just before it closed is reset
    (unless ``net.ipv4.tcp_migrate_req=1``): a client tries again, and so does this check.
    A refused connection (no worker left) is never tried again.
    """
    for attempt in range(tries):
        try:
            with urllib.request.urlopen(f"{app.socket_url}/ping", timeout=10) as response:
                assert response.status == 200
                return
        except OSError as problem:
            reset = isinstance(getattr(problem, "reason", problem), ConnectionResetError)
            if not reset or attempt == tries - 1:
                raise AssertionError(
                    f"the app did not answer ({problem}):\n{app.running.log()[-3000:]}"
                ) from problem


def test_sigkill_of_the_serving_worker_is_replaced_and_loses_no_saved_step(
    scale_app: ScaleApp, browser_thread: BrowserThread, loop_thread: LoopThread
) -> None:
    state: dict[str, Any] = {}

    def before_kill() -> None:
        page = browser_thread.new_page(scale_app.url)
        state["page"] = page
        sign_up(page, new_email("sigkill"))
        state["first"] = stored_token(page)
        complete_profile(page, "Grace Hopper")
        complete_interests(page, ("go", "security", "cloud"))
        state["tab"] = client_token(page)
        page.evaluate("() => { window.__before_kill = 1 }")

    browser_thread.run(before_kill)
    instance = socket_record_instance(scale_app.redis_url, state["tab"])
    assert instance is not None, "the tab has no socket record"
    victim = loop_thread.run(instance_pids(scale_app))[instance]

    before = scale_app.workers()
    killed = time.monotonic()
    os.kill(victim, signal.SIGKILL)
    while victim in (workers := scale_app.workers()) or len(workers) < WORKERS:
        assert scale_app.running.process.poll() is None, (
            f"the app stopped when one worker died:\n{scale_app.running.log()[-3000:]}"
        )
        assert time.monotonic() - killed < REPLACE_WAIT, (
            f"no replacement worker: {workers}\n{scale_app.running.log()[-3000:]}"
        )
        if victim not in workers:  # its socket is closed: new connections reach the others
            answers_ping(scale_app)
        time.sleep(0.2)
    replaced = time.monotonic() - killed
    (replacement,) = set(workers) - set(before)
    answers_ping(scale_app)
    print(f"SIGKILL of worker {victim}: worker {replacement} replaced it in {replaced:.1f} s")

    def after_kill() -> dict[str, Any]:
        page = state["page"]
        try:
            # The same tab, never reloaded, reconnects by itself (to a live worker, under a
            # new client token if the dead worker's socket record is still in Redis).
            while socket_record_instance(scale_app.redis_url, client_token(page)) in (
                None,
                instance,
            ):
                assert time.monotonic() - killed < RECONNECT_WAIT, "the tab did not reconnect"
                page.wait_for_timeout(250)
            expect(page.locator("#step-title")).to_have_text("Preferences")
            assert page.evaluate("() => window.__before_kill === 1"), "the tab was reloaded"
            expect(page.locator("#email")).to_have_count(0)
            page.locator("#back").click()
            page.wait_for_url(at("/onboarding/interests"), timeout=RECONNECT_WAIT * 1000)
            for topic in ("go", "security", "cloud"):
                expect(page.locator(f"#interests-{topic}")).to_have_attribute(
                    "aria-pressed", "true"
                )
            state["carried_on"] = time.monotonic() - killed
            page.goto("/onboarding/profile")
            expect(page.locator("#display_name")).to_have_value("Grace Hopper")
            expect(page.locator("#bio")).to_have_value("I write programs for engines.")
            page.goto("/onboarding/preferences")
            complete_preferences(page)
            page.locator("#finish").click()
            page.wait_for_url(at("/explore"))
            expect(page.locator("#explore-title")).to_be_visible()
            tab = client_token(page)
            return {
                "final": stored_token(page),
                "instance": socket_record_instance(scale_app.redis_url, tab),
            }
        finally:
            page.context.close()

    seen = browser_thread.run(after_kill)
    print(f"the tab's next click was answered {state['carried_on']:.1f} s after the kill")
    assert state["carried_on"] < RECONNECT_WAIT
    first, final = token_claims(state["first"]), token_claims(seen["final"])
    assert final["onb"] == "completed"
    assert final["sub"] == first["sub"]
    assert final["auth_time"] == first["auth_time"], "the session went on without a new login"
    assert seen["instance"] not in (None, instance), "the tab must now be served by a live worker"
