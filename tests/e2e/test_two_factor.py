"""Two-factor authentication in Chromium: enrol in settings, then sign in with a code.

The codes are computed with pyotp from the secret the page shows, as an authenticator
app set up by hand would.
"""

from __future__ import annotations

import time

import pyotp
from playwright.sync_api import Page, expect

from onboard_app.services import two_factor
from tests.e2e.conftest import PASSWORD, ConsoleLog, at, log_in, new_email, sign_up, stored_token
from tests.e2e.wizard import reach_review


def finish_onboarding(page: Page, email: str) -> None:
    sign_up(page, email)
    reach_review(page)
    page.locator("#finish").click()
    page.wait_for_url(at("/explore"))


def enrol(page: Page, email: str) -> tuple[str, list[str]]:
    """Turn two-factor on in settings; the secret shown and the recovery codes."""
    page.goto("/settings")
    page.locator("#two-factor-set-up").click()
    expect(page.locator("#two-factor-password")).to_be_focused()
    page.locator("#two-factor-password").fill(PASSWORD)
    page.locator("#two-factor-continue").click()
    qr = page.locator("#two-factor-qr")
    expect(qr).to_be_visible()
    secret = page.locator("#two-factor-secret").inner_text().replace(" ", "")
    # The QR code is the provisioning URI of that very secret, for this account.
    uri = two_factor.provisioning_uri(secret, email)
    assert qr.get_attribute("src") == two_factor.qr_code(uri)
    page.locator("#two-factor-code").fill(pyotp.TOTP(secret).now())
    page.locator("#two-factor-confirm").click()
    codes = page.locator("#recovery-codes li")
    expect(codes).to_have_count(10)
    expect(page.locator("#recovery-codes-title")).to_be_focused()
    recovery = [text.strip() for text in codes.all_inner_texts()]
    page.locator("#two-factor-done").click()
    expect(page.get_by_text("Confirm that you have saved your recovery codes.")).to_be_visible()
    page.locator("#two-factor-codes-saved").click()
    page.locator("#two-factor-done").click()
    expect(page.locator("#two-factor-status")).to_contain_text("On.")
    expect(page.locator("#two-factor-status")).to_contain_text("10 recovery codes left")
    expect(page.locator("#recovery-codes")).to_have_count(0)
    return secret, recovery


def log_out(page: Page) -> None:
    page.locator("#user-menu").click()
    page.get_by_role("menuitem", name="Log out").click()
    page.wait_for_url(at("/login"))


def code_step(page: Page, email: str) -> None:
    """The password step; the page then asks for a code, with no session yet."""
    log_in(page, email)
    expect(page.get_by_role("heading", name="Two-factor authentication")).to_be_visible()
    expect(page.locator("#two-factor-code")).to_be_focused()
    assert stored_token(page) == ""


def test_enrol_then_sign_in_with_a_code_and_once_with_a_recovery_code(
    page: Page, console: ConsoleLog
) -> None:
    email = new_email("totp")
    finish_onboarding(page, email)
    secret, recovery = enrol(page, email)
    log_out(page)

    code_step(page, email)
    # The next step's code: the one used to enrol is spent (one step of drift is allowed).
    page.locator("#two-factor-code").fill(pyotp.TOTP(secret).at(time.time() + 30))
    page.locator("#verify-code").click()
    page.wait_for_url(at("/explore"))
    assert stored_token(page) != ""
    log_out(page)

    for attempt in range(2):
        code_step(page, email)
        page.locator("#toggle-recovery-code").click()
        expect(page.get_by_label("Recovery code")).to_be_visible()
        page.locator("#two-factor-code").fill(recovery[0])
        page.locator("#verify-code").click()
        if attempt == 0:
            page.wait_for_url(at("/explore"))
            expect(page.get_by_text("You used a recovery code: 9 left.")).to_be_visible()
            log_out(page)
        else:
            error = page.locator("#two-factor-code-error")
            expect(error).to_contain_text("has been used")
            expect(page.locator("#two-factor-code")).to_have_attribute("aria-invalid", "true")
            expect(page.locator("#two-factor-code")).to_be_focused()
            assert stored_token(page) == ""
    assert console == [], console
