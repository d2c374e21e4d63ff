"""App CPU and wall time per wizard event, in-process, on SQLite or PostgreSQL.

Run from the project root::

    .venv/bin/python bench/event_cpu.py [sqlite|postgresql] [users]

Each virtual user is a tab of the state tests' harness (no socket, no Reflex event loop): it
confirms its email with the mailed code, opens and submits every wizard step, finishes and
loads explore, timing ``submit_code``, each wizard page load, each ``submit``,
``finish_onboarding`` and explore's load (``time.process_time`` for this process's CPU,
``perf_counter`` for wall time; the database server's own CPU is not counted). It prints the
median and mean per event, the first tenth of the samples left out as warm-up. PostgreSQL
runs on a throwaway database of the machine's server (``tests/scale/infra.py``).
"""

import asyncio
import statistics
import sys
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
import tests.conftest as tc  # noqa: E402  (points the environment at scratch paths)

# isort: split

from onboard_app.services.catalogue_seed import seed_catalogue  # noqa: E402
from onboard_app.services.db import upgrade_to_head  # noqa: E402
from onboard_app.settings import override_settings  # noqa: E402
from onboard_app.state.auth import VerifyEmailState  # noqa: E402
from onboard_app.state.explore import ExploreState  # noqa: E402
from onboard_app.state.onboarding import OnboardingState as O  # noqa: E402
from tests.security.conftest import new_tab  # noqa: E402
from tests.state.test_event_statements import verify_email_screen  # noqa: E402

samples: dict[str, list[tuple[float, float]]] = defaultdict(list)


async def timed(name, coro):
    c0, w0 = time.process_time(), time.perf_counter()
    result = await coro
    samples[name].append((time.process_time() - c0, time.perf_counter() - w0))
    return result


async def flow():
    tab = new_tab()
    code = await verify_email_screen(tab)
    await timed("submit_code", tab.call(VerifyEmailState.submit_code, {"otp": code}))
    tab.navigate("/onboarding/profile")
    await timed("open_step", tab.call(O.open_step))
    await tab.call(O.set_field, "display_name", "Grace Hopper")
    await tab.call(O.set_field, "role", "developer")
    await timed("submit", tab.call(O.submit))
    tab.navigate("/onboarding/interests")
    await timed("open_step", tab.call(O.open_step))
    for topic in ("python", "rust", "security"):
        await tab.call(O.toggle_choice, "interests", topic)
    await timed("submit", tab.call(O.submit))
    tab.navigate("/onboarding/preferences")
    await timed("open_step", tab.call(O.open_step))
    await tab.call(O.set_field, "experience_level", "advanced")
    await tab.call(O.set_field, "email_digest", "yes")
    await tab.call(O.set_field, "theme", "dark")
    await timed("submit", tab.call(O.submit))
    tab.navigate("/onboarding/review")
    await timed("open_step", tab.call(O.open_step))
    await timed("finish_onboarding", tab.call(O.finish_onboarding))
    tab.navigate("/explore")
    await tab.call(ExploreState.load)  # the page Finish sent
    await timed("explore load", tab.call(ExploreState.load))


def main() -> None:
    which = sys.argv[1] if len(sys.argv) > 1 else "sqlite"
    users = int(sys.argv[2]) if len(sys.argv) > 2 else 30
    if which == "sqlite":
        import tempfile

        url = f"sqlite:///{tempfile.mkdtemp(prefix='event-cpu-')}/t.db"
        ctx = None
    else:
        from tests.scale.infra import throwaway_postgres

        ctx = throwaway_postgres()
        url = ctx.__enter__()
    try:
        upgrade_to_head(url)
        override_settings(tc.make_settings(database_url=url))
        seed_catalogue(url)
        for _ in range(users):
            asyncio.run(flow())
        print(f"{which}, {users} users: median (mean) per event, CPU ms / wall ms")
        for name, got in samples.items():
            cpu = [c * 1000 for c, _ in got[len(got) // 10 :]]  # the first tenth: warm-up
            wall = [w * 1000 for _, w in got[len(got) // 10 :]]
            print(
                f"  {name:18} n={len(cpu):3}  cpu {statistics.median(cpu):6.2f} "
                f"({statistics.mean(cpu):6.2f})  wall {statistics.median(wall):6.2f} "
                f"({statistics.mean(wall):6.2f})"
            )
    finally:
        if ctx is not None:
            ctx.__exit__(None, None, None)


if __name__ == "__main__":
    main()
