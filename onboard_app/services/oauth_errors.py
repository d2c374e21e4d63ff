"""The failures of a sign-in with a provider, and the one message each shows the user.

Shared by the protocol (:mod:`onboard_app.services.oauth`) and account linking
(:mod:`onboard_app.services.linking`). The user sees only the fixed message of a code,
never text from the provider.
"""

from __future__ import annotations

from typing import Final

#: The fixed user-facing message of every failure code.
MESSAGES: Final[dict[str, str]] = {
    "state_mismatch": "We could not verify this sign-in. Please try again.",
    "state_missing": "This sign-in link has expired or was already used. Please try again.",
    "expired": "The sign-in took too long. Please try again.",
    "issuer_mismatch": "We could not verify which provider answered this sign-in. "
    "Please try again.",
    "provider_error": "The sign-in was cancelled or refused by the provider.",
    "missing_code": "The provider did not complete the sign-in. Please try again.",
    "token_error": "The provider did not accept the sign-in. Please try again.",
    "unavailable": "The sign-in provider cannot be reached right now. Please try again later.",
    "invalid_id_token": "We could not verify the provider's answer. Please try again.",
    "no_account_info": "The provider did not share the account details we need.",
    "email_taken": "An account with this email already exists. Log in with your password.",
    "server_error": "We could not finish signing you in. Please try again in a moment.",
}


class OAuthError(Exception):
    """A sign-in with a provider failed.

    Attributes:
        code: One of the keys of :data:`MESSAGES`.

    """

    def __init__(self, code: str) -> None:
        """Remember the failure code.

        Args:
            code: One of the keys of :data:`MESSAGES`.

        """
        if code not in MESSAGES:
            raise ValueError(f"unknown OAuth error code {code!r}")
        super().__init__(code)
        self.code = code

    @property
    def message(self) -> str:
        """The user-facing message."""
        return MESSAGES[self.code]


def message_for(code: object) -> str:
    """Return the user-facing message of a failure code from a URL ("" for anything else).

    Args:
        code: The raw ``error`` query parameter of the login page (any type).

    Returns:
        The fixed message, or ``""`` for an unknown code.

    """
    return MESSAGES.get(code, "") if isinstance(code, str) else ""
