"""A new version of the flow in the browser: only the new step, no loop, no re-login.

The same database and signing key serve two builds of the app: the shipped flow (version 1)
and the same app with one more spec entry (``tests/fakes/flow_v2``: version 2, a required
"team" step). A person who finished version 1 opens the app again and is taken through the
team step only, with everything they answered kept, and lands on explore with a token that
says version 2.
"""

from __future__ import annotations

import secrets
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.e2e.conftest import (
    RunningApp,
    at,
    new_email,
    sign_up,
    start_app,
    stop_app,
    stored_token,
    token_claims,
)
from tests.e2e.wizard import reach_review

pytestmark = pytest.mark.e2e

FLOW_V2 = Path(__file__).resolve().parents[1] / "fakes" / "flow_v2"


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """What both builds share: the database and the signing key."""
    tmp = tmp_path_factory.mktemp("flow-versions")
    return {
        "ONBOARD_DATABASE_URL": f"sqlite:///{tmp / 'shared.db'}",
        "ONBOARD_SIGNING_KEY": "flow:" + secrets.token_urlsafe(32),
        "tmp": str(tmp),
    }


def started(shared: dict[str, str], name: str, **extra: str) -> RunningApp:
    tmp = Path(shared["tmp"]) / name
    tmp.mkdir()
    env = {k: v for k, v in shared.items() if k != "tmp"}
    return start_app(tmp, REFLEX_WEB_WORKDIR=str(tmp / "web"), **env, **extra)


def new_page(browser: Browser, app: RunningApp, storage: dict | None = None) -> Page:
    context = browser.new_context(base_url=app.url, storage_state=storage)
    context.set_default_timeout(15_000)
    return context.new_page()


def test_a_person_who_finished_version_1_answers_only_the_new_step(
    shared: dict[str, str], browser: Browser
) -> None:
    v1 = started(shared, "v1")
    try:
        page = new_page(browser, v1)
        sign_up(page, new_email("versions"))
        reach_review(page)
        page.locator("#finish").click()
        page.wait_for_url(at("/explore"))
        finished = token_claims(stored_token(page))
        assert (finished["onb"], finished["fv"]) == ("completed", 1)
        origin_storage = page.context.storage_state()
        page.context.close()
    finally:
        stop_app(v1)

    v2 = started(shared, "v2", PYTHONPATH=str(FLOW_V2))
    try:
        # Same browser profile (its localStorage holds the version-1 token), same port kind.
        storage = {
            "cookies": [],
            "origins": [
                {"origin": v2.url, "localStorage": origin["localStorage"]}
                for origin in origin_storage["origins"]
            ],
        }
        page = new_page(browser, v2, storage)
        page.goto("/explore")
        page.wait_for_url(at("/onboarding/team"))
        expect(page.locator("#email")).to_have_count(0)  # no login form: no re-login
        expect(page.locator("#step-counter")).to_contain_text("of 5")
        assert token_claims(stored_token(page))["onb"] == "team"

        # Earlier answers are kept and shown in the review.
        page.locator("#next").click()
        expect(page.get_by_text("Name your team.")).to_be_visible()
        page.locator("#team_name").fill("Analytical Engines")
        page.locator("#team_size-small").click()
        page.locator("#next").click()
        page.wait_for_url(at("/onboarding/review"))
        expect(page.locator("#review-display_name")).to_have_text("Ada Lovelace")
        expect(page.locator("#review-team_name")).to_have_text("Analytical Engines")
        page.evaluate("() => { window.__no_reload_marker = 7 }")
        page.locator("#finish").click()
        page.wait_for_url(at("/explore"))
        assert page.evaluate("() => window.__no_reload_marker") == 7
        claims = token_claims(stored_token(page))
        assert (claims["onb"], claims["fv"], claims["sub"]) == ("completed", 2, finished["sub"])
        # No loop: the next visit stays on explore.
        page.goto("/explore")
        page.wait_for_url(at("/explore"))
        expect(page.locator("#explore-title")).to_be_visible()
    finally:
        stop_app(v2)
