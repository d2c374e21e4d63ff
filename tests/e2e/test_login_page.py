"""The login page renders in a real browser with no console errors."""

from __future__ import annotations

import re
import urllib.request

from playwright.sync_api import Page, WebSocketRoute, expect

from onboard_app.services.accounts import LOGIN_FAILED
from tests.e2e.conftest import ConsoleLog, RunningApp, at, new_email


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


def test_moving_between_login_and_sign_up_shows_an_empty_form(page: Page) -> None:
    # The links empty the form they open (the pages' on_load does not: see below).
    page.goto("/login")
    page.locator("#email").fill(new_email("wrong"))
    page.locator("#password").fill("not the password")
    page.locator("#submit").click()
    expect(page.get_by_role("alert")).to_have_text(LOGIN_FAILED)
    page.locator("#to-signup").click()
    page.wait_for_url(at("/signup"))
    expect(page.get_by_role("alert")).to_have_count(0)
    page.locator("#email").fill(new_email("short"))
    page.locator("#password").fill("short")
    page.locator("#submit").click()
    expect(page.locator("#password-error")).to_be_visible()
    page.locator("#to-login").click()
    page.wait_for_url(at("/login"))
    expect(page.get_by_role("alert")).to_have_count(0)
    page.locator("#to-signup").click()
    page.wait_for_url(at("/signup"))
    expect(page.get_by_role("alert")).to_have_count(0)


def test_a_page_load_that_arrives_after_a_quick_submit_leaves_its_answer(page: Page) -> None:
    # Reflex sends a page's on_load from an effect after the route renders, so a quick first
    # submit can reach the server first. Here the login page's on_load is held on the wire
    # until the submit has answered, then let through: the answer stays.
    held: list[tuple[WebSocketRoute, str | bytes]] = []
    holding = [False]

    def route(ws: WebSocketRoute) -> None:
        server = ws.connect_to_server()

        def from_page(message: str | bytes) -> None:
            if holding[0] and "on_load_internal" in str(message):
                held.append((server, message))
            else:
                server.send(message)

        ws.on_message(from_page)

    page.route_web_socket(re.compile(r".*/_event.*"), route)
    page.goto("/signup")
    expect(page.get_by_role("heading", name="Create your account")).to_be_visible()
    page.wait_for_timeout(500)  # hydrated, its own on_load answered
    holding[0] = True
    page.locator("#to-login").click()
    page.wait_for_url(at("/login"))
    for _ in range(50):
        if held:
            break
        page.wait_for_timeout(100)
    assert held, "the login page sent no on_load"
    page.locator("#email").fill(new_email("quick"))
    page.locator("#password").fill("not the password")
    page.locator("#submit").click()
    expect(page.get_by_role("alert")).to_have_text(LOGIN_FAILED)
    holding[0] = False
    for server, message in held:
        server.send(message)
    page.wait_for_timeout(1_000)
    expect(page.get_by_role("alert")).to_have_text(LOGIN_FAILED)
    expect(page.locator("#submit")).to_be_enabled()
