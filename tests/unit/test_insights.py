"""The insights queries against the naive reference (every event in Python), on generated data.

Two kinds of data: people taken through the real write path (``users.save_step``,
``complete_onboarding``, ``record_step_opened``, a new flow version and ``reopen``) with a
clock that moves, on SQLite; and the benchmark's generated year (``bench/bench_insights.py``),
loaded into SQLite and PostgreSQL.
"""

from __future__ import annotations

import csv
import io
import random
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, date, datetime, timedelta

import pytest
import sqlalchemy as sa

from bench import bench_insights
from bench import insights_reference as reference
from onboard_app.services import events, insights, onboarding
from onboard_app.services.db import dispose_engine, get_engine, upgrade_to_head
from onboard_app.services.insights import Filters, StuckUser
from onboard_app.services.onboarding import COMPLETED, REVIEW, wizard_steps
from onboard_app.services.users import (
    complete_onboarding,
    create_external_user,
    create_local_user,
    record_step_opened,
    reopen_for_new_steps,
    save_step,
)
from onboard_app.settings import Settings
from tests.unit.flow_steps import GOOD, GOOD_WORKPLACE, WORKPLACE

HASH = "$argon2id$v=19$m=24576,t=2,p=1$c2FsdHNhbHQ$ZmFrZWhhc2hmYWtlaGFzaA"
START = datetime(2026, 1, 20, 8, tzinfo=UTC)


def scenarios(today: date) -> list[Filters]:
    return [
        Filters(),
        Filters(method="github"),
        Filters(method="password", flow_version=1),
        Filters(flow_version=2),
        Filters(signed_up_from=date(2026, 2, 1)),
        Filters(signed_up_to=date(2026, 2, 28)),
        Filters(signed_up_from=date(2026, 1, 25), signed_up_to=date(2026, 3, 3)),
        Filters(signed_up_from=date(2026, 2, 10), signed_up_to=date(2026, 2, 12), method="oidc"),
        Filters(signed_up_from=today, signed_up_to=today),
    ]


def funnel_tuples(filters: Filters, url: str) -> list[tuple[object, ...]]:
    return [
        (s.step, s.reached, s.finished, s.drop_off, s.timed, s.median_seconds, s.p90_seconds)
        for s in insights.funnel(filters, url)
    ]


def assert_matches_reference(url: str, now: datetime) -> None:
    people, log = reference.load(url)
    assert log, "no events were generated"
    for filters in scenarios(now.date()):
        assert funnel_tuples(filters, url) == reference.funnel(people, log, filters), filters
        days = {d.day: d.completions for d in insights.completions_per_day(filters, url)}
        expected = reference.completions(people, log, filters)
        if expected:  # the chart shows the most recent days, every one of them
            first = max(min(expected), max(expected) - timedelta(days=insights.CHART_DAYS - 1))
            expected = {d: n for d, n in expected.items() if d >= first}
            assert list(days) == [first + timedelta(days=i) for i in range(len(days))]
            assert max(days) == max(expected)
        assert {d: n for d, n in days.items() if n} == expected, filters
        for threshold in (0, 3, 20):
            naive = reference.stuck(people, log, filters, days=threshold, now=now)
            page = insights.stuck_users(filters, days=threshold, page_size=1000, now=now, url=url)
            assert page.total == len(naive), (filters, threshold)
            assert [(p.user_id, p.step, p.since) for p in page.people] == naive


class Clock:
    """What ``events`` takes for the current time."""

    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    moving = Clock()
    monkeypatch.setattr(events, "utcnow", moving)
    return moving


def new_person(rng: random.Random, index: int, url: str, signed_up: datetime) -> int:
    """A new account of a random kind, signed up at ``signed_up``."""
    kind = rng.choice(["password", "password", "github", "oidc"])
    if kind == "password":
        user = create_local_user(f"p{index}@example.com", HASH, url)
    elif kind == "github":
        user = create_external_user(
            email=None, display_name="", avatar_url=None, github_id=1000 + index, url=url
        )
    else:
        user = create_external_user(
            email=None,
            display_name="",
            avatar_url=None,
            oidc_issuer="https://id.example.com",
            oidc_subject=str(index),
            url=url,
        )
    assert user.id is not None
    with get_engine(url).begin() as connection:
        connection.execute(
            sa.update(sa.table("users", sa.column("id"), sa.column("created_at")))
            .where(sa.column("id") == user.id)
            .values(created_at=signed_up.replace(tzinfo=None))
        )
    return user.id


def walk(rng: random.Random, clock: Clock, user_id: int, start: datetime, url: str) -> None:
    """Open, reload, go back, save and maybe stop at each step, then maybe finish."""
    clock.now = start + timedelta(seconds=5)
    answers = {**GOOD, WORKPLACE.key: GOOD_WORKPLACE}
    for step in wizard_steps():
        for _ in range(rng.choice([1, 1, 2, 3])):
            record_step_opened(user_id, step, url)
            clock.now += timedelta(seconds=rng.uniform(1, 400))
        if rng.random() < 0.15:
            return  # stops here
        clock.now += timedelta(seconds=rng.expovariate(1 / 300))
        if rng.random() < 0.1:
            clock.now += timedelta(days=rng.uniform(1, 12))
        if step == REVIEW:
            complete_onboarding(user_id, url)
            return
        save_step(user_id, step, answers[step], url=url)
        if rng.random() < 0.1:  # back to the first step and saved again: nothing moves
            save_step(user_id, "profile", GOOD["profile"], url=url)


@pytest.fixture(params=["sqlite", "postgresql"])
def any_db(request: pytest.FixtureRequest, db_url: str) -> Iterator[str]:
    """A fresh migrated database: the SQLite file, or a throwaway PostgreSQL database."""
    if request.param == "sqlite":
        yield db_url
        return
    from tests.scale.infra import throwaway_postgres

    with throwaway_postgres() as url:
        upgrade_to_head(url)
        yield url


def test_through_the_write_path_the_sql_equals_the_reference(
    any_db: str, settings: Settings, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    db_url = any_db
    rng = random.Random(15)
    people = []
    for i in range(70):
        signed_up = START + timedelta(days=rng.uniform(0, 70))
        people.append(new_person(rng, i, db_url, signed_up))
        walk(rng, clock, people[-1], signed_up, db_url)
    # Version 2 adds a required step: finished people are taken through it alone.
    monkeypatch.setattr(onboarding, "STEPS", (*onboarding.STEPS, WORKPLACE))
    later = START + timedelta(days=80)
    for user_id in people:
        if rng.random() < 0.5 and reopen_for_new_steps(user_id, db_url):
            clock.now = later + timedelta(hours=rng.uniform(0, 48))
            record_step_opened(user_id, WORKPLACE.key, db_url)
            if rng.random() < 0.7:
                clock.now += timedelta(minutes=rng.uniform(1, 30))
                save_step(user_id, WORKPLACE.key, GOOD_WORKPLACE, url=db_url)
                record_step_opened(user_id, REVIEW, db_url)
                clock.now += timedelta(minutes=1)
                assert complete_onboarding(user_id, db_url).transitioned
    for i in range(70, 100):  # new people, on version 2 from the start
        signed_up = later + timedelta(days=rng.uniform(0, 5))
        walk(rng, clock, new_person(rng, i, db_url, signed_up), signed_up, db_url)
    with get_engine(db_url).connect() as connection:
        versions = connection.execute(
            sa.text("SELECT DISTINCT flow_version FROM onboarding_events")
        )
        assert {row[0] for row in versions} == {1, 2}
    assert_matches_reference(db_url, later + timedelta(days=30))


@pytest.fixture(params=["sqlite", "postgresql"])
def generated_year(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[str, bench_insights.Data]]:
    data = bench_insights.generate(1500, 15_000, seed=7)
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('year') / 'year.db'}"
        upgrade_to_head(url)
        bench_insights.populate(url, data)
        yield url, data
        dispose_engine(url)
        return
    from tests.scale.infra import throwaway_postgres

    with throwaway_postgres() as url:
        upgrade_to_head(url)
        bench_insights.populate(url, data)
        yield url, data


def test_on_a_generated_year_the_sql_equals_the_reference(
    generated_year: tuple[str, bench_insights.Data],
) -> None:
    url, data = generated_year
    assert_matches_reference(url, data.now)
    # Every sort and direction pages through the same people, without overlap.
    total = insights.stuck_users(days=7, now=data.now, url=url).total
    for sort in insights.STUCK_SORTS:
        for descending in (False, True):
            seen: list[StuckUser] = []
            for page in range(1, 100):
                got = insights.stuck_users(
                    days=7,
                    sort=sort,
                    descending=descending,
                    page=page,
                    page_size=50,
                    now=data.now,
                    url=url,
                )
                if page > 1 and got.page < page:
                    break
                seen += got.people
            assert len(seen) == total == len({p.user_id for p in seen}), (sort, descending)
            assert seen == expected_order(seen, sort, descending), (sort, descending)


def expected_order(people: list[StuckUser], sort: str, descending: bool) -> list[StuckUser]:
    """The order the stuck list promises, by stable sorts: ties by days stuck, then user id."""
    position = {step: i for i, step in enumerate(wizard_steps())}
    if sort == "days":  # most days first is the oldest "since" first
        by_id = sorted(people, key=lambda p: p.user_id)
        return sorted(by_id, key=lambda p: p.since, reverse=not descending)
    ties = sorted(people, key=lambda p: (p.since, p.user_id))
    key = {
        "step": lambda p: position[p.step],
        "signed_up": lambda p: p.signed_up_at,
        "method": lambda p: p.method,
    }[sort]
    return sorted(ties, key=key, reverse=descending)


def test_a_page_past_the_end_is_the_last_page(db_url: str, settings: Settings) -> None:
    page = insights.stuck_users(page=40, url=db_url)
    assert (page.page, page.total, page.people) == (1, 0, [])
    with pytest.raises(ValueError):
        insights.stuck_users(sort="email; DROP TABLE users", url=db_url)


@pytest.mark.parametrize("seed", range(5))
def test_the_period_ranges_cover_exactly_the_days_asked(seed: int) -> None:
    rng = random.Random(seed)
    for _ in range(400):
        first = (
            date(2025, 1, 1) + timedelta(days=rng.randrange(800)) if rng.random() < 0.9 else None
        )
        last = (
            (first or date(2025, 1, 1)) + timedelta(days=rng.randrange(400))
            if rng.random() < 0.9
            else None
        )
        covered: list[date] = []
        for period, low, high in insights._ranges(first, last):
            low = low or date(2024, 1, 1)  # unbounded: the ends of the days looked at
            high = high or (date(2028, 12, 31) if period == events.DAY else date(2028, 12, 1))
            if period == events.DAY:
                covered += [low + timedelta(days=i) for i in range((high - low).days + 1)]
            else:
                assert low.day == 1 and high.day == 1
                month = low
                while month <= high:
                    nxt = insights._next_month(month)
                    covered += [month + timedelta(days=i) for i in range((nxt - month).days)]
                    month = nxt
        lo, hi = first or date(2024, 1, 1), last or date(2028, 12, 31)
        expected = [lo + timedelta(days=i) for i in range((hi - lo).days + 1)]
        assert sorted(covered) == expected, (first, last)


def test_nearest_rank() -> None:
    assert insights.nearest_rank([], 0.5) is None
    histogram = [(3, 1), (5, 3), (9, 6)]
    assert insights.nearest_rank(histogram, 0.5) == 9  # the 5th of 10
    assert insights.nearest_rank(histogram, 0.4) == 5
    assert insights.nearest_rank(histogram, 0.1) == 3
    assert insights.nearest_rank(histogram, 0.9) == 9


def test_csv_exports_cannot_run_formulas_in_a_spreadsheet(app_db: Settings) -> None:
    since = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    people = [
        StuckUser(
            1, "=cmd|'/c calc'!A1@x.com", "+SUM(A1)", "profile", since, 9, since, "password", 1
        ),
        StuckUser(
            2, "plain@example.com", '-2, "quoted"\nnext', "review", since, 3, since, "github", 2
        ),
        StuckUser(3, None, "@home", "interests", since, 1, since, "oidc", 1),
    ]
    parsed = list(csv.reader(io.StringIO(insights.stuck_csv(people))))
    assert parsed[0][:4] == ["user_id", "email", "display_name", "step"]
    assert parsed[1][1:3] == ["'=cmd|'/c calc'!A1@x.com", "'+SUM(A1)"]
    assert parsed[2][2] == '\'-2, "quoted"\nnext'
    assert parsed[3][1:3] == ["", "'@home"]
    assert parsed[1][5] == "2026-01-02T03:04:05+00:00"
    funnel = list(csv.reader(io.StringIO(insights.funnel_csv(insights.funnel()))))
    assert [row[0] for row in funnel[1:]] == list(wizard_steps())


def test_an_empty_database_has_an_empty_funnel(app_db: Settings) -> None:
    stats = insights.funnel()
    assert [s.step for s in stats] == list(wizard_steps())
    assert all(s.reached == s.finished == s.timed == 0 and s.drop_off is None for s in stats)
    assert insights.completions_per_day() == []
    assert COMPLETED not in [s.step for s in stats]


def test_concurrent_finishes_count_everyone_once(any_db: str, settings: Settings) -> None:
    """Eight people finishing at once update the same totals: none lost, no deadlock."""
    people = [create_local_user(f"c{i}@example.com", HASH, any_db).id for i in range(8)]
    for user_id in people:
        assert user_id is not None
        for step, answers in GOOD.items():
            save_step(user_id, step, answers, url=any_db)
    barrier = threading.Barrier(len(people))

    def finish(user_id: int) -> bool:
        barrier.wait()
        record_step_opened(user_id, REVIEW, any_db)
        return complete_onboarding(user_id, any_db).transitioned

    with ThreadPoolExecutor(len(people)) as pool:
        assert all(pool.map(finish, people))  # type: ignore[arg-type]
    review = next(s for s in insights.funnel(url=any_db) if s.step == REVIEW)
    assert (review.reached, review.finished) == (8, 8)
    assert sum(d.completions for d in insights.completions_per_day(url=any_db)) == 8
