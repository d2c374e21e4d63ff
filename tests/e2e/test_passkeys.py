"""Passkeys in Chromium, with its virtual WebAuthn authenticator (tests/e2e/passkeys.py).

The authenticator is attached to the page through a Playwright CDP session: the page's own
script calls ``navigator.credentials`` and the real ceremony runs, crypto and all.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from tests.e2e.conftest import (
    PASSWORD,
    RunningApp,
    at,
    new_email,
    sign_up,
    stored_token,
    token_claims,
)
from tests.e2e.passkeys import VirtualAuthenticator, add_passkey
from tests.e2e.wizard import reach_review
from tests.fakes.authenticator import SoftAuthenticator, SoftPasskey

pytestmark = pytest.mark.e2e


@pytest.fixture
def authenticator(page: Page) -> Iterator[VirtualAuthenticator]:
    device = VirtualAuthenticator(page)
    yield device
    device.cdp.detach()


def finished_user(page: Page) -> str:
    """A new account that has finished onboarding, signed in on ``page``."""
    email = new_email("passkey")
    sign_up(page, email)
    reach_review(page)
    page.locator("#finish").click()
    page.wait_for_url(at("/explore"))
    return email


def log_out(page: Page) -> None:
    page.locator("#user-menu").click()
    page.get_by_role("menuitem", name="Log out").click()
    page.wait_for_url(at("/login"))


def test_register_sign_out_sign_in_with_the_passkey_rename_and_remove_it(
    page: Page, authenticator: VirtualAuthenticator, app_server: RunningApp
) -> None:
    email = finished_user(page)
    add_passkey(page)
    row = page.locator("li.passkey")
    expect(row).to_contain_text("Never used")
    [credential] = authenticator.credentials()
    assert credential["isResidentCredential"] and credential["rpId"] == "localhost"
    user_id = token_claims(stored_token(page))["sub"]

    log_out(page)
    page.locator("#passkey-sign-in").click()
    page.wait_for_url(at("/explore"))
    claims = token_claims(stored_token(page))
    assert claims["sub"] == user_id and claims["onb"] == "completed"
    assert f"audit event=signin user={user_id} method=passkey" in app_server.log()

    page.goto("/settings")
    expect(row).to_contain_text("Last used")
    row.get_by_role("button", name=re.compile("^Rename ")).click()
    expect(page.locator("#passkey-name")).to_be_focused()
    page.locator("#passkey-name").fill("Work laptop")
    page.locator("#save-passkey-name").click()
    expect(row).to_contain_text("Work laptop")
    row.get_by_role("button", name="Remove Work laptop").click()
    page.locator("#confirm-remove-passkey").click()
    expect(page.locator("#no-passkeys")).to_be_visible()
    assert f"audit event=passkey_removed user={user_id}" in app_server.log()

    # The authenticator still holds it; the site no longer accepts it.
    log_out(page)
    page.locator("#passkey-sign-in").click()
    expect(page.locator("#passkey-error")).to_contain_text("not registered")
    assert stored_token(page) == ""
    # The account itself is untouched: the password still signs in.
    page.locator("#email").fill(email)
    page.locator("#password").fill(PASSWORD)
    page.locator("#submit").click()
    page.wait_for_url(at("/explore"))


# The page's navigator.credentials.get, replaced by one that returns an assertion made in the
# test (by the virtual authenticator's own key) for the challenge the page was given.
_CRAFTED_GET = """() => {
  const buf = (t) => Uint8Array.from(atob(t.replace(/-/g, '+').replace(/_/g, '/')),
                                     (c) => c.charCodeAt(0)).buffer;
  navigator.credentials.get = async ({publicKey}) => {
    const challenge = btoa(String.fromCharCode(...new Uint8Array(publicKey.challenge)))
      .replace(/\\+/g, '-').replace(/\\//g, '_').replace(/=+$/, '');
    const made = await window.craftAssertion(challenge);
    const r = made.response;
    return {id: made.id, rawId: buf(made.rawId), type: made.type,
            authenticatorAttachment: 'platform',
            response: {clientDataJSON: buf(r.clientDataJSON),
                       authenticatorData: buf(r.authenticatorData),
                       signature: buf(r.signature), userHandle: buf(r.userHandle)}};
  };
}"""


def test_an_assertion_made_for_another_origin_is_refused(
    page: Page, authenticator: VirtualAuthenticator, app_server: RunningApp
) -> None:
    finished_user(page)
    add_passkey(page)
    [credential] = authenticator.credentials()
    passkey = SoftPasskey.from_pkcs8(
        base64.b64decode(credential["credentialId"]),
        base64.b64decode(credential["privateKey"]),
        "localhost",
        base64.b64decode(credential["userHandle"]),
        credential["signCount"],
    )
    origins = iter(["https://onboard.example.evil", app_server.url])

    def craft(challenge: str) -> dict[str, Any]:
        client_data = json.dumps(
            {"type": "webauthn.get", "challenge": challenge, "origin": next(origins)}
        ).encode()
        return SoftAuthenticator().sign(passkey, client_data, 0x05)  # user present + verified

    page.expose_function("craftAssertion", craft)
    log_out(page)
    page.evaluate(_CRAFTED_GET)

    # Signed by the passkey's real key, for this tab's challenge, but "from" another origin.
    page.locator("#passkey-sign-in").click()
    expect(page.locator("#passkey-error")).to_contain_text("could not be checked")
    assert stored_token(page) == ""
    assert "reason=passkey_origin method=passkey" in app_server.log()

    # The same, from the app's own origin, is accepted: only the origin made the difference.
    page.locator("#passkey-sign-in").click()
    page.wait_for_url(at("/explore"))
    assert stored_token(page)
