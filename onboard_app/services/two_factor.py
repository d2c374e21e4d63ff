"""Two-factor authentication with an authenticator app (TOTP, RFC 6238) and recovery codes.

* **Codes**: 6 digits, SHA-1, a 30-second step (what every authenticator app does). A code
  is accepted for the current step or one step either side (clock drift), and only for a
  step later than the last one accepted for that user, so a code that worked is refused
  again (RFC 6238 §5.2), also by a second worker racing the first: the step is recorded
  with a conditional UPDATE that only one of them wins.
* **The secret** (160 random bits, base32) is stored AES-256-GCM encrypted, under a key
  derived (HKDF) from the signing key and bound to the user id, so a copy of the database
  alone yields no secret and a ciphertext moved to another user does not decrypt. The
  signing key's id is stored with it: after a key rotation, :func:`rewrap_secrets` (or the
  next accepted code) re-encrypts under the new key.
* **Recovery codes**: ten, each 16 characters of a 31-letter alphabet (about 79 random
  bits), shown once and stored as SHA-256 with the user id. At that entropy a slow hash
  buys nothing (nobody can try 2^79 guesses, with any hash), and an unkeyed one keeps the
  codes working across signing-key rotations, when they are needed most. Each is used once
  (a conditional UPDATE).
* **Throttled** like a login: every code is counted before it is checked, per account and
  per client address (:meth:`Throttle.start_second_factor`).

Enrolment is two steps: :func:`begin_enrolment` (after the password) stores a new secret
unconfirmed, :func:`confirm_enrolment` (a code from the app) confirms it and issues the
recovery codes. Only a confirmed secret asks for a code at sign-in.

Pure Python, blocking (database): call these off the event loop.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import logging
import os
import re
import secrets
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Final, Literal

import pyotp
import segno
import sqlalchemy as sa
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlmodel import Session, col, select

from onboard_app.models import TwoFactor, TwoFactorRecoveryCode, User, utcnow
from onboard_app.services import users
from onboard_app.services.account_settings import check_password
from onboard_app.services.db import session_scope
from onboard_app.services.throttle import Throttle, ThrottleUnavailable
from onboard_app.settings import SigningKey, get_settings

log = logging.getLogger("onboard.two_factor")

ISSUER: Final = "Onboard"
STEP_SECONDS: Final = 30
DIGITS: Final = 6
#: Steps accepted either side of the current one.
DRIFT_STEPS: Final = 1
RECOVERY_CODE_COUNT: Final = 10
RECOVERY_CODE_LENGTH: Final = 16
#: No 0/o, 1/l/i: a code copied by hand is read back the same.
RECOVERY_ALPHABET: Final = "23456789abcdefghjkmnpqrstuvwxyz"
#: How long an enrolment waits for its first code.
ENROLMENT_TTL: Final = timedelta(minutes=15)
#: Longer input is no code of ours (checked before anything else).
MAX_CODE_CHARS: Final = 64

ENTER_CODE: Final = "Enter the 6-digit code from your authenticator app."
WRONG_CODE: Final = (
    "This code is not valid. Enter the code your authenticator app shows now "
    "(each code works once)."
)
WRONG_RECOVERY_CODE: Final = "This recovery code is not valid, or it has been used."
TOO_MANY_CODES: Final = "Too many wrong codes."
UNAVAILABLE: Final = "Codes cannot be checked right now. Please try again in a minute."
ENROLMENT_EXPIRED: Final = "This setup has expired. Start again to get a new QR code."
ALREADY_ON: Final = "Two-factor authentication is already on."
NOT_ON: Final = "Two-factor authentication is not on."

_SECRET_KEY_LABEL: Final = b"onboard two-factor secret v1"
_RECOVERY_LABEL: Final = "onboard recovery code v1"
_NONCE_BYTES: Final = 12
_SEPARATORS: Final = str.maketrans("", "", " -\u00a0")
_TOTP_RE: Final = re.compile(rf"[0-9]{{{DIGITS}}}")
_RECOVERY_RE: Final = re.compile(rf"[{RECOVERY_ALPHABET}]{{{RECOVERY_CODE_LENGTH}}}")

CodeKind = Literal["totp", "recovery_code"]


class CodeRefused(Exception):
    """A code was not accepted; ``str(exc)`` is the message for the code's field."""


class TwoFactorThrottled(Exception):
    """Too many codes lately, or the counters are unreachable; ``str(exc)`` says which."""


class EnrolmentRefused(Exception):
    """Enrolment cannot start or finish now; ``str(exc)`` is the message for the form."""


@dataclass(frozen=True)
class Status:
    """What the settings page shows.

    Attributes:
        enrolled: A confirmed authenticator app asks for a code at sign-in.
        recovery_codes_left: Unused recovery codes.
    """

    enrolled: bool
    recovery_codes_left: int


@dataclass(frozen=True)
class Enrolment:
    """A new secret waiting for its first code: what the app is set up with.

    Attributes:
        secret: The base32 secret (for manual entry).
        uri: The ``otpauth://`` provisioning URI.
        qr_code: The URI as a QR code, an SVG ``data:`` URI.
    """

    secret: str = field(repr=False)
    uri: str = field(repr=False)
    qr_code: str = field(repr=False)


@dataclass(frozen=True)
class Accepted:
    """A code that has just been accepted, by this call and no other.

    Attributes:
        kind: ``totp`` or ``recovery_code``.
        recovery_codes_left: Unused recovery codes after this one.
    """

    kind: CodeKind
    recovery_codes_left: int


# --- TOTP -----------------------------------------------------------------------------------


def new_secret() -> str:
    """A new random secret: 160 bits (RFC 4226's recommendation), base32."""
    return pyotp.random_base32(32)


def time_step(now: float) -> int:
    """The TOTP time step of a Unix time."""
    return int(now // STEP_SECONDS)


def code_at(secret: str, step: int, digits: int = DIGITS) -> str:
    """The code of a time step (what the authenticator app shows during it)."""
    return pyotp.TOTP(secret, digits=digits, interval=STEP_SECONDS).generate_otp(step)


def normalised(code: object) -> str:
    """A typed code without spaces or hyphens, lower-cased ('' for anything odd)."""
    if not isinstance(code, str) or len(code) > MAX_CODE_CHARS:
        return ""
    return code.translate(_SEPARATORS).strip().lower()


def matching_step(
    secret: str, code: str, *, now: float, last_step: int | None, digits: int = DIGITS
) -> int | None:
    """The time step a code belongs to, if it may be accepted now.

    Args:
        secret: The base32 secret.
        code: The code, normalised.
        now: The current Unix time.
        last_step: The step of the last code accepted (``None``: none yet).
        digits: The code length (6; RFC 6238's test vectors use 8).

    Returns:
        The latest step within :data:`DRIFT_STEPS` of now, after ``last_step``, whose code
        this is; ``None`` if there is none.
    """
    if not re.fullmatch(rf"[0-9]{{{digits}}}", code):
        return None
    current = time_step(now)
    found = None
    for step in range(current - DRIFT_STEPS, current + DRIFT_STEPS + 1):
        # Every step is compared (constant time each), whichever matches.
        matches = hmac.compare_digest(code_at(secret, step, digits), code)
        if matches and (last_step is None or step > last_step):
            found = step
    return found


def provisioning_uri(secret: str, email: str) -> str:
    """The ``otpauth://`` URI an authenticator app is set up with (issuer "Onboard")."""
    return pyotp.TOTP(secret, interval=STEP_SECONDS).provisioning_uri(
        name=email, issuer_name=ISSUER
    )


def qr_code(uri: str) -> str:
    """The URI as a QR code: an SVG ``data:`` URI, dark on white with its quiet zone."""
    return str(segno.make(uri, error="m").svg_data_uri(scale=5, dark="#000", light="#fff"))


def grouped(secret: str) -> str:
    """The secret in groups of four, for typing it into an app by hand."""
    return " ".join(secret[i : i + 4] for i in range(0, len(secret), 4))


# --- the stored secret ----------------------------------------------------------------------


@lru_cache(maxsize=16)
def _cipher(key: SigningKey) -> AESGCM:
    derived = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_SECRET_KEY_LABEL)
    return AESGCM(derived.derive(key.secret))


def _bound_to(user_id: int) -> bytes:
    return f"two-factor secret of user {user_id}".encode()


def seal(secret: str, user_id: int, key: SigningKey) -> str:
    """Encrypt a secret for one user under a signing key (base64url of nonce + ciphertext)."""
    nonce = os.urandom(_NONCE_BYTES)
    sealed = _cipher(key).encrypt(nonce, secret.encode("ascii"), _bound_to(user_id))
    return base64.urlsafe_b64encode(nonce + sealed).decode("ascii")


def unseal(ciphertext: str, key_id: str, user_id: int) -> str | None:
    """Decrypt a stored secret with the keyring's key of that id.

    A retired key still decrypts after its ``not_after`` (that date is about tokens).

    Returns:
        The secret, or ``None`` when the key is no longer configured or it does not
        decrypt (logged: the user can still sign in with a recovery code).
    """
    key = next((k for k in get_settings().signing_keys if k.kid == key_id), None)
    if key is not None:
        try:
            raw = base64.urlsafe_b64decode(ciphertext.encode("ascii"))
            nonce, sealed = raw[:_NONCE_BYTES], raw[_NONCE_BYTES:]
            return _cipher(key).decrypt(nonce, sealed, _bound_to(user_id)).decode("ascii")
        except (InvalidTag, ValueError):
            pass
    log.error("two-factor secret of user %s cannot be decrypted (key id %s)", user_id, key_id)
    return None


def rewrap_secrets(url: str | None = None) -> tuple[int, int]:
    """Re-encrypt every secret that is not under the current signing key.

    Run after rotating the signing key, while the old key is still listed.

    Args:
        url: Database URL.

    Returns:
        How many secrets were re-encrypted, and how many could not be decrypted.
    """
    key = get_settings().current_key
    done = failed = 0
    with session_scope(url) as session:
        rows = session.exec(select(TwoFactor).where(col(TwoFactor.secret_key_id) != key.kid))
        for row in rows:
            secret = unseal(row.secret_ciphertext, row.secret_key_id, row.user_id)
            if secret is None:
                failed += 1
                continue
            row.secret_ciphertext, row.secret_key_id = seal(secret, row.user_id, key), key.kid
            done += 1
    return done, failed


# --- recovery codes -------------------------------------------------------------------------


def new_recovery_codes() -> list[str]:
    """Ten new recovery codes, as shown: ``xxxx-xxxx-xxxx-xxxx``."""
    codes = []
    for _ in range(RECOVERY_CODE_COUNT):
        raw = "".join(secrets.choice(RECOVERY_ALPHABET) for _ in range(RECOVERY_CODE_LENGTH))
        codes.append("-".join(raw[i : i + 4] for i in range(0, RECOVERY_CODE_LENGTH, 4)))
    return codes


def recovery_code_hash(user_id: int, code: str) -> str:
    """The stored form of a (normalised) recovery code of one user."""
    return hashlib.sha256(f"{_RECOVERY_LABEL}:{user_id}:{code}".encode()).hexdigest()


def _replace_recovery_codes(session: Session, user_id: int, codes: list[str]) -> None:
    session.execute(
        sa.delete(TwoFactorRecoveryCode).where(col(TwoFactorRecoveryCode.user_id) == user_id)
    )
    for code in codes:
        session.add(
            TwoFactorRecoveryCode(
                user_id=user_id, code_hash=recovery_code_hash(user_id, normalised(code))
            )
        )


def _codes_left(session: Session, user_id: int) -> int:
    return int(
        session.execute(
            sa.select(sa.func.count())
            .select_from(TwoFactorRecoveryCode)
            .where(
                col(TwoFactorRecoveryCode.user_id) == user_id,
                col(TwoFactorRecoveryCode.used_at).is_(None),
            )
        ).scalar_one()
    )


# --- status, enrolment, disabling -----------------------------------------------------------


def status(user_id: int, url: str | None = None) -> Status:
    """Whether the user is enrolled, and how many recovery codes are left.

    Args:
        user_id: The user.
        url: Database URL.

    Returns:
        The status.
    """
    with session_scope(url) as session:
        confirmed = session.execute(
            sa.select(col(TwoFactor.confirmed_at)).where(col(TwoFactor.user_id) == user_id)
        ).scalar_one_or_none()
        return Status(confirmed is not None, _codes_left(session, user_id) if confirmed else 0)


def is_enrolled(user_id: int, url: str | None = None) -> bool:
    """Whether signing in as this user needs a code after the password.

    Args:
        user_id: The user.
        url: Database URL.

    Returns:
        True once an authenticator app is confirmed (until it is turned off).
    """
    return status(user_id, url).enrolled


def _after_password(user: User, password: object, client: str, throttle: Throttle) -> int:
    """The step before any change to the second factor: the current password; the user's id.

    It is counted on the login throttle before the hash is checked, as a login is, so a
    stolen session can guess it no faster than the login form.

    Raises:
        NoPassword, FormErrors, WrongPassword, Throttled: From :func:`check_password`.
    """
    check_password(user, password, client, throttle)
    assert user.id is not None
    return user.id


def begin_enrolment(
    user: User,
    password: object,
    client: str,
    throttle: Throttle,
    *,
    now: float | None = None,
    url: str | None = None,
) -> Enrolment:
    """After the current password, store a new secret that waits for its first code.

    An earlier unconfirmed secret is replaced (its QR code stops working).

    Args:
        user: The signed-in account (a password account with an address).
        password: The current password as typed (any type).
        client: The client's address (password attempts are counted like logins).
        throttle: The login throttle.
        now: The current Unix time (tests).
        url: Database URL.

    Returns:
        What to show: the secret, its URI and QR code.

    Raises:
        NoPassword, FormErrors, WrongPassword, Throttled: From :func:`_after_password`.
        EnrolmentRefused: Two-factor authentication is already on.
    """
    user_id = _after_password(user, password, client, throttle)
    assert user.email is not None
    secret = new_secret()
    key = get_settings().current_key
    try:
        with session_scope(url) as session:
            session.execute(
                sa.delete(TwoFactor).where(
                    col(TwoFactor.user_id) == user_id, col(TwoFactor.confirmed_at).is_(None)
                )
            )
            session.add(
                TwoFactor(
                    user_id=user_id,
                    secret_ciphertext=seal(secret, user_id, key),
                    secret_key_id=key.kid,
                    created_at=_utc_from(time.time() if now is None else now),
                )
            )
    except IntegrityError:  # a confirmed secret is there
        raise EnrolmentRefused(ALREADY_ON) from None
    uri = provisioning_uri(secret, user.email)
    return Enrolment(secret, uri, qr_code(uri))


def confirm_enrolment(
    user_id: int,
    code: object,
    client: str,
    throttle: Throttle,
    *,
    now: float | None = None,
    url: str | None = None,
) -> list[str]:
    """Confirm the waiting secret with a code from the app; issue the recovery codes.

    Args:
        user_id: The signed-in user.
        code: The code as typed (any type).
        client: The client's address.
        throttle: The throttle (codes are counted before they are checked).
        now: The current Unix time (tests).
        url: Database URL.

    Returns:
        The ten recovery codes, to show once (only their hashes are kept).

    Raises:
        CodeRefused: Nothing typed, or not the app's current code.
        TwoFactorThrottled: Too many codes lately.
        EnrolmentRefused: No setup is waiting (never started, expired, or already on).
    """
    typed = normalised(code)
    if not typed:
        raise CodeRefused(ENTER_CODE)
    now = time.time() if now is None else now
    with session_scope(url) as session:
        row = session.get(TwoFactor, user_id)
    if row is None or row.confirmed_at is not None:
        raise EnrolmentRefused(ALREADY_ON if row is not None else ENROLMENT_EXPIRED)
    if _utc(row.created_at) + ENROLMENT_TTL < _utc_from(now):
        raise EnrolmentRefused(ENROLMENT_EXPIRED)
    _count(throttle, user_id, client)
    secret = unseal(row.secret_ciphertext, row.secret_key_id, user_id)
    step = matching_step(secret, typed, now=now, last_step=None) if secret else None
    if step is None:
        raise CodeRefused(WRONG_CODE)
    codes = new_recovery_codes()
    with session_scope(url) as session:
        confirmed = session.execute(
            sa.update(TwoFactor)
            .where(
                col(TwoFactor.user_id) == user_id,
                col(TwoFactor.confirmed_at).is_(None),
                col(TwoFactor.secret_ciphertext) == row.secret_ciphertext,
            )
            .values(confirmed_at=_utc_from(now), last_step=step)
        )
        if getattr(confirmed, "rowcount", 0) != 1:  # replaced or confirmed meanwhile
            raise EnrolmentRefused(ENROLMENT_EXPIRED)
        _replace_recovery_codes(session, user_id, codes)
    _succeeded(throttle, user_id, client)
    return codes


def cancel_enrolment(user_id: int, url: str | None = None) -> None:
    """Drop a secret that is still waiting for its first code (a confirmed one stays).

    Args:
        user_id: The signed-in user.
        url: Database URL.
    """
    with session_scope(url) as session:
        session.execute(
            sa.delete(TwoFactor).where(
                col(TwoFactor.user_id) == user_id, col(TwoFactor.confirmed_at).is_(None)
            )
        )


def turn_off(
    user: User,
    password: object,
    code: object,
    client: str,
    throttle: Throttle,
    *,
    now: float | None = None,
    url: str | None = None,
) -> None:
    """After the current password and a code (or a recovery code), turn two-factor off.

    Args:
        user: The signed-in account.
        password: The current password as typed (any type).
        code: A code from the app, or a recovery code (any type).
        client: The client's address.
        throttle: The login throttle (password and code are counted before checks).
        now: The current Unix time (tests).
        url: Database URL.

    Raises:
        NoPassword, FormErrors, WrongPassword, Throttled: From :func:`_after_password`.
        CodeRefused, TwoFactorThrottled: From the code check.
        EnrolmentRefused: Two-factor authentication is not on.
    """
    assert user.id is not None
    # Refused without the password (nothing counted): two-factor is off, or no code typed.
    if not is_enrolled(user.id, url):
        raise EnrolmentRefused(NOT_ON)
    if not normalised(code):
        raise CodeRefused(ENTER_CODE)
    user_id = _after_password(user, password, client, throttle)
    check_code(user_id, code, client, throttle, now=now, url=url)
    with session_scope(url) as session:
        session.execute(sa.delete(TwoFactor).where(col(TwoFactor.user_id) == user_id))
        session.execute(
            sa.delete(TwoFactorRecoveryCode).where(col(TwoFactorRecoveryCode.user_id) == user_id)
        )


# --- checking a code ------------------------------------------------------------------------


def _account(user_id: int) -> str:
    return f"user:{user_id}"


def _count(throttle: Throttle, user_id: int, client: str) -> None:
    try:
        wait = throttle.start_second_factor(_account(user_id), client)
    except ThrottleUnavailable:
        raise TwoFactorThrottled(UNAVAILABLE) from None
    if wait:
        minutes = max(1, (wait + 59) // 60)
        raise TwoFactorThrottled(
            f"{TOO_MANY_CODES} Try again in {minutes} minute{'s' if minutes > 1 else ''}."
        )


def _succeeded(throttle: Throttle, user_id: int, client: str) -> None:
    with contextlib.suppress(ThrottleUnavailable):
        throttle.second_factor_succeeded(_account(user_id), client)


def check_code(
    user_id: int,
    code: object,
    client: str,
    throttle: Throttle,
    *,
    now: float | None = None,
    url: str | None = None,
) -> Accepted:
    """Check a code from the app, or a recovery code, of an enrolled user, once.

    The attempt is counted before the check. An app code moves the user's last accepted
    step to its own (so it, and any earlier one, is refused from now on); a recovery code
    is marked used. Either is accepted by exactly one caller.

    Args:
        user_id: The user (from the pending sign-in or the verified session).
        code: The code as typed (any type).
        client: The client's address.
        throttle: The throttle.
        now: The current Unix time (tests).
        url: Database URL.

    Returns:
        What was accepted.

    Raises:
        CodeRefused: Nothing typed, or not a code that may be accepted now.
        TwoFactorThrottled: Too many codes lately, or the counters are unreachable.
    """
    typed = normalised(code)
    if not typed:
        raise CodeRefused(ENTER_CODE)
    now = time.time() if now is None else now
    _count(throttle, user_id, client)
    try:
        if _RECOVERY_RE.fullmatch(typed):
            accepted = _use_recovery_code(user_id, typed, now, url)
        else:
            accepted = _use_app_code(user_id, typed, now, url)
    except SQLAlchemyError:
        # Nothing was checked: a database outage must not lock out those who retry.
        with contextlib.suppress(ThrottleUnavailable):
            throttle.second_factor_not_checked(_account(user_id), client)
        raise
    _succeeded(throttle, user_id, client)
    return accepted


def _use_app_code(user_id: int, typed: str, now: float, url: str | None) -> Accepted:
    if not _TOTP_RE.fullmatch(typed):
        raise CodeRefused(WRONG_CODE)
    with session_scope(url) as session:
        row = session.get(TwoFactor, user_id)
    if row is None or row.confirmed_at is None:
        raise CodeRefused(WRONG_CODE)
    secret = unseal(row.secret_ciphertext, row.secret_key_id, user_id)
    step = matching_step(secret, typed, now=now, last_step=row.last_step) if secret else None
    if secret is None or step is None:
        raise CodeRefused(WRONG_CODE)
    values: dict[str, object] = {"last_step": step}
    key = get_settings().current_key
    if row.secret_key_id != key.kid:  # rotated since: move it to the current key
        values.update(secret_ciphertext=seal(secret, user_id, key), secret_key_id=key.kid)
    with session_scope(url) as session:
        won = session.execute(
            sa.update(TwoFactor)
            .where(
                col(TwoFactor.user_id) == user_id,
                col(TwoFactor.confirmed_at).is_not(None),
                sa.or_(col(TwoFactor.last_step).is_(None), col(TwoFactor.last_step) < step),
            )
            .values(**values)
        )
        if getattr(won, "rowcount", 0) != 1:  # another request used this step first
            raise CodeRefused(WRONG_CODE)
        left = _codes_left(session, user_id)
    return Accepted("totp", left)


def _use_recovery_code(user_id: int, typed: str, now: float, url: str | None) -> Accepted:
    with session_scope(url) as session:
        enrolled = session.execute(
            sa.select(col(TwoFactor.confirmed_at)).where(col(TwoFactor.user_id) == user_id)
        ).scalar_one_or_none()
        used = session.execute(
            sa.update(TwoFactorRecoveryCode)
            .where(
                col(TwoFactorRecoveryCode.user_id) == user_id,
                col(TwoFactorRecoveryCode.code_hash) == recovery_code_hash(user_id, typed),
                col(TwoFactorRecoveryCode.used_at).is_(None),
            )
            .values(used_at=_utc_from(now))
        )
        if enrolled is None or getattr(used, "rowcount", 0) != 1:
            raise CodeRefused(WRONG_RECOVERY_CODE)
        left = _codes_left(session, user_id)
    log.info("recovery code used by user %s; %s left", user_id, left)
    return Accepted("recovery_code", left)


def signed_in_user(user_id: int, url: str | None = None) -> User:
    """The account a pending sign-in names, read again after its code was accepted.

    Raises:
        UserGone: It was deleted meanwhile.
    """
    user = users.get_user(user_id, url)
    if user is None:
        raise users.UserGone(user_id)
    return user


def _utc(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=utcnow().tzinfo)


def _utc_from(now: float) -> datetime:
    return datetime.fromtimestamp(now, tz=utcnow().tzinfo)
