"""Chromium's virtual WebAuthn authenticator on a page (CDP ``WebAuthn`` domain)."""

from __future__ import annotations

from typing import Any

from playwright.sync_api import CDPSession, Page, expect

from tests.e2e.conftest import PASSWORD


class VirtualAuthenticator:
    """A CTAP2 platform authenticator with resident keys and user verification, on one page.

    The page's own script calls ``navigator.credentials`` and the real ceremony runs,
    crypto and all; presence and verification are given without a prompt.
    """

    def __init__(self, page: Page) -> None:
        self.cdp: CDPSession = page.context.new_cdp_session(page)
        self.cdp.send("WebAuthn.enable", {"enableUI": False})
        self.id = self.cdp.send(
            "WebAuthn.addVirtualAuthenticator",
            {
                "options": {
                    "protocol": "ctap2",
                    "transport": "internal",
                    "hasResidentKey": True,
                    "hasUserVerification": True,
                    "isUserVerified": True,
                    "automaticPresenceSimulation": True,
                }
            },
        )["authenticatorId"]

    def credentials(self) -> list[dict[str, Any]]:
        """The passkeys it holds (with their private keys, as CDP gives them)."""
        found = self.cdp.send("WebAuthn.getCredentials", {"authenticatorId": self.id})
        return list(found["credentials"])


def add_passkey(page: Page) -> None:
    """Settings' "Add a passkey" on a page with a virtual authenticator, confirmed by password."""
    page.goto("/settings")
    expect(page.locator("#no-passkeys")).to_be_visible()
    page.locator("#add-passkey").click()
    page.locator("#passkey-password").fill(PASSWORD)
    page.locator("#confirm-passkey-password").click()
    expect(page.locator("li.passkey")).to_have_count(1)
