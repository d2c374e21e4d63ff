"""Benchmark the insights queries at 100,000 users and 1,000,000 events (SQLite, PostgreSQL).

Run from the project root::

    .venv/bin/python bench/bench_insights.py [--users 100000] [--events 1000000] [--calls 40]

Generates a deterministic year of sign-ups (three sign-in methods, two flow versions, a
drop-off at every step, reloads, people coming back days later) as event rows, and the
summaries the app keeps with each event (``onboarding_progress``, ``onboarding_counts``)
by replaying every event through the app's own ``events.track``. Loads them into a
migrated temporary SQLite file and a throwaway PostgreSQL database, checks the SQL answers
against the naive reference (``bench/insights_reference.py``, every event in Python),
then times ``insights.funnel`` and ``insights.stuck_users`` warm over a mix of filters,
sorts and pages (``--calls`` per scenario), and the naive reference once per database.
Prints p50/p95 in milliseconds; exits 1 if a p95 exceeds the 50 ms budget.
"""

from __future__ import annotations

import argparse
import math
import os
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import sqlalchemy as sa

from bench import insights_reference as reference
from onboard_app.models import OnboardingEvent, OnboardingProgress, User
from onboard_app.services import events, insights
from onboard_app.services.db import dispose_engine, get_engine, upgrade_to_head
from onboard_app.services.insights import Filters
from onboard_app.services.onboarding import COMPLETED, wizard_steps

BUDGET_MS = 50.0
SEED = 2026
WARMUP = 3
#: Chance of going on to the next step, per wizard step (about 60 % finish).
CARRY_ON = (0.85, 0.85, 0.9, 0.92)
#: Median seconds spent on each step.
MEDIAN_SECONDS = (90, 45, 30, 20)
METHODS = (("password", 0.6), ("github", 0.3), ("oidc", 0.1))
VERSION_2_DAYS = 120


@dataclass
class Data:
    """Rows for every table the insights read, and the same as reference objects."""

    now: datetime
    users: list[dict[str, Any]] = field(default_factory=list)
    log: list[dict[str, Any]] = field(default_factory=list)
    progress: list[dict[str, Any]] = field(default_factory=list)
    counts: dict[tuple[Any, ...], int] = field(default_factory=dict)


def _journey(rng: random.Random, start: datetime, now: datetime) -> list[tuple[str, str, datetime]]:
    """One person's wizard events: (kind, step, at), ending where they stopped."""
    out: list[tuple[str, str, datetime]] = []
    t = start + timedelta(seconds=3)
    for index, step in enumerate(wizard_steps()):
        out.append((events.OPENED, step, t))
        spent = rng.lognormvariate(math.log(MEDIAN_SECONDS[index]), 1.0)
        if rng.random() < 0.1:  # came back another day
            spent += rng.uniform(3600, 10 * 86400)
        done = t + timedelta(seconds=spent)
        if rng.random() >= CARRY_ON[index] or done >= now:
            return out
        out.append((events.FINISHED if step == wizard_steps()[-1] else events.SAVED, step, done))
        t = done + timedelta(seconds=2)
    return out


def generate(users: int, target_events: int, seed: int = SEED) -> Data:
    """A deterministic population and its event log, with the summaries the app keeps."""
    rng = random.Random(seed)
    now = datetime.now(UTC).replace(microsecond=0)
    data = Data(now=now)
    journeys: list[list[tuple[str, str, datetime]]] = []
    for user_id in range(1, users + 1):
        created = now - timedelta(seconds=rng.uniform(0, 365 * 86400))
        method = rng.choices([m for m, _ in METHODS], [w for _, w in METHODS])[0]
        journeys.append(_journey(rng, created, now))
        data.users.append(
            {
                "id": user_id,
                "email": f"person{user_id}@example.com",
                "display_name": f"Person {user_id}",
                "password_hash": "x" if method == "password" else None,
                "github_id": user_id if method == "github" else None,
                "oidc_issuer": "https://id.example.com" if method == "oidc" else None,
                "oidc_subject": str(user_id) if method == "oidc" else None,
                "created_at": created,
                "updated_at": created,
                "method": method,
                "flow_version": 2 if created > now - timedelta(days=VERSION_2_DAYS) else 1,
            }
        )
    _add_reloads(rng, journeys, target_events, now)
    for user, journey in zip(data.users, journeys, strict=True):
        _replay(data, user, journey)
    return data


def _add_reloads(
    rng: random.Random,
    journeys: list[list[tuple[str, str, datetime]]],
    target: int,
    now: datetime,
) -> None:
    """Pad the log to ``target`` events with reloads of a step while it was open."""
    total = sum(len(j) for j in journeys)
    while total < target:
        journey = journeys[rng.randrange(len(journeys))]
        i = rng.randrange(len(journey))
        kind, step, at = journey[i]
        if kind != events.OPENED:
            continue
        end = journey[i + 1][2] if i + 1 < len(journey) else min(now, at + timedelta(days=2))
        journey.insert(i + 1, (events.OPENED, step, at + (end - at) * rng.random()))
        total += 1


def _replay(data: Data, user: dict[str, Any], journey: list[tuple[str, str, datetime]]) -> None:
    """What ``events.record`` writes for each event of one person, in memory."""
    order = [*wizard_steps(), COMPLETED]
    version, method = user["flow_version"], user["method"]
    reached, since, state = order[0], journey[0][2], {}
    for kind, step, at in journey:
        if kind in events.FINISHING:
            reached, since = order[order.index(step) + 1], at
        data.log.append(
            {
                "user_id": user["id"],
                "kind": kind,
                "step": step,
                "flow_version": version,
                "method": method,
                "at": at,
            }
        )
        for count in events.track(state, kind, step, version, at):
            for period, cohort_day in events.cohorts(user["created_at"]):
                key = (count.measure, period, cohort_day, method, version, count.step, count.bucket)
                data.counts[key] = data.counts.get(key, 0) + 1
    user["onboarding_step"] = reached
    user["onboarding_completed_at"] = since if reached == COMPLETED else None
    user["flow_version"] = version if reached == COMPLETED else 0
    data.progress.append(
        {
            "user_id": user["id"],
            "step": reached,
            "since": since,
            "flow_version": version,
            "method": method,
            "signed_up_at": user["created_at"],
            "journey": state,
        }
    )


def populate(url: str, data: Data) -> None:
    """Bulk-load the generated rows into a migrated database."""
    user_columns = {c.name for c in sa.inspect(User).local_table.columns}
    user_rows = [{k: v for k, v in u.items() if k in user_columns} for u in data.users]
    count_rows = [
        dict(zip(events.COUNT_KEY, k, strict=True)) | {"users": n} for k, n in data.counts.items()
    ]
    engine = get_engine(url)
    with engine.begin() as connection:
        for table, rows in (
            (sa.inspect(User).local_table, user_rows),
            (sa.inspect(OnboardingEvent).local_table, data.log),
            (sa.inspect(OnboardingProgress).local_table, data.progress),
        ):
            for start in range(0, len(rows), 50_000):
                connection.execute(sa.insert(table), rows[start : start + 50_000])
        for start in range(0, len(count_rows), 5_000):
            events.add_counts(connection, count_rows[start : start + 5_000])
        if engine.dialect.name == "postgresql":
            connection.execute(sa.text("SELECT setval('users_id_seq', max(id)) FROM users"))
    if engine.dialect.name == "postgresql":
        # What autovacuum does after a bulk load (PostgreSQL 13+ vacuums after inserts too):
        # statistics, and the visibility map index-only scans need. SQLite runs without
        # statistics, as the app does.
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            connection.execute(sa.text("VACUUM ANALYZE"))


def scenarios(now: datetime) -> list[tuple[str, Filters]]:
    """The filters timed: none, recent sign-ups, one method, one version, all combined."""
    today = now.date()
    return [
        ("all people", Filters()),
        ("signed up in the last 30 days", Filters(signed_up_from=today - timedelta(days=30))),
        ("GitHub only", Filters(method="github")),
        ("flow version 2", Filters(flow_version=2)),
        (
            "password, v1, 300 to 60 days ago",
            Filters(
                signed_up_from=today - timedelta(days=300),
                signed_up_to=today - timedelta(days=60),
                method="password",
                flow_version=1,
            ),
        ),
    ]


STUCK_VIEWS: list[dict[str, Any]] = [
    {"sort": "days", "descending": True, "page": 1},
    {"sort": "days", "descending": False, "page": 40},
    {"sort": "step", "descending": False, "page": 3},
    {"sort": "signed_up", "descending": True, "page": 1},
    {"sort": "method", "descending": False, "page": 200},
]


def check(url: str, data: Data) -> None:
    """The SQL answers equal the naive reference's, for every scenario (else raise)."""
    people, log = reference.load(url)
    for name, filters in scenarios(data.now):
        sql = [
            (s.step, s.reached, s.finished, s.drop_off, s.timed, s.median_seconds, s.p90_seconds)
            for s in insights.funnel(filters, url)
        ]
        naive = reference.funnel(people, log, filters)
        if sql != naive:
            raise AssertionError(f"funnel differs ({name}):\n{sql}\n{naive}")
        page = insights.stuck_users(filters, days=7, page_size=50, now=data.now, url=url)
        expected = reference.stuck(people, log, filters, days=7, now=data.now)
        got = [(p.user_id, p.step, p.since) for p in page.people]
        if page.total != len(expected) or got != expected[:50]:
            raise AssertionError(f"stuck list differs ({name}): {page.total} vs {len(expected)}")


def timed(fn: Callable[[], object], calls: int) -> list[float]:
    """Milliseconds per call, after a few warm-up calls."""
    for _ in range(WARMUP):
        fn()
    samples = []
    for _ in range(calls):
        began = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - began) * 1000)
    return samples


def p95(samples: list[float]) -> float:
    """The 95th percentile (nearest rank)."""
    ordered = sorted(samples)
    return ordered[max(0, math.ceil(0.95 * len(ordered)) - 1)]


@dataclass
class Result:
    """One database's numbers."""

    database: str
    funnel: list[float]
    stuck: list[float]
    naive_ms: float
    load_s: float
    #: Samples of each scenario and view, to show the slowest one.
    cases: dict[str, list[float]] = field(default_factory=dict)


def measure(database: str, url: str, data: Data, calls: int) -> Result:
    """Load, check, then time both queries and the naive reference on one database."""
    began = time.perf_counter()
    populate(url, data)
    load_s = time.perf_counter() - began
    check(url, data)
    funnel_ms: list[float] = []
    stuck_ms: list[float] = []
    cases: dict[str, list[float]] = {}
    for name, filters in scenarios(data.now):
        cases[f"funnel, {name}"] = timed(lambda f=filters: insights.funnel(f, url), calls)
        funnel_ms += cases[f"funnel, {name}"]
        for view in STUCK_VIEWS:
            key = f"stuck, {name}, by {view['sort']} page {view['page']}"
            cases[key] = timed(
                lambda f=filters, v=view: insights.stuck_users(
                    f, days=7, now=data.now, url=url, **v
                ),
                max(1, calls // len(STUCK_VIEWS)),
            )
            stuck_ms += cases[key]
    began = time.perf_counter()
    people, log = reference.load(url)
    reference.funnel(people, log, Filters())
    reference.stuck(people, log, Filters(), days=7, now=data.now)
    naive_ms = (time.perf_counter() - began) * 1000
    return Result(database, funnel_ms, stuck_ms, naive_ms, load_s, cases)


@contextmanager
def sqlite_database() -> Iterator[str]:
    """A migrated temporary SQLite file (WAL, through the app's engine)."""
    with tempfile.TemporaryDirectory(prefix="onboard-insights-") as tmp:
        url = f"sqlite:///{Path(tmp) / 'insights.db'}"
        upgrade_to_head(url)
        try:
            yield url
        finally:
            dispose_engine(url)


@contextmanager
def postgres_database() -> Iterator[str]:
    """A migrated throwaway PostgreSQL database, dropped afterwards."""
    from tests.scale.infra import throwaway_postgres

    with throwaway_postgres() as url:
        upgrade_to_head(url)
        yield url


def report(results: list[Result], data: Data) -> bool:
    """Print the table; True if every p95 is within the budget."""
    completed = sum(1 for u in data.users if u["onboarding_step"] == COMPLETED)
    print(
        f"{len(data.users):,} users ({completed:,} finished), {len(data.log):,} events, "
        f"{len(data.counts):,} count rows; SQL answers equal the naive reference's"
    )
    print(
        f"  {'database':<11} {'query':<7} {'calls':>5} {'p50 ms':>8} {'p95 ms':>8}"
        f"  {'naive ms':>9}  (load s)"
    )
    within = True
    for result in results:
        for name, samples in (("funnel", result.funnel), ("stuck", result.stuck)):
            worst = p95(samples)
            within &= worst <= BUDGET_MS
            print(
                f"  {result.database:<11} {name:<7} {len(samples):>5} "
                f"{statistics.median(samples):8.2f} {worst:8.2f}  {result.naive_ms:9.0f}"
                f"  ({result.load_s:.0f})"
            )
    for result in results:
        slowest = max(result.cases, key=lambda k: statistics.median(result.cases[k]))
        samples = result.cases[slowest]
        print(
            f"  slowest case on {result.database}: {slowest} "
            f"(p50 {statistics.median(samples):.2f} ms, max {max(samples):.2f} ms)"
        )
    print(f"Budget p95 <= {BUDGET_MS:.0f} ms: {'met' if within else 'MISSED'}")
    return within


def main(argv: list[str] | None = None) -> int:
    """Generate, load, check and time; exit 1 if a p95 misses the budget."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--calls", type=int, default=40, help="timed calls per scenario")
    parser.add_argument("--skip-sqlite", action="store_true")
    parser.add_argument("--skip-postgres", action="store_true")
    args = parser.parse_args(argv)
    began = time.perf_counter()
    data = generate(args.users, args.events)
    print(f"generated in {time.perf_counter() - began:.0f} s", flush=True)
    results = []
    one, five, _ = os.getloadavg()
    print(f"load average {one:.2f} (1 min) {five:.2f} (5 min) on {os.cpu_count()} cores")
    if not args.skip_sqlite:
        with sqlite_database() as url:
            results.append(measure("SQLite", url, data, args.calls))
    if not args.skip_postgres:
        with postgres_database() as url:
            results.append(measure("PostgreSQL", url, data, args.calls))
    return 0 if report(results, data) else 1


if __name__ == "__main__":
    sys.exit(main())
