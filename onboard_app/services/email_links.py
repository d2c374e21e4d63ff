"""One-time email links and their short codes: email verification, password reset, email change.

A link carries a 32-byte random token; the mail also shows a 6-digit code to type on the
same screen instead. The database keeps only hashes: SHA-256 of the token (256 random bits
need no salt or key), and an HMAC of the code keyed by the signing key, so a stolen
database cannot be searched for the million possible codes. Each is redeemed at most once:
the redeeming UPDATE is conditional on ``used_at IS NULL``, so of two concurrent redeems one
wins. A code allows :data:`MAX_CODE_ATTEMPTS` tries per link, counted before the comparison.

One row per user and purpose: issuing a link replaces the previous one (its token and code
stop working). Blocking (database): call these off the event loop.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any, Final, NamedTuple

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session, col

from onboard_app.models import EmailLink, User, utcnow
from onboard_app.services.db import session_scope
from onboard_app.services.users import normalise_email
from onboard_app.settings import SigningKey, get_settings


class LinkPurpose(StrEnum):
    """What a link is for; a link redeems only for the purpose it was issued for."""

    VERIFY_EMAIL = "verify_email"
    RESET_PASSWORD = "reset_password"  # noqa: S105 (a purpose, not a password)
    CHANGE_EMAIL = "change_email"


#: How long a link and its code stay valid.
TTL: Final[dict[LinkPurpose, timedelta]] = {
    LinkPurpose.VERIFY_EMAIL: timedelta(hours=24),
    LinkPurpose.RESET_PASSWORD: timedelta(minutes=30),
    LinkPurpose.CHANGE_EMAIL: timedelta(hours=24),
}
TOKEN_BYTES: Final = 32
CODE_DIGITS: Final = 6
#: Code tries per link (right or wrong): 5 in 10^6 is the odds of guessing one.
MAX_CODE_ATTEMPTS: Final = 5
# token_urlsafe(32) is 43 characters; anything much longer is not ours.
_MAX_TOKEN_CHARS: Final = 128
_TOKEN_RE: Final = re.compile(r"[A-Za-z0-9_-]{16,128}")
_CODE_RE: Final = re.compile(rf"[0-9]{{{CODE_DIGITS}}}")
_CODE_SEPARATORS: Final = str.maketrans("", "", " -\u00a0")
_CODE_KEY_LABEL: Final = b"onboard email-link code v1"


class Refusal(StrEnum):
    """Why a token or code did not redeem."""

    #: Unknown, tampered with, replaced by a newer link, for another purpose or user.
    INVALID = "invalid"
    EXPIRED = "expired"
    USED = "used"
    #: The code was tried :data:`MAX_CODE_ATTEMPTS` times (the link itself still works).
    TOO_MANY_ATTEMPTS = "too_many_attempts"


#: What to tell the user for each refusal.
REFUSAL_MESSAGES: Final[dict[Refusal, str]] = {
    Refusal.INVALID: "This link or code is not valid. Check it, or ask for a new one.",
    Refusal.EXPIRED: "This link or code has expired. Ask for a new one.",
    Refusal.USED: "This link or code has already been used. Ask for a new one if you need it.",
    Refusal.TOO_MANY_ATTEMPTS: (
        "Too many wrong codes. Use the link in the email, or ask for a new one."
    ),
}


class IssuedLink(NamedTuple):
    """The secrets of a new link, to put in the mail (never in a log)."""

    token: str
    code: str

    def __repr__(self) -> str:
        """Keep the secrets out of reprs and tracebacks."""
        return "IssuedLink(token=..., code=...)"


@dataclass(frozen=True)
class Redeemed:
    """A link or code that has just been used, by this call and no other.

    Attributes:
        user_id: Whose link it was.
        purpose: What it was for.
        new_email: For :attr:`LinkPurpose.CHANGE_EMAIL`, the address it confirms.
    """

    user_id: int
    purpose: LinkPurpose
    new_email: str | None = None


def issue(
    user_id: int,
    purpose: LinkPurpose,
    ttl: timedelta | None = None,
    new_email: str | None = None,
    *,
    now: datetime | None = None,
    url: str | None = None,
) -> IssuedLink:
    """Create the link for a user and purpose, replacing any earlier one.

    Args:
        user_id: An existing user.
        purpose: What the link is for.
        ttl: How long it is valid; :data:`TTL` of the purpose by default.
        new_email: The address being confirmed (required for ``CHANGE_EMAIL`` only),
            already normalised by the caller.
        now: The current time (tests).
        url: Database URL.

    Returns:
        The token for the link and the code to type.

    Raises:
        ValueError: If ``new_email`` is missing for an email change, or given for another
            purpose.
    """
    purpose = LinkPurpose(purpose)
    if (purpose is LinkPurpose.CHANGE_EMAIL) != (new_email is not None):
        raise ValueError("new_email is required for an email change, and only for one")
    now = now or utcnow()
    token = secrets.token_urlsafe(TOKEN_BYTES)
    code = f"{secrets.randbelow(10**CODE_DIGITS):0{CODE_DIGITS}d}"
    key = get_settings().current_key
    token_hash = _token_hash(token)
    values: dict[str, Any] = {
        "user_id": user_id,
        "purpose": purpose.value,
        "token_hash": token_hash,
        "code_hash": _code_hash(key, token_hash, user_id, purpose, code),
        "code_key_id": key.kid,
        "new_email": new_email,
        "code_attempts": 0,
        "created_at": now,
        "expires_at": now + (ttl if ttl is not None else TTL[purpose]),
        "used_at": None,
    }
    with session_scope(url) as session:
        session.execute(_upsert(session, values))
    return IssuedLink(token, code)


def redeem_token(
    token: object,
    purpose: LinkPurpose,
    *,
    user_id: int | None = None,
    now: datetime | None = None,
    url: str | None = None,
) -> Redeemed | Refusal:
    """Use a link's token, once.

    Args:
        token: The token from the link (any type: it comes from the client).
        purpose: The purpose the caller expects.
        user_id: If given, the user the link must belong to (the signed-in user).
        now: The current time (tests).
        url: Database URL.

    Returns:
        :class:`Redeemed` for exactly one caller, else why not.
    """
    if not isinstance(token, str) or not _TOKEN_RE.fullmatch(token):
        return Refusal.INVALID
    purpose = LinkPurpose(purpose)
    now = now or utcnow()
    token_hash = _token_hash(token)
    conditions = [col(EmailLink.token_hash) == token_hash, col(EmailLink.purpose) == purpose.value]
    if user_id is not None:
        conditions.append(col(EmailLink.user_id) == user_id)
    with session_scope(url) as session:
        won = session.execute(
            sa.update(EmailLink)
            .where(*conditions, col(EmailLink.used_at).is_(None), col(EmailLink.expires_at) > now)
            .values(used_at=now)
            .returning(col(EmailLink.user_id), col(EmailLink.new_email))
        ).first()
    if won is not None:
        return Redeemed(won.user_id, purpose, won.new_email)
    return _refusal(sa.and_(*conditions), now, url)


def redeem_code(
    code: object,
    purpose: LinkPurpose,
    *,
    user_id: int | None = None,
    email: str | None = None,
    now: datetime | None = None,
    url: str | None = None,
) -> Redeemed | Refusal:
    """Use a link's code, once; every try counts against :data:`MAX_CODE_ATTEMPTS`.

    Args:
        code: The code as typed (spaces and dashes are ignored; any type).
        purpose: The purpose the caller expects.
        user_id: Whose code it is (the signed-in user, or the one the screen is for)...
        email: ...or their current email address (exactly one of the two).
        now: The current time (tests).
        url: Database URL.

    Returns:
        :class:`Redeemed` for exactly one caller, else why not (by ``email``, always
        :attr:`Refusal.INVALID`, so the answer says nothing about the address).

    Raises:
        ValueError: Unless exactly one of ``user_id`` and ``email`` is given.
    """
    if (user_id is None) == (email is None):
        raise ValueError("give user_id or email")
    purpose = LinkPurpose(purpose)
    if user_id is not None:
        owner: Any = user_id
    else:
        address = normalise_email(email)
        if address is None:
            return Refusal.INVALID
        owner = sa.select(col(User.id)).where(col(User.email) == address).scalar_subquery()
    if not isinstance(code, str) or len(code) > 4 * CODE_DIGITS:
        return Refusal.INVALID
    code = code.translate(_CODE_SEPARATORS)
    if not _CODE_RE.fullmatch(code):
        return Refusal.INVALID
    now = now or utcnow()
    link = sa.and_(col(EmailLink.user_id) == owner, col(EmailLink.purpose) == purpose.value)
    with session_scope(url) as session:
        # Count the try first, in the statement that checks the limit: however many tries
        # run at once, at most MAX_CODE_ATTEMPTS of them get to compare.
        row = session.execute(
            sa.update(EmailLink)
            .where(
                link,
                col(EmailLink.used_at).is_(None),
                col(EmailLink.expires_at) > now,
                col(EmailLink.code_attempts) < MAX_CODE_ATTEMPTS,
            )
            .values(code_attempts=col(EmailLink.code_attempts) + 1)
            .returning(
                col(EmailLink.id),
                col(EmailLink.user_id),
                col(EmailLink.token_hash),
                col(EmailLink.code_hash),
                col(EmailLink.code_key_id),
                col(EmailLink.new_email),
            )
        ).first()
        if row is None:
            session.rollback()
        elif not _code_matches(row, purpose, code):
            return Refusal.INVALID
        else:
            won = session.execute(
                sa.update(EmailLink)
                .where(
                    col(EmailLink.id) == row.id,
                    col(EmailLink.token_hash) == row.token_hash,
                    col(EmailLink.used_at).is_(None),
                )
                .values(used_at=now)
            )
            if getattr(won, "rowcount", 0) == 1:
                return Redeemed(row.user_id, purpose, row.new_email)
    if email is not None:
        # "Expired" or "used" would tell a stranger that the address has an account.
        return Refusal.INVALID
    return _refusal(link, now, url)


def revoke(user_id: int, purpose: LinkPurpose | None = None, url: str | None = None) -> int:
    """Cancel a user's outstanding links (all purposes by default).

    Args:
        user_id: The user.
        purpose: Only this purpose.
        url: Database URL.

    Returns:
        How many rows were removed.
    """
    query = sa.delete(EmailLink).where(col(EmailLink.user_id) == user_id)
    if purpose is not None:
        query = query.where(col(EmailLink.purpose) == LinkPurpose(purpose).value)
    with session_scope(url) as session:
        return int(getattr(session.execute(query), "rowcount", 0))


def prune(now: datetime | None = None, url: str | None = None) -> int:
    """Delete links that can no longer be redeemed (expired or used).

    Args:
        now: The current time (tests).
        url: Database URL.

    Returns:
        How many rows were removed.
    """
    now = now or utcnow()
    query = sa.delete(EmailLink).where(
        sa.or_(col(EmailLink.expires_at) <= now, col(EmailLink.used_at).is_not(None))
    )
    with session_scope(url) as session:
        return int(getattr(session.execute(query), "rowcount", 0))


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("ascii")).hexdigest()


def _code_hash(
    key: SigningKey, token_hash: str, user_id: int, purpose: LinkPurpose, code: str
) -> str:
    # Bound to this row (its token hash), user and purpose: a code is worth nothing elsewhere.
    mac_key = hmac.new(key.secret, _CODE_KEY_LABEL, hashlib.sha256).digest()
    message = f"{token_hash}:{user_id}:{purpose.value}:{code}".encode("ascii")
    return hmac.new(mac_key, message, hashlib.sha256).hexdigest()


def _code_matches(row: Any, purpose: LinkPurpose, code: str) -> bool:
    key = next((k for k in get_settings().signing_keys if k.kid == row.code_key_id), None)
    if key is None:  # the key it was made with has been removed: the code is dead
        return False
    expected = _code_hash(key, row.token_hash, row.user_id, purpose, code)
    return hmac.compare_digest(expected, row.code_hash)


def _upsert(session: Session, values: dict[str, Any]) -> Any:
    dialect = session.get_bind().dialect.name
    insert = sqlite.insert if dialect == "sqlite" else postgresql.insert
    statement = insert(EmailLink).values(**values)
    replaced = {
        name: statement.excluded[name] for name in values if name not in ("user_id", "purpose")
    }
    return statement.on_conflict_do_update(index_elements=["user_id", "purpose"], set_=replaced)


def _refusal(link: Any, now: datetime, url: str | None) -> Refusal:
    """Why the row matching ``link`` (if any) did not redeem."""
    with session_scope(url) as session:
        row = session.execute(
            sa.select(
                col(EmailLink.used_at), col(EmailLink.expires_at), col(EmailLink.code_attempts)
            ).where(link)
        ).first()
    if row is None:
        return Refusal.INVALID
    if row.used_at is not None:
        return Refusal.USED
    if row.expires_at <= now:
        return Refusal.EXPIRED
    if row.code_attempts >= MAX_CODE_ATTEMPTS:
        return Refusal.TOO_MANY_ATTEMPTS
    return Refusal.INVALID
