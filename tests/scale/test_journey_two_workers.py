"""The whole journey in a real browser, against two workers on PostgreSQL and Redis."""

from __future__ import annotations

from typing import Any, cast

import redis
import sqlalchemy as sa
from playwright.sync_api import Page, expect

from onboard_app.services.db import get_engine
from tests.e2e.conftest import at, new_email, sign_up, stored_token, token_claims
from tests.e2e.wizard import complete_interests, complete_preferences, complete_profile
from tests.scale.conftest import WORKERS, BrowserThread, ScaleApp
from tests.scale.infra import socket_record_instance


def client_token(page: Page) -> str:
    """The tab's Reflex client token (what its websocket and its state are keyed by)."""
    return str(page.evaluate("() => window.sessionStorage.getItem('token') || ''"))


def test_browser_journey_on_two_workers_postgres_and_redis(
    scale_app: ScaleApp, browser_thread: BrowserThread
) -> None:
    assert len(scale_app.workers()) == WORKERS

    def journey() -> dict[str, Any]:
        page = browser_thread.new_page(scale_app.url)
        try:
            sign_up(page, new_email("scale-journey"))
            first = stored_token(page)
            tab = client_token(page)
            instance = socket_record_instance(scale_app.redis_url, tab)
            complete_profile(page, "Ada Lovelace")
            complete_interests(page)
            complete_preferences(page)
            expect(page.locator("#review-display_name")).to_have_text("Ada Lovelace")
            before_finish = stored_token(page)
            page.evaluate("() => { window.__no_reload_marker = 7 }")
            page.locator("#finish").click()
            page.wait_for_url(at("/explore"))
            expect(page.locator("#explore-title")).to_be_visible()
            return {
                "first": first,
                "before_finish": before_finish,
                "final": stored_token(page),
                "tab": tab,
                "instance": instance,
                "no_reload": page.evaluate("() => window.__no_reload_marker") == 7,
            }
        finally:
            page.context.close()

    seen = browser_thread.run(journey)

    first, final = token_claims(seen["first"]), token_claims(seen["final"])
    assert first["onb"] == "profile"
    assert token_claims(seen["before_finish"])["onb"] == "review"
    assert final["onb"] == "completed"
    assert final["sub"] == first["sub"] and final["auth_time"] == first["auth_time"]
    assert seen["no_reload"], "Finish must not reload the page"

    # The account lives in the throwaway PostgreSQL database...
    with get_engine(scale_app.database_url).connect() as db:
        step: str = db.execute(
            sa.text("SELECT onboarding_step FROM users WHERE id = :id"),
            {"id": int(str(first["sub"]))},
        ).scalar_one()
    assert step == "completed"
    # ...and the tab's state and socket record in the claimed Redis database.
    assert seen["instance"], "the Redis token manager did not record the tab's socket"
    keys = cast("list[bytes]", redis.Redis.from_url(scale_app.redis_url).keys(f"{seen['tab']}_*"))
    assert keys, "no Reflex state in Redis for the tab"
