"""A real running Onboard (``reflex run --env prod``) and a real Chromium, for browser tests.

The app runs as a subprocess exactly as an operator would start it, against a throwaway
SQLite database and a throwaway signing key; the browser is Playwright driving the
system Chromium (``CHROMIUM``, default ``/usr/bin/chromium``). Its mail goes to a real SMTP
server in the test process (``tests/fakes/inbox.py``), where the tests read it.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from playwright.sync_api import Browser, ConsoleMessage, Page, Playwright, sync_playwright

from tests.fakes.inbox import Letter, from_smtp, shared_smtp, wait_for_letter

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
TOKEN_STORAGE_KEY = "onboard_session"
PASSWORD = "correct horse battery staple"


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class RunningApp:
    """A started app: its address, database and environment."""

    url: str
    database_url: str
    env: dict[str, str]
    process: subprocess.Popen[bytes]
    log_path: Path
    extra: dict[str, str] = field(default_factory=dict)

    def log(self) -> str:
        """What the app printed so far."""
        return self.log_path.read_text(errors="replace")


def app_environment(tmp: Path, port: int, **extra: str) -> dict[str, str]:
    """The environment of a test app: throwaway database and key, quiet Reflex."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ONBOARD_")}
    bun = ROOT / ".tools" / "node_modules" / ".bin" / "bun"
    env.update(
        {
            "ONBOARD_ENV": "production",
            "ONBOARD_SIGNING_KEY": "e2e:" + secrets.token_urlsafe(32),
            "ONBOARD_DATABASE_URL": f"sqlite:///{tmp / 'e2e.db'}",
            "ONBOARD_PUBLIC_URL": f"http://localhost:{port}",
            # Every browser test, scale test and load run signs up from 127.0.0.1: the
            # per-address sign-up limit is tested on its own (tests/security/test_login.py).
            "ONBOARD_SIGNUP_MAX_PER_CLIENT": "100000",
            # The test process's SMTP server: every mail the app sends is read there.
            "ONBOARD_SMTP_URL": shared_smtp().url(),
            "REFLEX_CHECK_LATEST_VERSION": "0",
            "REFLEX_DIR": str(ROOT / ".tools" / "reflex"),
            "REFLEX_API_URL": f"http://localhost:{port}",
            "PYTHONUNBUFFERED": "1",
        }
    )
    if "REFLEX_BUN_PATH" not in env and bun.exists():
        env["REFLEX_BUN_PATH"] = str(bun)
    env.update(extra)
    return env


def start_app(
    tmp: Path,
    *,
    port: int | None = None,
    web_name: str | None = None,
    root: Path = ROOT,
    **extra: str,
) -> RunningApp:
    """Migrate a fresh database and start ``reflex run --env prod`` on a free port.

    The frontend is built outside the project's ``.web`` (a running ``make run`` keeps
    working): into ``.tools/test-web/<web_name>`` when a name is given (kept between runs,
    so its packages are installed once), else into the app's temporary folder. Two apps
    alive at the same time need different folders: the build bakes in the backend port.
    ``root`` runs the app of another checkout of the project (the Finish bench's tree of
    an earlier commit) with this checkout's Python and tools.
    """
    port = port or free_port()
    if "REFLEX_WEB_WORKDIR" not in extra:
        web = ROOT / ".tools" / "test-web" / web_name if web_name else tmp / "web"
        extra["REFLEX_WEB_WORKDIR"] = str(web)
    env = app_environment(tmp, port, **extra)
    python = str(ROOT / ".venv" / "bin" / "python") if (ROOT / ".venv").exists() else sys.executable
    subprocess.run([python, "-m", "onboard_app.cli", "migrate"], cwd=root, env=env, check=True)
    log_path = tmp / f"app-{port}.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [
                python,
                "-m",
                "reflex",
                "run",
                "--env",
                "prod",
                "--single-port",
                "--frontend-port",
                str(port),
                "--loglevel",
                "info",
            ],
            cwd=root,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    app = RunningApp(
        f"http://localhost:{port}", env["ONBOARD_DATABASE_URL"], env, process, log_path
    )
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the app exited early:\n{app.log()[-4000:]}")
        try:
            with urllib.request.urlopen(f"{app.url}/ping", timeout=2) as response:
                if response.status == 200:
                    return app
        except OSError:
            pass
        time.sleep(0.5)
    stop_app(app)
    raise RuntimeError(f"the app did not answer within 240 s:\n{app.log()[-4000:]}")


def stop_app(app: RunningApp) -> None:
    """Stop the app and everything it started."""
    if app.process.poll() is None:
        try:
            os.killpg(app.process.pid, signal.SIGTERM)
            app.process.wait(timeout=15)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(app.process.pid, signal.SIGKILL)


@pytest.fixture(scope="session")
def app_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningApp]:
    """One running app for the browser tests of the session."""
    app = start_app(tmp_path_factory.mktemp("e2e-app"), web_name="session")
    yield app
    stop_app(app)


@pytest.fixture(scope="session")
def playwright_instance() -> Iterator[Playwright]:
    """Playwright, for the session."""
    with sync_playwright() as instance:
        yield instance


@pytest.fixture(scope="session")
def browser(playwright_instance: Playwright) -> Iterator[Browser]:
    """The system Chromium, headless."""
    executable = os.environ.get("CHROMIUM", "/usr/bin/chromium")
    browser = playwright_instance.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
    yield browser
    browser.close()


class ConsoleLog(list[str]):
    """Console errors and page errors seen by a page."""

    def record(self, message: ConsoleMessage) -> None:
        """Keep errors only."""
        if message.type == "error":
            self.append(message.text)


@pytest.fixture
def console() -> ConsoleLog:
    """Collected console errors of the test's pages."""
    return ConsoleLog()


@pytest.fixture
def page(browser: Browser, console: ConsoleLog, app_server: RunningApp) -> Iterator[Page]:
    """A fresh browser profile (context) and page, failing on page errors."""
    context = browser.new_context(base_url=app_server.url, viewport={"width": 1280, "height": 900})
    context.set_default_timeout(15_000)
    page = context.new_page()
    page.on("console", console.record)
    page.on("pageerror", lambda error: console.append(f"pageerror: {error}"))
    yield page
    context.close()


def at(path: str) -> re.Pattern[str]:
    """A URL matcher for a path (with its query, if given), tolerating a trailing slash.

    The production server answers ``/x`` with a redirect to ``/x/`` on a full page load.
    """
    route, _, query = path.partition("?")
    suffix = re.escape(route.rstrip("/")) + "/?" + (r"\?" + re.escape(query) if query else "")
    return re.compile(r"^https?://[^/]+" + suffix + "$")


def stored_token(page: Page) -> str:
    """The session token the browser keeps in localStorage (empty if none)."""
    return page.evaluate(f"() => window.localStorage.getItem({TOKEN_STORAGE_KEY!r}) || ''")


def token_claims(token: str) -> dict[str, object]:
    """The payload of a JWT, unverified (to look at what the browser holds)."""
    payload = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


def new_email(prefix: str = "user") -> str:
    """A unique email address for one test."""
    return f"{prefix}-{secrets.token_hex(4)}@example.com"


def mail_to(address: str, kind: str | None = None, *, count: int = 1) -> Letter:
    """The newest mail the app sent to ``address``, once ``count`` of that kind arrived."""
    return wait_for_letter(lambda: from_smtp(shared_smtp()), address, kind, count=count)


def mailed_code(address: str) -> str:
    """The 6-digit code of the newest verification mail sent to ``address``."""
    return mail_to(address, "verify_email").code


def sign_up(page: Page, email: str, password: str = PASSWORD) -> None:
    """Create an account through the signup page and the mailed code; ends in the wizard."""
    page.goto("/signup")
    page.locator("#email").fill(email)
    page.locator("#password").fill(password)
    page.locator("#submit").click()
    page.wait_for_url(at("/verify-email"))
    page.locator("#otp").fill(mail_to(email, "verify_email").code)
    page.locator("#confirm-code").click()
    page.wait_for_url(at("/onboarding/profile"))


def log_in(page: Page, email: str, password: str = PASSWORD) -> None:
    """Log in through the login page."""
    page.goto("/login")
    page.locator("#email").fill(email)
    page.locator("#password").fill(password)
    page.locator("#submit").click()
