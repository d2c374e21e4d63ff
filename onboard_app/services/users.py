"""The users repository: accounts, onboarding answers, and the state transitions on them.

Every write that changes a claim the session token carries (onboarding step, token version)
happens here, inside one transaction, and returns the updated row so the caller re-mints
the token from what the database now says.
"""

from __future__ import annotations

import logging
import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlmodel import Session, col, select

from onboard_app.models import (
    DeviceSession,
    OnboardingAnswers,
    OnboardingEvent,
    OnboardingProgress,
    User,
    utcnow,
)
from onboard_app.services import events
from onboard_app.services.db import get_engine, get_read_engine, session_scope
from onboard_app.services.onboarding import (
    COMPLETED,
    REVIEW,
    Answers,
    Step,
    StepInputError,
    can_open,
    first_step,
    flow_version,
    new_required_steps,
    parse_step,
    reached_after_save,
    spec_of,
    steps,
    unanswered_steps,
    validate,
)
from onboard_app.services.roles import ROLES
from onboard_app.services.user_agents import DeviceInfo

log = logging.getLogger("onboard.users")

MAX_EMAIL: Final = 254
_EMAIL_RE: Final = re.compile(r"^[^@\s]{1,64}@[^@\s]+\.[^@\s]{2,}$")


class EmailTaken(Exception):
    """An account with this email address already exists."""


class StepNotOpen(Exception):
    """The step cannot be saved now (not reached yet, or onboarding already completed).

    Attributes:
        reached: The user's reached step, where the wizard should go instead.
    """

    def __init__(self, reached: Step) -> None:
        """Remember where the user actually is.

        Args:
            reached: The user's reached step.
        """
        super().__init__(f"step not open; reached step is {reached}")
        self.reached = reached


class UserGone(Exception):
    """The user no longer exists."""


class StepsMissing(Exception):
    """Finish was asked for while some steps are not answered.

    Attributes:
        steps: The unanswered steps, in order.
    """

    def __init__(self, steps: list[Step]) -> None:
        """Remember which steps are missing.

        Args:
            steps: The unanswered steps.
        """
        super().__init__("unanswered steps: " + ", ".join(steps))
        self.steps = steps


@dataclass(frozen=True)
class CompletionResult:
    """Outcome of :func:`complete_onboarding`.

    Attributes:
        user: The user row after the call.
        transitioned: True only for the one call that moved the user to COMPLETED.
        answers: The user's answers (what Finish checked; explore ranks by them).
    """

    user: User
    transitioned: bool
    answers: Answers


def normalise_email(email: object) -> str | None:
    """Normalise an email address for storage and lookup, or ``None`` if it is not one.

    Args:
        email: The submitted value (any type).

    Returns:
        The address, NFC-normalised, trimmed and lower-cased; ``None`` if invalid.
    """
    if not isinstance(email, str) or len(email) > MAX_EMAIL * 2:
        return None
    email = unicodedata.normalize("NFC", email).strip().lower()
    if len(email) > MAX_EMAIL or not _EMAIL_RE.match(email):
        return None
    if any(unicodedata.category(ch) in ("Cc", "Cf", "Cs", "Zl", "Zp") for ch in email):
        return None
    return email


def get_user(user_id: int, url: str | None = None) -> User | None:
    """Load a user by primary key.

    Args:
        user_id: The id.
        url: Database URL (default: configured).

    Returns:
        The row, or ``None``.
    """
    with session_scope(url) as session:
        return session.get(User, user_id)


def get_user_by_email(email: str, url: str | None = None) -> User | None:
    """Load a user by normalised email.

    Args:
        email: A normalised address (see :func:`normalise_email`).
        url: Database URL.

    Returns:
        The row, or ``None``.
    """
    with session_scope(url) as session:
        return session.exec(select(User).where(User.email == email)).first()


def create_local_user(email: str, password_hash: str, url: str | None = None) -> User:
    """Create an email + password account at the first onboarding step.

    Args:
        email: A normalised address.
        password_hash: The argon2id hash.
        url: Database URL.

    Returns:
        The new user.

    Raises:
        EmailTaken: If the address is already registered.
    """
    try:
        with session_scope(url) as session:
            user = User(email=email, password_hash=password_hash, display_name="")
            session.add(user)
            session.flush()
            session.add(OnboardingAnswers(user_id=user.id))  # type: ignore[arg-type]
            return user
    except IntegrityError as exc:
        raise EmailTaken(email) from exc


def create_external_user(
    *,
    email: str | None,
    display_name: str,
    avatar_url: str | None,
    github_id: int | None = None,
    oidc_issuer: str | None = None,
    oidc_subject: str | None = None,
    url: str | None = None,
) -> User:
    """Create an account for a GitHub or OIDC identity (no password).

    Args:
        email: Verified, normalised address, or ``None``.
        display_name: Name from the provider (prefills onboarding).
        avatar_url: Avatar from the provider.
        github_id: GitHub's numeric user id.
        oidc_issuer: OIDC issuer.
        oidc_subject: OIDC ``sub``.
        url: Database URL.

    Returns:
        The new user.

    Raises:
        EmailTaken: If another account already uses the address (never linked silently).
    """
    try:
        with session_scope(url) as session:
            user = User(
                email=email,
                display_name=display_name[:80],
                avatar_url=avatar_url,
                github_id=github_id,
                oidc_issuer=oidc_issuer,
                oidc_subject=oidc_subject,
                # The provider vouched for the address (linking keeps only verified ones).
                email_verified_at=utcnow() if email else None,
            )
            session.add(user)
            session.flush()
            session.add(OnboardingAnswers(user_id=user.id))  # type: ignore[arg-type]
            return user
    except IntegrityError as exc:
        raise EmailTaken(email or "") from exc


def find_user_by_identity(
    *,
    github_id: int | None = None,
    oidc_issuer: str | None = None,
    oidc_subject: str | None = None,
    url: str | None = None,
) -> User | None:
    """Find the account linked to a GitHub id or an OIDC (issuer, subject) pair.

    Args:
        github_id: GitHub's numeric user id.
        oidc_issuer: OIDC issuer.
        oidc_subject: OIDC subject.
        url: Database URL.

    Returns:
        The row, or ``None`` (always ``None`` when no complete identity is given).
    """
    if github_id is None and not (oidc_issuer and oidc_subject):
        return None
    with session_scope(url) as session:
        if github_id is not None:
            query = select(User).where(User.github_id == github_id)
        else:
            query = select(User).where(
                User.oidc_issuer == oidc_issuer, User.oidc_subject == oidc_subject
            )
        return session.exec(query).first()


def update_password_hash(user_id: int, password_hash: str, url: str | None = None) -> None:
    """Store a re-computed hash (after login found the old parameters weaker).

    Args:
        user_id: The user.
        password_hash: The new hash.
        url: Database URL.
    """
    with session_scope(url) as session:
        session.execute(
            sa.update(User)
            .where(col(User.id) == user_id)
            .values(password_hash=password_hash, updated_at=utcnow())
        )


def revoke_sessions(user_id: int, url: str | None = None) -> None:
    """End every session of the user, on every worker: every token minted before is dead.

    Args:
        user_id: The user.
        url: Database URL.
    """
    end_device_sessions(user_id, url=url)


# --- device sessions (the rows the tokens' ``sid`` claims name; see services/sessions.py) ---


@dataclass(frozen=True)
class NewDeviceSession:
    """What a session row is created with.

    Attributes:
        id: The session id (the tokens' ``sid``).
        created_at: The sign-in.
        seen_at: The activity it is created at (the sign-in, or an old token's adoption).
        expires_at: When no token of the session can be valid any more.
        client_address: The client's address.
        device: Browser, system and device from the user agent.
    """

    id: str
    created_at: datetime
    seen_at: datetime
    expires_at: datetime
    client_address: str
    device: DeviceInfo


def _lock_user(session: Session, user_id: int) -> int | None:
    """Lock the user row (PostgreSQL) for a change of their sessions; their token version.

    Starting, adopting and ending sessions of one user take this lock first, so they run
    one after the other and always in the same order (no deadlock), and a session started
    while others end gets the version that is current when it commits.
    """
    query = sa.select(col(User.token_version)).where(col(User.id) == user_id).with_for_update()
    return session.execute(query).scalar_one_or_none()


def _session_values(user_id: int, new: NewDeviceSession) -> dict[str, Any]:
    return {
        "id": new.id,
        "user_id": user_id,
        "created_at": new.created_at,
        "last_seen_at": new.seen_at,
        "expires_at": new.expires_at,
        "client_address": new.client_address[:64],
        "browser": new.device.browser,
        "system": new.device.system,
        "device": new.device.device,
        "form_factor": new.device.form_factor,
    }


def create_device_session(user_id: int, new: NewDeviceSession, url: str | None = None) -> int:
    """Record a sign-in; the user's expired sessions are pruned in the same transaction.

    Args:
        user_id: The user who signed in.
        new: The session.
        url: Database URL.

    Returns:
        The token version the session is valid at.

    Raises:
        UserGone: The user no longer exists.
    """
    with session_scope(url) as session:
        if _lock_user(session, user_id) is None:
            raise UserGone(user_id)
        session.execute(
            sa.delete(DeviceSession).where(
                col(DeviceSession.user_id) == user_id,
                col(DeviceSession.expires_at) <= new.created_at,
            )
        )
        # The version as of this statement, stored and returned: an ending of sessions that
        # committed since the lock above (SQLite has none) is not missed.
        current = sa.select(col(User.token_version)).where(col(User.id) == user_id)
        version: int = session.execute(
            sa.insert(DeviceSession)
            .values(**_session_values(user_id, new), token_version=current.scalar_subquery())
            .returning(col(DeviceSession.token_version))
        ).scalar_one()
    return version


def adopt_device_session(
    user_id: int, token_version: int, new: NewDeviceSession, url: str | None = None
) -> bool:
    """Give a token minted before sessions existed its session row, once.

    Only while the user is still at the token's version: once any session of the user
    has ended (every ending bumps the version), such a token can never get a row again.

    Args:
        user_id: The token's user.
        token_version: The token's ``ver``.
        new: The session (its id derived from the token, see ``tokens.legacy_session_id``).
        url: Database URL.

    Returns:
        ``False`` when the user is gone or at another version (nothing was written);
        ``True`` when the row may exist now (made by this call or a concurrent one: the
        caller reads it back).
    """
    values = _session_values(user_id, new) | {"token_version": token_version}
    names = list(values)
    table = DeviceSession.metadata.tables[DeviceSession.__tablename__]
    source = sa.select(*(sa.literal(values[name], table.c[name].type) for name in names)).where(
        sa.exists().where(col(User.id) == user_id, col(User.token_version) == token_version)
    )
    try:
        with session_scope(url) as session:
            if _lock_user(session, user_id) != token_version:
                return False
            # Its row count is not reported on every driver (psycopg says -1): the caller
            # reads the row back, which is the answer either way.
            session.execute(sa.insert(table).from_select(names, source))
    except IntegrityError:
        pass  # adopted by a concurrent check of the same token
    return True


def touch_device_session(
    session_id: str,
    *,
    seen_at: datetime,
    seen_before: datetime,
    expires_at: datetime,
    client_address: str | None,
    url: str | None = None,
) -> bool:
    """Note activity on a session, unless it was noted after ``seen_before`` (another worker).

    Args:
        session_id: The session.
        seen_at: Now.
        seen_before: Only a session last seen at or before this is written.
        expires_at: The session's new end (its tokens' latest possible expiry).
        client_address: The client's address now (``None``: unknown, kept as it is).
        url: Database URL.

    Returns:
        Whether the row was written.
    """
    values: dict[str, Any] = {"last_seen_at": seen_at, "expires_at": expires_at}
    if client_address is not None:
        values["client_address"] = client_address[:64]
    with session_scope(url) as session:
        done = session.execute(
            sa.update(DeviceSession)
            .where(
                col(DeviceSession.id) == session_id,
                col(DeviceSession.last_seen_at) <= seen_before,
            )
            .values(**values)
        )
    return getattr(done, "rowcount", 0) == 1


def end_device_sessions(
    user_id: int, *, only: str | None = None, keep: str | None = None, url: str | None = None
) -> int:
    """End sessions of one user, on every worker.

    The ended rows are deleted and the user's token version is bumped, carrying the
    sessions that stay to the new version: every token of an ended session, and every
    token minted before sessions existed that has no row yet, is dead.

    Args:
        user_id: The user (from a verified session: nothing of another user is touched).
        only: End this one session; when it is not one of the user's, nothing happens.
        keep: End every session but this one (``only`` must be ``None``).
        url: Database URL.

    Returns:
        How many session rows were ended.
    """
    mine = col(DeviceSession.user_id) == user_id
    if only is not None:
        which = sa.and_(mine, col(DeviceSession.id) == only)
    elif keep is not None:
        which = sa.and_(mine, col(DeviceSession.id) != keep)
    else:
        which = mine
    with session_scope(url) as session:
        if _lock_user(session, user_id) is None:
            return 0
        ended = getattr(session.execute(sa.delete(DeviceSession).where(which)), "rowcount", 0)
        if only is not None and ended == 0:
            return 0
        session.execute(
            sa.update(User)
            .where(col(User.id) == user_id)
            .values(token_version=User.token_version + 1, updated_at=utcnow())
        )
        if only is None and keep is None:
            return int(ended)  # every row is gone, and none can start under the lock: no carry
        current = sa.select(col(User.token_version)).where(col(User.id) == user_id)
        session.execute(
            sa.update(DeviceSession)
            .where(mine, col(DeviceSession.token_version) == current.scalar_subquery() - 1)
            .values(token_version=DeviceSession.token_version + 1)
        )
    return int(ended)


def confirm_email(user_id: int, url: str | None = None) -> User | None:
    """Mark the user's address verified; the first time, end every session the account had.

    One transaction: the conditional UPDATE that confirms the address also moves the token
    version (as :func:`end_device_sessions` does: every token minted before is dead) and
    holds the row lock while the session rows are deleted, so a sign-in waits for it.

    Args:
        user_id: The user (from a used verification link or code).
        url: Database URL.

    Returns:
        The user row after the call, or ``None`` if the user does not exist.
    """
    now = utcnow()
    with session_scope(url) as session:
        confirmed = session.execute(
            sa.update(User)
            .where(col(User.id) == user_id, col(User.email_verified_at).is_(None))
            .values(email_verified_at=now, updated_at=now, token_version=User.token_version + 1)
            .returning(User)
        ).scalar_one_or_none()
        if confirmed is None:  # confirmed before (or no such user): nothing changes
            return session.get(User, user_id)
        session.execute(sa.delete(DeviceSession).where(col(DeviceSession.user_id) == user_id))
    return confirmed


def live_device_sessions(
    user_id: int, now: datetime, url: str | None = None
) -> list[DeviceSession]:
    """The user's sessions that can still be used, the most recently seen first.

    Args:
        user_id: The user.
        now: The current time.
        url: Database URL.

    Returns:
        The rows.
    """
    query = (
        select(DeviceSession)
        .join(User, col(User.id) == col(DeviceSession.user_id))
        .where(
            col(DeviceSession.user_id) == user_id,
            col(DeviceSession.expires_at) > now,
            col(DeviceSession.token_version) == col(User.token_version),
        )
        .order_by(col(DeviceSession.last_seen_at).desc(), col(DeviceSession.id))
    )
    with session_scope(url) as session:
        return list(session.exec(query).all())


def prune_device_sessions(now: datetime, url: str | None = None) -> int:
    """Delete every expired session row (``python -m onboard_app.cli prune-sessions``).

    Args:
        now: The current time.
        url: Database URL.

    Returns:
        How many rows were deleted.
    """
    with session_scope(url) as session:
        done = session.execute(sa.delete(DeviceSession).where(col(DeviceSession.expires_at) <= now))
    return int(getattr(done, "rowcount", 0))


#: A user row and their answers row, in one read by primary key. Built once: building a
#: statement and its cache key on every call costs about as much as running it on SQLite.
_USER_AND_ANSWERS: Final = (
    sa.select(User, OnboardingAnswers)
    .outerjoin(OnboardingAnswers, col(OnboardingAnswers.user_id) == col(User.id))
    .where(col(User.id) == sa.bindparam("user_id"))
)
#: The same with the user row locked (PostgreSQL) and their progress row: the one read of a
#: change that records an event (``save_step``, ``open_step``). The lock is taken before
#: anything is decided, so two tabs of a user change and record one after the other.
_LOCKED_FOR_EVENT: Final = events.with_progress(_USER_AND_ANSWERS).with_for_update(of=User)


def _one_user(
    session: Session, query: sa.Select[*tuple[Any, ...]], user_id: int
) -> tuple[Any, ...]:
    """The one row ``query`` reads for ``user_id``.

    Raises:
        UserGone: If the user does not exist.
    """
    found = session.execute(query, {"user_id": user_id}).first()
    if found is None:
        raise UserGone(user_id)
    return tuple(found)


def _user_and_answers(session: Session, user_id: int) -> tuple[User, OnboardingAnswers | None]:
    """The user and answers rows (``None``: no answers row)."""
    user, answers = _one_user(session, _USER_AND_ANSWERS, user_id)
    return user, answers


def _locked_for_event(
    session: Session, user_id: int
) -> tuple[User, OnboardingAnswers | None, events.Progress | None]:
    """The user row, locked, with their answers and progress rows (``None``: no row)."""
    user, answers, step, journey = _one_user(session, _LOCKED_FOR_EVENT, user_id)
    return user, answers, events.progress_of(step, journey)


#: Fields stored on the user row; the others on the answers row: a column of the field's
#: name if the table has one, else its JSON ``data``.
_USER_COLUMNS: Final = frozenset({"display_name"})


def _has_column(name: str) -> bool:
    return name in OnboardingAnswers.model_fields and name not in ("user_id", "data", "skipped")


def load_answers(user_id: int, url: str | None = None) -> Answers:
    """The stored onboarding answers of a user, for every field of the spec.

    One SELECT, so it runs on the read engine (autocommit on PostgreSQL: no transaction).

    Args:
        user_id: The user.
        url: Database URL.

    Returns:
        The answers; empty ones for a new user.

    Raises:
        UserGone: If the user does not exist.
    """
    with Session(get_read_engine(url)) as session:
        return _to_answers(*_user_and_answers(session, user_id))


def _to_answers(user: User, row: OnboardingAnswers | None) -> Answers:
    values: dict[str, Any] = {}
    for spec in steps():
        for item in spec.fields:
            if item.name in _USER_COLUMNS:
                values[item.name] = getattr(user, item.name)
            elif row is None:
                values[item.name] = item.empty
            elif _has_column(item.name):
                values[item.name] = getattr(row, item.name)
            else:
                values[item.name] = (row.data or {}).get(item.name, item.empty)
    skipped = frozenset(row.skipped or ()) if row is not None else frozenset()
    return Answers(values, skipped)


def _store(user: User, row: OnboardingAnswers, clean: Mapping[str, Any]) -> None:
    data = dict(row.data or {})
    for name, value in clean.items():
        if name in _USER_COLUMNS:
            setattr(user, name, value)
        elif _has_column(name):
            setattr(row, name, value)
        elif value in (None, "", []):
            data.pop(name, None)  # unanswered: nothing kept
        else:
            data[name] = value
    row.data = data


def save_step(
    user_id: int,
    step: Step,
    submitted: Mapping[str, Any],
    *,
    editing: bool = False,
    skip: bool = False,
    url: str | None = None,
) -> User:
    """Validate and save one step's answers (or skip an optional one); advance the reached step.

    The answers and the new reached step are written in one transaction.

    Args:
        user_id: The user (from a verified token).
        step: The step being saved.
        submitted: The raw submitted fields; validated here.
        editing: True for the settings page (onboarding completed, step unchanged).
        skip: Skip an optional step instead (nothing of it is stored).
        url: Database URL.

    Returns:
        The updated user row.

    Raises:
        StepNotOpen: The step is beyond the reached one, not a step of the spec, not
            optional when skipped, or onboarding state does not allow it (checked first: an
            out-of-order step is refused whatever it contains).
        StepInputError: The answers are not valid (nothing is written).
        UserGone: The user no longer exists.
    """
    spec = spec_of(step)
    with session_scope(url) as session:
        user, answers, progress = _locked_for_event(session, user_id)
        reached = parse_step(user.onboarding_step) or first_step()
        completed = reached == COMPLETED
        if (
            spec is None
            or editing != completed
            or (not editing and not can_open(step, reached))
            or (skip and (editing or not spec.optional))
        ):
            raise StepNotOpen(reached)
        # Skipping clears what the step held: the person chose not to answer it.
        clean, errors = (
            ({f.name: f.empty for f in spec.fields}, {}) if skip else validate(step, submitted)
        )
        if errors:
            raise StepInputError(errors)
        if answers is None:
            answers = OnboardingAnswers(user_id=user_id)
        _store(user, answers, clean)
        skipped = set(answers.skipped or ())
        if skip:
            skipped.add(step)
        else:
            skipped.discard(step)
        answers.skipped = sorted(skipped)
        # Every change to the rows is made before the event's first statement flushes
        # them: one UPDATE of each.
        answers.updated_at = user.updated_at = utcnow()
        session.add(user)
        session.add(answers)
        if not editing:
            user.onboarding_step = reached_after_save(reached, _to_answers(user, answers))
            kind = events.SKIPPED if skip else events.SAVED
            events.record(session, user, kind, step, progress)
    # The row was read FOR UPDATE and every change to it is made here: what it holds is
    # what was written (no read back).
    return user


def complete_onboarding(user_id: int, url: str | None = None) -> CompletionResult:
    """Move a user to COMPLETED at the current flow version, once, if every step is answered.

    The move is a conditional UPDATE (``WHERE onboarding_step = 'review'``): of two
    concurrent calls (a double click, two tabs, two workers) exactly one transitions.

    Args:
        user_id: The user (from a verified token).
        url: Database URL.

    Returns:
        The user row after the call and whether this call made the transition.

    Raises:
        StepsMissing: Some steps are not answered (nothing is written).
        UserGone: The user no longer exists.
    """
    with session_scope(url) as session:
        user, row = _user_and_answers(session, user_id)
        answers = _to_answers(user, row)
        if user.onboarding_step == COMPLETED:
            return CompletionResult(user, transitioned=False, answers=answers)
        missing = unanswered_steps(answers)
        if missing:
            raise StepsMissing(missing)
        if user.onboarding_step != REVIEW:
            raise StepsMissing([parse_step(user.onboarding_step) or first_step()])
        now = utcnow()
        # RETURNING refreshes the row from the update itself (no read back); a call that
        # lost the race to a concurrent one reads the winner's row instead.
        moved = session.execute(
            sa.update(User)
            .where(col(User.id) == user_id, col(User.onboarding_step) == REVIEW)
            .values(
                onboarding_step=COMPLETED,
                onboarding_completed_at=now,
                flow_version=flow_version(),
                updated_at=now,
            )
            .returning(User)
            .execution_options(synchronize_session=False, populate_existing=True)
        ).first()
        transitioned = moved is not None
        if transitioned:
            events.record(session, user, events.FINISHED, REVIEW)
        else:
            session.refresh(user)
    return CompletionResult(user, transitioned=transitioned, answers=answers)


@dataclass(frozen=True)
class OpenedStep:
    """Outcome of :func:`open_step`.

    Attributes:
        answers: The user's stored answers.
        recorded: Whether the ``opened`` event was written.
    """

    answers: Answers
    recorded: bool


def open_step(user_id: int, step: Step, url: str | None = None) -> OpenedStep:
    """A wizard page's load: record that its loader opened ``step``; read the answers.

    One transaction: the user row is read locked, with the answers and the progress the
    event needs. The step must be open to the user by the row; what happens is written by
    the server alone. An event that cannot be written never stops the wizard: it is logged
    and lost, and the answers read before it are returned.

    Args:
        user_id: The user (from a verified token).
        step: The step the loader opened (after its own access check).
        url: Database URL.

    Returns:
        The answers, and whether the event was recorded.

    Raises:
        UserGone: If the user does not exist.
    """
    with Session(get_engine(url), expire_on_commit=False) as session:
        user, row, progress = _locked_for_event(session, user_id)
        answers = _to_answers(user, row)
        reached = parse_step(user.onboarding_step)
        if reached is None or not can_open(step, reached):
            return OpenedStep(answers, recorded=False)  # the read ends, rolled back
        try:
            events.record(session, user, events.OPENED, step, progress)
            session.commit()
        except SQLAlchemyError:
            session.rollback()
            log.warning(
                "could not record opening step %s for user %s", step, user_id, exc_info=True
            )
            return OpenedStep(answers, recorded=False)
    return OpenedStep(answers, recorded=True)


def record_step_opened(user_id: int, step: Step, url: str | None = None) -> bool:
    """Record that a wizard page's loader opened ``step`` (:func:`open_step`, answers unused).

    Args:
        user_id: The user (from a verified token).
        step: The step the loader opened.
        url: Database URL.

    Returns:
        True if the event was recorded (never for a user who does not exist).
    """
    try:
        return open_step(user_id, step, url).recorded
    except UserGone:
        return False
    except SQLAlchemyError:
        log.warning("could not record opening step %s for user %s", step, user_id, exc_info=True)
        return False


def set_role(email: str, role: str, url: str | None = None) -> User | None:
    """Store the role an operator granted (``grant-admin`` / ``revoke-admin``).

    Args:
        email: A normalised address.
        role: ``admin`` or ``member`` (see ``services/roles.py``).
        url: Database URL.

    Returns:
        The updated user, or ``None`` if no account has this address.

    Raises:
        ValueError: For a role that does not exist.
    """
    if role not in ROLES:
        raise ValueError(f"unknown role {role!r}")
    with session_scope(url) as session:
        user = session.exec(select(User).where(User.email == email)).first()
        if user is None or user.id is None:
            return None
        user.role = role
        user.updated_at = utcnow()
        session.add(user)
    return user


def reopen_for_new_steps(user_id: int, url: str | None = None) -> bool:
    """Send a user who completed an older flow version to the first required step added since.

    A conditional UPDATE (only a completed user at that older version moves), so it is
    safe to call from every worker at once; earlier answers are kept.

    Args:
        user_id: The user.
        url: Database URL.

    Returns:
        True if the user was moved back into the wizard.
    """
    with session_scope(url) as session:
        user = session.get(User, user_id)
        if user is None or user.onboarding_step != COMPLETED:
            return False
        answers = _to_answers(user, session.get(OnboardingAnswers, user_id))
        missing = [
            s.key
            for s in new_required_steps(user.flow_version)
            if s.key in unanswered_steps(answers)
        ]
        moved = False
        if not missing:
            if user.flow_version < flow_version():
                user.flow_version = flow_version()  # nothing new to ask: up to date
                session.add(user)
        else:
            result = session.execute(
                sa.update(User)
                .where(
                    col(User.id) == user_id,
                    col(User.onboarding_step) == COMPLETED,
                    col(User.flow_version) == user.flow_version,
                )
                .values(onboarding_step=missing[0], updated_at=utcnow())
                .execution_options(synchronize_session=False)
            )
            moved = getattr(result, "rowcount", 0) == 1
    return moved


def delete_user(user_id: int, url: str | None = None) -> None:
    """Delete a user, their answers and their onboarding events.

    Args:
        user_id: The user.
        url: Database URL.
    """
    with session_scope(url) as session:
        session.execute(
            sa.delete(OnboardingAnswers).where(col(OnboardingAnswers.user_id) == user_id)
        )
        session.execute(sa.delete(OnboardingEvent).where(col(OnboardingEvent.user_id) == user_id))
        session.execute(
            sa.delete(OnboardingProgress).where(col(OnboardingProgress.user_id) == user_id)
        )
        session.execute(sa.delete(User).where(col(User.id) == user_id))
