"""A naive reference for the onboarding insights: everything recomputed from the event log.

Straight Python over every event and user, written from the definitions in
``onboard_app/services/insights.py`` and nothing else: no summary table, no shared code
with the write path but the time buckets. ``tests/unit/test_insights.py`` checks the SQL
against it on generated data; ``bench/bench_insights.py`` times it beside the SQL.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

import sqlalchemy as sa

from onboard_app.services.events import FINISHED, FINISHING, OPENED, bucket_seconds, time_bucket
from onboard_app.services.insights import Filters
from onboard_app.services.onboarding import COMPLETED, REVIEW, steps, wizard_steps


@dataclass(frozen=True)
class Event:
    """One row of ``onboarding_events``."""

    user_id: int
    kind: str
    step: str
    flow_version: int
    method: str
    at: datetime


@dataclass(frozen=True)
class Person:
    """What the reference needs of a ``users`` row."""

    id: int
    email: str | None
    created_at: datetime
    onboarding_step: str


def _utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def load(url: str) -> tuple[dict[int, Person], list[Event]]:
    """Every user and every event of a database, events in the order they were written."""
    engine = sa.create_engine(url)
    try:
        with engine.connect() as connection:
            people = {
                row[0]: Person(row[0], row[1], _utc(_parse(row[2])), row[3])
                for row in connection.execute(
                    sa.text("SELECT id, email, created_at, onboarding_step FROM users")
                )
            }
            log = [
                Event(row[0], row[1], row[2], row[3], row[4], _utc(_parse(row[5])))
                for row in connection.execute(
                    sa.text(
                        "SELECT user_id, kind, step, flow_version, method, at "
                        "FROM onboarding_events ORDER BY id"
                    )
                )
            ]
    finally:
        engine.dispose()
    return people, log


def _parse(value: datetime | str) -> datetime:
    return datetime.fromisoformat(value) if isinstance(value, str) else value


def _in_cohort(person: Person, method: str, version: int, filters: Filters) -> bool:
    day = person.created_at.date()
    return (
        (filters.signed_up_from is None or day >= filters.signed_up_from)
        and (filters.signed_up_to is None or day <= filters.signed_up_to)
        and (filters.method is None or method == filters.method)
        and (filters.flow_version is None or version == filters.flow_version)
    )


def _nearest_rank(values: list[int], quantile: float) -> int:
    ordered = sorted(values)
    return ordered[max(1, math.ceil(quantile * len(ordered))) - 1]


def funnel(
    people: dict[int, Person], log: Iterable[Event], filters: Filters
) -> list[tuple[str, int, int, float | None, int, float | None, float | None]]:
    """Per wizard step: reached, finished, drop-off %, timed, median and p90 seconds."""
    first: dict[tuple[int, int, str], Event] = {}
    opened: dict[tuple[int, int, str], datetime] = {}
    done: dict[tuple[int, int, str], Event] = {}
    for event in log:
        key = (event.user_id, event.flow_version, event.step)
        first.setdefault(key, event)
        if event.kind == OPENED:
            opened.setdefault(key, event.at)
        if event.kind in FINISHING:
            done.setdefault(key, event)
    result = []
    for step in wizard_steps():
        reached = sum(
            1
            for (user, _, s), e in first.items()
            if s == step and _in_cohort(people[user], e.method, e.flow_version, filters)
        )
        finishers = [
            (key, e)
            for key, e in done.items()
            if key[2] == step and _in_cohort(people[key[0]], e.method, e.flow_version, filters)
        ]
        durations = [
            int(e.at.timestamp()) - int(opened[key].timestamp())
            for key, e in finishers
            if key in opened and opened[key] <= e.at
        ]
        median = p90 = None
        if durations:
            median = bucket_seconds(time_bucket(_nearest_rank(durations, 0.5)))
            p90 = bucket_seconds(time_bucket(_nearest_rank(durations, 0.9)))
        drop = round(100 * (reached - len(finishers)) / reached, 1) if reached else None
        result.append((step, reached, len(finishers), drop, len(durations), median, p90))
    return result


def completions(
    people: dict[int, Person], log: Iterable[Event], filters: Filters
) -> dict[date, int]:
    """Finished onboardings by UTC day."""
    days: dict[date, int] = {}
    for event in log:
        if event.kind == FINISHED and _in_cohort(
            people[event.user_id], event.method, event.flow_version, filters
        ):
            days[event.at.date()] = days.get(event.at.date(), 0) + 1
    return days


def position(mine: Iterable[Event]) -> tuple[str | None, datetime | None]:
    """Where one person's events leave them, and since when.

    A save, skip or Finish moves them past its step in the flow of the event's version
    (never backwards: going back to save an earlier step again moves nothing); after
    Finish, their next opening is where they are again (a new flow version took them back).
    """
    here: str | None = None
    since: datetime | None = None
    for event in mine:
        if event.kind in FINISHING:
            order = [*(s.key for s in steps() if s.since <= event.flow_version), REVIEW, COMPLETED]
            after = order[order.index(event.step) + 1]
            step = after if here is None or order.index(after) > order.index(here) else here
        else:
            step = event.step if here in (None, COMPLETED) else here
        if step != here:
            here, since = step, event.at
    return here, since


def stuck(
    people: dict[int, Person],
    log: Iterable[Event],
    filters: Filters,
    *,
    days: int,
    now: datetime,
) -> list[tuple[int, str, datetime]]:
    """Unfinished people at their step for more than ``days``: (user, step, since), most first.

    The filters apply to sign-up, and to the method and flow version of their last event.
    """
    by_user: dict[int, list[Event]] = {}
    for event in log:
        by_user.setdefault(event.user_id, []).append(event)
    found = []
    for user, mine in by_user.items():
        person = people[user]
        here, since = position(mine)
        if person.onboarding_step == COMPLETED or since is None:
            continue
        assert here == person.onboarding_step, (user, here, person.onboarding_step)
        last = mine[-1]
        if since < now - timedelta(days=days) and _in_cohort(
            person, last.method, last.flow_version, filters
        ):
            found.append((user, person.onboarding_step, since))
    return sorted(found, key=lambda row: (row[2], row[0]))
