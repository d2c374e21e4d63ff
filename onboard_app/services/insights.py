"""Onboarding insights: the funnel, step times, completions per day, and who is stuck.

Read-only SQL over the summaries that :mod:`onboard_app.services.events` keeps with
every event: ``onboarding_counts`` (anonymous daily totals; a few thousand rows a year
whatever the number of users) and ``onboarding_progress`` (one row per user, with a
partial index on the unfinished ones). No query here reads the event log, so each costs
the same at a hundred users and at a hundred thousand.

Words: a person *reached* a step at their first event there and *finished* it at their
first save, skip or Finish, once per flow version (someone taken through a new version
counts in each). The *time* of a step runs from its first opening to its first finish.
A person is *stuck* when onboarding is not finished and their reached step has not
changed for more than the given number of days.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, Final

import sqlalchemy as sa
from sqlmodel import col

from onboard_app.models import OnboardingCount, OnboardingProgress, User, utcnow
from onboard_app.services import events
from onboard_app.services.db import get_read_engine
from onboard_app.services.onboarding import Step, title_of, wizard_steps

#: Most days the completions chart shows (the most recent ones).
CHART_DAYS: Final = 180
#: Most people a CSV export of the stuck list holds.
EXPORT_LIMIT: Final = 10_000
#: How the stuck list can be sorted.
STUCK_SORTS: Final = ("days", "step", "signed_up", "method")


@dataclass(frozen=True)
class Filters:
    """Which people the insights are about.

    Attributes:
        signed_up_from: First sign-up day (UTC), inclusive.
        signed_up_to: Last sign-up day (UTC), inclusive.
        method: Sign-in method (``password``, ``github``, ``oidc``), or every one.
        flow_version: Flow version, or every one.
    """

    signed_up_from: date | None = None
    signed_up_to: date | None = None
    method: str | None = None
    flow_version: int | None = None


@dataclass(frozen=True)
class StepStats:
    """One step of the funnel.

    Attributes:
        step: The step key.
        title: Its heading.
        reached: People who reached it.
        finished: People who finished it.
        drop_off: Percent of those who reached it and did not finish it (``None``: nobody
            reached it).
        timed: People with a time for it (opened, then finished).
        median_seconds: Median time from opening to finishing (``None``: nobody timed).
        p90_seconds: 90th percentile of that time.
    """

    step: Step
    title: str
    reached: int
    finished: int
    drop_off: float | None
    timed: int
    median_seconds: float | None
    p90_seconds: float | None


@dataclass(frozen=True)
class DayCount:
    """Completions on one day.

    Attributes:
        day: The UTC day.
        completions: People who finished onboarding that day.
    """

    day: date
    completions: int


@dataclass(frozen=True)
class StuckUser:
    """One person of the stuck list.

    Attributes:
        user_id: Primary key.
        email: Address, if any.
        display_name: Name.
        step: Their reached step.
        since: When they reached it.
        days: Whole days since then.
        signed_up_at: When they signed up.
        method: Sign-in method.
        flow_version: Flow version of their last event.
    """

    user_id: int
    email: str | None
    display_name: str
    step: Step
    since: datetime
    days: int
    signed_up_at: datetime
    method: str
    flow_version: int


@dataclass(frozen=True)
class StuckPage:
    """A page of the stuck list.

    Attributes:
        people: The people on it.
        total: How many people the list has.
        page: Its number (from 1; past the end: the last page).
        page_size: People per page.
    """

    people: list[StuckUser]
    total: int
    page: int
    page_size: int


def _next_month(day: date) -> date:
    return (day.replace(day=1) + timedelta(days=32)).replace(day=1)


def _ranges(first: date | None, last: date | None) -> list[tuple[str, date | None, date | None]]:
    """``(period, from, to)`` row ranges that cover sign-up days ``first`` to ``last``.

    Whole months come from month rows, the days before the first whole month and after
    the last one from day rows (``None``: unbounded).
    """
    start = first if first is None or first.day == 1 else _next_month(first)
    if last is None:
        end = None  # the first day of the last whole month
    elif _next_month(last) - timedelta(days=1) == last:
        end = last.replace(day=1)
    else:
        end = (last.replace(day=1) - timedelta(days=1)).replace(day=1)
    if start is not None and end is not None and start > end:
        return [(events.DAY, first, last)]
    ranges: list[tuple[str, date | None, date | None]] = [(events.MONTH, start, end)]
    if first is not None and start is not None and first < start:
        ranges.append((events.DAY, first, start - timedelta(days=1)))
    if last is not None and end is not None and _next_month(end) <= last:
        ranges.append((events.DAY, _next_month(end), last))
    return ranges


def _totals(
    measures: Sequence[str], filters: Filters, url: str | None
) -> list[tuple[str, str, int, int]]:
    """``(measure, step, bucket, people)`` summed over the matching cohorts, in key order."""
    cohort_day = col(OnboardingCount.cohort_day)
    parts = []
    for period, low, high in _ranges(filters.signed_up_from, filters.signed_up_to):
        where = [col(OnboardingCount.measure).in_(measures), col(OnboardingCount.period) == period]
        if low is not None:
            where.append(cohort_day >= low)
        if high is not None:
            where.append(cohort_day <= high)
        if filters.method is not None:
            where.append(col(OnboardingCount.method) == filters.method)
        if filters.flow_version is not None:
            where.append(col(OnboardingCount.flow_version) == filters.flow_version)
        parts.append(
            sa.select(
                col(OnboardingCount.measure),
                col(OnboardingCount.step),
                col(OnboardingCount.bucket),
                col(OnboardingCount.users),
            ).where(*where)
        )
    rows = sa.union_all(*parts).subquery()
    statement = (
        sa.select(rows.c.measure, rows.c.step, rows.c.bucket, sa.func.sum(rows.c.users))
        .group_by(rows.c.measure, rows.c.step, rows.c.bucket)
        .order_by(rows.c.measure, rows.c.step, rows.c.bucket)
    )
    with get_read_engine(url).connect() as connection:
        found: Iterable[Any] = connection.execute(statement)
        return [(m, s, int(b), int(n)) for m, s, b, n in found]


def nearest_rank(histogram: Sequence[tuple[int, int]], quantile: float) -> int | None:
    """The bucket holding the nearest-rank quantile of a histogram.

    Args:
        histogram: ``(bucket, people)`` in bucket order.
        quantile: Between 0 (exclusive) and 1.

    Returns:
        The bucket, or ``None`` for an empty histogram.
    """
    total = sum(n for _, n in histogram)
    if total == 0:
        return None
    rank = max(1, math.ceil(quantile * total))
    seen = 0
    for bucket, people in histogram:
        seen += people
        if seen >= rank:
            return bucket
    return histogram[-1][0]


def funnel(filters: Filters = Filters(), url: str | None = None) -> list[StepStats]:
    """The funnel per wizard step of the spec, with each step's median and p90 time.

    Args:
        filters: Which people.
        url: Database URL.

    Returns:
        One entry per wizard step, in order.
    """
    counts: dict[tuple[str, str], int] = {}
    times: dict[str, list[tuple[int, int]]] = {}
    for measure, step, bucket, people in _totals(
        (events.REACHED, events.DONE, events.TIME), filters, url
    ):
        if measure == events.TIME:
            times.setdefault(step, []).append((bucket, people))
        else:
            counts[(measure, step)] = people
    stats = []
    for step in wizard_steps():
        reached = counts.get((events.REACHED, step), 0)
        finished = counts.get((events.DONE, step), 0)
        histogram = times.get(step, [])
        median, p90 = nearest_rank(histogram, 0.5), nearest_rank(histogram, 0.9)
        stats.append(
            StepStats(
                step=step,
                title=title_of(step),
                reached=reached,
                finished=finished,
                drop_off=round(100 * (reached - finished) / reached, 1) if reached else None,
                timed=sum(n for _, n in histogram),
                median_seconds=None if median is None else events.bucket_seconds(median),
                p90_seconds=None if p90 is None else events.bucket_seconds(p90),
            )
        )
    return stats


def completions_per_day(filters: Filters = Filters(), url: str | None = None) -> list[DayCount]:
    """Completions by day, days without any included, the last :data:`CHART_DAYS` at most.

    Args:
        filters: Which people (by sign-up day, method, flow version).
        url: Database URL.

    Returns:
        Consecutive days from the first to the last completion, oldest first.
    """
    by_day: dict[int, int] = {}
    for _, _, bucket, people in _totals((events.COMPLETED,), filters, url):
        by_day[bucket] = by_day.get(bucket, 0) + people
    if not by_day:
        return []
    last = max(by_day)
    first = max(min(by_day), last - CHART_DAYS + 1)
    return [DayCount(date.fromordinal(d), by_day.get(d, 0)) for d in range(first, last + 1)]


# SQLite uses a partial index only for a query that repeats its condition word for word
# (a bound parameter would not do), and PostgreSQL's generic plans need the same.
_UNFINISHED: Final = col(OnboardingProgress.step) != sa.literal_column("'completed'")


def _stuck_where(filters: Filters, cutoff: datetime) -> list[sa.ColumnElement[bool]]:
    where: list[sa.ColumnElement[bool]] = [_UNFINISHED, col(OnboardingProgress.since) < cutoff]
    if filters.signed_up_from is not None:
        start = datetime.combine(filters.signed_up_from, time(), UTC)
        where.append(col(OnboardingProgress.signed_up_at) >= start)
    if filters.signed_up_to is not None:
        end = datetime.combine(filters.signed_up_to + timedelta(days=1), time(), UTC)
        where.append(col(OnboardingProgress.signed_up_at) < end)
    if filters.method is not None:
        where.append(col(OnboardingProgress.method) == filters.method)
    if filters.flow_version is not None:
        where.append(col(OnboardingProgress.flow_version) == filters.flow_version)
    return where


def _stuck_order(sort: str, descending: bool) -> list[Any]:
    """``days`` and ``signed_up``: one ordered walk of an index; ties by days, then id."""
    since, user_id = col(OnboardingProgress.since), col(OnboardingProgress.user_id)
    if sort == "days":
        # More days stuck is an older "since".
        return [since.asc() if descending else since.desc(), user_id]
    signed_up = col(OnboardingProgress.signed_up_at)
    return [signed_up.desc() if descending else signed_up.asc(), since, user_id]


#: Sorts by a column of few values (the step in wizard order, the method): the list is
#: read as consecutive segments, one per value, each in "most days first" order from the
#: days index. Ordering every stuck person by a CASE over the step would sort them all.
_SEGMENTED: Final = {"step": col(OnboardingProgress.step), "method": col(OnboardingProgress.method)}


def _segment_order(sort: str, present: Iterable[str], descending: bool) -> list[str]:
    if sort == "step":
        position = {step: i for i, step in enumerate(wizard_steps())}
        ordered = sorted(present, key=lambda v: (position.get(v, len(position)), v))
    else:
        ordered = sorted(present)
    return ordered[::-1] if descending else ordered


def stuck_users(
    filters: Filters = Filters(),
    *,
    days: int = 7,
    sort: str = "days",
    descending: bool = True,
    page: int = 1,
    page_size: int = 20,
    now: datetime | None = None,
    url: str | None = None,
) -> StuckPage:
    """People whose onboarding is not finished and who have not moved on for ``days`` days.

    Args:
        filters: Which people.
        days: More than this many days at their reached step.
        sort: One of :data:`STUCK_SORTS`.
        descending: ``days``: most days first; others: largest value first.
        page: Page number, from 1 (past the end: the last page).
        page_size: People per page.
        now: The current time (tests).
        url: Database URL.

    Returns:
        The page and the total.

    Raises:
        ValueError: For an unknown sort.
    """
    if sort not in STUCK_SORTS:
        raise ValueError(f"unknown sort {sort!r}")
    now = now or utcnow()
    where = _stuck_where(filters, now - timedelta(days=days))
    with get_read_engine(url).connect() as connection:
        segment = _SEGMENTED.get(sort)
        if segment is None:
            count = sa.select(sa.func.count()).select_from(OnboardingProgress).where(*where)
            total = int(connection.execute(count).scalar_one())
        else:
            sizes = dict(
                connection.execute(
                    sa.select(segment, sa.func.count()).where(*where).group_by(segment)
                ).all()
            )
            total = sum(sizes.values())
        last_page = max(1, math.ceil(total / page_size))
        page = min(max(1, page), last_page)
        skip, wanted = (page - 1) * page_size, page_size
        if segment is None:
            order = _stuck_order(sort, descending)
            people = _stuck_rows(connection, where, order, wanted, skip, now)
            return StuckPage(people, total, page, page_size)
        people = []
        most_days_first = [col(OnboardingProgress.since), col(OnboardingProgress.user_id)]
        for value in _segment_order(sort, sizes, descending):
            if wanted == 0:
                break
            if skip >= sizes[value]:
                skip -= sizes[value]
                continue
            found = _stuck_rows(
                connection, [*where, segment == value], most_days_first, wanted, skip, now
            )
            people += found
            skip, wanted = 0, wanted - len(found)
    return StuckPage(people, total, page, page_size)


def _stuck_rows(
    connection: sa.Connection,
    where: list[sa.ColumnElement[bool]],
    order: list[Any],
    limit: int,
    offset: int,
    now: datetime,
) -> list[StuckUser]:
    # The page is picked from the progress index alone; only its rows meet the users table.
    chosen = (
        sa.select(col(OnboardingProgress.user_id))
        .where(*where)
        .order_by(*order)
        .limit(limit)
        .offset(offset)
        .subquery()
    )
    statement = (
        sa.select(
            col(OnboardingProgress.user_id),
            col(User.email),
            col(User.display_name),
            col(OnboardingProgress.step),
            col(OnboardingProgress.since),
            col(OnboardingProgress.signed_up_at),
            col(OnboardingProgress.method),
            col(OnboardingProgress.flow_version),
        )
        .join(chosen, chosen.c.user_id == col(OnboardingProgress.user_id))
        .join(User, col(User.id) == col(OnboardingProgress.user_id))
        .order_by(*order)
    )
    people = []
    for user_id, email, name, step, since, signed_up_at, method, version in connection.execute(
        statement
    ):
        since = events.utc(since)
        people.append(
            StuckUser(
                user_id=user_id,
                email=email,
                display_name=name,
                step=step,
                since=since,
                days=(now - since).days,
                signed_up_at=events.utc(signed_up_at),
                method=method,
                flow_version=version,
            )
        )
    return people


# --- CSV --------------------------------------------------------------------------------------


def _cell(value: object) -> str:
    """A CSV cell a spreadsheet will not run: text starting like a formula is quoted."""
    text = "" if value is None else str(value)
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def _csv(header: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(header)
    writer.writerows([_cell(v) for v in row] for row in rows)
    return out.getvalue()


def funnel_csv(stats: Sequence[StepStats]) -> str:
    """The funnel as CSV (times in seconds)."""
    return _csv(
        (
            "step",
            "title",
            "reached",
            "finished",
            "drop_off_percent",
            "timed",
            "median_seconds",
            "p90_seconds",
        ),
        (
            (
                s.step,
                s.title,
                s.reached,
                s.finished,
                "" if s.drop_off is None else s.drop_off,
                s.timed,
                "" if s.median_seconds is None else round(s.median_seconds),
                "" if s.p90_seconds is None else round(s.p90_seconds),
            )
            for s in stats
        ),
    )


def stuck_csv(people: Sequence[StuckUser]) -> str:
    """The stuck list as CSV (times in UTC, ISO 8601)."""
    return _csv(
        (
            "user_id",
            "email",
            "display_name",
            "step",
            "days_stuck",
            "since",
            "signed_up_at",
            "method",
            "flow_version",
        ),
        (
            (
                p.user_id,
                p.email,
                p.display_name,
                p.step,
                p.days,
                p.since.isoformat(timespec="seconds"),
                p.signed_up_at.isoformat(timespec="seconds"),
                p.method,
                p.flow_version,
            )
            for p in people
        ),
    )
