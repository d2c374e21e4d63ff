"""The login page renders in a real browser with no console errors."""

from __future__ import annotations

import urllib.request

from playwright.sync_api import Page, expect

from tests.e2e.conftest import ConsoleLog, RunningApp, at


def test_login_page_renders_without_console_errors(page: Page, console: ConsoleLog) -> None:
    page.goto("/login")
    expect(page.get_by_role("heading", name="Welcome back")).to_be_visible()
    expect(page.locator("#email")).to_be_visible()
    expect(page.locator("#password")).to_have_attribute("type", "password")
    expect(page.get_by_role("button", name="Log in")).to_be_enabled()
    expect(page).to_have_title("Log in · Onboard")
    page.wait_for_timeout(500)
    assert console == []


def test_favicon_and_logo_are_served(app_server: RunningApp) -> None:
    for path in ("/favicon.ico", "/logo.svg"):
        with urllib.request.urlopen(app_server.url + path, timeout=5) as response:
            assert response.status == 200
            assert len(response.read()) > 100


def test_anonymous_visitor_is_sent_to_login(page: Page) -> None:
    page.goto("/explore")
    page.wait_for_url(at("/login?next=/explore"))
    expect(page.get_by_role("heading", name="Welcome back")).to_be_visible()
