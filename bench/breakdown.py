"""Where an event's time goes: the app's spans per event kind, state sizes, CPU shares.

Run from the project root (or use ``bench/load.py --breakdown``, which calls this)::

    .venv/bin/python bench/breakdown.py --users 200 --think 3          # PostgreSQL + Redis
    .venv/bin/python bench/breakdown.py --users 50 --setups sqlite
    .venv/bin/python bench/breakdown.py --disabled-cost  # a trace point with tracing off

The app is started by ``bench/load.py``'s ``running_app`` with ``ONBOARD_TRACE_DIR`` set, so
every worker writes its spans (``onboard_app/telemetry.py``: Reflex's own event spans from
``reflex-otel`` plus state lock/load/save, delta, socket send, SQL statements, the session
check and the password hash) to a JSON-lines file; the same virtual users as the load
bench run through the flow. Then, per event kind (the client's event, the server's trace
of it with the events it chained), the mean milliseconds of each part and the bytes of
state saved and of messages sent; the size of every tab's state in the claimed Redis
database (each key ``<client token>_<state>``); and the CPU the load generator used
against the app's processes, so client cost is never read as server cost.

Parts overlap where they nest: the session check holds its own database read, the state
acquire holds the lock and the load.
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import time
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

#: Span name -> the part of an event it measures (column order of the table).
PARTS: Mapping[str, str] = {
    "reflex.state.acquire": "acquire",
    "reflex.state.lock": "lock",
    "reflex.state.load": "load",
    "onboard.session_check": "session",
    "db.statement": "db",
    "onboard.password_hash": "hash",
    "reflex.delta": "delta",
    "reflex.socket.send": "send",
    "reflex.state.save": "save",
}
EVENT_MARK = "reflex___state____state"


@dataclass
class Span:
    """One exported span (see ``telemetry.json_lines_exporter``)."""

    name: str
    trace: str
    span: str
    parent: str | None
    start: int
    end: int
    kind: str
    size: int | None

    @property
    def ms(self) -> float:
        """Duration, milliseconds."""
        return (self.end - self.start) / 1e6


def read_spans(directory: Path) -> list[Span]:
    """Every span the app's processes wrote to ``directory``."""
    spans = []
    for path in sorted(directory.glob("spans-*.jsonl")):
        for line in path.read_text().splitlines():
            if not line.strip():
                continue
            raw = json.loads(line)
            spans.append(
                Span(
                    raw["name"],
                    raw["trace"],
                    raw["span"],
                    raw["parent"],
                    raw["start"],
                    raw["end"],
                    raw["kind"],
                    raw.get("bytes"),
                )
            )
    return spans


def short_handler(event_name: str) -> str:
    """``reflex___state____state.onboard_app___...____onboarding_state.set_field`` -> handler."""
    return event_name.rsplit(".", 1)[-1]


@dataclass
class EventTrace:
    """One event from the browser and everything it caused on the server."""

    kind: str
    server_ms: float
    parts: dict[str, float] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)
    sizes: dict[str, int] = field(default_factory=dict)


def event_traces(spans: Iterable[Span]) -> list[EventTrace]:
    """Group spans by trace; the trace's root is the event the browser sent."""
    by_trace: dict[str, list[Span]] = defaultdict(list)
    for item in spans:
        by_trace[item.trace].append(item)
    traces = []
    for members in by_trace.values():
        roots = [s for s in members if s.parent is None and EVENT_MARK in s.name]
        if len(roots) != 1:
            continue  # spans of no browser event (start-up SQL, a lease flush cut off)
        root = roots[0]
        events = sorted(
            (s for s in members if EVENT_MARK in s.name and s is not root), key=lambda s: s.start
        )
        kind = short_handler(root.name)
        if kind == "on_load_internal" and events:
            kind = "load: " + short_handler(events[0].name)  # the page's on_load handler
        result = EventTrace(kind, root.ms + sum(s.ms for s in events))
        for item in members:
            part = PARTS.get(item.name)
            if part is None:
                continue
            result.parts[part] = result.parts.get(part, 0.0) + item.ms
            result.counts[part] = result.counts.get(part, 0) + 1
            if item.size:
                result.sizes[part] = result.sizes.get(part, 0) + item.size
        traces.append(result)
    return traces


def _quantile(values: list[float], q: int) -> float:
    if len(values) < 2:
        return values[0] if values else float("nan")
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1]


def format_events(traces: list[EventTrace]) -> str:
    """The table: per event kind, server time and the mean of each part per event."""
    by_kind: dict[str, list[EventTrace]] = defaultdict(list)
    for item in traces:
        by_kind[item.kind].append(item)
    parts = list(dict.fromkeys(PARTS.values()))
    header = (
        f"  {'event (server trace)':<26} {'n':>6} {'p50 ms':>7} {'p95 ms':>7} "
        + " ".join(f"{p:>7}" for p in parts)
        + f" {'db n':>5} {'sent B':>7} {'saved B':>8}"
    )
    lines = [
        "== Breakdown: mean ms per event of each part (parts nest: acquire holds lock + load, "
        "session holds its db read); p50/p95 of the whole server time",
        header,
    ]
    order = sorted(by_kind, key=lambda k: -sum(t.server_ms for t in by_kind[k]))
    for kind in order:
        group = by_kind[kind]
        n = len(group)
        total = [t.server_ms for t in group]
        means = [sum(t.parts.get(p, 0.0) for t in group) / n for p in parts]
        db_n = sum(t.counts.get("db", 0) for t in group) / n
        sent = sum(t.sizes.get("send", 0) for t in group) / n
        saved = sum(t.sizes.get("save", 0) for t in group) / n
        lines.append(
            f"  {kind[:26]:<26} {n:6d} {_quantile(total, 50):7.2f} {_quantile(total, 95):7.2f} "
            + " ".join(f"{m:7.2f}" for m in means)
            + f" {db_n:5.1f} {sent:7.0f} {saved:8.0f}"
        )
    all_ms = sum(t.server_ms for t in traces)
    if all_ms:
        shares = ", ".join(
            f"{p} {100 * sum(t.parts.get(p, 0.0) for t in traces) / all_ms:.0f} %" for p in parts
        )
        lines.append(f"  share of all server event time: {shares}")
    return "\n".join(lines)


def redis_state_sizes(url: str) -> str:
    """The size of what each tab keeps in Redis: per state, and per tab in all."""
    import redis

    client = redis.Redis.from_url(url)
    keys = [k for k in client.scan_iter(count=1000) if not k.endswith(b"_lock")]
    pipeline = client.pipeline(transaction=False)
    for key in keys:
        pipeline.strlen(key)
    sizes = pipeline.execute()
    client.close()
    per_state: dict[str, list[int]] = defaultdict(list)
    per_tab: dict[str, int] = defaultdict(int)
    for key, size in zip(keys, sizes, strict=True):
        token, sep, state = key.decode(errors="replace").partition("_")
        if not sep or "state" not in state:
            continue
        per_state[state.rsplit(".", 1)[-1]].append(size)
        per_tab[token] += size
    if not per_tab:
        return "== Redis: no state keys found"
    tabs = sorted(per_tab.values())
    lines = [
        f"== Redis: state of {len(tabs)} tabs, bytes per tab p50 {_quantile(tabs, 50):.0f} "
        f"max {tabs[-1]} (all {sum(tabs) / 1e6:.1f} MB); per state:",
    ]
    for state, values in sorted(per_state.items(), key=lambda kv: -sum(kv[1])):
        lines.append(
            f"    {state[:60]:<60} keys {len(values):5d}  p50 {_quantile(values, 50):6.0f} B"
            f"  max {max(values):6d} B"
        )
    return "\n".join(lines)


# --- CPU accounting -------------------------------------------------------------------------

TICKS = os.sysconf("SC_CLK_TCK")


def group_cpu_seconds(group: int) -> float:
    """CPU seconds (user + system) of the live processes of process group ``group``."""
    total = 0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rpartition(")")[2].split()
        except OSError:
            continue
        # After the command: state, ppid, pgrp, ... utime (12th), stime (13th).
        if int(fields[2]) == group:
            total += int(fields[11]) + int(fields[12])
    return total / TICKS


def machine_cpu_seconds() -> float:
    """CPU seconds the whole machine has been busy (every process, /proc/stat)."""
    fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    busy = sum(int(v) for i, v in enumerate(fields) if i not in (3, 4))  # less idle, iowait
    return busy / TICKS


def own_cpu_seconds() -> float:
    """CPU seconds of this process (the load generator and its in-process SMTP fake)."""
    times = os.times()
    return times.user + times.system


def process_cpu_seconds(pids: Iterable[int]) -> dict[int, float]:
    """CPU seconds (user + system) of each live process of ``pids``."""
    found = {}
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
        except OSError:
            continue
        found[pid] = (int(fields[11]) + int(fields[12])) / TICKS
    return found


def postgres_backends(database_url: str) -> list[int]:
    """The pids of the PostgreSQL backends serving ``database_url``'s database (the app's)."""
    import psycopg

    dsn = database_url.replace("postgresql+psycopg://", "postgresql://", 1)
    with psycopg.connect(dsn, autocommit=True) as connection:
        rows = connection.execute(
            "SELECT pid FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid()"
        ).fetchall()
    return [int(row[0]) for row in rows]


def redis_cpu_seconds(url: str | None) -> float:
    """CPU seconds the Redis server has used (all of its clients, not only the app's)."""
    if url is None:
        return 0.0
    import redis

    client = redis.Redis.from_url(url)
    try:
        info = client.info("cpu")
    finally:
        client.close()
    return float(info.get("used_cpu_user", 0.0)) + float(info.get("used_cpu_sys", 0.0))


@dataclass
class CpuSample:
    """CPU counters at one moment."""

    wall: float
    generator: float
    app: float
    machine: float
    postgres: dict[int, float]

    @classmethod
    def take(cls, app_group: int, database_url: str | None = None) -> CpuSample:
        """Read the counters now (PostgreSQL's: the backends of the app's database)."""
        backends = {}
        if database_url and database_url.startswith("postgresql"):
            backends = process_cpu_seconds(postgres_backends(database_url))
        return cls(
            time.monotonic(),
            own_cpu_seconds(),
            group_cpu_seconds(app_group),
            machine_cpu_seconds(),
            backends,
        )


def format_cpu(before: CpuSample, after: CpuSample, flows: int) -> str:
    """The CPU shares over a run: load generator, the app's processes, PostgreSQL, the rest.

    PostgreSQL counts the backends of the app's database alive at the end (each one's CPU
    since the start, or since it started); Redis and the machine's other work are the rest.
    """
    wall = after.wall - before.wall
    cores = os.cpu_count() or 1
    generator = after.generator - before.generator
    app = after.app - before.app
    postgres = sum(cpu - before.postgres.get(pid, 0.0) for pid, cpu in after.postgres.items())
    machine = after.machine - before.machine
    other = max(machine - generator - app - postgres, 0.0)

    def pct(seconds: float) -> str:
        return f"{100 * seconds / (wall * cores):.0f} %"

    per_flow = (
        f"; per completed flow: app {1000 * app / flows:.0f} ms, PostgreSQL "
        f"{1000 * postgres / flows:.0f} ms, generator {1000 * generator / flows:.0f} ms CPU"
        if flows
        else ""
    )
    return (
        f"== CPU over {wall:.0f} s on {cores} cores: load generator {generator:.1f} s "
        f"({pct(generator)}), app workers {app:.1f} s ({pct(app)}), PostgreSQL {postgres:.1f} s "
        f"({pct(postgres)}), everything else (Redis, other work on the machine) {other:.1f} s "
        f"({pct(other)}); machine busy {pct(machine)}{per_flow}"
    )


def disabled_cost(loops: int = 1_000_000) -> str:
    """What a trace point costs with tracing off: ``telemetry.span`` against an empty block.

    Args:
        loops: Iterations per round (best of 5 rounds, as ``timeit`` advises).

    Returns:
        One line: nanoseconds per trace point, with and without, and the difference.
    """
    import timeit

    from onboard_app import telemetry

    if telemetry.enabled:
        raise RuntimeError("tracing is on in this process (ONBOARD_TRACE_DIR is set)")
    setup = "from onboard_app import telemetry"

    def best(statement: str) -> float:
        return min(timeit.repeat(statement, setup, repeat=5, number=loops)) / loops * 1e9

    bare = best("pass")
    traced = best("with telemetry.span('onboard.session_check'):\n    pass")
    call = best("telemetry.in_this_context(int)")
    return (
        f"== Tracing off: a span point costs {traced - bare:.0f} ns ({traced:.0f} ns with the "
        f"block against {bare:.0f} ns bare), the executor context wrapper {call - bare:.0f} ns; "
        "an event passes one span point (the session check), a sign-up or login two more"
    )


def main(argv: list[str] | None = None) -> int:
    """The load bench with ``--breakdown`` (its options), or ``--disabled-cost``."""
    from bench import load

    args = sys.argv[1:] if argv is None else argv
    if "--disabled-cost" in args:
        print(disabled_cost())
        return 0
    return load.main([*args, "--breakdown"])


if __name__ == "__main__":
    sys.exit(main())
