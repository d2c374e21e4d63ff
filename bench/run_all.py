"""Every benchmark in one run: ``make bench`` (a few minutes on 2 cores).

    .venv/bin/python bench/run_all.py                 # micro + load (50,100 users) + explore
                                                      # + finish (side by side with the seed,
                                                      #   and the app before/after: Finish,
                                                      #   Next, explore <-> settings)
                                                      # + insights (100,000 users)
                                                      # + targets (1,000 users, storm, knee)
    .venv/bin/python bench/run_all.py --users 200     # the 200-user target run
    .venv/bin/python bench/run_all.py --quick         # smoke run: fewer calls, 10 users
    .venv/bin/python bench/run_all.py --skip finish   # no browser, no seed build

Needs PostgreSQL and Redis (``ONBOARD_TEST_PG_DSN`` / ``ONBOARD_TEST_REDIS_URL``, default
127.0.0.1): the PostgreSQL numbers run on a throwaway database, the Redis ones on a claimed
empty logical database, both removed afterwards. The Finish comparison (bench/bench_finish.py)
needs Chromium and Node/npm: it installs and builds the seed into .tools on first use. The
machine's load average is printed with the results: numbers taken while other work runs on
the same cores are slower.
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import load, micro  # noqa: E402


def machine() -> str:
    """Cores, load average and versions: the context of every number below."""
    one, five, _ = os.getloadavg()
    return (
        f"{os.cpu_count()} cores, load average {one:.2f} (1 min) {five:.2f} (5 min), "
        f"Python {platform.python_version()}"
    )


def section(title: str) -> None:
    """Print a section header."""
    print(f"\n{'#' * 8} {title} ({time.strftime('%H:%M:%S')}; {machine()})", flush=True)


def main(argv: list[str] | None = None) -> int:
    """Run micro, load, explore and finish benchmarks; exit 1 only if one could not run."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    load.add_arguments(parser)
    parser.add_argument("--quick", action="store_true", help="smoke run")
    parser.add_argument(
        "--skip",
        default="",
        help="comma-separated: micro, load, explore, finish, insights, targets",
    )
    args = parser.parse_args(argv)
    skip = set(filter(None, args.skip.split(",")))
    users = [10] if args.quick else args.users
    failed: list[str] = []
    started = time.monotonic()

    if "micro" not in skip:
        section("Micro: token, guard, Finish")
        try:
            micro.run(quick=args.quick)
        except Exception as problem:
            failed.append(f"micro: {problem!r}")
            print(f"micro benchmarks failed: {problem!r}", flush=True)

    if "load" not in skip:
        section("Load: virtual users over the websocket protocol")
        try:
            load.run(
                users,
                setups=args.setups.split(","),
                rate=args.rate,
                think=args.think,
                app_env=dict(args.app_env),
                breakdown=args.breakdown,
            )
        except Exception as problem:
            failed.append(f"load: {problem!r}")
            print(f"load benchmark failed: {problem!r}", flush=True)

    if "explore" not in skip:
        section("Explore ranking (bench/bench_explore.py)")
        command = [sys.executable, str(ROOT / "bench" / "bench_explore.py")]
        status = subprocess.run(command, cwd=ROOT, check=False).returncode
        if status not in (0, 1):  # 1: it ran and reports a missed budget
            failed.append(f"bench_explore.py exited {status}")

    if "finish" not in skip:
        section("Finish side by side with the seed, and navigations (bench/bench_finish.py)")
        command = [sys.executable, str(ROOT / "bench" / "bench_finish.py")]
        if args.quick:
            command += ["--runs", "5", "--warmup", "1", "--before", ""]
        status = subprocess.run(command, cwd=ROOT, check=False).returncode
        if status not in (0, 1):  # 1: it ran and reports a missed target
            failed.append(f"bench_finish.py exited {status}")

    if "insights" not in skip:
        section("Onboarding insights at 100,000 users (bench/bench_insights.py)")
        command = [sys.executable, str(ROOT / "bench" / "bench_insights.py")]
        if args.quick:
            command += ["--users", "5000", "--events", "50000", "--calls", "10"]
        status = subprocess.run(command, cwd=ROOT, check=False).returncode
        if status not in (0, 1):  # 1: it ran and reports a missed budget
            failed.append(f"bench_insights.py exited {status}")

    if "targets" not in skip and not args.quick:
        section("Scale targets: 1,000 users in flight, a sign-up storm, the knee (targets.py)")
        command = [sys.executable, str(ROOT / "bench" / "targets.py")]
        if subprocess.run(command, cwd=ROOT, check=False).returncode != 0:
            failed.append("bench/targets.py did not run")

    section(f"Done in {time.monotonic() - started:.0f} s")
    for line in failed:
        print(f"  FAILED TO RUN: {line}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
