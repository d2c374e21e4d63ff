"""Account settings in Chromium, the mail going through the real SMTP server.

Change the email (the new address confirmed by its mailed link, the old one told), change
the password (then log in with it), delete the account (then the old login fails like any
wrong one), and delete an OpenID Connect account after a fresh sign-in at its provider.
The module runs its own app, configured with a running ``oauth2-mock-server``.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.e2e.conftest import (
    PASSWORD,
    ConsoleLog,
    RunningApp,
    at,
    free_port,
    log_in,
    mail_to,
    new_email,
    sign_up,
    start_app,
    stop_app,
    stored_token,
    token_claims,
)
from tests.e2e.wizard import reach_review
from tests.fakes.oidc import OidcProvider, start_oidc_provider

NEW_PASSWORD = "lantern drizzle oboe"
OIDC_LABEL = "Sign in with Acme ID"
LOGIN_FAILED = "Email or password is incorrect."


@pytest.fixture(scope="module")
def oidc_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OidcProvider]:
    provider = start_oidc_provider(tmp_path_factory.mktemp("oidc-account-e2e"))
    yield provider
    provider.stop()


@pytest.fixture(scope="module")
def app_server(
    tmp_path_factory: pytest.TempPathFactory, oidc_server: OidcProvider
) -> Iterator[RunningApp]:
    """This module's app (overrides the session's): OpenID Connect configured."""
    tmp = tmp_path_factory.mktemp("account-app")
    app = start_app(
        tmp,
        port=free_port(),
        REFLEX_WEB_WORKDIR=str(tmp / "web"),
        ONBOARD_OAUTH_TIMEOUT="5",
        **oidc_server.app_env(OIDC_LABEL),
    )
    yield app
    stop_app(app)


@pytest.fixture
def oidc(oidc_server: OidcProvider) -> Iterator[OidcProvider]:
    oidc_server.reset()
    yield oidc_server
    oidc_server.reset()


def user_rows(app: RunningApp, where: str, *params: object) -> list[tuple[object, ...]]:
    with sqlite3.connect(app.database_url.removeprefix("sqlite:///")) as db:
        return db.execute(f"select id, email from users where {where}", params).fetchall()


def finish_onboarding(page: Page) -> None:
    reach_review(page)
    page.locator("#finish").click()
    page.wait_for_url(at("/explore"))


def to_settings(page: Page) -> None:
    page.goto("/settings")
    expect(page.get_by_role("heading", name="Delete account")).to_be_visible()


def other_browser(browser: Browser, app: RunningApp) -> Page:
    context = browser.new_context(base_url=app.url)
    context.set_default_timeout(15_000)
    return context.new_page()


def expect_tied_error(page: Page, field: str, text: str) -> None:
    """The field's error is shown, announced, tied to it, and the field has the focus."""
    error = page.locator(f"#{field}-error")
    expect(error).to_contain_text(text)
    expect(error).to_have_attribute("role", "alert")
    expect(page.locator(f"#{field}")).to_have_attribute("aria-invalid", "true")
    described = page.locator(f"#{field}").get_attribute("aria-describedby") or ""
    assert f"{field}-error" in described.split()
    expect(page.locator(f"#{field}")).to_be_focused()


def test_change_email_with_the_mailed_link_and_the_old_address_is_told(
    page: Page, browser: Browser, app_server: RunningApp, console: ConsoleLog
) -> None:
    old, new = new_email("old"), new_email("new")
    sign_up(page, old)
    finish_onboarding(page)
    to_settings(page)
    expect(page.locator("#current-email")).to_contain_text(old)

    page.locator("#new-email").fill(new)
    page.locator("#email-password").fill("not my password")
    page.locator("#change-email").click()
    expect_tied_error(page, "email-password", "This is not your current password.")
    expect(page.locator("#new-email")).to_have_value(new)  # nothing typed is lost

    page.locator("#email-password").fill(PASSWORD)
    page.locator("#change-email").click()
    expect(page.locator("#email-pending")).to_contain_text(new)
    expect(page.locator("#email-code")).to_be_visible()
    notice = mail_to(old, "email_change_notice")
    assert new in notice.text and "/reset-password#token=" in notice.link
    letter = mail_to(new, "email_change_verify")
    assert letter.link.startswith(f"{app_server.url}/confirm-email#token=")
    before = token_claims(stored_token(page))

    # The link, opened in another tab of the same browser: the change is made, the
    # session goes on with a token minted from the updated row, no login asked.
    tab = page.context.new_page()
    tab.goto(letter.link)
    tab.wait_for_url(at("/settings"))
    expect(tab.get_by_text(f"Your email address is now {new}.")).to_be_visible()
    assert "token" not in tab.url
    expect(tab.locator("#current-email")).to_contain_text(new)
    after = token_claims(stored_token(tab))
    assert after["sub"] == before["sub"] and after["jti"] != before["jti"]
    assert user_rows(app_server, "email = ?", new) and not user_rows(app_server, "email = ?", old)
    tab.close()

    # The new address logs in; the old one is an unknown account.
    elsewhere = other_browser(browser, app_server)
    log_in(elsewhere, old)
    expect(elsewhere.get_by_role("alert")).to_have_text(LOGIN_FAILED)
    log_in(elsewhere, new)
    elsewhere.wait_for_url(at("/explore"))
    elsewhere.context.close()
    log = app_server.log()
    assert letter.token not in log and letter.code not in log and notice.token not in log
    assert console == []


def test_change_password_then_log_in_with_it(
    page: Page, browser: Browser, app_server: RunningApp
) -> None:
    email = new_email("pw")
    sign_up(page, email)
    finish_onboarding(page)
    second = other_browser(browser, app_server)
    log_in(second, email)
    second.wait_for_url(at("/explore"))
    to_settings(page)

    page.locator("#current-password").fill(PASSWORD)
    page.locator("#new-password").fill("password123")
    expect(page.locator("#password-strength")).to_contain_text("most common passwords")
    page.locator("#change-password").click()
    expect_tied_error(page, "new-password", "most common passwords")
    expect(page.locator("#new-password")).to_have_attribute(
        "aria-describedby", "new-password-error new-password-hint"
    )
    page.locator("#new-password").fill(NEW_PASSWORD)
    expect(page.locator("#new-password-error")).to_have_count(0)
    page.locator("#change-password").click()
    expect(page.get_by_text("Your password has been changed.")).to_be_visible()
    expect(page.locator("#current-password")).to_have_value("")
    assert mail_to(email, "password_changed")

    # This tab stays signed in; the other browser's next event sends it to log in.
    page.reload()
    expect(page.get_by_role("heading", name="Delete account")).to_be_visible()
    second.reload()
    second.wait_for_url(at("/login?next=/explore"))
    log_in(second, email, PASSWORD)
    expect(second.get_by_role("alert")).to_have_text(LOGIN_FAILED)
    log_in(second, email, NEW_PASSWORD)
    second.wait_for_url(at("/explore"))
    second.context.close()


def test_delete_account_then_the_old_login_fails_like_any_other(
    page: Page, browser: Browser, app_server: RunningApp, console: ConsoleLog
) -> None:
    email = new_email("bye")
    sign_up(page, email)
    finish_onboarding(page)
    to_settings(page)
    [(user_id, _)] = user_rows(app_server, "email = ?", email)

    page.locator("#delete-confirm").fill("remove")
    page.locator("#delete-password").fill(PASSWORD)
    page.locator("#delete-account").click()
    expect_tied_error(page, "delete-confirm", "Type DELETE to confirm.")
    page.locator("#delete-confirm").fill("DELETE")
    page.locator("#delete-password").fill("wrong password here")
    page.locator("#delete-account").click()
    expect_tied_error(page, "delete-password", "This is not your current password.")
    assert user_rows(app_server, "id = ?", user_id)

    page.locator("#delete-password").fill(PASSWORD)
    page.locator("#delete-account").click()
    page.wait_for_url(at("/account-deleted"))
    expect(page.get_by_role("heading", name="Your account has been deleted")).to_be_visible()
    expect(page.locator("#farewell-mail")).to_contain_text(email)
    assert stored_token(page) == ""
    assert mail_to(email, "account_deleted")
    assert user_rows(app_server, "id = ?", user_id) == []

    other = other_browser(browser, app_server)
    log_in(other, email)
    expect(other.get_by_role("alert")).to_have_text(LOGIN_FAILED)
    assert stored_token(other) == ""
    other.context.close()
    # Back in the deleted tab, the app is the signed-out one.
    page.goto("/settings")
    page.wait_for_url(at("/login?next=/settings"))
    assert console == []


def test_an_oidc_account_deletes_after_signing_in_again_at_its_provider(
    page: Page, oidc: OidcProvider, app_server: RunningApp
) -> None:
    subject = new_email("sub").split("@")[0]
    email = new_email("oidc")
    claims = {"sub": subject, "email": email, "email_verified": True, "name": "Ida Rhodes"}
    oidc.configure(id_token_claims=claims)
    page.goto("/login")
    page.get_by_role("button", name=OIDC_LABEL).click()
    page.wait_for_url(at("/onboarding/profile"))
    finish_onboarding(page)
    to_settings(page)
    # No address or password of its own to change, and why.
    expect(page.locator("#new-email")).to_have_count(0)
    expect(page.locator("#current-password")).to_have_count(0)
    expect(page.get_by_text("so your account has no password here")).to_be_visible()

    page.locator("#delete-confirm").fill("DELETE")
    expect(page.locator("#delete-account")).to_have_text("Continue to delete")
    # The provider says the user logged in just now (the mock sends what it is told).
    oidc.configure(id_token_claims={**claims, "auth_time": int(time.time())})
    page.locator("#delete-account").click()
    page.wait_for_url(at("/account-deleted"))
    expect(page.locator("#farewell-mail")).to_contain_text(email)
    assert stored_token(page) == ""
    assert user_rows(app_server, "oidc_subject = ?", subject) == []
    assert mail_to(email, "account_deleted")


def test_an_oidc_sign_in_that_is_not_fresh_deletes_nothing(
    page: Page, oidc: OidcProvider, app_server: RunningApp
) -> None:
    subject = new_email("stale").split("@")[0]
    oidc.configure(id_token_claims={"sub": subject, "name": "Stale"})
    page.goto("/login")
    page.get_by_role("button", name=OIDC_LABEL).click()
    page.wait_for_url(at("/onboarding/profile"))
    finish_onboarding(page)
    to_settings(page)
    page.locator("#delete-confirm").fill("DELETE")
    oidc.configure(id_token_claims={"sub": subject, "auth_time": int(time.time()) - 3600})
    page.locator("#delete-account").click()
    page.wait_for_url(at("/settings"))
    expect(page.get_by_role("alert")).to_contain_text("did not confirm a sign-in just now")
    assert user_rows(app_server, "oidc_subject = ?", subject)
    assert stored_token(page) != ""
