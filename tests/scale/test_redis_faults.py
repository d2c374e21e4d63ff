"""Redis restarted empty, and Redis gone for a while, under open pages of two workers.

The drills run against the app of :func:`tests.scale.conftest.drill_app`: two workers on a
throwaway PostgreSQL database and a private ``redis-server`` (never the machine's shared
Redis), which they restart empty or stop. Each drill first waits until no worker holds a
tab's state in memory (no Reflex lock left in Redis), so the state the tabs had is really
gone with Redis.

What a user must see: no trip to ``/login`` while the browser holds a valid token, the app's
own message during the outage, clicks that work again afterwards, no reload, and every
saved step still there.
"""

from __future__ import annotations

import time
from typing import Any

from playwright.sync_api import Locator, Page, expect

from onboard_app.state.session import OUTAGE_MESSAGE, REATTACHED_MESSAGE
from tests.e2e.conftest import at, new_email, sign_up, stored_token, token_claims
from tests.e2e.wizard import complete_interests, complete_preferences, complete_profile
from tests.scale.conftest import BrowserThread, ScaleApp
from tests.scale.infra import PrivateRedis

#: Seconds for the workers to hand every tab's state back to Redis (Reflex's lease is half
#: its 10 s lock) and for anything a loaded machine makes slow.
UNLOCK_WAIT = 60.0
#: Milliseconds for one answer in the browser after Redis is back (reconnects included).
ANSWER_WAIT = 30_000
REFLEX_GENERIC = "Contact the website administrator."

#: Every URL the page's router goes to, kept in the page (a trip to /login shows here even
#: if the page comes back by itself), and a marker that a reload would drop.
RECORD_NAVIGATION = """
window.__paths = [];
window.__loaded = Date.now();
for (const name of ["pushState", "replaceState"]) {
  const original = history[name].bind(history);
  history[name] = (state, title, url) => {
    if (url !== undefined && url !== null) window.__paths.push(String(url));
    return original(state, title, url);
  };
}
"""


def wait_until_states_in_redis(redis: PrivateRedis) -> None:
    """Wait until no worker keeps a tab's state in memory (no ``*_lock`` key in Redis)."""
    deadline = time.monotonic() + UNLOCK_WAIT
    while redis.lock_keys():
        assert time.monotonic() < deadline, f"locks still held: {redis.lock_keys()}"
        time.sleep(0.5)


def open_user(browser: BrowserThread, app: ScaleApp, prefix: str) -> Page:
    """A new browser profile that signs up; the page records where its router goes."""
    page = browser.new_page(app.url)
    page.add_init_script(RECORD_NAVIGATION)
    sign_up(page, new_email(prefix))
    return page


def loaded_at(page: Page) -> float:
    """When the page's document was loaded (changes only with a reload)."""
    return float(page.evaluate("() => window.__loaded"))


def paths(page: Page) -> list[str]:
    """Every URL the page's router went to since the page was loaded."""
    return list(page.evaluate("() => window.__paths"))


def click_until(page: Page, control: Locator, effect: Locator) -> int:
    """Click ``control`` until ``effect`` shows; a click may first only reconnect the page.

    A tab whose state the server lost is loaded again in place on its next event, with a
    message asking to try again: then one more click must do it.

    Returns:
        The number of clicks it took (1 or 2).
    """
    reattached = page.get_by_text(REATTACHED_MESSAGE)
    try:
        control.click()
        expect(effect.or_(reattached).first).to_be_visible(timeout=ANSWER_WAIT)
        if effect.is_visible():
            return 1
        control.click()
        expect(effect).to_be_visible(timeout=ANSWER_WAIT)
    except AssertionError as problem:
        raise AssertionError(f"{problem}\nthe page went to: {paths(page)}") from None
    return 2


def pressed(page: Page, control: str) -> Locator:
    """``control`` (a topic or an interest), shown as pressed."""
    return page.locator(f"{control}[aria-pressed='true']")


def pick_and_go_on(page: Page, topics: tuple[str, ...]) -> None:
    """Pick more interests, then Next: the step is saved and preferences open."""
    for slug in topics:
        page.locator(f"#interests-{slug}").click()
        expect(pressed(page, f"#interests-{slug}")).to_be_visible()
    page.locator("#next").click()
    page.wait_for_url(at("/onboarding/preferences"), timeout=ANSWER_WAIT)


def test_open_pages_survive_a_redis_restart_without_a_login_bounce(
    drill_app: ScaleApp, private_redis: PrivateRedis, browser_thread: BrowserThread
) -> None:
    users: dict[str, dict[str, Any]] = {}

    def open_pages() -> None:
        # At interests (profile saved), at preferences (interests saved), at explore.
        for name, steps in (("interests", 1), ("preferences", 2), ("explore", 4)):
            page = open_user(browser_thread, drill_app, f"redis-restart-{name}")
            complete_profile(page, f"Ada {name}")
            if steps >= 2:
                complete_interests(page, ("go", "security", "cloud"))
            if steps >= 4:
                complete_preferences(page)
                page.locator("#finish").click()
                page.wait_for_url(at("/explore"))
                expect(page.locator("#explore-title")).to_be_visible()
            users[name] = {"page": page, "token": stored_token(page), "loaded": loaded_at(page)}

    browser_thread.run(open_pages, timeout=600)
    wait_until_states_in_redis(private_redis)
    before = private_redis.keys()
    private_redis.restart()
    assert before > 0 and private_redis.keys() == 0, "Redis came back holding the tabs' state"

    def next_clicks() -> dict[str, Any]:
        seen: dict[str, Any] = {}
        try:
            page = users["interests"]["page"]
            seen["interests"] = click_until(
                page, page.locator("#interests-go"), pressed(page, "#interests-go")
            )
            pick_and_go_on(page, ("security", "cloud"))

            page = users["preferences"]["page"]
            # Back opens interests with what was saved there.
            seen["preferences"] = click_until(
                page, page.locator("#back"), pressed(page, "#interests-security")
            )
            for slug in ("go", "security", "cloud"):
                expect(pressed(page, f"#interests-{slug}")).to_be_visible()

            page = users["explore"]["page"]
            seen["explore"] = click_until(
                page, page.locator("#chip-security"), pressed(page, "#chip-security")
            )

            for name, user in users.items():
                page = user["page"]
                seen[f"{name} paths"] = paths(page)
                seen[f"{name} reloaded"] = loaded_at(page) != user["loaded"]
                seen[f"{name} token"] = stored_token(page)
            # Every saved step is still there.
            page = users["interests"]["page"]
            page.goto("/onboarding/profile")
            expect(page.locator("#display_name")).to_have_value("Ada interests")
            expect(page.locator("#bio")).to_have_value("I write programs for engines.")
            return seen
        finally:
            for user in users.values():
                user["page"].context.close()

    seen = browser_thread.run(next_clicks, timeout=300)
    print(f"clicks needed after the restart: { {n: seen[n] for n in users} }")
    for name, user in users.items():
        assert not [p for p in seen[f"{name} paths"] if "/login" in p], (
            f"{name}: sent to the login page: {seen[f'{name} paths']}"
        )
        assert not seen[f"{name} reloaded"], f"{name}: the page was reloaded"
        claims, first = token_claims(seen[f"{name} token"]), token_claims(user["token"])
        assert claims["sub"] == first["sub"] and claims["auth_time"] == first["auth_time"]


def test_events_during_a_redis_outage_get_the_apps_message_and_recover(
    drill_app: ScaleApp, private_redis: PrivateRedis, browser_thread: BrowserThread
) -> None:
    user: dict[str, Any] = {}

    def open_page() -> None:
        page = open_user(browser_thread, drill_app, "redis-outage")
        complete_profile(page, "Grace Hopper")
        user.update(page=page, token=stored_token(page), loaded=loaded_at(page))

    browser_thread.run(open_page, timeout=300)
    wait_until_states_in_redis(private_redis)
    private_redis.stop()

    def during_outage() -> None:
        page = user["page"]
        page.locator("#interests-go").click()
        expect(page.get_by_text(OUTAGE_MESSAGE)).to_be_visible(timeout=ANSWER_WAIT)
        expect(page.get_by_text(REFLEX_GENERIC)).to_have_count(0)
        expect(page).to_have_url(at("/onboarding/interests"))

    try:
        browser_thread.run(during_outage)
    finally:
        private_redis.start()  # back, empty

    def after_outage() -> dict[str, Any]:
        page = user["page"]
        try:
            clicks = click_until(
                page, page.locator("#interests-go"), pressed(page, "#interests-go")
            )
            pick_and_go_on(page, ("security", "cloud"))
            seen = {
                "clicks": clicks,
                "paths": paths(page),
                "reloaded": loaded_at(page) != user["loaded"],
                "token": stored_token(page),
            }
            page.goto("/onboarding/profile")
            expect(page.locator("#display_name")).to_have_value("Grace Hopper")
            return seen
        finally:
            page.context.close()

    seen = browser_thread.run(after_outage, timeout=300)
    print(f"clicks needed after the outage: {seen['clicks']}")
    assert not [p for p in seen["paths"] if "/login" in p], seen["paths"]
    assert not seen["reloaded"], "the page was reloaded"
    assert token_claims(seen["token"])["auth_time"] == token_claims(user["token"])["auth_time"]
