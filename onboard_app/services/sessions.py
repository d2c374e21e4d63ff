"""Sessions: turn a token from client storage into a verified user, start and end sessions.

This is the one place that decides whether a request is authenticated. Its cost per call is
one token verification (:func:`~onboard_app.services.tokens.verify_session_token`) plus the
revocation check against the user row, answered from the worker's memory until the row
changes (one primary-key read otherwise); when the token is stale (a claim differs from the
row, or the sliding window is reached) it is re-minted from that row.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

import sqlalchemy as sa
from sqlmodel import col

from onboard_app.models import OnboardingAnswers, User
from onboard_app.services.db import get_read_engine
from onboard_app.services.onboarding import (
    COMPLETED,
    Step,
    first_step,
    flow_version,
    new_required_steps,
    parse_step,
)
from onboard_app.services.roles import MEMBER, effective_role
from onboard_app.services.session_cache import get_session_cache
from onboard_app.services.tokens import (
    Rejection,
    SessionClaims,
    TokenRejected,
    mint_session_token,
    needs_refresh,
    verify_session_token,
)
from onboard_app.services.users import reopen_for_new_steps, revoke_sessions
from onboard_app.settings import Settings, get_settings


@dataclass(frozen=True)
class SessionUser:
    """What the app knows about the signed-in user, read from the database.

    Attributes:
        id: Primary key.
        email: Email address, if any.
        display_name: Name shown in the UI.
        avatar_url: Avatar image, if any.
        onboarding_step: Reached onboarding step.
        token_version: Current token version.
        flow_version: The onboarding flow version the user last completed.
        theme: Theme preference (``system``, ``light`` or ``dark``).
        email_verified: The account needs no email confirmation: its address was
            confirmed, or it has no password (a provider account, whose address is kept
            only when the provider says it is verified).
        role: The role the account has now (``services/roles.py``), from this row.
    """

    id: int
    email: str | None
    display_name: str
    avatar_url: str | None
    onboarding_step: Step
    token_version: int
    flow_version: int = 0
    theme: str = "system"
    email_verified: bool = False
    role: str = MEMBER


@dataclass(frozen=True)
class Authenticated:
    """A verified session.

    Attributes:
        claims: The verified claims of the token that was presented.
        user: The user as the database has them now.
        token: The token to keep: the presented one, or a re-minted one.
        reminted: Whether ``token`` is new (client storage must be updated).
    """

    claims: SessionClaims
    user: SessionUser
    token: str
    reminted: bool


_SESSION_COLUMNS = (
    col(User.id),
    col(User.email),
    col(User.display_name),
    col(User.avatar_url),
    col(User.onboarding_step),
    col(User.token_version),
    col(User.flow_version),
    col(OnboardingAnswers.theme),
    # The SQL twin of ``not accounts.needs_verification(user)``.
    sa.or_(col(User.email_verified_at).is_not(None), col(User.password_hash).is_(None)),
    col(User.role),
)


# Built once: constructing the statement and its cache key on every call cost more than
# running it on SQLite (~0.37 ms of a 0.45 ms read).
_SESSION_QUERY = (
    sa.select(*_SESSION_COLUMNS)
    .outerjoin(OnboardingAnswers, col(OnboardingAnswers.user_id) == col(User.id))
    .where(col(User.id) == sa.bindparam("user_id"))
)


def load_session_user(user_id: int, url: str | None = None) -> SessionUser | None:
    """The columns a session needs: from this worker's memory, or one primary-key read.

    Remembered rows are evicted on every worker when the user changes (see
    :mod:`onboard_app.services.session_cache`).

    Args:
        user_id: The user.
        url: Database URL.

    Returns:
        The user, or ``None`` if deleted.
    """
    source = url or get_settings().database_url
    cache = get_session_cache()
    cached = cache.get(user_id, source)
    if isinstance(cached, SessionUser):
        return cached
    read_began = cache.begin_read()
    with get_read_engine(source).connect() as connection:
        row = connection.execute(_SESSION_QUERY, {"user_id": user_id}).first()
    if row is None:
        return None
    user = SessionUser(
        id=user_id,
        email=row[1],
        display_name=row[2],
        avatar_url=row[3],
        onboarding_step=parse_step(row[4]) or first_step(),
        token_version=row[5],
        flow_version=row[6],
        theme=row[7] or "system",
        email_verified=bool(row[8]),
        role=effective_role(row[9], row[1], bool(row[8]), get_settings()),
    )
    cache.put(user_id, source, user, read_began)
    return user


def authenticate(
    token: object,
    settings: Settings | None = None,
    *,
    now: int | None = None,
    url: str | None = None,
) -> Authenticated | TokenRejected:
    """Verify a token and check it against the database; heal it if it is stale.

    Args:
        token: The value from client storage (any type).
        settings: Settings (default: process-wide).
        now: Current Unix time (tests).
        url: Database URL.

    Returns:
        The session, or why there is none.
    """
    settings = settings or get_settings()
    claims = verify_session_token(token, settings, now=now)
    if isinstance(claims, TokenRejected):
        return claims
    user = load_session_user(claims.user_id, url)
    if user is not None and behind_the_flow(user):
        reopen_for_new_steps(user.id, url)
        user = load_session_user(claims.user_id, url)
    return _against(token, claims, user, settings, now)


async def authenticate_off_loop(
    token: object, settings: Settings | None = None, *, url: str | None = None
) -> Authenticated | TokenRejected:
    """:func:`authenticate` for the event loop: a database read, if needed, runs in a thread.

    The token check is CPU work of microseconds and a remembered row a dictionary lookup,
    so only a cache miss pays for the thread hop.

    Args:
        token: The value from client storage (any type).
        settings: Settings (default: process-wide).
        url: Database URL.

    Returns:
        The session, or why there is none.
    """
    settings = settings or get_settings()
    claims = verify_session_token(token, settings)
    if isinstance(claims, TokenRejected):
        return claims
    cached = get_session_cache().get(claims.user_id, url or settings.database_url)
    user = (
        cached
        if isinstance(cached, SessionUser)
        else await asyncio.to_thread(load_session_user, claims.user_id, url)
    )
    if user is not None and behind_the_flow(user):
        await asyncio.to_thread(reopen_for_new_steps, user.id, url)
        user = await asyncio.to_thread(load_session_user, claims.user_id, url)
    return _against(token, claims, user, settings, None)


def behind_the_flow(user: SessionUser) -> bool:
    """Whether a user completed an older flow version that has added required steps since."""
    return (
        user.onboarding_step == COMPLETED
        and user.flow_version < flow_version()
        and bool(new_required_steps(user.flow_version))
    )


def _against(
    token: object,
    claims: SessionClaims,
    user: SessionUser | None,
    settings: Settings,
    now: int | None,
) -> Authenticated | TokenRejected:
    """Check verified claims against the user row; re-mint a stale token from the row."""
    if user is None or user.token_version != claims.token_version:
        return TokenRejected(Rejection.REVOKED)
    assert isinstance(token, str)
    stale = (user.onboarding_step, user.flow_version, user.role) != (
        claims.onboarding_step,
        claims.flow_version,
        claims.role,
    )
    if stale or needs_refresh(claims, settings, now=now):
        fresh = remint(user, claims, settings, now=now)
        return Authenticated(claims, user, fresh, reminted=True)
    return Authenticated(claims, user, token, reminted=False)


def remint(
    user: SessionUser | User,
    claims: SessionClaims,
    settings: Settings | None = None,
    *,
    now: int | None = None,
) -> str:
    """Mint a successor token from the database row, keeping the original ``auth_time``.

    Args:
        user: The user row as just read or written (never client data).
        claims: The verified claims of the current token.
        settings: Settings (default: process-wide).
        now: Current Unix time (tests).

    Returns:
        The new token (new jti, claims from ``user``).
    """
    settings = settings or get_settings()
    return mint_session_token(
        _Subject.of(user),
        settings,
        auth_time=claims.auth_time,
        now=now,
        role=role_of(user, settings),
    )


def role_of(user: SessionUser | User, settings: Settings) -> str:
    """The role a token minted from this row carries.

    Args:
        user: A session row (its role is already decided) or a user row.
        settings: Where ``ONBOARD_ADMIN_EMAILS`` was read.

    Returns:
        The role.
    """
    if isinstance(user, SessionUser):
        return user.role
    # The Python twin of the session query's "needs no email confirmation" column.
    verified = user.email_verified_at is not None or user.password_hash is None
    return effective_role(user.role, user.email, verified, settings)


def start_session(user: User, settings: Settings | None = None, *, now: int | None = None) -> str:
    """Mint the first token of a session, after a successful login or signup.

    Args:
        user: The user row.
        settings: Settings (default: process-wide).
        now: Current Unix time (tests).

    Returns:
        The token.
    """
    now = int(time.time()) if now is None else now
    settings = settings or get_settings()
    return mint_session_token(user, settings, auth_time=now, now=now, role=role_of(user, settings))


def end_session(token: object, settings: Settings | None = None, url: str | None = None) -> bool:
    """Log out: revoke every token of the user the token belongs to.

    Args:
        token: The presented token.
        settings: Settings (default: process-wide).
        url: Database URL.

    Returns:
        True if a session was ended.
    """
    session = authenticate(token, settings, url=url)
    if isinstance(session, TokenRejected):
        return False
    revoke_sessions(session.user.id, url)
    return True


def end_other_sessions(user_id: int, url: str | None = None) -> None:
    """End every session of a user, on every worker (a password reset, a confirmed address).

    Today a session is the token version: this ends every token of the user, the caller's
    too, and the caller starts a fresh session from the row read after it.

    Args:
        user_id: The user.
        url: Database URL.
    """
    revoke_sessions(user_id, url)


@dataclass(frozen=True)
class _Subject:
    id: int | None
    token_version: int
    onboarding_step: str
    flow_version: int

    @classmethod
    def of(cls, user: SessionUser | User) -> _Subject:
        return cls(user.id, user.token_version, str(user.onboarding_step), user.flow_version)
