"""Session tokens: how a JWT is minted from a user row, and how one is verified.

This module is the only place a session token is created or read. It checks everything
that can be checked without the database (header, signature, key id and its grace period,
every required claim, time claims, absolute session lifetime). The revocation check against
the user's current token version lives in :mod:`onboard_app.services.sessions`, which calls
:func:`verify_session_token` first.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import time
import uuid
from dataclasses import dataclass
from enum import StrEnum
from functools import lru_cache
from typing import Any, Final, Protocol

import jwt
from jwt.utils import base64url_decode

from onboard_app.services.onboarding import Step, parse_step
from onboard_app.services.roles import ADMIN, MEMBER
from onboard_app.settings import Settings, SigningKey

ALGORITHM: Final = "HS256"
TOKEN_TYPE: Final = "onboard-session+jwt"  # noqa: S105 (a type name, not a secret)
MAX_TOKEN_LENGTH: Final = 4096
REQUIRED_CLAIMS: Final = (
    "iss",
    "aud",
    "sub",
    "iat",
    "nbf",
    "exp",
    "jti",
    "auth_time",
    "ver",
    "onb",
)
#: ``fv`` of a token minted before flow versions existed: never equal to a row's, so the
#: first check re-mints it from the database (no forced re-login at the upgrade).
FLOW_VERSION_UNKNOWN: Final = -1
#: ``role``: present (``"admin"``) only in an admin's token; absent means a member. Its
#: absence can only take rights away, and the gate reads the role from the row anyway: a
#: token that says more than the row is re-minted, never believed.
ROLE_CLAIM: Final = "role"
#: ``sid``: the device session (``models.DeviceSession``) the token belongs to. Tokens
#: minted before sessions existed have none: ``services/sessions.py`` adopts each one into
#: a session row the first time it is presented, under :func:`legacy_session_id`.
SESSION_CLAIM: Final = "sid"
#: A session id: 16 to 64 characters of ``[0-9a-f]`` (``secrets.token_hex``).
_SESSION_ID_CHARS: Final = frozenset("0123456789abcdef")


class TokenSubject(Protocol):
    """What a token is minted from: a user row as stored in the database."""

    @property
    def id(self) -> int | None:
        """The user's primary key."""

    @property
    def token_version(self) -> int:
        """The user's current token version."""

    @property
    def onboarding_step(self) -> str:
        """The user's reached onboarding step."""

    @property
    def flow_version(self) -> int:
        """The onboarding flow version the user last completed (0: never)."""


class Rejection(StrEnum):
    """Why a token does not authenticate anyone. Every failure is one of these."""

    MISSING = "missing"
    MALFORMED = "malformed"
    INVALID = "invalid"
    EXPIRED = "expired"
    SESSION_EXPIRED = "session_expired"
    REVOKED = "revoked"


@dataclass(frozen=True)
class TokenRejected:
    """A failed verification.

    Attributes:
        reason: The kind of failure; the UI shows one generic message per kind.
    """

    reason: Rejection

    def __bool__(self) -> bool:
        """A rejection is falsy, so ``if claims:`` reads naturally."""
        return False


@dataclass(frozen=True)
class SessionClaims:
    """The verified content of a session token.

    Attributes:
        user_id: The subject (``sub``) as the user's primary key.
        token_version: ``ver``: must equal the user's current version to be valid.
        onboarding_step: ``onb``: the user's reached onboarding step when minted.
        flow_version: ``fv``: the onboarding flow version the user had completed (0: none;
            :data:`FLOW_VERSION_UNKNOWN` for a token minted before versions existed).
        jti: Unique token id (for logs and audits).
        issued_at: ``iat``.
        expires_at: ``exp``.
        auth_time: When the user last proved who they are (login); kept on re-mint.
        kid: The key id the token was signed with.
        role: ``role``: the user's role when minted (``member`` when the claim is absent).
        sid: ``sid``: the device session, or ``None`` for a token minted before sessions.
    """

    user_id: int
    token_version: int
    onboarding_step: Step
    flow_version: int
    jti: str
    issued_at: int
    expires_at: int
    auth_time: int
    kid: str
    role: str = MEMBER
    sid: str | None = None

    @property
    def session_id(self) -> str:
        """The session this token belongs to: its ``sid``, or the adopted one of an old token."""
        return self.sid if self.sid is not None else legacy_session_id(self.jti)


def is_session_id(value: object) -> bool:
    """Whether ``value`` has the shape of a session id (any client text can be checked)."""
    return (
        isinstance(value, str)
        and 16 <= len(value) <= 64
        and all(ch in _SESSION_ID_CHARS for ch in value)
    )


def new_session_id() -> str:
    """A fresh, unguessable session id."""
    return secrets.token_hex(16)


def legacy_session_id(jti: str) -> str:
    """The session a token without ``sid`` is adopted into: one per token, derived from its jti.

    Deterministic, so the same old token presented twice (two tabs, a replay) names one
    session, never a second.
    """
    return hashlib.sha256(f"legacy-session:{jti}".encode()).hexdigest()[:32]


def mint_session_token(
    user: TokenSubject,
    settings: Settings,
    *,
    auth_time: int | None = None,
    now: int | None = None,
    role: str = MEMBER,
    session_id: str | None = None,
) -> str:
    """Mint a session token from a user row.

    Args:
        user: The user as loaded from the database (never data from a client).
        settings: Keys, issuer, audience and lifetimes.
        auth_time: When the user authenticated; ``now`` for a fresh login. A re-mint
            passes the old token's value so the absolute lifetime keeps counting.
        now: Current Unix time (tests).
        role: The user's role, as ``services/roles.py`` decides it from the same row.
        session_id: The device session (``sid``). The app always passes one; ``None``
            makes a token of the kind minted before sessions existed (tests of that case).

    Returns:
        The signed JWT.

    Raises:
        ValueError: If the user has no id, an unknown onboarding step, or the session id
            is malformed.
    """
    if user.id is None:
        raise ValueError("cannot mint a token for an unsaved user")
    if session_id is not None and not is_session_id(session_id):
        raise ValueError("malformed session id")
    step = parse_step(user.onboarding_step)
    if step is None:
        raise ValueError(f"user {user.id} has an unknown onboarding step")
    now = int(time.time()) if now is None else now
    auth_time = now if auth_time is None else auth_time
    # The token never outlives the absolute session lifetime.
    expires = min(now + settings.token_ttl, auth_time + settings.session_max_age)
    key = settings.current_key
    payload = {
        "iss": settings.token_issuer,
        "aud": settings.token_audience,
        "sub": str(user.id),
        "iat": now,
        "nbf": now,
        "exp": expires,
        "jti": uuid.uuid4().hex,
        "auth_time": auth_time,
        "ver": user.token_version,
        "onb": step,
        "fv": user.flow_version,
    }
    if role == ADMIN:
        payload[ROLE_CLAIM] = ADMIN
    if session_id is not None:
        payload[SESSION_CLAIM] = session_id
    return jwt.encode(
        payload, key.secret, algorithm=ALGORITHM, headers={"typ": TOKEN_TYPE, "kid": key.kid}
    )


# A session presents the same token with every event until it is re-minted, and pyjwt
# parses and checks a token in pure Python (~0.1 ms). What depends only on the token's
# bytes and the key is remembered; what depends on the clock (the key's grace period, every
# time claim, the session lifetime) and the revocation check run on every call. Failures
# are never cached (lru_cache does not keep exceptions). The returned dicts are shared:
# read them, never change them.
_CACHE_SIZE: Final = 4096


@lru_cache(maxsize=64)
def _header_of(segment: str) -> dict[str, Any]:
    # Every token signed with one key carries the same header segment, so a token seen for
    # the first time still finds its header parsed (a third of a first-sight check). Only
    # used to pick the key: jwt.decode parses and checks the whole token again.
    try:
        header = json.loads(base64url_decode(segment))
    except (ValueError, TypeError, RecursionError) as exc:
        raise jwt.DecodeError("invalid header") from exc
    if not isinstance(header, dict):
        raise jwt.DecodeError("invalid header")
    return header


def _unverified_header(token: str) -> dict[str, Any]:
    return _header_of(token.partition(".")[0])


@lru_cache(maxsize=_CACHE_SIZE)
def _decode(token: str, secret: bytes, issuer: str, audience: str) -> dict[str, Any]:
    return jwt.decode(
        token,
        secret,
        algorithms=[ALGORITHM],
        issuer=issuer,
        audience=audience,
        # Time claims are checked against ``now`` by the caller (pyjwt only knows the wall clock).
        options={
            "require": list(REQUIRED_CLAIMS),
            "verify_exp": False,
            "verify_nbf": False,
            "verify_iat": False,
            "verify_jti": True,
        },
    )


def _key_for(header: dict[str, Any], settings: Settings, now: int) -> SigningKey | None:
    kid = header.get("kid")
    if not isinstance(kid, str) or header.get("alg") != ALGORITHM:
        return None
    if header.get("typ") != TOKEN_TYPE:
        return None
    for key in settings.signing_keys:
        if key.kid == kid:
            if key.not_after is not None and now > key.not_after:
                return None
            return key
    return None


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def verify_session_token(
    token: object, settings: Settings, *, now: int | None = None
) -> SessionClaims | TokenRejected:
    """Verify a session token without touching the database.

    Args:
        token: Whatever the client storage held (any type; only a ``str`` can pass).
        settings: Keyring, issuer, audience, leeway, session lifetime.
        now: Current Unix time (tests).

    Returns:
        The claims, or a :class:`TokenRejected` saying why not.
    """
    if token is None or token == "":
        return TokenRejected(Rejection.MISSING)
    if not isinstance(token, str) or len(token) > MAX_TOKEN_LENGTH or token.count(".") != 2:
        return TokenRejected(Rejection.MALFORMED)
    now = int(time.time()) if now is None else now
    try:
        header = _unverified_header(token)
        key = _key_for(header, settings, now)
        if key is None:
            return TokenRejected(Rejection.INVALID)
        payload = _decode(token, key.secret, settings.token_issuer, settings.token_audience)
    except jwt.InvalidSignatureError:
        return TokenRejected(Rejection.INVALID)
    except jwt.DecodeError:
        return TokenRejected(Rejection.MALFORMED)
    except (jwt.PyJWTError, ValueError, TypeError):
        # PyJWTError covers InvalidKeyError, which is not an InvalidTokenError.
        return TokenRejected(Rejection.INVALID)
    return _claims_from(payload, key.kid, settings, now)


def _claims_from(
    payload: dict[str, Any], kid: str, settings: Settings, now: int
) -> SessionClaims | TokenRejected:
    sub, ver, auth_time = payload["sub"], payload["ver"], payload["auth_time"]
    iat, nbf, exp, jti = payload["iat"], payload["nbf"], payload["exp"], payload["jti"]
    step, flow = parse_step(payload["onb"]), payload.get("fv", FLOW_VERSION_UNKNOWN)
    if not all(_is_int(v) for v in (ver, auth_time, iat, nbf, exp, flow)) or flow < -1:
        return TokenRejected(Rejection.INVALID)
    leeway = settings.leeway
    if now > exp + leeway:
        return TokenRejected(Rejection.EXPIRED)
    if (
        nbf > now + leeway
        or iat > now + leeway
        or not isinstance(sub, str)
        or not sub.isascii()
        or not sub.isdigit()
        or len(sub) > 18
        or not isinstance(jti, str)
        or not 0 < len(jti) <= 64
        or step is None
        or auth_time > iat
        or exp - iat > settings.token_ttl
        or payload.get(ROLE_CLAIM, ADMIN) != ADMIN
        or (SESSION_CLAIM in payload and not is_session_id(payload[SESSION_CLAIM]))
    ):
        return TokenRejected(Rejection.INVALID)
    if auth_time > now + settings.leeway:
        return TokenRejected(Rejection.INVALID)
    if now - auth_time > settings.session_max_age:
        return TokenRejected(Rejection.SESSION_EXPIRED)
    return SessionClaims(
        user_id=int(sub),
        token_version=ver,
        onboarding_step=step,
        flow_version=flow,
        jti=jti,
        issued_at=iat,
        expires_at=exp,
        auth_time=auth_time,
        kid=kid,
        role=ADMIN if ROLE_CLAIM in payload else MEMBER,
        sid=payload.get(SESSION_CLAIM),
    )


def needs_refresh(claims: SessionClaims, settings: Settings, *, now: int | None = None) -> bool:
    """Whether activity should re-mint this token (sliding session).

    Args:
        claims: Verified claims.
        settings: Lifetimes.
        now: Current Unix time (tests).

    Returns:
        True once the token is older than ``token_refresh_after`` seconds, unless the
        absolute lifetime already caps its expiry (a re-mint could not extend it).
    """
    now = int(time.time()) if now is None else now
    cap = claims.auth_time + settings.session_max_age
    return now - claims.issued_at >= settings.token_refresh_after and claims.expires_at < cap
