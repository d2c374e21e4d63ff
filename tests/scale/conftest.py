"""One Onboard with two backend workers on PostgreSQL + Redis, and the tools to aim at a worker.

The app runs exactly as ``make run-prod WORKERS=2`` runs it (``reflex run --env prod`` with
``GRANIAN_WORKERS=2``), through the e2e launcher, against a throwaway PostgreSQL database
and a claimed, empty Redis logical database. PostgreSQL or Redis being down is a test
failure with a message, never a skip: CI has both. The Redis fault drills run a second such
app on a private ``redis-server`` (:func:`drill_app`), which they stop and restart.

The browser is the system Chromium, driven from a thread of its own: the e2e suite's sync
Playwright instance may still be open in the main thread (it lives for the session), and
two sync Playwright instances cannot share a thread.
"""

from __future__ import annotations

import asyncio
import os
import threading
import time
from collections.abc import Callable, Coroutine, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import Browser, Page, Playwright, sync_playwright

from bench.reflex_client import FrontendBuild, OnboardClient, OnboardNames, ReflexClient
from tests.e2e.conftest import CHROMIUM_ARGS, ROOT, RunningApp, start_app, stop_app
from tests.scale.infra import (
    PrivateRedis,
    ServiceUnavailable,
    claimed_redis_db,
    require_postgres,
    require_redis,
    server_pid,
    throwaway_postgres,
    worker_pids,
)

T = TypeVar("T")
WORKERS = 2
MAX_CONNECT_TRIES = 24
WORKERS_START_WAIT = 60.0


@dataclass
class ScaleApp:
    """A running two-worker app and what it runs on.

    Attributes:
        running: The ``reflex run`` process.
        database_url: The throwaway PostgreSQL database.
        redis_url: The Redis database its state and messages are in.
        tmp: Scratch directory (logs).
    """

    running: RunningApp
    database_url: str
    redis_url: str
    tmp: Path

    @property
    def url(self) -> str:
        """What a browser opens (``http://localhost:<port>``)."""
        return self.running.url

    @property
    def socket_url(self) -> str:
        """The same server over IPv4 loopback, for the protocol clients."""
        return self.running.url.replace("localhost", "127.0.0.1")

    @property
    def port(self) -> int:
        """The single port of frontend and backend."""
        return int(urlsplit(self.running.url).port or 0)

    def workers(self) -> list[int]:
        """The worker pids listening now."""
        return worker_pids(self.running.process.pid, self.port)

    def worker_of(self, client: ReflexClient) -> int | None:
        """The worker process that accepted a protocol client's websocket."""
        return server_pid(self.running.process.pid, self.port, client.local_port)


def _fail_unavailable(check: Callable[[], None]) -> None:
    try:
        check()
    except ServiceUnavailable as problem:
        pytest.fail(str(problem), pytrace=False)


@contextmanager
def running_scale_app(tmp: Path, database_url: str, redis_url: str) -> Iterator[ScaleApp]:
    """Start the app with :data:`WORKERS` workers on these databases; stop it afterwards.

    ``REFLEX_REDIS_URL`` is set too: Reflex would let one in the environment win over
    rxconfig's (and put the state somewhere the app's own Redis clients are not).
    """
    env = {
        "ONBOARD_DATABASE_URL": database_url,
        "ONBOARD_REDIS_URL": redis_url,
        "REFLEX_REDIS_URL": redis_url,
        "GRANIAN_WORKERS": str(WORKERS),
    }
    app = ScaleApp(start_app(tmp, **env), database_url, redis_url, tmp)
    try:
        # The first worker to listen answers /ping; the others may still be starting.
        deadline = time.monotonic() + WORKERS_START_WAIT
        while len(app.workers()) < WORKERS and time.monotonic() < deadline:
            time.sleep(0.2)
        assert len(app.workers()) == WORKERS, (
            f"expected {WORKERS} workers:\n{app.running.log()[-3000:]}"
        )
        yield app
    finally:
        stop_app(app.running)


@pytest.fixture(scope="session")
def scale_app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ScaleApp]:
    """Onboard with two workers on a throwaway PostgreSQL database and Redis database."""
    _fail_unavailable(require_postgres)
    _fail_unavailable(require_redis)
    tmp = tmp_path_factory.mktemp("scale-app")
    with (
        throwaway_postgres() as database_url,
        claimed_redis_db() as redis_url,
        running_scale_app(tmp, database_url, redis_url) as app,
    ):
        yield app


@pytest.fixture(scope="module")
def private_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrivateRedis]:
    """A ``redis-server`` of this module's own, which its drills may stop and restart."""
    if not PrivateRedis.installed():
        pytest.fail("redis-server is not on PATH (the Redis fault drills start their own)")
    server = PrivateRedis(tmp_path_factory.mktemp("private-redis"))
    _fail_unavailable(server.start)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def drill_app(
    tmp_path_factory: pytest.TempPathFactory, private_redis: PrivateRedis
) -> Iterator[ScaleApp]:
    """Onboard with two workers on a throwaway PostgreSQL database and the private Redis."""
    _fail_unavailable(require_postgres)
    tmp = tmp_path_factory.mktemp("drill-app")
    with (
        throwaway_postgres() as database_url,
        running_scale_app(tmp, database_url, private_redis.url) as app,
    ):
        yield app


@pytest.fixture(scope="session")
def onboard_names() -> OnboardNames:
    """Onboard's state paths and event names, as the compiled frontend sends them."""
    return OnboardNames.resolve()


class LoopThread:
    """An asyncio loop in a thread of its own, for the protocol-level tabs.

    Not pytest-asyncio: once a sync Playwright test has run, the main thread has a running
    loop for the rest of the session, and async tests collected after it cannot start.
    """

    def __init__(self) -> None:
        """Start the loop."""
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self.loop.run_forever, name="scale-loop", daemon=True
        )
        self._thread.start()

    def run(self, coroutine: Coroutine[Any, Any, T], timeout: float = 180) -> T:
        """Run a coroutine on the loop and return its result (or raise its error)."""
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout=timeout)

    def close(self) -> None:
        """Stop the loop and its thread."""
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout=10)
        self.loop.close()


@pytest.fixture(scope="session")
def loop_thread() -> Iterator[LoopThread]:
    """The scale tests' own event loop."""
    runner = LoopThread()
    yield runner
    runner.close()


class Tabs:
    """Protocol-level tabs on the scale app; each can be aimed at a worker."""

    def __init__(self, app: ScaleApp, names: OnboardNames) -> None:
        """Nothing is connected yet."""
        self.app = app
        self.names = names
        self.build = FrontendBuild.load(ROOT / ".web")
        self.opened: list[OnboardClient] = []

    async def open(
        self,
        path: str,
        *,
        on: int | None = None,
        avoid: int | None = None,
        local_storage: dict[str, str] | None = None,
    ) -> tuple[OnboardClient, int]:
        """Connect a new tab at ``path``; reconnect until it lands where wanted.

        The kernel spreads connections over the workers (SO_REUSEPORT), so a wanted worker
        is reached by trying again, a bounded number of times.

        Returns:
            The tab and the pid of the worker that accepted its websocket.
        """
        for _ in range(MAX_CONNECT_TRIES):
            tab = OnboardClient(
                self.app.socket_url,
                self.names,
                build=self.build,
                local_storage=local_storage,
                origin=self.app.url,
            )
            self.opened.append(tab)
            await tab.connect(path)
            pid = self.app.worker_of(tab)
            assert pid in self.app.workers(), f"socket not on a worker: {pid}"
            if (on is None or pid == on) and (avoid is None or pid != avoid):
                return tab, pid
            await tab.close()
        raise AssertionError(f"no connection landed where wanted in {MAX_CONNECT_TRIES} tries")

    async def close_all(self) -> None:
        """Close every tab opened."""
        for tab in self.opened:
            await tab.close()


@pytest.fixture
def tabs(
    scale_app: ScaleApp, onboard_names: OnboardNames, loop_thread: LoopThread
) -> Iterator[Tabs]:
    """Open protocol-level tabs (in :class:`LoopThread`); all closed after the test."""
    opened = Tabs(scale_app, onboard_names)
    yield opened
    loop_thread.run(opened.close_all(), timeout=30)


class BrowserThread:
    """Chromium driven from a dedicated thread; :meth:`run` executes a function there."""

    def __init__(self) -> None:
        """Start the thread (the browser starts on first use)."""
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="scale-browser")
        self._playwright: Playwright | None = None
        self._browser: Browser | None = None

    def run(self, fn: Callable[..., T], *args: Any, timeout: float = 180) -> T:
        """Run ``fn(*args)`` in the browser thread and return its result (or raise its error)."""
        return self._pool.submit(fn, *args).result(timeout=timeout)

    def new_page(self, base_url: str) -> Page:
        """A fresh browser profile and page (call from inside :meth:`run`)."""
        if self._browser is None:
            self._playwright = sync_playwright().start()
            executable = os.environ.get("CHROMIUM", "/usr/bin/chromium")
            self._browser = self._playwright.chromium.launch(
                executable_path=executable, args=CHROMIUM_ARGS
            )
        context = self._browser.new_context(
            base_url=base_url, viewport={"width": 1280, "height": 900}
        )
        # Generous for a loaded 2-core machine (a sign-up hashes a password and sends a mail).
        context.set_default_timeout(30_000)
        return context.new_page()

    def close(self) -> None:
        """Close the browser and stop the thread."""

        def shutdown() -> None:
            if self._browser is not None:
                self._browser.close()
            if self._playwright is not None:
                self._playwright.stop()

        try:
            self.run(shutdown, timeout=30)
        finally:
            self._pool.shutdown(wait=True)


@pytest.fixture(scope="session")
def browser_thread() -> Iterator[BrowserThread]:
    """The scale tests' own Chromium."""
    thread = BrowserThread()
    yield thread
    thread.close()
