"""Onboarding events: what a user did in the wizard, recorded by the server.

An event is written by the repository function that makes the change it describes, in
the same transaction (``users.save_step``, ``users.complete_onboarding``), or by
``users.record_step_opened`` when a wizard page's loader opens a step. Nothing a client
sends becomes an event field: the user, the step and the times come from the verified
session, the database row and the server's clock.

Each event also keeps two summaries up to date, so the insights page never scans the log:

- ``onboarding_progress``: one row per user, their reached step and since when (the
  stuck list), plus their ``journey``: per flow version and step, when they first opened
  and first finished it;
- ``onboarding_counts``: anonymous totals per sign-up day (and month), sign-in method,
  flow version and step: people who reached and finished each step (each person once), a
  histogram of the time from opening a step to finishing it, and completions by day.

Events older than ``ONBOARD_EVENTS_RETENTION_DAYS`` are removed by :func:`prune_events`;
the counts, which name nobody, are kept.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache
from typing import Any, Final, cast

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session, col

from onboard_app.models import OnboardingCount, OnboardingEvent, OnboardingProgress, User, utcnow
from onboard_app.services.db import session_scope
from onboard_app.services.onboarding import flow_version
from onboard_app.settings import get_settings

OPENED: Final = "opened"
SAVED: Final = "saved"
SKIPPED: Final = "skipped"
FINISHED: Final = "finished"
KINDS: Final = (OPENED, SAVED, SKIPPED, FINISHED)
#: Kinds that finish the step they name (Finish finishes the review).
FINISHING: Final = frozenset((SAVED, SKIPPED, FINISHED))

PASSWORD: Final = "password"  # noqa: S105 (a sign-in method's name, not a password)
GITHUB: Final = "github"
OIDC: Final = "oidc"
METHODS: Final = (PASSWORD, GITHUB, OIDC)

#: Measures of ``onboarding_counts``.
REACHED: Final = "reached"
DONE: Final = "finished"
TIME: Final = "time"
COMPLETED: Final = "completed"
#: Periods of ``onboarding_counts``: each total is kept per sign-up day and per month.
DAY: Final = "day"
MONTH: Final = "month"

#: Time buckets per doubling: a bucket spans 19 %, its middle is within 9 % of any value in it.
BUCKETS_PER_DOUBLING: Final = 4
PRUNE_BATCH: Final = 10_000


def sign_in_method(user: User) -> str:
    """How an account signs in, from its row: a password, GitHub, or OpenID Connect."""
    if user.password_hash is not None:
        return PASSWORD
    if user.github_id is not None:
        return GITHUB
    return OIDC if user.oidc_subject is not None else PASSWORD


def utc(moment: datetime) -> datetime:
    """A stored time as aware UTC (SQLite gives back naive UTC)."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def day_of(moment: datetime) -> date:
    """The UTC day of a time."""
    return utc(moment).date()


def cohorts(signed_up_at: datetime) -> tuple[tuple[str, date], tuple[str, date]]:
    """The two ``(period, cohort_day)`` keys a person's totals go to: their day and month."""
    day = day_of(signed_up_at)
    return (DAY, day), (MONTH, day.replace(day=1))


def time_bucket(seconds: float) -> int:
    """The histogram bucket of a duration: 0 below one second, then 4 per doubling."""
    if seconds < 1:
        return 0
    return 1 + math.floor(BUCKETS_PER_DOUBLING * math.log2(seconds))


def bucket_seconds(bucket: int) -> float:
    """The duration a bucket stands for: the geometric middle of its range (0 for bucket 0)."""
    if bucket <= 0:
        return 0.0
    return float(2 ** ((bucket - 0.5) / BUCKETS_PER_DOUBLING))


@dataclass(frozen=True)
class Count:
    """One increment of ``onboarding_counts`` (the cohort is the user's).

    Attributes:
        measure: :data:`REACHED`, :data:`DONE`, :data:`TIME` or :data:`COMPLETED`.
        step: The step.
        bucket: The time bucket, the completion day's ordinal, or 0.
    """

    measure: str
    step: str
    bucket: int = 0


def track(journey: dict[str, Any], kind: str, step: str, version: int, at: datetime) -> list[Count]:
    """Note one event in a user's journey; say which counts it adds.

    Each person counts once per flow version and step: reached at their first event
    there, finished at their first save, skip or Finish, timed from their first opening.

    Args:
        journey: The user's journey (changed in place).
        kind: The event's kind.
        step: The event's step.
        version: The flow version the event belongs to.
        at: When it happened.

    Returns:
        The counts to add, in a stable order.
    """
    key = f"{version}:{step}"
    entry = journey.get(key)
    moment = int(utc(at).timestamp())
    added: list[Count] = []
    if entry is None:
        entry = {"o": None, "f": None}
        added.append(Count(REACHED, step))
    else:
        entry = dict(entry)
    if kind == OPENED and entry["o"] is None:
        entry["o"] = moment
    if kind in FINISHING and entry["f"] is None:
        entry["f"] = moment
        added.append(Count(DONE, step))
        if entry["o"] is not None:
            added.append(Count(TIME, step, time_bucket(moment - entry["o"])))
        if kind == FINISHED:
            added.append(Count(COMPLETED, step, day_of(at).toordinal()))
    journey[key] = entry
    return added


@dataclass(frozen=True)
class Progress:
    """A user's ``onboarding_progress`` row as :func:`record` needs it.

    Attributes:
        step: The reached step it says.
        journey: The user's journey (see :func:`track`).
    """

    step: str
    journey: dict[str, Any] | None


_PROGRESS_COLUMNS: Final = (col(OnboardingProgress.step), col(OnboardingProgress.journey))


def with_progress(query: sa.Select[*tuple[Any, ...]]) -> sa.Select[*tuple[Any, ...]]:
    """``query`` of a user row with their progress joined: its last two columns.

    Args:
        query: A select of the ``users`` table (one user).

    Returns:
        The select; :func:`progress_of` reads its last two columns.
    """
    joined = col(OnboardingProgress.user_id) == col(User.id)
    return query.outerjoin(OnboardingProgress, joined).add_columns(*_PROGRESS_COLUMNS)


def progress_of(step: str | None, journey: dict[str, Any] | None) -> Progress | None:
    """The progress read by :func:`with_progress` (``None``: the user has no row yet)."""
    return None if step is None else Progress(step, journey)


class _Unread:
    """Marker: the caller did not read the progress row; :func:`record` reads it."""


_UNREAD: Final = _Unread()


def record(
    session: Session,
    user: User,
    kind: str,
    step: str,
    progress: Progress | _Unread | None = _UNREAD,
) -> None:
    """Write an event of ``user`` in the caller's transaction, with its summaries.

    Called after the caller changed the row: ``user.onboarding_step`` is where the user is
    now. The caller holds the user's row lock (``save_step``, ``open_step``) or has just
    updated the row (``complete_onboarding``), so a user's events never race.

    Args:
        session: The open session of the change.
        user: The user row as it is now.
        kind: One of :data:`KINDS`.
        step: The step it is about.
        progress: The user's progress row, if the caller read it with the user row it
            locked (:func:`with_progress`; ``None``: no row yet): no read of it here.
    """
    assert user.id is not None and kind in KINDS
    now = utcnow()
    version = flow_version()
    method = sign_in_method(user)
    reached = str(user.onboarding_step)
    # Core statements, built once: this runs inside every save, and ORM objects for two
    # small rows cost more than the SQL.
    found: Any = progress
    if isinstance(progress, _Unread):
        found = session.execute(_PROGRESS, {"user_id": user.id}).first()
    journey = dict(found.journey or {}) if found is not None else {}
    added = track(journey, kind, step, version, now)
    values = {"flow_version": version, "method": method, "journey": journey}
    if found is None:
        values |= {"step": reached, "since": now, "signed_up_at": user.created_at}
        session.execute(sa.insert(_table(OnboardingProgress)), {"user_id": user.id, **values})
    else:
        if found.step != reached:
            values |= {"step": reached, "since": now}
        session.execute(
            sa.update(_table(OnboardingProgress))
            .where(col(OnboardingProgress.user_id) == user.id)
            .values(values)
        )
    session.execute(
        sa.insert(_table(OnboardingEvent)),
        {
            "user_id": user.id,
            "kind": kind,
            "step": step,
            "flow_version": version,
            "method": method,
            "at": now,
        },
    )
    if added:
        add_counts(
            session,
            [
                {
                    "period": period,
                    "cohort_day": cohort_day,
                    "method": method,
                    "flow_version": version,
                    **vars(count),
                    "users": 1,
                }
                for count in added
                for period, cohort_day in cohorts(user.created_at)
            ],
        )


def _table(model: type[Any]) -> sa.Table:
    return cast(sa.Table, sa.inspect(model).local_table)


_PROGRESS: Final = sa.select(*_PROGRESS_COLUMNS).where(
    col(OnboardingProgress.user_id) == sa.bindparam("user_id")
)


COUNT_KEY: Final = (
    "measure",
    "period",
    "cohort_day",
    "method",
    "flow_version",
    "step",
    "bucket",
)


@lru_cache(maxsize=4)
def _upsert(dialect: str) -> sa.Insert:
    # Built once per dialect: compiling a fresh statement cost more than running it.
    table = _table(OnboardingCount)
    statement = (postgresql.insert if dialect == "postgresql" else sqlite.insert)(table)
    return statement.on_conflict_do_update(
        index_elements=list(COUNT_KEY),
        set_={"users": table.c.users + statement.excluded.users},
    )


def add_counts(session: Session | sa.Connection, rows: list[Mapping[str, Any]]) -> None:
    """Add to ``onboarding_counts`` (insert or increment), in key order.

    Rows are written sorted by key, so two transactions that touch the same totals lock
    them in the same order and never deadlock.

    Args:
        session: A session or connection in the caller's transaction.
        rows: Key columns and ``users`` (the amount to add); no key twice.
    """
    bind = session.get_bind() if isinstance(session, Session) else session
    ordered = sorted(rows, key=lambda row: tuple(str(row[k]) for k in COUNT_KEY))
    session.execute(_upsert(bind.dialect.name), ordered)


def prune_events(*, now: datetime | None = None, url: str | None = None) -> int:
    """Delete the events older than the retention period, a batch per transaction.

    Args:
        now: The current time (tests).
        url: Database URL.

    Returns:
        How many events were deleted.
    """
    cutoff = (now or utcnow()) - timedelta(days=get_settings().events_retention_days)
    oldest = (
        sa.select(col(OnboardingEvent.id))
        .where(col(OnboardingEvent.at) < cutoff)
        .limit(PRUNE_BATCH)
        .scalar_subquery()
    )
    deleted = 0
    while True:
        with session_scope(url) as session:
            result = session.execute(
                sa.delete(OnboardingEvent).where(col(OnboardingEvent.id).in_(oldest))
            )
        count = int(getattr(result, "rowcount", 0) or 0)
        deleted += count
        if count < PRUNE_BATCH:
            return deleted
