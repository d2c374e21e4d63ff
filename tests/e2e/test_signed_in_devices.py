"""Sessions on /settings in Chromium: two browsers of one person, one signs out the other.

The first browser is a desktop Chrome on Linux (Playwright's Chromium as it is), the second
a phone with the viewport and user agent of an iPhone: two contexts of one Chromium. From
its settings page the phone signs out the desktop, whose tab goes to the login page at its
next event. The section is audited by axe on both, light and dark, and its sign-out
buttons are 44 px targets on the phone.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

from playwright.sync_api import Browser, Locator, Page, expect

from tests.e2e.conftest import (
    ConsoleLog,
    RunningApp,
    at,
    log_in,
    new_email,
    sign_up,
    stored_token,
    token_claims,
)
from tests.e2e.test_accessibility import DESKTOP, PHONE, SETTLED, SMALL_TARGETS, run_axe
from tests.e2e.wizard import complete_interests, complete_preferences, complete_profile

IPHONE = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1"
)
SECTION = "Where you're signed in"
#: Where screenshots of the section go when set (to look at them; nothing compares them).
SHOTS = os.environ.get("ONBOARD_SCREENSHOTS")


def finish_onboarding(page: Page, email: str) -> None:
    sign_up(page, email)
    complete_profile(page)
    complete_interests(page)
    complete_preferences(page, theme="system")  # the browser's scheme decides
    page.locator("#finish").click()
    page.wait_for_url(at("/explore"))


def devices(page: Page) -> Locator:
    return page.get_by_role("list", name=SECTION).get_by_role("listitem")


def audit_section(page: Page, name: str) -> None:
    """axe finds nothing on the page with the section, light and dark (and a screenshot)."""
    for scheme in ("light", "dark"):
        page.emulate_media(color_scheme=scheme)
        page.wait_for_timeout(150)
        page.wait_for_function(SETTLED)
        assert run_axe(page) == [], (name, scheme)
        if SHOTS:
            page.locator("#devices-section").screenshot(
                path=str(Path(SHOTS) / f"devices-{name}-{scheme}.png")
            )
    page.emulate_media(color_scheme="light")


def new_browser(browser: Browser, app: RunningApp, console: ConsoleLog, **options: Any) -> Page:
    """A page of a browser of its own (axe is injected, so the page's CSP is bypassed)."""
    context = browser.new_context(base_url=app.url, bypass_csp=True, **options)
    context.set_default_timeout(15_000)
    page = context.new_page()
    page.on("pageerror", lambda error: console.append(f"pageerror: {error}"))
    return page


def test_a_second_browser_signs_out_the_first_from_settings(
    browser: Browser, app_server: RunningApp, console: ConsoleLog
) -> None:
    page = new_browser(browser, app_server, console, viewport=DESKTOP)
    phone = new_browser(
        browser, app_server, console, viewport=PHONE, user_agent=IPHONE, has_touch=True
    )
    try:
        email = new_email("devices")
        finish_onboarding(page, email)
        desktop_session = token_claims(stored_token(page))["sid"]
        log_in(phone, email)
        phone.wait_for_url(at("/explore"))
        assert token_claims(stored_token(phone))["sid"] != desktop_session

        # The desktop sees both, itself first.
        page.goto("/settings")
        expect(devices(page)).to_have_count(2)
        expect(devices(page).first).to_contain_text("Chrome on Linux")
        expect(devices(page).first).to_contain_text("This device")
        expect(devices(page).nth(1)).to_contain_text("Safari on iPhone")
        expect(page.get_by_role("button", name="Sign out Safari on iPhone")).to_be_visible()
        audit_section(page, "desktop")

        phone.goto("/settings")
        expect(devices(phone)).to_have_count(2)
        expect(devices(phone).first).to_contain_text("Safari on iPhone")
        expect(devices(phone).first).to_contain_text("This device")
        expect(devices(phone).first.get_by_role("button")).to_have_count(0)
        sign_out = phone.get_by_role("button", name="Sign out Chrome on Linux")
        expect(sign_out).to_be_visible()
        expect(sign_out).to_have_accessible_description(
            re.compile(r"^127\.0\.0\.1 · Last active (just now|\d+ \w+ ago) · Signed in ")
        )
        audit_section(phone, "phone")
        small = [t for t in phone.evaluate(SMALL_TARGETS) if "Sign out" in t]
        assert small == [], small
        box = phone.locator("#devices-section").bounding_box()
        assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"]

        sign_out.click()
        expect(phone.get_by_text("Signed out Chrome on Linux.")).to_be_visible()
        expect(devices(phone)).to_have_count(1)
        expect(phone.locator("#sign-out-everywhere-else")).to_have_count(0)

        # The desktop's next event (back to explore) finds its session gone.
        page.get_by_role("link", name="Back to explore").click()
        page.wait_for_url(at("/login?next=/explore"))
        expect(page.get_by_role("heading", name="Welcome back")).to_be_visible()
        assert stored_token(page) == ""

        # The phone is still signed in, and now the only session.
        phone.reload()
        expect(devices(phone)).to_have_count(1)
        expect(devices(phone).first).to_contain_text("This device")
    finally:
        page.context.close()
        phone.context.close()
    assert console == []
