"""Login, wrong password, logout everywhere, and a session that survives reloads."""

from __future__ import annotations

import sqlite3

from playwright.sync_api import Page, expect

from tests.e2e.conftest import (
    PASSWORD,
    TOKEN_STORAGE_KEY,
    RunningApp,
    at,
    log_in,
    new_email,
    sign_up,
    stored_token,
)


def user_count(app: RunningApp) -> int:
    path = app.database_url.removeprefix("sqlite:///")
    with sqlite3.connect(path) as db:
        return db.execute("select count(*) from users").fetchone()[0]


def test_wrong_password_shows_one_generic_message_and_keeps_the_email(page: Page) -> None:
    email = new_email("wrong")
    sign_up(page, email)
    page.context.clear_cookies()
    page.evaluate("() => window.localStorage.clear()")
    log_in(page, email, "not the password")
    expect(page.get_by_role("alert")).to_have_text("Email or password is incorrect.")
    expect(page.locator("#email")).to_have_value(email)
    log_in(page, new_email("nobody"), "not the password")
    expect(page.get_by_role("alert")).to_have_text("Email or password is incorrect.")
    assert stored_token(page) == ""


def test_signup_validation_is_inline(page: Page, app_server: RunningApp) -> None:
    before = user_count(app_server)
    page.goto("/signup")
    page.locator("#email").fill("ada@example.com")
    page.locator("#password").fill("short")
    page.locator("#submit").click()
    expect(page.get_by_text("Use at least 8 characters.")).to_be_visible()
    expect(page.locator("#email")).to_have_value("ada@example.com")
    assert user_count(app_server) == before


def test_password_visibility_toggle(page: Page) -> None:
    page.goto("/login")
    page.locator("#password").fill("secret-value")
    page.locator("#toggle-password").click()
    expect(page.locator("#password")).to_have_attribute("type", "text")
    page.locator("#toggle-password").click()
    expect(page.locator("#password")).to_have_attribute("type", "password")


def test_session_survives_reload(page: Page) -> None:
    sign_up(page, new_email("reload"))
    token = stored_token(page)
    page.reload()
    page.wait_for_url(at("/onboarding/profile"))
    expect(page.locator("#display_name")).to_be_visible()
    assert stored_token(page) == token


def test_logout_clears_every_tab_and_kills_the_old_token(page: Page) -> None:
    sign_up(page, new_email("logout"))
    old_token = stored_token(page)
    second = page.context.new_page()
    second.goto("/onboarding/profile")
    expect(second.locator("#display_name")).to_be_visible()

    page.locator("#wizard-logout").click()
    page.wait_for_url(at("/login"))
    assert stored_token(page) == ""
    # The other tab notices through the synced storage and leaves the wizard.
    second.wait_for_url(at("/login?next=/onboarding/profile"))
    expect(second.get_by_role("heading", name="Welcome back")).to_be_visible()

    # Putting the old token back (as a thief would) does not restore the session.
    page.evaluate(f"t => window.localStorage.setItem({TOKEN_STORAGE_KEY!r}, t)", old_token)
    page.goto("/onboarding/profile")
    page.wait_for_url(at("/login?next=/onboarding/profile"))
    second.close()


def test_login_lands_where_the_guard_says(page: Page) -> None:
    email = new_email("return")
    sign_up(page, email)
    page.locator("#wizard-logout").click()
    page.wait_for_url(at("/login"))
    page.goto("/login?next=/explore")
    page.locator("#email").fill(email)
    page.locator("#password").fill(PASSWORD)
    page.locator("#submit").click()
    # Onboarding is not finished, so /explore is not allowed yet: back to the wizard.
    page.wait_for_url(at("/onboarding/profile"))
