"""Load: virtual users through the whole flow over Reflex's websocket protocol, no browser.

Run from the project root::

    .venv/bin/python bench/load.py [--users 50,100] [--think 3] [--rate 10] [--setups sqlite]
    .venv/bin/python bench/load.py --users 200          # the 200-user target run
    .venv/bin/python bench/load.py --think 0.5 --rate 50 # a stress run, far faster than people
    .venv/bin/python bench/load.py --app-env ONBOARD_PASSWORD_HASH_SLOTS=6  # A/B a setting

Each virtual user is one tab (bench/reflex_client.py): it opens /signup (socket connect
with the hydrate event), signs up, opens every wizard step (on_load), sets the answers
through the real setter events, submits each step, finishes and opens /explore. Per event
the latency is the time from sending it to the message that completes it; per user the
flow time. A flow counts as an error unless it ends on /explore with a token claiming
``onb=completed`` (decoded unverified). Users start at ``--rate`` per second and pause
``--think`` seconds (jittered +-50 %) between actions, as people do (a person takes several
seconds per field; 3 s is brisk). At the defaults a flow takes ~35 s, so with 200 users
started over 20 s all 200 are mid-flow at once (the table's ``peak`` column says so).

Two setups, each a real ``reflex run --env prod`` started for the run:

* 1 worker, SQLite (a temp file), Reflex's default disk state manager;
* 2 workers (``GRANIAN_WORKERS=2``), a throwaway PostgreSQL database, Reflex's Redis state
  manager on a claimed, empty Redis logical database.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import re
import secrets
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.reflex_client import FrontendBuild, OnboardClient, OnboardNames  # noqa: E402
from tests.fakes.inbox import Letter, shared_smtp  # noqa: E402
from tests.fakes.smtp import SmtpFake  # noqa: E402

PASSWORD = "correct horse battery staple"
EVENT_TARGET_MS = 150.0
LAG_TICK_S = 0.01
SERVER_ERROR = re.compile(r"Traceback|\[Reflex Backend Exception\]|\"level\": \"error\"")


@dataclass(frozen=True)
class Setup:
    """One way to run the app.

    Attributes:
        key: Command-line name.
        label: Table label.
        workers: ``GRANIAN_WORKERS``.
        postgres: PostgreSQL + Redis (else SQLite + disk state).
    """

    key: str
    label: str
    workers: int
    postgres: bool


SETUPS = (
    Setup("sqlite", "1 worker, SQLite, disk state", 1, False),
    Setup("postgres", "2 workers, PostgreSQL, Redis state", 2, True),
)


@dataclass
class LoadResult:
    """What one run of N users measured.

    Attributes:
        setup: The app setup.
        users: Virtual users.
        seconds: Wall time from the first start to the last end.
        completed: Flows that ended on /explore with a completed token.
        latencies: Every event's latency, milliseconds.
        flows: Completed flows' durations, seconds.
        errors: One line per failed flow.
        by_event: Event label -> latencies, milliseconds.
        server_errors: Error records the app logged during the run.
        spans: (start, end) of every user's flow, for the peak concurrency.
        cpu: The CPU shares of the run (load generator, app, the rest).
        sends: (sent at, event group, latency ms) of every event, for rates over a window.
        cpu_seconds: CPU seconds of the app's processes and of its PostgreSQL backends.
        loop_lag: How late the generator's own event loop woke a 10 ms timer, milliseconds
            (each event's latency includes that much of the generator's own delay).
    """

    setup: Setup
    users: int
    seconds: float = 0.0
    completed: int = 0
    latencies: list[float] = field(default_factory=list)
    flows: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    by_event: dict[str, list[float]] = field(default_factory=dict)
    server_errors: int = 0
    spans: list[tuple[float, float]] = field(default_factory=list)
    cpu: str = ""
    sends: list[tuple[float, str, float]] = field(default_factory=list)
    cpu_seconds: tuple[float, float] = (0.0, 0.0)
    loop_lag: list[float] = field(default_factory=list)

    def lag_line(self) -> str:
        """The generator's loop lag, p50 / p95 / max: client delay read as latency."""
        if not self.loop_lag:
            return "load generator's event loop: not sampled"
        lags = self.loop_lag
        return (
            f"load generator's event loop late by p50 {self.percentile(50, lags):.1f} / "
            f"p95 {self.percentile(95, lags):.1f} / max {max(lags):.1f} ms"
            f" (a 10 ms timer, {len(lags)} samples)"
        )

    @property
    def peak(self) -> int:
        """The most users in the middle of their flow at the same moment."""
        edges = sorted(
            [(start, 1) for start, _ in self.spans] + [(end, -1) for _, end in self.spans]
        )
        level = top = 0
        for _, step in edges:
            level += step
            top = max(top, level)
        return top

    def events_per_second(self) -> float:
        """Events sent per second over the middle 80 % of the run's sends (no ramp, no tail)."""
        times = sorted(sent for sent, _, _ in self.sends)
        if len(times) < 10:
            return 0.0
        low, high = times[len(times) // 10], times[len(times) * 9 // 10]
        return (len(times) * 8 // 10) / (high - low) if high > low else 0.0

    def latencies_except(self, *groups: str) -> list[float]:
        """Every event's latency but those of ``groups`` (``sign_up``: queued by design)."""
        return [ms for _, group, ms in self.sends if group not in groups]

    def percentile(self, q: int, values: list[float] | None = None) -> float:
        """The q-th percentile (1-99) of the event latencies (or of ``values``)."""
        data = self.latencies if values is None else values
        if len(data) < 2:
            return data[0] if data else float("nan")
        return statistics.quantiles(data, n=100, method="inclusive")[q - 1]


class MailedCodes:
    """The verification code mailed to an address, each mail of the SMTP fake parsed once.

    The browser tests' ``mailed_code`` parses every mail received so far on each poll.
    With hundreds of users polling at once that parsing is the load generator's CPU, and
    the GIL it holds is also the in-process SMTP server's: the app's mail waits, and
    client cost shows up as server latency. Here each poll parses only the mails that
    arrived since the last one.
    """

    def __init__(self, fake: SmtpFake, timeout: float = 30.0) -> None:
        """Read codes from ``fake``; a code not mailed within ``timeout`` seconds fails."""
        self._fake = fake
        self._timeout = timeout
        self._lock = threading.Lock()
        self._parsed = 0
        self._codes: dict[str, str] = {}

    def __call__(self, address: str) -> str:
        """The code of the newest verification mail to ``address`` (blocking, polls)."""
        deadline = time.monotonic() + self._timeout
        while True:
            with self._lock:
                # The raw mails, not ``SmtpFake.messages`` (which parses every mail again).
                with self._fake.lock:
                    arrived = self._fake.received[self._parsed :]
                for item in arrived:
                    message = item.message
                    letter = Letter(str(message["To"]), str(message["Subject"]), _text(message), "")
                    if letter.kind == "verify_email":
                        self._codes[letter.to] = letter.code
                self._parsed += len(arrived)
                code = self._codes.get(address)
            if code is not None:
                return code
            if time.monotonic() > deadline:
                raise TimeoutError(f"no verification mail to {address}")
            time.sleep(0.05)


def _text(message: EmailMessage) -> str:
    part = message.get_body(preferencelist=("plain",))
    return part.get_content() if isinstance(part, EmailMessage) else ""


def _event_group(label: str) -> str:
    if label.startswith("open /onboarding"):
        return "open wizard step"
    if label.startswith(("set_", "toggle_")):
        return "setter"
    if label.startswith("submit_"):
        return "submit step"
    return label


async def run_users(
    url: str,
    origin: str,
    users: int,
    *,
    rate: float,
    think: float,
    build: FrontendBuild,
    names: OnboardNames,
    timeout: float,
) -> LoadResult:
    """Run ``users`` virtual users through the flow against a running app.

    Args:
        url: The app over IPv4 loopback.
        origin: The page origin the browser would send.
        users: How many.
        rate: Users started per second.
        think: Mean pause between a user's actions, seconds.
        build: The compiled frontend's constants.
        names: Onboard's event names.
        timeout: Seconds any one event may take before the flow counts as failed.

    Returns:
        The measurements (``setup`` is filled in by the caller).
    """
    result = LoadResult(SETUPS[0], users)
    clients: list[OnboardClient] = []
    mailed_code = MailedCodes(shared_smtp())

    async def user(index: int) -> None:
        await asyncio.sleep(index / rate)
        client = OnboardClient(url, names, build=build, timeout=timeout, origin=origin)
        clients.append(client)
        started = time.perf_counter()
        try:
            pause = think * random.uniform(0.5, 1.5)
            await client.journey(
                f"load-{secrets.token_hex(6)}@example.com", PASSWORD, mailed_code, think=pause
            )
            result.flows.append(time.perf_counter() - started)
            result.completed += 1
        except Exception as problem:
            result.errors.append(f"{type(problem).__name__}: {problem}")
        finally:
            result.spans.append((started, time.perf_counter()))
            await client.close()

    async def watch_loop() -> None:
        while True:
            before = time.perf_counter()
            await asyncio.sleep(LAG_TICK_S)
            result.loop_lag.append((time.perf_counter() - before - LAG_TICK_S) * 1000)

    watcher = asyncio.create_task(watch_loop())
    started = time.perf_counter()
    await asyncio.gather(*(user(i) for i in range(users)))
    result.seconds = time.perf_counter() - started
    watcher.cancel()
    for client in clients:
        for timing in client.timings:
            ms = timing.seconds * 1000
            if timing.label.endswith("busy shown"):  # a moment inside sign_up, not an event
                result.by_event.setdefault(timing.label, []).append(ms)
                continue
            result.latencies.append(ms)
            result.by_event.setdefault(_event_group(timing.label), []).append(ms)
            result.sends.append((timing.sent, _event_group(timing.label), ms))
    return result


@dataclass(frozen=True)
class LoadApp:
    """The app a load run talks to.

    Attributes:
        url: The socket URL over 127.0.0.1.
        origin: The page origin.
        log_path: The app's log file.
        group: Process group of the app (``reflex run`` and its workers), for CPU counts.
        redis_url: The claimed Redis database of the state manager (``None``: disk state).
        database_url: The app's database.
        trace_dir: Where the workers write their spans (``None``: tracing off).
    """

    url: str
    origin: str
    log_path: Path
    group: int
    redis_url: str | None
    database_url: str
    trace_dir: Path | None


@contextmanager
def running_app(
    setup: Setup, app_env: dict[str, str] | None = None, *, trace: bool = False
) -> Iterator[LoadApp]:
    """Start the app as ``make run-prod`` would, on throwaway storage; stop and clean after.

    ``app_env`` adds environment variables to the app's (``--app-env``: an A/B of a setting);
    ``trace`` sets ``ONBOARD_TRACE_DIR`` (``onboard_app/telemetry.py``) to a temporary folder.

    Yields:
        The running app.
    """
    from tests.e2e.conftest import start_app, stop_app

    with ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="onboard-load-")))
        env: dict[str, Any] = {"GRANIAN_WORKERS": str(setup.workers)}
        if setup.postgres:
            from tests.scale.infra import claimed_redis_db, throwaway_postgres

            env["ONBOARD_DATABASE_URL"] = stack.enter_context(throwaway_postgres())
            env["ONBOARD_REDIS_URL"] = stack.enter_context(claimed_redis_db())
        trace_dir = tmp / "spans" if trace else None
        if trace_dir is not None:
            env["ONBOARD_TRACE_DIR"] = str(trace_dir)
        env.update(app_env or {})
        app = start_app(tmp, **env)
        stack.callback(stop_app, app)
        yield LoadApp(
            app.url.replace("localhost", "127.0.0.1"),
            app.url,
            app.log_path,
            app.process.pid,  # started in a session of its own: its pid is the group
            env.get("ONBOARD_REDIS_URL"),
            app.database_url,
            trace_dir,
        )


def run_against(
    app: LoadApp, setup: Setup, users: int, *, rate: float, think: float, timeout: float
) -> LoadResult:
    """Run ``users`` virtual users against a running app; count its CPU and logged errors."""
    from bench import breakdown as spans

    log_before = app.log_path.read_text(errors="replace")
    cpu_before = spans.CpuSample.take(app.group, app.database_url)
    result = asyncio.run(
        run_users(
            app.url,
            app.origin,
            users,
            rate=rate,
            think=think,
            build=FrontendBuild.load(ROOT / ".web"),
            names=OnboardNames.resolve(),
            timeout=timeout,
        )
    )
    cpu_after = spans.CpuSample.take(app.group, app.database_url)
    result.cpu = spans.format_cpu(cpu_before, cpu_after, result.completed)
    result.cpu_seconds = (
        cpu_after.app - cpu_before.app,
        sum(c - cpu_before.postgres.get(p, 0.0) for p, c in cpu_after.postgres.items()),
    )
    result.setup = setup
    new_log = app.log_path.read_text(errors="replace")[len(log_before) :]
    result.server_errors = len(SERVER_ERROR.findall(new_log))
    if (first := SERVER_ERROR.search(new_log)) is not None:
        start = new_log.rfind("\n", 0, max(first.start() - 200, 0)) + 1
        print(f"  first server error of the run:\n{new_log[start : start + 2500]}")
    return result


def run_setup(
    setup: Setup,
    user_counts: list[int],
    *,
    rate: float,
    think: float,
    timeout: float,
    app_env: dict[str, str] | None = None,
    trace: bool = False,
) -> list[LoadResult]:
    """Start one setup's app and run each user count against it in turn.

    Prints the CPU shares of each run; with ``trace`` the span breakdown of all of them.
    """
    from bench import breakdown as spans

    results = []
    with running_app(setup, app_env, trace=trace) as app:
        for users in user_counts:
            result = run_against(app, setup, users, rate=rate, think=think, timeout=timeout)
            results.append(result)
            print(f"  ... {setup.label}: {users} users done in {result.seconds:.1f} s", flush=True)
            print("  " + result.cpu, flush=True)
            print("  " + result.lag_line(), flush=True)
        if app.trace_dir is not None:
            # The batch exporters write every 0.5 s; an opportunistic lease saves the state
            # when it ends (half Reflex's 10 s lock expiration).
            time.sleep(6.0)
            print(spans.format_events(spans.event_traces(spans.read_spans(app.trace_dir))))
        if app.redis_url is not None:
            print(spans.redis_state_sizes(app.redis_url), flush=True)
    return results


def format_table(results: list[LoadResult], *, rate: float, think: float) -> str:
    """The load table: one row per setup and user count."""
    lines = [
        f"== Load: whole flow per virtual user over the websocket (think {think:g} s +-50 %, "
        f"{rate:g} users/s started); event latency = send -> completing message; "
        "peak = most users mid-flow at once",
        f"  {'setup':<36} {'users':>5} {'peak':>5} {'flows/s':>8} {'p50 ms':>7} {'p95 ms':>7} "
        f"{'p99 ms':>7} {'flow p50 s':>10} {'errors':>6} {'srv err':>7}",
    ]
    for r in results:
        flow = f"{statistics.median(r.flows):10.2f}" if r.flows else f"{'-':>10}"
        lines.append(
            f"  {r.setup.label:<36} {r.users:5d} {r.peak:5d} {r.completed / r.seconds:8.2f} "
            f"{r.percentile(50):7.1f} {r.percentile(95):7.1f} {r.percentile(99):7.1f} "
            f"{flow} {len(r.errors):6d} {r.server_errors:7d}"
        )
    return "\n".join(lines)


def format_breakdown(result: LoadResult) -> str:
    """p50/p95 per kind of event, for one run."""
    lines = [f"  per event, {result.setup.label}, {result.users} users:"]
    for label, values in sorted(result.by_event.items()):
        lines.append(
            f"    {label:<22} n={len(values):5d} p50 {result.percentile(50, values):7.1f} ms"
            f"  p95 {result.percentile(95, values):7.1f} ms"
        )
    return "\n".join(lines)


def verdict(results: list[LoadResult]) -> list[str]:
    """The targets, checked on the largest run of each setup."""
    lines = []
    for setup in {r.setup.key: r.setup for r in results}.values():
        runs = [r for r in results if r.setup is setup]
        top = max(runs, key=lambda r: r.users)
        p95 = top.percentile(95)
        lines.append(
            f"{setup.label}, {top.users} users: errors {len(top.errors)} "
            f"(target 0: {'met' if not top.errors else 'MISSED'}), p95 {p95:.0f} ms "
            f"(target <= {EVENT_TARGET_MS:.0f} ms: {'met' if p95 <= EVENT_TARGET_MS else 'MISSED'})"
        )
        for error in sorted(set(top.errors))[:3]:
            lines.append(f"    e.g. {error}")
    return lines


def run(
    user_counts: list[int],
    *,
    setups: list[str],
    rate: float,
    think: float,
    timeout: float = 60.0,
    app_env: dict[str, str] | None = None,
    breakdown: bool = False,
) -> list[LoadResult]:
    """Run the chosen setups, print the table, the per-event latencies and the verdict.

    ``breakdown`` runs the app with tracing on and prints where the server's time went.
    """
    results: list[LoadResult] = []
    if app_env:
        print("app environment added: " + " ".join(f"{k}={v}" for k, v in app_env.items()))
    for setup in SETUPS:
        if setup.key in setups:
            results.extend(
                run_setup(
                    setup,
                    user_counts,
                    rate=rate,
                    think=think,
                    timeout=timeout,
                    app_env=app_env,
                    trace=breakdown,
                )
            )
    print(format_table(results, rate=rate, think=think))
    for setup in SETUPS:
        runs = [r for r in results if r.setup is setup]
        if runs:
            print(format_breakdown(max(runs, key=lambda r: r.users)))
    print("== Load summary")
    for line in verdict(results):
        print("  " + line)
    return results


def parse_counts(text: str) -> list[int]:
    """``"50,100"`` -> ``[50, 100]`` (each between 1 and 1000)."""
    counts = [int(part) for part in text.split(",") if part.strip()]
    if not counts or any(not 1 <= c <= 1000 for c in counts):
        raise argparse.ArgumentTypeError("user counts are 1..1000, comma-separated")
    return counts


def parse_env(text: str) -> tuple[str, str]:
    """``"NAME=value"`` -> ``("NAME", "value")``."""
    name, sep, value = text.partition("=")
    if not sep or not name.replace("_", "").isalnum():
        raise argparse.ArgumentTypeError("expected NAME=value")
    return name, value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The load options (shared with run_all.py)."""
    parser.add_argument("--users", type=parse_counts, default=[50, 100], help="e.g. 50,100 or 200")
    parser.add_argument(
        "--think", type=float, default=3.0, help="mean pause between a user's actions, s"
    )
    parser.add_argument("--rate", type=float, default=10.0, help="users started per second")
    parser.add_argument(
        "--setups", default="sqlite,postgres", help="comma-separated: sqlite, postgres"
    )
    parser.add_argument(
        "--app-env",
        type=parse_env,
        action="append",
        default=[],
        metavar="NAME=value",
        help="extra environment for the app, e.g. REFLEX_OPLOCK_ENABLED=false (repeatable)",
    )
    parser.add_argument(
        "--breakdown",
        action="store_true",
        help="trace the app (ONBOARD_TRACE_DIR) and print where each event's time goes",
    )


def main(argv: list[str] | None = None) -> int:
    """Command line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_arguments(parser)
    args = parser.parse_args(argv)
    run(
        args.users,
        setups=args.setups.split(","),
        rate=args.rate,
        think=args.think,
        app_env=dict(args.app_env),
        breakdown=args.breakdown,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
