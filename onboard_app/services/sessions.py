"""Sessions: turn a token from client storage into a verified user, start and end sessions.

This is the one place that decides whether a request is authenticated. Its cost per call is
one token verification (:func:`~onboard_app.services.tokens.verify_session_token`) plus the
revocation check against the user row and the row of the device session the token names
(its ``sid``), in one read by primary keys; when the token is stale (a claim differs from
the row, or the sliding window is reached) it is re-minted from that row.

Each sign-in is a device session (``models.DeviceSession``): a token is valid only while
its row exists and carries the user's current token version. Ending a session deletes its
row and bumps the version (the sessions that stay are carried to the new one), so logout
ends this session only, and "sign out" ends another one at its next event. Activity is
written to the row at most once per :data:`LAST_SEEN_INTERVAL`. A token minted before
sessions existed (no ``sid``) is adopted into a row of its own the first time it is
presented, if the user is still at its version: nobody is signed out by the upgrade, and
once any session of the user has ended, no such token can come back.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any, Final

import sqlalchemy as sa
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import col

from onboard_app.models import DeviceSession, OnboardingAnswers, User
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
from onboard_app.services.tokens import (
    Rejection,
    SessionClaims,
    TokenRejected,
    is_session_id,
    mint_session_token,
    needs_refresh,
    new_session_id,
    verify_session_token,
)
from onboard_app.services.user_agents import parse_user_agent
from onboard_app.services.users import (
    NewDeviceSession,
    adopt_device_session,
    create_device_session,
    end_device_sessions,
    live_device_sessions,
    reopen_for_new_steps,
    touch_device_session,
)
from onboard_app.settings import Settings, get_settings

log = logging.getLogger("onboard.sessions")

#: A session's "last seen" is written at most this often (seconds): one write per
#: five minutes of activity, not one per event.
LAST_SEEN_INTERVAL: Final = 300


@dataclass(frozen=True)
class Client:
    """Where an event comes from, as the server sees it (for the session row).

    Attributes:
        address: The client's address (after trusted proxies), or ``""``.
        user_agent: The ``User-Agent`` header, or ``""``.
    """

    address: str = ""
    user_agent: str = ""


@dataclass(frozen=True)
class SessionRecord:
    """The device session a token names, as the check needs it.

    Attributes:
        id: The session id (the token's ``sid``).
        token_version: The user's token version the session is valid at.
        last_seen_at: When activity was last written (Unix time).
        expires_at: When no token of the session can be valid any more (Unix time).
    """

    id: str
    token_version: int
    last_seen_at: float
    expires_at: float


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
        session: The row of the session the token names (``None``: none, or not asked).
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
    session: SessionRecord | None = None


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

    @property
    def session_id(self) -> str:
        """This session's id: what ``end_other_sessions(keep=...)`` takes to keep it."""
        return self.claims.session_id


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
    col(DeviceSession.id),
    col(DeviceSession.token_version),
    col(DeviceSession.last_seen_at),
    col(DeviceSession.expires_at),
)


# Built once: constructing the statement and its cache key on every call cost more than
# running it on SQLite (~0.37 ms of a 0.45 ms read). Every join is by primary key: one
# indexed read. A ``session_id`` of ``None`` joins no session.
_SESSION_QUERY = (
    sa.select(*_SESSION_COLUMNS)
    .outerjoin(OnboardingAnswers, col(OnboardingAnswers.user_id) == col(User.id))
    .outerjoin(
        DeviceSession,
        sa.and_(
            col(DeviceSession.id) == sa.bindparam("session_id"),
            col(DeviceSession.user_id) == col(User.id),
        ),
    )
    .where(col(User.id) == sa.bindparam("user_id"))
)


def load_session_user(
    user_id: int, url: str | None = None, session_id: str | None = None
) -> SessionUser | None:
    """The columns a session needs, in one read by primary keys.

    Args:
        user_id: The user.
        url: Database URL.
        session_id: The session the token names, read with the user (``None``: none).

    Returns:
        The user (with ``session`` set when that session is one of theirs), or ``None``
        if the user is deleted.
    """
    source = url or get_settings().database_url
    with get_read_engine(source).connect() as connection:
        found_row = connection.execute(
            _SESSION_QUERY, {"user_id": user_id, "session_id": session_id}
        ).first()
    if found_row is None:
        return None
    row: tuple[Any, ...] = tuple(found_row)
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
    if row[10] is None:
        return user
    return replace(
        user, session=SessionRecord(row[10], row[11], row[12].timestamp(), row[13].timestamp())
    )


def authenticate(
    token: object,
    settings: Settings | None = None,
    *,
    now: int | None = None,
    url: str | None = None,
    client: Client | None = None,
) -> Authenticated | TokenRejected:
    """Verify a token and check it against the database; heal it if it is stale.

    Args:
        token: The value from client storage (any type).
        settings: Settings (default: process-wide).
        now: Current Unix time (tests).
        url: Database URL.
        client: Where the event comes from (kept on the session row when it is written).

    Returns:
        The session, or why there is none.
    """
    settings = settings or get_settings()
    claims = verify_session_token(token, settings, now=now)
    if isinstance(claims, TokenRejected):
        return claims
    return _check(token, claims, settings, now, url, client)


async def authenticate_off_loop(
    token: object,
    settings: Settings | None = None,
    *,
    url: str | None = None,
    client: Client | None = None,
) -> Authenticated | TokenRejected:
    """:func:`authenticate` for the event loop: the database read runs in a thread.

    The token is checked here first (CPU work of microseconds): a rejected token costs no
    thread hop.

    Args:
        token: The value from client storage (any type).
        settings: Settings (default: process-wide).
        url: Database URL.
        client: Where the event comes from.

    Returns:
        The session, or why there is none.
    """
    settings = settings or get_settings()
    claims = verify_session_token(token, settings)
    if isinstance(claims, TokenRejected):
        return claims
    return await asyncio.to_thread(_check, token, claims, settings, None, url, client)


def _check(
    token: object,
    claims: SessionClaims,
    settings: Settings,
    now: int | None,
    url: str | None,
    client: Client | None,
) -> Authenticated | TokenRejected:
    """The database part of :func:`authenticate` (blocking: off the event loop)."""
    user = load_session_user(claims.user_id, url, claims.session_id)
    if user is not None and behind_the_flow(user):
        reopen_for_new_steps(user.id, url)
        user = load_session_user(claims.user_id, url, claims.session_id)
    if (
        user is not None
        and user.session is None
        and claims.sid is None
        and claims.token_version == user.token_version
        and _adopt(claims, settings, now, url, client)
    ):
        user = load_session_user(claims.user_id, url, claims.session_id)
    result = _against(token, claims, user, settings, now)
    if isinstance(result, Authenticated) and _seen_due(result.user.session, _now(now)):
        _note_activity(result, settings, now, url, client)
    return result


def _now(now: int | None) -> float:
    return time.time() if now is None else now


def _at(unix_time: float) -> datetime:
    return datetime.fromtimestamp(unix_time, UTC)


def _session_end(auth_time: int, now: float, settings: Settings) -> float:
    """When no token of a session active ``now`` can be valid any more.

    Every token is minted during an event, and an event more than
    :data:`LAST_SEEN_INTERVAL` after the last write of activity writes it again: so the
    newest token is at most that much younger than ``last_seen_at`` and expires within
    ``token_ttl`` of its minting, and never after the absolute session lifetime.
    """
    return min(auth_time + settings.session_max_age, now + settings.token_ttl + LAST_SEEN_INTERVAL)


def _seen_due(record: SessionRecord | None, now: float) -> bool:
    return record is not None and now - record.last_seen_at >= LAST_SEEN_INTERVAL


def _adopt(
    claims: SessionClaims,
    settings: Settings,
    now: int | None,
    url: str | None,
    client: Client | None,
) -> bool:
    """Give a token minted before sessions existed its own session row (once)."""
    moment = _now(now)
    client = client or Client()
    adopted = adopt_device_session(
        claims.user_id,
        claims.token_version,
        NewDeviceSession(
            id=claims.session_id,
            created_at=_at(claims.auth_time),
            seen_at=_at(moment),
            expires_at=_at(_session_end(claims.auth_time, moment, settings)),
            client_address=client.address,
            device=parse_user_agent(client.user_agent),
        ),
        url,
    )
    if adopted:
        log.info("session of an old token adopted for user %s (jti %s)", claims.user_id, claims.jti)
    return adopted


def _note_activity(
    session: Authenticated,
    settings: Settings,
    now: int | None,
    url: str | None,
    client: Client | None,
) -> None:
    """Write "last seen" (and the session's new end); a failure only loses that note."""
    moment = _now(now)
    try:
        touch_device_session(
            session.session_id,
            seen_at=_at(moment),
            seen_before=_at(moment - LAST_SEEN_INTERVAL),
            expires_at=_at(_session_end(session.claims.auth_time, moment, settings)),
            client_address=client.address if client else None,
            url=url,
        )
    except SQLAlchemyError:
        log.warning("could not note activity of user %s", session.user.id, exc_info=True)
        return


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
    """Check verified claims against the user and session rows; re-mint a stale token."""
    record = user.session if user is not None else None
    if (
        user is None
        or record is None
        or record.token_version != user.token_version
        or claims.token_version > user.token_version  # never minted: versions only grow
    ):
        return TokenRejected(Rejection.REVOKED)
    if record.expires_at <= _now(now):
        return TokenRejected(Rejection.EXPIRED)
    assert isinstance(token, str)
    # ``ver`` behind the row: sessions of the user ended since, this one was carried over.
    stale = (user.onboarding_step, user.flow_version, user.role, user.token_version) != (
        claims.onboarding_step,
        claims.flow_version,
        claims.role,
        claims.token_version,
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
        session_id=claims.session_id,
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


def start_session(
    user: User,
    settings: Settings | None = None,
    *,
    now: int | None = None,
    client: Client | None = None,
    url: str | None = None,
) -> str:
    """Record a sign-in (a device session) and mint its first token.

    Every way of signing in ends here. The user's expired session rows are pruned in the
    same transaction. Blocking (a database write): call it off the event loop.

    Args:
        user: The user row.
        settings: Settings (default: process-wide).
        now: Current Unix time (tests).
        client: Where the sign-in comes from (address and user agent, for the row).
        url: Database URL.

    Returns:
        The token.

    Raises:
        UserGone: The user no longer exists.
        ValueError: The user has no id.
    """
    if user.id is None:
        raise ValueError("cannot start a session for an unsaved user")
    now = int(time.time()) if now is None else now
    settings = settings or get_settings()
    client = client or Client()
    session_id = new_session_id()
    version = create_device_session(
        user.id,
        NewDeviceSession(
            id=session_id,
            created_at=_at(now),
            seen_at=_at(now),
            expires_at=_at(_session_end(now, now, settings)),
            client_address=client.address,
            device=parse_user_agent(client.user_agent),
        ),
        url,
    )
    subject = _Subject(user.id, version, str(user.onboarding_step), user.flow_version)
    return mint_session_token(
        subject,
        settings,
        auth_time=now,
        now=now,
        role=role_of(user, settings),
        session_id=session_id,
    )


def end_session(token: object, settings: Settings | None = None, url: str | None = None) -> bool:
    """Log out: end the session the token belongs to (the user's other sessions stay).

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
    return end_device_sessions(session.user.id, only=session.session_id, url=url) > 0


def end_other_sessions(user_id: int, *, keep: str | None, url: str | None = None) -> int:
    """End the user's sessions but one, on every worker (a password change or reset).

    Also ends every token minted before sessions existed (the version moves). The kept
    session stays signed in: its token is re-minted from the row at its next event.

    Args:
        user_id: The user (from a verified session or a used link, never from a client).
        keep: The session to keep: ``Authenticated.session_id`` of the caller's verified
            session; ``None`` ends every session (a reset link or a first confirmation,
            which sign in afresh afterwards).
        url: Database URL.

    Returns:
        How many sessions were ended.
    """
    return end_device_sessions(user_id, keep=keep, url=url)


def end_device_session(session: Authenticated, session_id: object, url: str | None = None) -> bool:
    """End another of the user's sessions ("Sign out" on the page): at once, on every worker.

    Args:
        session: The caller's verified session (whose user's sessions may be ended).
        session_id: The session to end, as the client sent it (any value). Not one of
            the user's sessions, malformed, or the caller's own: nothing happens.
        url: Database URL.

    Returns:
        True if a session was ended.
    """
    if not is_session_id(session_id) or session_id == session.session_id:
        return False
    assert isinstance(session_id, str)
    return end_device_sessions(session.user.id, only=session_id, url=url) > 0


@dataclass(frozen=True)
class SignedInDevice:
    """One of the user's live sessions, as the settings page lists it.

    Attributes:
        id: The session id (the page's "Sign out" sends it back).
        browser: ``Chrome``..., or ``""``.
        system: ``Linux``..., or ``""``.
        device: A phone or tablet model, or ``""``.
        form_factor: ``desktop``, ``phone``, ``tablet`` or ``unknown``.
        client_address: The address last seen.
        created_at: The sign-in (Unix time).
        last_seen_at: Activity last written (Unix time).
        current: The caller's own session.
    """

    id: str
    browser: str
    system: str
    device: str
    form_factor: str
    client_address: str
    created_at: float
    last_seen_at: float
    current: bool


def signed_in_devices(
    session: Authenticated, *, now: int | None = None, url: str | None = None
) -> list[SignedInDevice]:
    """Where the caller's user is signed in: their own session first, then by activity.

    Args:
        session: The caller's verified session.
        now: Current Unix time (tests).
        url: Database URL.

    Returns:
        The live sessions.
    """
    rows = live_device_sessions(session.user.id, _at(_now(now)), url)
    devices = [
        SignedInDevice(
            id=row.id,
            browser=row.browser,
            system=row.system,
            device=row.device,
            form_factor=row.form_factor,
            client_address=row.client_address,
            created_at=row.created_at.timestamp(),
            last_seen_at=row.last_seen_at.timestamp(),
            current=row.id == session.session_id,
        )
        for row in rows
    ]
    return sorted(devices, key=lambda device: not device.current)


@dataclass(frozen=True)
class _Subject:
    id: int | None
    token_version: int
    onboarding_step: str
    flow_version: int

    @classmethod
    def of(cls, user: SessionUser | User) -> _Subject:
        return cls(user.id, user.token_version, str(user.onboarding_step), user.flow_version)
