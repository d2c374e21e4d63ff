"""Finish side by side with the seed: the click to explore shown with the completed session.

Run from the project root::

    .venv/bin/python bench/bench_finish.py [--runs 20] [--warmup 2] [--json out.json]
    .venv/bin/python bench/bench_finish.py --compare before.json   # and a before/after table

The seed (``../shared/anchors/nextauth-seed``, the NextAuth ``session-update`` pattern that
Onboard replaces) is copied into ``.tools/nextauth-seed`` (git-ignored: the shared copy is
read-only, and its code never enters this repository), installed with ``npm ci`` (npm's own
registry configuration), built with ``next build`` and served by ``next start`` on a free
port, with the ``.env.local`` values its README lists (a made-up local secret). Install and
build are redone only when the seed's files change (``--fresh-seed`` forces both). Onboard
runs as its production build (``start_app`` of the browser tests: a throwaway SQLite
database and signing key, its mail to an SMTP fake in this process); each run signs up
through the e2e helper (the mailed code).

Both apps are measured by the seed's own method (its ``measure.py``, imported from the copy
for the seed runs): a fresh browser context per run; a new user signs up and reaches the
Finish button, the network goes idle, then the clock starts, Finish is clicked, and the
page is polled on every animation frame (``wait_for_function(polling="raf")``) until the
explore heading is visible and the session says completed. For the seed that is its
``h1`` "Explore" and ``COMPLETED`` on the page; for Onboard an ``h1`` "Explore" on
``/explore`` and ``onb == "completed"`` in the token the browser stores. The two apps
alternate run by run (which one goes first alternates too), so load on the shared cores
falls on both alike. Reported: wall time p50/p95/min/max, in-page time (click event to
the DOM mutation that met the condition), HTTP requests and websocket messages between
click and visible, and for Onboard when the first page of results is drawn (not part of
the seed's condition, shown for what a person sees).

Onboard's other navigations are timed the same way in each Onboard run: a wizard Next
(profile -> interests), explore -> settings and settings -> explore (each: click to the
new page's heading visible with its content drawn).

Before and after in one run: the app of an earlier commit (``--before``, default
:data:`BEFORE_REF`, the tree before explore drew its heading first) is extracted with
``git archive`` into ``.tools/bench-before/<commit>``, built into
``.tools/test-web/bench-before`` and started next to this checkout's app; the seed, this
app and that one take turns run by run, and a table gives each navigation before and
after (``--before ''`` leaves it out). ``--max-load N`` waits before each round until
the 1-minute load average is below N (other work on the same cores slows every app, the
browser-heavy ones most). Exit status: 0 when Finish p50 is at most 0.6x the seed's, 1
when it is not, 2 when the benchmark could not run.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import importlib.util
import io
import json
import os
import re
import secrets
import shutil
import signal
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from playwright.sync_api import Browser, Page, expect, sync_playwright  # noqa: E402

from onboard_app.services.onboarding import title_of  # noqa: E402
from tests.e2e import conftest as e2e  # noqa: E402
from tests.e2e import wizard  # noqa: E402

SEED_SOURCE = ROOT.parent / "shared" / "anchors" / "nextauth-seed"
SEED_COPY = ROOT / ".tools" / "nextauth-seed"
#: Not copied: what the seed's own runs leave behind (installs, builds, its user store).
SEED_SKIP = frozenset(("node_modules", ".next", ".data", ".venv", "__pycache__", ".env.local"))
TARGET_RATIO = 0.6
AIM_RATIO = 0.5
#: The commit the before/after comparison runs: the tree before explore drew its heading
#: first (README Benchmarks). Its app runs next to this one in the same run.
BEFORE_REF = "3ac4ef5"
BEFORE_TREES = ROOT / ".tools" / "bench-before"
TIMEOUT_MS = 30_000
#: How long the page must be quiet before a timed click (a person reads for longer).
QUIET_S = 0.3

#: Timestamps every websocket frame in the page (performance.now(), the click's clock),
#: before any script of the page runs: socket.io takes ``WebSocket`` at load.
WS_TAP_JS = r"""
(() => {
  const log = (window.__benchWs = []);
  const Native = window.WebSocket;
  window.WebSocket = class extends Native {
    constructor(...args) {
      super(...args);
      this.addEventListener('message', (e) => log.push(['in', performance.now(), String(e.data)]));
    }
    send(data) {
      log.push(['out', performance.now(), String(data)]);
      return super.send(data);
    }
  };
})();
"""

#: The conditions a timed action waits for, by name (installed once per page load).
CONDITIONS_JS = r"""
() => {
  const shown = (el) => {
    const r = el.getBoundingClientRect();
    return r.width > 0 && r.height > 0;
  };
  const heading = (text) => [...document.querySelectorAll('h1')]
    .some((h) => h.textContent.trim() === text && shown(h));
  const at = (path) => location.pathname.replace(/\/$/, '') === path;
  const claims = () => {
    const token = localStorage.getItem('__TOKEN_KEY__') || '';
    try {
      const part = token.split('.')[1].replace(/-/g, '+').replace(/_/g, '/');
      return JSON.parse(atob(part));
    } catch (e) { return {}; }
  };
  const finish = () => at('/explore') && heading('Explore') && claims().onb === 'completed';
  const cards = () => [...document.querySelectorAll('.explore-card')].some(shown);
  window.__benchConditions = {
    finish,
    results: () => finish() && cards(),
    explore: () => at('/explore') && heading('Explore') && cards(),
    settings: () => at('/settings') && heading('Settings')
      && [...document.querySelectorAll('form button[type=submit]')].some(shown),
    step: ([path, title]) => at(path) && heading(title),
    // The step's form takes input (the wizard keeps it inert until its step is open).
    step_ready: ([path, title]) => at(path) && heading(title)
      && !document.querySelector('main [inert]'),
  };
}
"""

#: Per timed action: the click (capture phase) and the first DOM mutation meeting the
#: condition, both on performance.now(); client-side navigation keeps the document.
ARM_JS = r"""
([selector, name, arg, extra]) => {
  const s = (window.__bench = { clickAt: null, visibleAt: null, extraAt: null });
  const test = (n) => window.__benchConditions[n](arg);
  document.addEventListener('click', (e) => {
    if (s.clickAt === null && e.target && e.target.closest && e.target.closest(selector)) {
      s.clickAt = performance.now();
    }
  }, true);
  const observer = new MutationObserver(() => {
    if (s.clickAt === null) return;
    if (s.visibleAt === null && test(name)) s.visibleAt = performance.now();
    if (extra && s.extraAt === null && test(extra)) s.extraAt = performance.now();
    if (s.visibleAt !== null && (!extra || s.extraAt !== null)) observer.disconnect();
  });
  observer.observe(
    document, { subtree: true, childList: true, characterData: true, attributes: true });
}
"""

WAIT_JS = "([name, arg]) => window.__benchConditions[name](arg)"
RESOURCES_JS = r"""
([a, b]) => performance.getEntriesByType('resource')
  .filter((e) => e.startTime >= a && e.startTime <= b)
  .map((e) => [e.name, e.startTime - a, e.responseEnd - a])
"""


# --- numbers ----------------------------------------------------------------------------


def pct(values: list[float], p: float) -> float:
    """Percentile with linear interpolation between closest ranks (as the seed's measure.py)."""
    xs = sorted(values)
    if not xs:
        return float("nan")
    k = (len(xs) - 1) * p / 100.0
    lo, hi = int(k), min(int(k) + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (k - lo)


def summary(values: list[float]) -> dict[str, float]:
    """n, p50, p95, min, max, mean."""
    if not values:
        return {"n": 0}
    return {
        "n": len(values),
        "p50": pct(values, 50),
        "p95": pct(values, 95),
        "min": min(values),
        "max": max(values),
        "mean": statistics.fmean(values),
    }


@dataclass
class Window:
    """What happened between one click and its page shown.

    Attributes:
        wall_ms: Playwright's click to the condition met (perf_counter, as the seed).
        inpage_ms: The click event to the DOM mutation that met it (performance.now()).
        extra_ms: Same for the extra condition (Onboard's Finish: results drawn).
        requests: HTTP requests started in the window (method, path, resource type).
        sent: Websocket event messages the page sent in the window (handler names).
        received: Websocket messages received in the window, each ``+<ms> <summary>``.
        resources: Resource Timing entries of the window, ``<path> <start>-<end> ms``.
    """

    wall_ms: float
    inpage_ms: float | None = None
    extra_ms: float | None = None
    requests: list[str] = field(default_factory=list)
    sent: list[str] = field(default_factory=list)
    received: list[str] = field(default_factory=list)
    resources: list[str] = field(default_factory=list)


def short_path(url: str) -> str:
    """A request's path, hashes and build ids folded (as the seed's measure.py prints them)."""
    path = re.sub(r"^https?://[^/]+", "", url)
    path = re.sub(r"/_next/data/[^/]+/", "/_next/data/<buildId>/", path)
    path = re.sub(r"-[0-9a-f]{16}\.js$", "-<hash>.js", path)  # Next's chunks
    return re.sub(r"-[\w-]{8}\.(js|css)$", r"-<hash>.\1", path)  # Vite's


def _frame_summary(data: str) -> str | None:
    """A socket.io event frame in a few words; ``None`` for pings and other packets."""
    if not data.startswith("42"):
        return None
    body = data[data.index("[") :] if "[" in data else ""
    try:
        _, message = json.loads(body)[:2]
    except (ValueError, TypeError):
        return "event (unparsed)"
    if not isinstance(message, dict):
        return "event"
    if "name" in message:  # sent by the page
        return str(message["name"]).rsplit(".", 1)[-1]
    parts = []
    delta = message.get("delta") or {}
    if delta:
        parts.append("delta " + ",".join(sorted(k.rsplit("__", 1)[-1] for k in delta)))
    for event in message.get("events") or []:
        name = event.get("name", "?")
        if name == "_redirect":
            name += " " + str(event.get("payload", {}).get("path"))
        parts.append(name)
    return "; ".join(parts) or "empty"


# --- a timed click ----------------------------------------------------------------------


class Recorder:
    """HTTP requests of one page, recorded between ``start`` and ``stop``."""

    def __init__(self, page: Page) -> None:
        """Listen to the page's requests."""
        self.on = False
        self.requests: list[str] = []
        self.in_flight = 0
        self.last = time.monotonic()
        page.on("request", self._request)
        page.on("requestfinished", self._done)
        page.on("requestfailed", self._done)

    def _done(self, _request: Any) -> None:
        self.in_flight -= 1
        self.last = time.monotonic()

    def settle(self, page: Page) -> None:
        """Wait until no request is in flight and nothing moved (HTTP or websocket) lately."""
        deadline = time.monotonic() + TIMEOUT_MS / 1000
        while time.monotonic() < deadline:
            ws_idle = page.evaluate(
                "() => { const w = window.__benchWs || []; "
                "return w.length ? (performance.now() - w[w.length - 1][1]) / 1000 : 1e9; }"
            )
            if self.in_flight <= 0 and min(ws_idle, time.monotonic() - self.last) >= QUIET_S:
                return
            page.wait_for_timeout(50)
        raise RuntimeError("the page never went quiet before the click")

    def _request(self, request: Any) -> None:
        self.in_flight += 1
        self.last = time.monotonic()
        if self.on:
            self.requests.append(
                f"{request.method} {short_path(request.url)} [{request.resource_type}]"
            )

    def start(self) -> None:
        """Record from now on, from nothing."""
        self.requests = []
        self.on = True

    def stop(self) -> list[str]:
        """Stop; the requests recorded."""
        self.on = False
        return self.requests


def timed_click(
    page: Page,
    recorder: Recorder,
    selector: str,
    condition: str,
    arg: Any = None,
    *,
    extra: str | None = None,
) -> Window:
    """Click ``selector`` and poll every frame until ``condition`` holds (the seed's method).

    Before the clock starts the button is enabled and the page quiet (no request in flight,
    no websocket message, for ``QUIET_S``): nothing of the page's own loading leaks in.

    Args:
        page: A page with the conditions installed.
        recorder: The page's request recorder.
        selector: What to click (CSS; its first match).
        condition: A name in ``window.__benchConditions``.
        arg: Its argument.
        extra: Another condition timed in the page only (waited for after the clock stops).

    Returns:
        The window's measurements.
    """
    target = page.locator(selector).first
    expect(target).to_be_enabled()
    page.wait_for_load_state("networkidle")
    recorder.settle(page)
    page.evaluate(ARM_JS, [selector, condition, arg, extra])
    ws_before = page.evaluate("() => (window.__benchWs || []).length")
    recorder.start()
    t0 = time.perf_counter()
    target.click()
    page.wait_for_function(WAIT_JS, arg=[condition, arg], polling="raf", timeout=TIMEOUT_MS)
    t1 = time.perf_counter()
    requests = recorder.stop()
    if extra:
        page.wait_for_function(WAIT_JS, arg=[extra, arg], polling="raf", timeout=TIMEOUT_MS)
    marks = page.evaluate("() => window.__bench")
    window = Window(wall_ms=(t1 - t0) * 1000, requests=requests)
    click, visible = marks.get("clickAt"), marks.get("visibleAt")
    if click is None or visible is None:
        return window
    window.inpage_ms = visible - click
    if marks.get("extraAt") is not None:
        window.extra_ms = marks["extraAt"] - click
    frames = page.evaluate("([n]) => (window.__benchWs || []).slice(n)", [ws_before])
    for direction, at, data in frames:
        if at < click or at > visible:
            continue
        said = _frame_summary(data)
        if said is None:
            continue
        if direction == "out":
            window.sent.append(f"+{at - click:.0f} {said}")
        else:
            window.received.append(f"+{at - click:.0f} {said}")
    window.resources = [
        f"{short_path(name)} {start:.0f}-{end:.0f} ms"
        for name, start, end in page.evaluate(RESOURCES_JS, [click, visible])
    ]
    return window


# --- the seed ---------------------------------------------------------------------------


def _seed_files(source: Path) -> list[Path]:
    files = []
    for path in sorted(source.rglob("*")):
        relative = path.relative_to(source)
        if SEED_SKIP.intersection(relative.parts) or not path.is_file():
            continue
        files.append(relative)
    return files


def _fingerprint(root: Path, files: list[Path]) -> str:
    digest = hashlib.sha256()
    for relative in files:
        digest.update(str(relative).encode() + b"\0" + (root / relative).read_bytes())
    return digest.hexdigest()


def _run(command: list[str], cwd: Path, env: dict[str, str], what: str) -> None:
    started = time.monotonic()
    print(f"  seed: {what} ...", flush=True)
    done = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"seed: {what} failed:\n{(done.stdout + done.stderr)[-3000:]}")
    print(f"  seed: {what} done in {time.monotonic() - started:.1f} s", flush=True)


def seed_environment() -> dict[str, str]:
    """The environment of the seed's npm and next commands (telemetry off)."""
    return {**os.environ, "NEXT_TELEMETRY_DISABLED": "1", "NODE_ENV": "production"}


def prepare_seed(source: Path, copy: Path, *, fresh: bool = False) -> None:
    """Copy the seed's files (not its outputs) into ``copy``; ``npm ci`` and build if needed.

    Args:
        source: The shared, read-only seed.
        copy: The writable folder under ``.tools``.
        fresh: Reinstall and rebuild even when nothing changed.
    """
    if not (source / "package-lock.json").is_file():
        raise RuntimeError(f"no seed at {source} (--seed)")
    files = _seed_files(source)
    copy.mkdir(parents=True, exist_ok=True)
    for relative in files:
        (copy / relative).parent.mkdir(parents=True, exist_ok=True)
        target = copy / relative
        if target.exists():
            target.chmod(0o644)
        shutil.copyfile(source / relative, target)  # contents only: the copy is writable
    env = {k: v for k, v in seed_environment().items() if k != "NODE_ENV"}
    installed, built = copy / ".bench-installed", copy / ".bench-built"
    lock = hashlib.sha256((copy / "package-lock.json").read_bytes()).hexdigest()
    if fresh or not (copy / "node_modules").is_dir() or _read(installed) != lock:
        _run(["npm", "ci", "--no-audit", "--no-fund"], copy, env, "npm ci")
        installed.write_text(lock)
        built.unlink(missing_ok=True)
    fingerprint = _fingerprint(copy, files)
    if fresh or not (copy / ".next" / "BUILD_ID").is_file() or _read(built) != fingerprint:
        shutil.rmtree(copy / ".next", ignore_errors=True)
        _write_env_local(copy, 3100)
        _run([str(copy / "node_modules" / ".bin" / "next"), "build"], copy, env, "next build")
        built.write_text(fingerprint)


def _read(path: Path) -> str:
    return path.read_text() if path.is_file() else ""


def _write_env_local(copy: Path, port: int) -> None:
    # The values the seed's README lists, for this port; the secret is made up on the spot.
    (copy / ".env.local").write_text(
        "# Written by bench/bench_finish.py: local-only values, not a real secret.\n"
        f"NEXTAUTH_URL=http://localhost:{port}\n"
        f"NEXTAUTH_SECRET=bench-{secrets.token_hex(24)}\n"
        "GITHUB_ID=unused-github-client-id\n"
        "GITHUB_SECRET=unused-github-client-secret\n"
    )


def _wait_http(url: str, process: subprocess.Popen[bytes], log: Path, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{url}: the server exited:\n{log.read_text(errors='replace')}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.3)
    raise RuntimeError(f"{url} did not answer within {seconds:.0f} s")


@contextlib.contextmanager
def running_seed(copy: Path) -> Iterator[str]:
    """``next start -p <free port>`` in the copy, with a fresh user store; its base URL."""
    port = e2e.free_port()
    _write_env_local(copy, port)
    shutil.rmtree(copy / ".data", ignore_errors=True)
    log = copy / "next-start.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [str(copy / "node_modules" / ".bin" / "next"), "start", "-p", str(port)],
            cwd=copy,
            env=seed_environment(),
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        base = f"http://localhost:{port}"
        _wait_http(f"{base}/login", process, log, 60)
        yield base
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)


def load_seed_measure(copy: Path) -> ModuleType:
    """The seed's own ``measure.py`` (from the copy), to run its Finish exactly as it does."""
    spec = importlib.util.spec_from_file_location("seed_measure", copy / "measure.py")
    if spec is None or spec.loader is None:
        raise RuntimeError("cannot load the seed's measure.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def seed_run(measure: ModuleType, browser: Browser, base: str, label: str) -> Window:
    """One run of the seed's own ``one_run`` (fresh context, sign in, Finish, explore)."""
    result = measure.one_run(browser, base, label)
    return Window(
        wall_ms=result["wall_ms"],
        inpage_ms=result["inpage_ms"],
        requests=[f"{m} {u} [{t}]" for m, u, t in result["requests"]],
    )


# --- Onboard ----------------------------------------------------------------------------


@dataclass
class OnboardRun:
    """One Onboard run: Finish and the other navigations, each a :class:`Window`."""

    finish: Window
    next_step: Window
    to_settings: Window
    to_explore: Window


def _fill_profile(page: Page) -> None:
    # wizard.complete_profile without its Next: that click is the one timed here.
    page.locator("#display_name").fill("Ada Lovelace")
    page.locator("#role").click()
    page.get_by_role("option", name="Software developer").click()
    page.locator("#bio").fill("I write programs for engines.")


def onboard_run(browser: Browser, base: str) -> OnboardRun:
    """Sign up, time a Next, reach review, time Finish, then explore -> settings -> explore."""
    context = browser.new_context(base_url=base)
    context.add_init_script(WS_TAP_JS)
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    recorder = Recorder(page)
    try:
        e2e.sign_up(page, e2e.new_email("bench"))  # through the mailed code, as the e2e tests
        page.evaluate(CONDITIONS_JS.replace("__TOKEN_KEY__", e2e.TOKEN_STORAGE_KEY))
        page.locator("#next").wait_for()
        _fill_profile(page)
        next_step = timed_click(
            page,
            recorder,
            "#next",
            "step",
            ["/onboarding/interests", title_of("interests")],
            extra="step_ready",
        )
        wizard.complete_interests(page)
        wizard.complete_preferences(page)
        page.locator("#review-display_name").filter(has_text="Ada Lovelace").wait_for()
        finish = timed_click(page, recorder, "#finish", "finish", extra="results")
        if e2e.token_claims(e2e.stored_token(page)).get("onb") != "completed":
            raise RuntimeError("Finish ended without a completed token")
        # Client-side navigations: explore's link to settings, then the first link back.
        to_settings = timed_click(page, recorder, "a[href='/settings']", "settings")
        to_explore = timed_click(page, recorder, "a[href='/explore']", "explore")
        return OnboardRun(finish, next_step, to_settings, to_explore)
    finally:
        context.close()


@contextlib.contextmanager
def running_onboard(root: Path = ROOT, web_name: str = "bench-finish") -> Iterator[str]:
    """Onboard's production build on a free port (the browser tests' ``start_app``).

    It sends its mail to this process's SMTP fake, where ``e2e.sign_up`` reads the code.

    Args:
        root: The checkout whose app runs (this one, or :func:`before_tree`).
        web_name: Its frontend build folder under ``.tools/test-web``.
    """
    with tempfile.TemporaryDirectory(prefix="onboard-finish-") as tmp:
        app = e2e.start_app(
            Path(tmp),
            web_name=web_name,
            root=root,
            BUN_INSTALL_CACHE_DIR=str(ROOT / ".tools" / "bun-cache"),
        )
        try:
            yield app.url
        finally:
            e2e.stop_app(app)


def before_tree(ref: str) -> Path:
    """The project's files at commit ``ref``, extracted once under ``.tools/bench-before``.

    Args:
        ref: A commit (hash, tag or branch) of this repository.

    Returns:
        The folder holding that commit's tree.
    """
    sha = subprocess.run(
        ["git", "rev-parse", "--verify", f"{ref}^{{commit}}"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    tree = BEFORE_TREES / sha[:12]
    if not (tree / "rxconfig.py").is_file():
        shutil.rmtree(tree, ignore_errors=True)
        tree.mkdir(parents=True)
        archive = subprocess.run(
            ["git", "archive", sha], cwd=ROOT, capture_output=True, check=True
        ).stdout
        with tarfile.open(fileobj=io.BytesIO(archive)) as files:
            files.extractall(tree, filter="data")
    return tree


# --- the run ----------------------------------------------------------------------------


def machine() -> str:
    """Cores and load average (``uptime``): the context of the numbers."""
    one, five, fifteen = os.getloadavg()
    return f"{os.cpu_count()} cores, load average {one:.2f} {five:.2f} {fifteen:.2f}"


def wait_for_quiet(max_load: float, *, patience_s: float = 900) -> None:
    """Wait (at most ``patience_s``) until the 1-minute load average is below ``max_load``."""
    deadline = time.monotonic() + patience_s
    while max_load and os.getloadavg()[0] > max_load and time.monotonic() < deadline:
        time.sleep(5)


def measure(
    runs: int,
    warmup: int,
    *,
    seed_source: Path,
    fresh_seed: bool,
    before: str = "",
    max_load: float = 0,
) -> dict[str, Any]:
    """Start the apps, run them in turn, return every window (JSON-ready).

    Args:
        runs: Counted runs per app.
        warmup: Untimed runs per app first.
        seed_source: The shared seed.
        fresh_seed: Reinstall and rebuild the seed.
        before: A commit whose app runs too, for a before/after table ("": none).
        max_load: Before each round, wait for a 1-minute load average below this (0: never).

    Returns:
        The runs of each app, the load averages, the failures.
    """
    print(f"== Finish side by side ({machine()})", flush=True)
    prepare_seed(seed_source, SEED_COPY, fresh=fresh_seed)
    seed_measure = load_seed_measure(SEED_COPY)
    seed: list[Window] = []
    onboard: list[OnboardRun] = []
    earlier: list[OnboardRun] = []
    load: list[float] = [os.getloadavg()[0]]
    with contextlib.ExitStack() as stack:
        print("  Onboard: starting the production build ...", flush=True)
        onboard_url = stack.enter_context(running_onboard())
        before_url = ""
        if before:
            print(f"  before ({before}): starting its production build ...", flush=True)
            before_url = stack.enter_context(
                running_onboard(before_tree(before), web_name="bench-before")
            )
        seed_url = stack.enter_context(running_seed(SEED_COPY))
        playwright = stack.enter_context(sync_playwright())
        browser = playwright.chromium.launch(
            executable_path=os.environ.get("CHROMIUM", "/usr/bin/chromium"),
            args=e2e.CHROMIUM_ARGS,
            headless=True,
        )
        stack.callback(browser.close)
        print(f"  browser: chromium {browser.version}; seed {seed_url}, Onboard {onboard_url}")
        tag = secrets.token_hex(3)
        failures: list[str] = []
        for index in range(warmup + runs):
            counted = index >= warmup
            wait_for_quiet(max_load)
            turns: list[tuple[str, Callable[[], Any]]] = [
                ("seed", lambda i=index: seed_run(seed_measure, browser, seed_url, f"b {tag} {i}")),
                ("Onboard", lambda: onboard_run(browser, onboard_url)),
            ]
            if before_url:
                turns.append(("before", lambda: onboard_run(browser, before_url)))
            shift = index % len(turns)  # which app goes first rotates too
            turns = turns[shift:] + turns[:shift]
            done: dict[str, Any] = {}
            for name, run in turns:
                try:
                    done[name] = run()
                except Exception as problem:  # one slow run on a busy machine: note, go on
                    failures.append(f"{name}: {problem!r}"[:300])
                    print(f"  run failed, {failures[-1]}", flush=True)
            if len(failures) > max(2, runs // 4):
                raise RuntimeError(f"{len(failures)} runs failed; last: {failures[-1]}")
            load.append(os.getloadavg()[0])
            if counted and len(done) == len(turns):
                seed.append(done["seed"])
                onboard.append(done["Onboard"])
                if before_url:
                    earlier.append(done["before"])
            label = f"run {index - warmup + 1:2d}" if counted else f"warm-up {index + 1}"
            walls = "  ".join(
                f"{name} {_finish_wall(done[name]):6.1f} ms"
                for name in ("seed", "Onboard", "before")
                if name in done
            )
            print(f"  {label}: {walls}  (load {load[-1]:.2f})", flush=True)
    return {
        "machine": machine(),
        "load_1min": load,
        "runs": runs,
        "failed_runs": failures,
        "seed": [asdict(w) for w in seed],
        "onboard": [asdict(r) for r in onboard],
        "before_ref": before,
        "before": [asdict(r) for r in earlier],
    }


def _finish_wall(result: Window | OnboardRun) -> float:
    return result.finish.wall_ms if isinstance(result, OnboardRun) else result.wall_ms


NAVIGATIONS = (
    ("finish", "Finish -> explore shown, completed"),
    ("next_step", "wizard Next (profile -> interests)"),
    ("to_settings", "explore -> settings"),
    ("to_explore", "settings -> explore"),
)


def _walls(results: dict[str, Any], key: str) -> list[float]:
    return [run[key]["wall_ms"] for run in results["onboard"]]


def _values(windows: list[dict[str, Any]], key: str) -> list[float]:
    return [w[key] for w in windows if w.get(key) is not None]


def _line(label: str, values: list[float]) -> str:
    s = summary(values)
    if not s["n"]:
        return f"  {label:<44} (no data)"
    return (
        f"  {label:<44} p50 {s['p50']:7.1f}  p95 {s['p95']:7.1f}  "
        f"min {s['min']:7.1f}  max {s['max']:7.1f}  (n={s['n']})"
    )


def report(results: dict[str, Any], baseline: dict[str, Any] | None = None) -> bool:
    """Print the tables; True when Finish p50 is at most 0.6x the seed's."""
    seed, onboard = results["seed"], results["onboard"]
    finish = [run["finish"] for run in onboard]
    seed_p50 = summary(_values(seed, "wall_ms")).get("p50", float("nan"))
    ours_p50 = summary(_values(finish, "wall_ms")).get("p50", float("nan"))
    ratio = ours_p50 / seed_p50
    load = results["load_1min"]
    print(
        f"\n== Finish click -> explore heading visible with the session completed "
        f"(ms; {results['runs']} runs each, alternating; load average {min(load):.2f}-"
        f"{max(load):.2f} during the runs)"
    )
    print(_line("seed (NextAuth session-update), wall", _values(seed, "wall_ms")))
    print(_line("Onboard, wall", _values(finish, "wall_ms")))
    print(_line("seed, in-page (click event -> DOM)", _values(seed, "inpage_ms")))
    print(_line("Onboard, in-page (click event -> DOM)", _values(finish, "inpage_ms")))
    print(_line("Onboard, in-page, first results drawn too", _values(finish, "extra_ms")))
    verdict = "met" if ratio <= TARGET_RATIO else "MISSED"
    print(
        f"  ratio Onboard / seed, wall p50: {ratio:.2f} (target <= {TARGET_RATIO}, "
        f"aim {AIM_RATIO}: {verdict})"
    )
    seed_requests = [len(w["requests"]) for w in seed]
    ours_requests = [len(w["requests"]) for w in finish]
    ours_sent = [len(w["sent"]) for w in finish]
    ours_received = [len(w["received"]) for w in finish]
    print(
        f"  between click and visible: seed {_spread(seed_requests)} HTTP requests, "
        f"no websocket; Onboard {_spread(ours_requests)} HTTP requests, websocket "
        f"{_spread(ours_sent)} sent / {_spread(ours_received)} received"
    )
    if seed:
        print("  seed, first counted run:")
        for line in seed[0]["requests"]:
            print(f"    {line}")
    if finish:
        first = finish[0]
        print("  Onboard, first counted run (ms after the click event):")
        for line in first["sent"]:
            print(f"    ws out {line}")
        for line in first["received"]:
            print(f"    ws in  {line}")
        for line in first["resources"]:
            print(f"    http   {line}")
    print("\n== Onboard navigations, click -> page shown with its content (ms)")
    for key, label in NAVIGATIONS:
        windows = [run[key] for run in onboard]
        print(_line(f"{label}, wall", _values(windows, "wall_ms")))
        print(_line(f"{label}, in-page", _values(windows, "inpage_ms")))
    print(
        _line(
            "wizard Next, in-page, its form taking input",
            _values([run["next_step"] for run in onboard], "extra_ms"),
        )
    )
    if results.get("before"):
        same_run = {"seed": results["seed"], "onboard": results["before"]}
        _before_after(f"Before ({results['before_ref']}, same run) / after", same_run, results)
    if baseline:
        _before_after(f"Before ({baseline['machine']}) / after", baseline, results)
    if results.get("failed_runs"):
        print(f"  runs that failed and were left out: {len(results['failed_runs'])}")
    return ratio <= TARGET_RATIO


def _before_after(title: str, before: dict[str, Any], after: dict[str, Any]) -> None:
    """Wall p50/p95 of every navigation before and after, and the Finish ratio of each."""
    print(f"\n== {title}, wall ms")
    print(f"  {'':<44} {'p50 before':>10} {'after':>7} {'p95 before':>10} {'after':>7}")
    rows = [("seed Finish", _values(before["seed"], "wall_ms"), _values(after["seed"], "wall_ms"))]
    rows += [(label, _walls(before, key), _walls(after, key)) for key, label in NAVIGATIONS]
    for label, earlier, later in rows:
        b, a = summary(earlier), summary(later)
        if b["n"] and a["n"]:
            print(
                f"  {label:<44} {b['p50']:10.1f} {a['p50']:7.1f} {b['p95']:10.1f} {a['p95']:7.1f}"
            )
    then, now = (
        summary(_walls(side, "finish"))["p50"] / summary(_values(side["seed"], "wall_ms"))["p50"]
        for side in (before, after)
    )
    print(f"  {'ratio Onboard / seed, Finish p50':<44} {then:10.2f} {now:7.2f}")


def _spread(counts: list[int]) -> str:
    if not counts:
        return "-"
    low, high = min(counts), max(counts)
    return str(low) if low == high else f"{low}-{high} (median {statistics.median(counts):g})"


def main(argv: list[str] | None = None) -> int:
    """Command line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=20, help="counted runs per app")
    parser.add_argument("--warmup", type=int, default=2, help="untimed runs per app first")
    parser.add_argument("--seed", type=Path, default=SEED_SOURCE, help="the shared seed")
    parser.add_argument("--fresh-seed", action="store_true", help="npm ci and build again")
    parser.add_argument("--json", type=Path, help="write every window here")
    parser.add_argument("--compare", type=Path, help="an earlier --json: before/after table")
    parser.add_argument(
        "--before",
        default=BEFORE_REF,
        help=f"a commit whose app runs alongside, for before/after (default {BEFORE_REF}; '' none)",
    )
    parser.add_argument(
        "--max-load",
        type=float,
        default=0,
        help="before each round, wait (up to 15 min) for a 1-min load average below this",
    )
    args = parser.parse_args(argv)
    # A stopped bench (SIGTERM) still stops the apps it started.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    try:
        results = measure(
            args.runs,
            args.warmup,
            seed_source=args.seed,
            fresh_seed=args.fresh_seed,
            before=args.before,
            max_load=args.max_load,
        )
    except Exception as problem:
        print(f"bench_finish could not run: {problem!r}", flush=True)
        return 2
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))
        print(f"raw results: {args.json}")
    baseline = json.loads(args.compare.read_text()) if args.compare else None
    return 0 if report(results, baseline) else 1


if __name__ == "__main__":
    sys.exit(main())
