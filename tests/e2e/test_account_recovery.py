"""Email verification and password reset in Chromium, the mail going through a real SMTP server.

The app sends to the test process's SMTP server (``tests/fakes/inbox.py``); each test reads
the mail there as its recipient would, and opens its link in a browser of its own (the
mail app's). A development-mode app shows the development mailbox journey.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.e2e.conftest import (
    PASSWORD,
    ConsoleLog,
    RunningApp,
    at,
    mail_to,
    new_email,
    sign_up,
    start_app,
    stop_app,
    stored_token,
    token_claims,
)

NEW_PASSWORD = "lantern drizzle oboe"


def verified_at(app: RunningApp, email: str) -> str | None:
    with sqlite3.connect(app.database_url.removeprefix("sqlite:///")) as db:
        row = db.execute("select email_verified_at from users where email = ?", (email,)).fetchone()
    return row[0] if row else None


def mail_app(browser: Browser, app: RunningApp) -> Page:
    """A page of another browser: where a link clicked in a mail app opens."""
    context = browser.new_context(base_url=app.url)
    context.set_default_timeout(15_000)
    return context.new_page()


def fill_sign_up(page: Page, email: str, password: str = PASSWORD) -> None:
    page.goto("/signup")
    page.locator("#email").fill(email)
    page.locator("#password").fill(password)
    page.locator("#submit").click()


def test_sign_up_then_the_mailed_link_signs_in_and_leaves_no_token_behind(
    page: Page, browser: Browser, app_server: RunningApp, console: ConsoleLog
) -> None:
    email = new_email("verify")
    page.goto("/signup")
    page.locator("#email").fill(email)
    page.locator("#password").fill(PASSWORD)
    expect(page.locator("#password-strength")).to_contain_text("Strength: Strong")
    page.locator("#submit").click()
    page.wait_for_url(at("/verify-email"))
    expect(page.get_by_role("heading", name="Check your email")).to_be_visible()
    expect(page.get_by_text(email)).to_be_visible()
    assert stored_token(page) == ""
    letter = mail_to(email, "verify_email")
    assert letter.link in letter.html and letter.code[:3] in letter.html  # both bodies
    assert letter.link.startswith(f"{app_server.url}/verify-email#token=")

    elsewhere = mail_app(browser, app_server)
    elsewhere.goto(letter.link)
    elsewhere.wait_for_url(at("/onboarding/profile"))
    expect(elsewhere.locator("#display_name")).to_be_visible()
    assert token_claims(stored_token(elsewhere))["onb"] == "profile"
    assert verified_at(app_server, email) is not None
    # The token left the address bar and the history entry (back: the blank tab it opened).
    assert "token" not in elsewhere.url and elsewhere.evaluate("location.hash") == ""
    elsewhere.go_back()
    assert "token" not in elsewhere.url
    elsewhere.go_forward()
    elsewhere.wait_for_url(at("/onboarding/profile"))
    elsewhere.context.close()

    # The code of the same mail is spent with its link: the sign-up tab is told, at the field.
    page.locator("#otp").fill(letter.code)
    page.locator("#confirm-code").click()
    expect(page.locator("#otp-error")).to_contain_text("not valid")
    expect(page.locator("#otp")).to_have_attribute("aria-invalid", "true")
    assert page.evaluate("document.activeElement.id") == "otp"
    assert stored_token(page) == ""
    log = app_server.log()
    assert letter.token not in log and letter.code not in log
    assert console == []


def test_sign_up_of_a_registered_address_shows_the_same_screen(
    page: Page, app_server: RunningApp
) -> None:
    email = new_email("twice")
    sign_up(page, email)
    page.context.clear_cookies()
    page.evaluate("() => window.localStorage.clear()")
    fill_sign_up(page, email, "a different passphrase")
    page.wait_for_url(at("/verify-email"))
    expect(page.get_by_role("heading", name="Check your email")).to_be_visible()
    expect(page.locator("#otp")).to_be_visible()
    attempt = mail_to(email, "signup_attempt")
    assert f"{app_server.url}/forgot-password" in attempt.text and "#token=" not in attempt.text
    assert stored_token(page) == ""


def test_forgot_password_resets_and_sends_the_old_session_to_login(
    page: Page, browser: Browser, app_server: RunningApp
) -> None:
    email = new_email("reset")
    sign_up(page, email)  # browser A, in the wizard
    other = mail_app(browser, app_server)
    other.goto("/login")
    other.locator("#to-forgot-password").click()
    other.wait_for_url(at("/forgot-password"))
    other.locator("#email").fill(email)
    other.locator("#submit").click()
    # The answer comes after the mail went out: as long as the other steps may take.
    expect(other.locator("#reset-sent")).to_contain_text(email, timeout=15_000)
    letter = mail_to(email, "password_reset")

    other.goto(letter.link)
    other.wait_for_url(at("/reset-password"))
    expect(other.get_by_text("For " + email)).to_be_visible()
    assert "token" not in other.url
    other.locator("#password").fill("password123")
    expect(other.locator("#password-strength")).to_contain_text("most common passwords")
    other.locator("#submit").click()
    expect(other.locator("#password-error")).to_contain_text("most common passwords")
    expect(other.locator("#password")).to_have_attribute("aria-invalid", "true")
    other.locator("#password").fill(NEW_PASSWORD)
    expect(other.locator("#password-strength")).not_to_contain_text("common")
    other.locator("#submit").click()
    other.wait_for_url(at("/onboarding/profile"))
    expect(other.get_by_text("Your password has been changed.")).to_be_visible()
    assert mail_to(email, "password_changed")

    # Browser A's next event finds its session ended.
    page.reload()
    page.wait_for_url(at("/login?next=/onboarding/profile"))
    assert stored_token(page) == ""
    page.locator("#email").fill(email)
    page.locator("#password").fill(PASSWORD)
    page.locator("#submit").click()
    expect(page.get_by_role("alert")).to_have_text("Email or password is incorrect.")
    page.locator("#password").fill(NEW_PASSWORD)
    page.locator("#submit").click()
    page.wait_for_url(at("/onboarding/profile"))
    # The link is spent.
    other.goto(letter.link)
    expect(other.locator("#link-error")).to_contain_text("already been used")
    assert letter.token not in app_server.log()
    other.context.close()


def test_forgot_password_opened_again_from_login_shows_an_empty_form(page: Page) -> None:
    # The link empties the form as it opens the page (the page's on_load does not: it can
    # reach the server after a quick first submit and wipe its answer).
    page.goto("/login")
    page.locator("#to-forgot-password").click()
    page.wait_for_url(at("/forgot-password"))
    page.locator("#email").fill(new_email("again"))
    page.locator("#submit").click()
    expect(page.locator("#reset-sent")).to_be_visible(timeout=15_000)
    page.locator("#to-login").click()
    page.wait_for_url(at("/login"))
    page.locator("#to-forgot-password").click()
    page.wait_for_url(at("/forgot-password"))
    expect(page.locator("#email")).to_have_value("")
    expect(page.locator("#reset-sent")).to_have_count(0)


def test_errors_are_tied_to_their_fields_and_take_the_focus(page: Page) -> None:
    page.goto("/signup")
    page.locator("#email").fill("ada@example")  # the browser takes it; the app does not
    page.locator("#password").fill(PASSWORD)
    page.locator("#submit").click()
    expect(page.locator("#email-error")).to_contain_text("valid email address")
    expect(page.locator("#email")).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#email")).to_have_attribute("aria-describedby", "email-error")
    assert page.evaluate("document.activeElement.id") == "email"
    page.locator("#email").fill(new_email("a11y"))
    page.locator("#password").fill("short")
    page.locator("#submit").click()
    expect(page.locator("#password-error")).to_contain_text("Use at least 8 characters")
    expect(page.locator("#password")).to_have_attribute(
        "aria-describedby", "password-error password-hint"
    )
    expect(page.locator("#email")).to_have_attribute("aria-invalid", "false")
    assert page.evaluate("document.activeElement.id") == "password"
    expect(page.get_by_label("Password", exact=True)).to_have_attribute("id", "password")


# --- development: the mail is one click away ------------------------------------------------


@pytest.fixture(scope="module")
def dev_app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningApp]:
    """The app in development mode with no mail server (the development mailbox)."""
    tmp = tmp_path_factory.mktemp("dev-mail-app")
    app = start_app(
        tmp,
        web_name="devmail",
        ONBOARD_ENV="development",
        ONBOARD_SMTP_URL="",
        ONBOARD_MAIL_DIR=str(Path(tmp) / "mail"),
    )
    yield app
    stop_app(app)


def test_in_development_the_mail_is_in_the_mailbox_one_click_away(
    browser: Browser, dev_app: RunningApp
) -> None:
    page = mail_app(browser, dev_app)
    email = new_email("newcomer")
    fill_sign_up(page, email)
    page.wait_for_url(at("/verify-email"))
    page.locator("#to-dev-mailbox").click()
    page.wait_for_url(at("/dev/mail"))
    expect(page.get_by_role("heading", name="Development mailbox")).to_be_visible()
    expect(page.locator(".dev-mail-entry").first).to_contain_text(email)
    frame = page.locator("iframe")
    expect(frame).to_have_attribute("sandbox", "allow-popups allow-popups-to-escape-sandbox")
    expect(page.frame_locator("iframe").get_by_text("Confirm my email address")).to_be_visible()
    page.locator("#dev-mail-link").click()
    page.wait_for_url(at("/onboarding/profile"))
    assert token_claims(stored_token(page))["onb"] == "profile"
    page.context.close()
