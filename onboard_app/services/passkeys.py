"""Passkeys (WebAuthn): register one, sign in with it, list, rename and remove them.

py_webauthn (``webauthn``) makes the options and checks each response: the challenge, the
origin, the hash of the RP ID, the user-present flag, the signature and the counter. This
module decides the rest:

* **The relying party is ``ONBOARD_PUBLIC_URL``**: its origin is the only origin a response
  may come from, its host the RP ID (:func:`relying_party`).
* **Challenges** are :class:`Challenge` values that the caller keeps in a backend-only var of
  the browser tab that asked for them, and hands back exactly once: a response is checked
  only against the challenge of its own tab, for its purpose (and, to register, its user),
  within :data:`CHALLENGE_TTL`.
* **Registration** asks for a discoverable credential (resident key required) with user
  verification preferred and no attestation, and excludes the user's passkeys already
  registered. **Sign-in** names no credential (``allowCredentials`` is empty): the
  authenticator offers the passkeys it holds for this site, and the response's credential
  id says whose account it is.
* **The counter**: an assertion must raise a non-zero counter (a lower one means a cloned
  authenticator); the new value is written only if the stored one is still the one checked
  against, so two uses of one response cannot both pass.

Pure Python, blocking (database): the states call it off the event loop.
"""

from __future__ import annotations

import json
import secrets
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Final
from urllib.parse import urlsplit

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select
from webauthn import (
    base64url_to_bytes,
    generate_authentication_options,
    generate_registration_options,
    options_to_json,
    verify_authentication_response,
    verify_registration_response,
)
from webauthn.helpers import bytes_to_base64url
from webauthn.helpers.exceptions import WebAuthnException
from webauthn.helpers.structs import (
    AuthenticatorSelectionCriteria,
    AuthenticatorTransport,
    PublicKeyCredentialDescriptor,
    ResidentKeyRequirement,
    UserVerificationRequirement,
)

from onboard_app.models import Passkey, User
from onboard_app.services import users
from onboard_app.services.db import session_scope
from onboard_app.services.text import TextRefused, clean_text
from onboard_app.settings import Settings, get_settings

#: Seconds a challenge can be answered (also the browser's timeout for the ceremony).
CHALLENGE_TTL: Final = 300
#: The name the authenticator shows for the site.
RP_NAME: Final = "Onboard"
MAX_NAME: Final = 64
#: Passkeys one account may hold.
MAX_PASSKEYS: Final = 20
#: A real response is a few kilobytes; anything longer is refused before it is parsed.
MAX_RESPONSE_CHARS: Final = 32_768
#: What py_webauthn and its parsers raise on a response it cannot accept or even read.
_UNREADABLE: Final = (WebAuthnException, ValueError, TypeError, KeyError, IndexError)

TRY_AGAIN: Final = "That took too long, or was started elsewhere. Try again."
NOT_ACCEPTED: Final = "That passkey could not be checked. Try again, or log in another way."
UNKNOWN_PASSKEY: Final = (
    "This passkey is not registered with Onboard (it may have been removed). Log in another way."
)
ALREADY_REGISTERED: Final = "This passkey is registered already."
TOO_MANY: Final = f"You have {MAX_PASSKEYS} passkeys, the most an account can have."
ENTER_NAME: Final = "Enter a name for this passkey."
NAME_TOO_LONG: Final = f"Use at most {MAX_NAME} characters."


class Purpose(StrEnum):
    """What a challenge was issued for."""

    REGISTER = "register"
    SIGN_IN = "sign_in"


class PasskeyRefused(Exception):
    """A ceremony did not succeed; ``str(exc)`` is the message for the user.

    Attributes:
        reason: A word for the audit line (``challenge``, ``origin``, ``signature``...).
    """

    def __init__(self, reason: str, message: str) -> None:
        """Keep the reason and the message.

        Args:
            reason: For the audit line.
            message: For the user.
        """
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True)
class RelyingParty:
    """This site, as WebAuthn names it.

    Attributes:
        id: The RP ID: the host of ``ONBOARD_PUBLIC_URL``.
        origin: The only origin a response may come from (scheme, host, non-default port).
        name: What the authenticator shows.
    """

    id: str
    origin: str
    name: str = RP_NAME


def relying_party(settings: Settings | None = None) -> RelyingParty:
    """The relying party of ``ONBOARD_PUBLIC_URL``.

    Args:
        settings: Settings (default: process-wide).

    Returns:
        Its RP ID and origin.
    """
    parts = urlsplit((settings or get_settings()).public_url)
    host = (parts.hostname or "localhost").lower()
    scheme = parts.scheme.lower()
    default_port = {"http": 80, "https": 443}.get(scheme)
    port = f":{parts.port}" if parts.port and parts.port != default_port else ""
    return RelyingParty(host, f"{scheme}://{host}{port}")


@dataclass(frozen=True)
class Challenge:
    """A challenge handed to one tab, kept server-side in that tab's state until answered.

    Attributes:
        value: The challenge (base64url).
        purpose: What it may be answered for.
        expires_at: Unix time after which it is refused.
        user_id: For a registration, the user it was issued to.
        user_handle: For a registration, the WebAuthn ``user.id`` the options carried
            (base64url): what the authenticator will give back at each sign-in.
    """

    value: str
    purpose: Purpose
    expires_at: float
    user_id: int | None = None
    user_handle: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """A plain dict for a Reflex backend var."""
        return {
            "value": self.value,
            "purpose": str(self.purpose),
            "expires_at": self.expires_at,
            "user_id": self.user_id,
            "user_handle": self.user_handle,
        }

    @classmethod
    def from_dict(cls, data: object) -> Challenge | None:
        """Rebuild a challenge kept by :meth:`to_dict`; anything else is ``None``."""
        if not isinstance(data, dict):
            return None
        value, purpose = data.get("value"), data.get("purpose")
        expires_at, user_id = data.get("expires_at"), data.get("user_id")
        handle = data.get("user_handle")
        if not isinstance(value, str) or purpose not in set(Purpose):
            return None
        if not (handle is None or isinstance(handle, str)):
            return None
        if not isinstance(expires_at, int | float) or not (
            user_id is None or (isinstance(user_id, int) and not isinstance(user_id, bool))
        ):
            return None
        return cls(value, Purpose(purpose), float(expires_at), user_id, handle)


def _random() -> str:
    return bytes_to_base64url(secrets.token_bytes(32))


def _check_challenge(
    challenge: Challenge | None, purpose: Purpose, now: float, user_id: int | None = None
) -> bytes:
    """The challenge's bytes, if it may be answered now for ``purpose`` (and ``user_id``)."""
    if (
        challenge is None
        or challenge.purpose is not purpose
        or challenge.user_id != user_id
        or now > challenge.expires_at
    ):
        raise PasskeyRefused("challenge", TRY_AGAIN)
    return base64url_to_bytes(challenge.value)


def _response(response: object) -> dict[str, Any]:
    """The browser's response, if it is a JSON object of a plausible size."""
    if not isinstance(response, dict):
        raise PasskeyRefused("malformed", NOT_ACCEPTED)
    try:
        size = len(json.dumps(response))
    except (TypeError, ValueError):
        raise PasskeyRefused("malformed", NOT_ACCEPTED) from None
    if size > MAX_RESPONSE_CHARS:
        raise PasskeyRefused("malformed", NOT_ACCEPTED)
    return response


#: py_webauthn's messages, by what they mean (for the audit line only).
_REASONS: Final = (
    ("origin", "origin"),
    ("challenge", "challenge"),
    ("RP ID", "rp_id"),
    ("sign count", "counter"),
    ("signature", "signature"),
    ("verif", "user_verification"),
)


def _reason(failure: Exception) -> str:
    text = str(failure)
    return next((reason for needle, reason in _REASONS if needle in text), "invalid")


# --- listing --------------------------------------------------------------------------------


@dataclass(frozen=True)
class PasskeyInfo:
    """A passkey as the settings page shows it.

    Attributes:
        id: Its row id (what rename and remove send back).
        name: The name the user gave it.
        created_at: When it was added.
        last_used_at: When it last signed in (``None``: never).
        transports: How the browser reaches its authenticator.
    """

    id: int
    name: str
    created_at: datetime
    last_used_at: datetime | None
    transports: tuple[str, ...]


def list_passkeys(user_id: int, url: str | None = None) -> list[PasskeyInfo]:
    """The user's passkeys, oldest first.

    Args:
        user_id: The user (from a verified session).
        url: Database URL.

    Returns:
        Their passkeys.
    """
    with session_scope(url) as session:
        rows = session.exec(
            select(Passkey).where(Passkey.user_id == user_id).order_by(col(Passkey.id))
        ).all()
        return [
            PasskeyInfo(
                row.id or 0,
                row.name,
                _aware(row.created_at),
                _aware(row.last_used_at) if row.last_used_at else None,
                tuple(row.transports),
            )
            for row in rows
        ]


def _aware(moment: datetime) -> datetime:
    """SQLite gives back naive UTC: make it aware."""
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def clean_name(name: object) -> str | TextRefused:
    """A passkey's name as typed, cleaned, or why it is refused.

    Args:
        name: What the client sent (any type).

    Returns:
        The name, or the refusal with its message.
    """
    cleaned = clean_text(name, max_chars=MAX_NAME)
    if isinstance(cleaned, TextRefused):
        return cleaned
    if not cleaned:
        return TextRefused(ENTER_NAME)
    if len(cleaned) > MAX_NAME:
        return TextRefused(NAME_TOO_LONG)
    return cleaned


def _passkey_id(passkey_id: object) -> int | None:
    if isinstance(passkey_id, bool) or not isinstance(passkey_id, int):
        return None
    if not 0 < passkey_id < 2**31:  # a row id; SQLite and PostgreSQL refuse larger ints
        return None
    return passkey_id


def rename_passkey(user_id: int, passkey_id: object, name: str, url: str | None = None) -> bool:
    """Rename one of the user's passkeys.

    Args:
        user_id: The user (from a verified session).
        passkey_id: The passkey, as the client sent it (any value).
        name: The new name, cleaned by :func:`clean_name`.
        url: Database URL.

    Returns:
        True if it was the user's and is renamed; another user's passkey is left alone.
    """
    return _change_own(user_id, passkey_id, sa.update(Passkey).values(name=name[:MAX_NAME]), url)


def remove_passkey(user_id: int, passkey_id: object, url: str | None = None) -> bool:
    """Remove one of the user's passkeys: it signs nobody in from now on.

    Args:
        user_id: The user (from a verified session).
        passkey_id: The passkey, as the client sent it (any value).
        url: Database URL.

    Returns:
        True if it was the user's and is removed; another user's passkey is left alone.
    """
    return _change_own(user_id, passkey_id, sa.delete(Passkey), url)


def _change_own(
    user_id: int, passkey_id: object, change: sa.Update | sa.Delete, url: str | None
) -> bool:
    """Run ``change`` on the passkey ``passkey_id`` if it is the user's; whether it was."""
    key = _passkey_id(passkey_id)
    if key is None:
        return False
    with session_scope(url) as session:
        result = session.execute(
            change.where(col(Passkey.id) == key, col(Passkey.user_id) == user_id)
        )
        return bool(result.rowcount)  # type: ignore[attr-defined]


# --- registration ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Ceremony:
    """What the browser needs for a ceremony, and what the tab keeps until it answers.

    Attributes:
        options: The ``publicKey`` options as JSON (binary values as base64url).
        challenge: Keep it in the tab's backend state; hand it back once.
    """

    options: str
    challenge: Challenge


def registration_options(
    user_id: int,
    settings: Settings | None = None,
    *,
    now: float | None = None,
    url: str | None = None,
) -> Ceremony:
    """Options to create a discoverable passkey for the user, excluding the ones they have.

    Args:
        user_id: The user (from a verified, re-authenticated session).
        settings: Settings (default: process-wide).
        now: Current Unix time (tests).
        url: Database URL.

    Returns:
        The options and the challenge.

    Raises:
        UserGone: The user no longer exists.
        PasskeyRefused: The account has :data:`MAX_PASSKEYS` passkeys already.
    """
    now = time.time() if now is None else now
    user = users.get_user(user_id, url)
    if user is None:
        raise users.UserGone(user_id)
    with session_scope(url) as session:
        existing = session.exec(select(Passkey).where(Passkey.user_id == user_id)).all()
        excluded = [(row.credential_id, row.transports, row.user_handle) for row in existing]
    if len(excluded) >= MAX_PASSKEYS:
        raise PasskeyRefused("too_many", TOO_MANY)
    handle = excluded[0][2] if excluded else _random()
    account = user.email or user.display_name or f"user {user_id}"
    challenge = Challenge(_random(), Purpose.REGISTER, now + CHALLENGE_TTL, user_id, handle)
    options = generate_registration_options(
        rp_id=relying_party(settings).id,
        rp_name=RP_NAME,
        user_id=base64url_to_bytes(handle),
        user_name=account,
        user_display_name=user.display_name or account,
        challenge=base64url_to_bytes(challenge.value),
        timeout=CHALLENGE_TTL * 1000,
        authenticator_selection=AuthenticatorSelectionCriteria(
            resident_key=ResidentKeyRequirement.REQUIRED,
            user_verification=UserVerificationRequirement.PREFERRED,
        ),
        exclude_credentials=[
            PublicKeyCredentialDescriptor(id=base64url_to_bytes(cid), transports=_transports(kinds))
            for cid, kinds, _ in excluded
        ],
    )
    return Ceremony(options_to_json(options), challenge)


def _transports(values: object) -> list[AuthenticatorTransport]:
    """The known transports among what a browser reported (anything else is dropped)."""
    known = {t.value: t for t in AuthenticatorTransport}
    if not isinstance(values, list):
        return []
    return [known[v] for v in values[:10] if isinstance(v, str) and v in known]


def register(
    user_id: int,
    challenge: Challenge | None,
    response: object,
    name: str,
    settings: Settings | None = None,
    *,
    now: float | None = None,
    url: str | None = None,
) -> PasskeyInfo:
    """Check the browser's answer to :func:`registration_options` and keep the passkey.

    Args:
        user_id: The user (from the verified session; must be the challenge's user).
        challenge: The challenge this tab was given (already taken out of its state).
        response: The browser's ``PublicKeyCredential`` as JSON (any value).
        name: The passkey's name, cleaned by :func:`clean_name`.
        settings: Settings (default: process-wide).
        now: Current Unix time (tests).
        url: Database URL.

    Returns:
        The new passkey.

    Raises:
        PasskeyRefused: No valid challenge, or the response does not verify, or the
            credential is registered already.
    """
    moment = time.time() if now is None else now
    expected = _check_challenge(challenge, Purpose.REGISTER, moment, user_id)
    body = _response(response)
    party = relying_party(settings)
    try:
        verified = verify_registration_response(
            credential=body,
            expected_challenge=expected,
            expected_rp_id=party.id,
            expected_origin=party.origin,
        )
    except _UNREADABLE as failure:
        raise PasskeyRefused(_reason(failure), NOT_ACCEPTED) from None
    assert challenge is not None and challenge.user_handle is not None
    inner = body.get("response")
    transports = _transports(inner.get("transports") if isinstance(inner, dict) else None)
    with session_scope(url) as session:
        count = session.scalar(
            sa.select(sa.func.count()).select_from(Passkey).where(col(Passkey.user_id) == user_id)
        )
        if (count or 0) >= MAX_PASSKEYS:
            raise PasskeyRefused("too_many", TOO_MANY)
        row = Passkey(
            user_id=user_id,
            credential_id=bytes_to_base64url(verified.credential_id),
            public_key=verified.credential_public_key,
            user_handle=challenge.user_handle,
            sign_count=verified.sign_count,
            name=name[:MAX_NAME],
            transports=[t.value for t in transports],
            created_at=datetime.fromtimestamp(moment, UTC),
        )
        session.add(row)
        try:
            session.flush()
        except IntegrityError:
            raise PasskeyRefused("duplicate", ALREADY_REGISTERED) from None
        return PasskeyInfo(row.id or 0, row.name, row.created_at, None, tuple(row.transports))


# --- sign-in --------------------------------------------------------------------------------


def authentication_options(
    settings: Settings | None = None, *, now: float | None = None
) -> Ceremony:
    """Options to sign in with any passkey of this site (discoverable: none is named).

    Args:
        settings: Settings (default: process-wide).
        now: Current Unix time (tests).

    Returns:
        The options (``PublicKeyCredentialRequestOptions`` as JSON) and the challenge.
    """
    now = time.time() if now is None else now
    challenge = Challenge(_random(), Purpose.SIGN_IN, now + CHALLENGE_TTL)
    options = generate_authentication_options(
        rp_id=relying_party(settings).id,
        challenge=base64url_to_bytes(challenge.value),
        timeout=CHALLENGE_TTL * 1000,
        allow_credentials=[],
        user_verification=UserVerificationRequirement.PREFERRED,
    )
    return Ceremony(options_to_json(options), challenge)


@dataclass(frozen=True)
class PasskeySignIn:
    """A passkey that signed in.

    Attributes:
        user: Its user.
        user_verified: The authenticator verified the user (fingerprint, face, PIN): the
            passkey is two factors by itself. Without it, it is one (something held).
    """

    user: User
    user_verified: bool


def authenticate(
    challenge: Challenge | None,
    response: object,
    settings: Settings | None = None,
    *,
    now: float | None = None,
    url: str | None = None,
) -> PasskeySignIn:
    """Check a sign-in with a passkey: whose it is, and that it answers this tab's challenge.

    The counter and the time of use are written only if the stored counter is still the
    one the response was checked against.

    Args:
        challenge: The challenge this tab was given (already taken out of its state).
        response: The browser's ``PublicKeyCredential`` as JSON (any value).
        settings: Settings (default: process-wide).
        now: Current Unix time (tests).
        url: Database URL.

    Returns:
        The passkey's user, to start a session for, and whether the user was verified.

    Raises:
        PasskeyRefused: No valid challenge, an unknown passkey, or a response that does
            not verify.
    """
    moment = time.time() if now is None else now
    expected = _check_challenge(challenge, Purpose.SIGN_IN, moment)
    body = _response(response)
    credential_id = body.get("id")
    if not isinstance(credential_id, str) or not credential_id:
        raise PasskeyRefused("malformed", NOT_ACCEPTED)
    with session_scope(url) as session:
        row = session.exec(select(Passkey).where(Passkey.credential_id == credential_id)).first()
        if row is None:
            raise PasskeyRefused("unknown_passkey", UNKNOWN_PASSKEY)
        passkey_id, user_id, stored_count = row.id, row.user_id, row.sign_count
        public_key, handle = row.public_key, row.user_handle
    inner = body.get("response")
    given_handle = inner.get("userHandle") if isinstance(inner, dict) else None
    if given_handle is not None and given_handle != handle:
        raise PasskeyRefused("user_handle", NOT_ACCEPTED)
    party = relying_party(settings)
    try:
        verified = verify_authentication_response(
            credential=body,
            expected_challenge=expected,
            expected_rp_id=party.id,
            expected_origin=party.origin,
            credential_public_key=public_key,
            credential_current_sign_count=stored_count,
        )
    except _UNREADABLE as failure:
        raise PasskeyRefused(_reason(failure), NOT_ACCEPTED) from None
    with session_scope(url) as session:
        result = session.execute(
            sa.update(Passkey)
            .where(col(Passkey.id) == passkey_id, col(Passkey.sign_count) == stored_count)
            .values(
                sign_count=verified.new_sign_count,
                last_used_at=datetime.fromtimestamp(moment, UTC),
            )
        )
        if not result.rowcount:  # type: ignore[attr-defined]
            raise PasskeyRefused("counter", NOT_ACCEPTED)
    user = users.get_user(user_id, url)
    if user is None:
        raise PasskeyRefused("unknown_passkey", UNKNOWN_PASSKEY)
    return PasskeySignIn(user, verified.user_verified)
