"""The failure codes of a provider sign-in and the fixed message each one shows."""

from __future__ import annotations

from pathlib import Path

import pytest

from onboard_app.services import oauth_errors
from onboard_app.services.oauth_errors import MESSAGES, OAuthError, message_for


def test_messages_are_fixed_and_unknown_codes_show_nothing() -> None:
    assert message_for("email_taken") == (
        "An account with this email already exists. Log in with your password."
    )
    for code in MESSAGES:
        assert message_for(code) == MESSAGES[code] != ""
    for odd in ("", "access_denied", "<script>", None, 3, ["email_taken"]):
        assert message_for(odd) == ""


def test_an_error_carries_its_code_and_fixed_message() -> None:
    failure = OAuthError("issuer_mismatch")
    assert failure.code == "issuer_mismatch"
    assert failure.message == (
        "We could not verify which provider answered this sign-in. Please try again."
    )


def test_an_unknown_code_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="unknown OAuth error code 'access_denied'"):
        OAuthError("access_denied")


def test_module_has_no_reflex_import() -> None:
    source = Path(oauth_errors.__file__).read_text()
    assert "import reflex" not in source and "from reflex" not in source
