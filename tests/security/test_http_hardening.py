"""A real production app: security headers, the websocket Origin check, CSP in Chromium, logs.

One ``reflex run --env prod --single-port`` for the module (``start_app`` from the e2e
suite), in its own copy of ``.web`` so that apps started concurrently from the same
checkout cannot serve each other's bundles. Headers are read with urllib, the websocket
handshake is made by hand, and the Content-Security-Policy is checked where it lives: in
Chromium, over the whole journey, with every violation counted.
"""

from __future__ import annotations

import asyncio
import gzip
import re
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import websockets
from playwright.sync_api import Browser, Page, sync_playwright

from onboard_app.security import inline_script_hashes
from tests.e2e.conftest import (
    CHROMIUM_ARGS,
    PASSWORD,
    RunningApp,
    at,
    mailed_code,
    new_email,
    sign_up,
    start_app,
    stop_app,
    stored_token,
)
from tests.e2e.wizard import reach_review
from tests.security.conftest import private_web_dir

pytestmark = pytest.mark.e2e

PRIVATE = [
    "/explore",
    "/explore/",
    "/settings",
    "/settings/",
    "/onboarding/profile",
    "/onboarding/profile/",
    "/onboarding/review/",
    "/auth/callback/github",
    "/verify-email",
    "/forgot-password",
    "/reset-password",
    "/admin/onboarding",
    "/ping",
    "/_health",
]
PUBLIC = ["/", "/login", "/login/", "/signup/", "/favicon.ico"]
EVIL = "http://evil.example"


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningApp]:
    tmp = tmp_path_factory.mktemp("hardening")
    running = start_app(tmp, **private_web_dir(tmp))
    yield running
    stop_app(running)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    import os

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=os.environ.get("CHROMIUM", "/usr/bin/chromium"), args=CHROMIUM_ARGS
        )
        yield chromium
        chromium.close()


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


def fetch(app: RunningApp, path: str, **headers: str) -> tuple[int, dict[str, str], bytes]:
    """One raw response (redirects not followed), header names lower-cased, body decoded."""
    opener = urllib.request.build_opener(_NoRedirect)
    request = urllib.request.Request(app.url + path, headers=headers)
    try:
        with opener.open(request, timeout=10) as response:
            status, raw, body = response.status, response.headers, response.read()
    except urllib.error.HTTPError as error:
        status, raw, body = error.code, error.headers, error.read()
    found = {k.lower(): v for k, v in raw.items()}
    if found.get("content-encoding") == "gzip":
        body = gzip.decompress(body)
    return status, found, body


def directives(csp: str) -> dict[str, list[str]]:
    return {
        part.split()[0]: part.split()[1:] for part in (p.strip() for p in csp.split(";")) if part
    }


# --- headers --------------------------------------------------------------------------------


@pytest.mark.parametrize("path", PRIVATE + PUBLIC)
def test_every_response_carries_the_security_headers(app: RunningApp, path: str) -> None:
    status, headers, _ = fetch(app, path, **{"Accept-Encoding": "gzip, br, zstd"})
    assert status < 500
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["x-frame-options"] == "DENY"
    assert headers["referrer-policy"] == "no-referrer"
    assert "camera=()" in headers["permissions-policy"]
    policy = directives(headers["content-security-policy"])
    assert policy["frame-ancestors"] == ["'none'"]
    assert policy["object-src"] == ["'none'"] and policy["base-uri"] == ["'none'"]
    assert "'unsafe-inline'" not in policy["script-src"]
    assert policy["connect-src"][:1] == ["'self'"]
    assert app.url.replace("http://", "ws://") in policy["connect-src"]
    assert headers.get("content-encoding") in (None, "gzip")  # hashes need a readable body


@pytest.mark.parametrize("path", PRIVATE)
def test_protected_pages_and_backend_routes_are_never_stored(app: RunningApp, path: str) -> None:
    _, headers, _ = fetch(app, path)
    assert headers["cache-control"] == "no-store"


def test_public_pages_and_assets_keep_their_caching(app: RunningApp) -> None:
    _, headers, body = fetch(app, "/login/")
    assert "no-store" not in headers.get("cache-control", "")
    asset = re.search(rb'src="(/assets/[^"]+\.js)"', body) or re.search(
        rb'href="(/assets/[^"]+\.js)"', body
    )
    assert asset is not None
    status, headers, _ = fetch(app, asset.group(1).decode())
    assert status == 200 and "no-store" not in headers.get("cache-control", "")
    assert headers["x-content-type-options"] == "nosniff"


@pytest.mark.parametrize("path", ["/login/", "/onboarding/profile/", "/explore/", "/nowhere"])
def test_csp_allows_exactly_the_inline_scripts_of_the_page(app: RunningApp, path: str) -> None:
    for encoding in ("gzip", "identity"):
        _, headers, body = fetch(app, path, **{"Accept-Encoding": encoding})
        assert headers["content-type"].startswith("text/html")
        hashes = inline_script_hashes(body)
        assert hashes, "the page has inline scripts (React Router's hydration data)"
        sources = directives(headers["content-security-policy"])["script-src"]
        assert sources == ["'self'", "'unsafe-eval'", *(f"'{h}'" for h in hashes)]


# --- websocket Origin -----------------------------------------------------------------------


async def handshake(app: RunningApp, origin: str | None) -> str:
    url = (
        app.url.replace("http://", "ws://")
        + f"/_event/?EIO=4&transport=websocket&token={uuid.uuid4()}"
    )
    extra = {"origin": origin} if origin else {}
    try:
        async with websockets.connect(url, open_timeout=10, **extra) as socket:
            first = await asyncio.wait_for(socket.recv(), 10)
            return f"accepted {str(first)[:2]}"
    except websockets.exceptions.InvalidStatus as refused:
        return f"refused {refused.response.status_code}"


@pytest.mark.parametrize("origin", [EVIL, "null", "http://localhost", "https://localhost:1"])
async def test_websocket_from_a_foreign_origin_is_refused(app: RunningApp, origin: str) -> None:
    assert (await handshake(app, origin)).startswith("refused 4")


async def test_websocket_from_the_apps_own_origin_is_accepted(app: RunningApp) -> None:
    """Control for the test above: the app's pages can connect."""
    assert await handshake(app, app.url) == "accepted 0{"


def test_backend_http_routes_do_not_grant_a_foreign_origin(app: RunningApp) -> None:
    _, headers, _ = fetch(app, "/ping", Origin=EVIL)
    assert headers.get("access-control-allow-origin") in (None, "")
    _, headers, _ = fetch(app, "/ping", Origin=app.url)
    assert headers.get("access-control-allow-origin") == app.url


# --- state snapshots over the real websocket protocol ---------------------------------------


async def test_a_reconnect_with_a_closed_tabs_client_token_gets_none_of_its_data(
    app: RunningApp,
) -> None:
    """Connect, sign in, disconnect; reconnect with the same client token and no JWT."""
    from pathlib import Path

    from bench.reflex_client import FrontendBuild, OnboardClient, OnboardNames

    names = OnboardNames.resolve()
    build = FrontendBuild.load(Path(app.env["REFLEX_WEB_WORKDIR"]))
    email = new_email()
    victim = OnboardClient(app.url, names, build=build)
    await victim.connect("/signup")
    await victim.sign_up(email, PASSWORD, mailed_code)
    await victim.set_answer("display_name", "Victim Secret Name")
    assert victim.var(names.session, "user_email") == email
    assert victim.var(names.answers, "values")["display_name"] == "Victim Secret Name"
    token = victim.token
    await victim.close()

    received: list[str] = []
    thief = OnboardClient(app.url, names, build=build)
    thief.client_token = victim.client_token  # leaked (it used to appear in the log)
    original = thief._on_event

    async def record(message: Any) -> None:
        received.append(repr(message))
        await original(message)

    thief._sio.on("event", record, namespace="/_event")
    await thief.connect("/onboarding/profile")
    # A protected handler, called straight away, answers with the login page only.
    updates = await thief.call(
        names.handlers["submit"], until=lambda u: bool(u.events) or bool(u.delta)
    )
    await thief.close()
    everything = "".join(received) + repr([u.delta for u in updates])
    assert email not in everything and "Victim Secret Name" not in everything
    assert token not in everything
    assert not thief.var(names.session, "signed_in")
    assert not (thief.var(names.answers, "values") or {}).get("display_name")

    # The owner, back with the token from its own storage, is signed in again.
    owner = OnboardClient(app.url, names, build=build, local_storage={names.token_storage: token})
    owner.client_token = victim.client_token
    await owner.connect("/onboarding/profile")
    assert owner.var(names.session, "user_email") == email
    await owner.close()


# --- CSP in the browser ---------------------------------------------------------------------

WATCH_CSP = """
document.addEventListener('securitypolicyviolation', e => {
  console.error('CSP violation: ' + e.violatedDirective + ' ' + e.blockedURI);
});
"""


class Console:
    def __init__(self, page: Page) -> None:
        self.messages: list[str] = []
        page.on("console", lambda m: self.messages.append(f"{m.type}: {m.text}"))
        page.on("pageerror", lambda e: self.messages.append(f"pageerror: {e}"))

    @property
    def csp(self) -> list[str]:
        return [m for m in self.messages if "Content Security Policy" in m or "CSP violation" in m]


def new_page(browser: Browser, app: RunningApp) -> tuple[Page, Console]:
    context = browser.new_context(base_url=app.url)
    context.set_default_timeout(15_000)
    context.add_init_script(WATCH_CSP)
    page = context.new_page()
    return page, Console(page)


def test_the_whole_journey_runs_under_the_policy_with_no_violation(
    browser: Browser, app: RunningApp
) -> None:
    page, console = new_page(browser, app)
    email = new_email("csp")
    sign_up(page, email)  # the sign-up form, the check-your-email screen, the mailed code
    tokens = {stored_token(page)}
    reach_review(page)
    tokens.add(stored_token(page))
    page.locator("#finish").click()
    page.wait_for_url(at("/explore"))
    page.locator("#explore-title").wait_for()
    page.locator("#all-set").wait_for()
    tokens.add(stored_token(page))
    page.locator("#search").fill("python")
    page.locator("#chip-security").click()
    page.goto("/settings")
    page.locator("#settings-title").wait_for()
    page.locator("#display_name").fill("Ada Renamed")
    page.locator("#save-profile").click()
    page.get_by_text("saved").first.wait_for()  # a toast: needs eval
    page.locator("#user-menu").click()
    page.get_by_text("Log out").click()
    page.wait_for_url(at("/login"))
    page.locator("#email").fill(email)
    page.locator("#password").fill(PASSWORD)
    page.locator("#submit").click()
    page.wait_for_url(at("/explore"))
    tokens.add(stored_token(page))
    page.wait_for_timeout(300)

    assert console.csp == []
    assert not [m for m in console.messages if m.startswith("pageerror")]
    # Nothing secret reached the server's log on the way.
    log = app.log()
    for secret in [PASSWORD, *filter(None, tokens)]:
        assert secret not in log
    page.context.close()


def test_an_injected_inline_script_is_blocked(browser: Browser, app: RunningApp) -> None:
    """Control: the listener above sees violations, and the policy stops injected scripts."""
    page, console = new_page(browser, app)
    page.goto("/login")
    page.locator("#email").wait_for()
    page.evaluate(
        """() => {
            const s = document.createElement('script');
            s.textContent = 'window.__injected = 1';
            document.body.appendChild(s);
        }"""
    )
    page.wait_for_timeout(200)
    assert page.evaluate("() => window.__injected") is None
    assert console.csp, console.messages
    page.context.close()


def test_another_site_cannot_frame_the_app(browser: Browser, app: RunningApp) -> None:
    page, _ = new_page(browser, app)
    page.route(
        f"{EVIL}/",
        lambda route: route.fulfill(
            content_type="text/html",
            body=f'<iframe id="victim" src="{app.url}/login/"></iframe>'
            f'<iframe id="control" src="{app.url}/signup/"></iframe>',
        ),
    )

    def without_frame_protection(route: Any) -> None:
        response = route.fetch()
        kept = {
            k: v
            for k, v in response.headers.items()
            if k.lower()
            not in (
                "x-frame-options",
                "content-security-policy",
                "content-encoding",
                "content-length",
            )
        }
        route.fulfill(response=response, headers=kept)

    # Control: the same app page, its two protections stripped, does load in the frame.
    # (Its document, not its UI: Chromium may deny a cross-site frame localStorage, which
    # stops the app's JavaScript whatever the headers say.)
    page.route(f"{app.url}/signup/", without_frame_protection)
    page.goto(f"{EVIL}/")
    page.wait_for_load_state("load")
    control = page.locator("#control").element_handle().content_frame()
    victim = page.locator("#victim").element_handle().content_frame()
    assert control is not None and victim is not None
    assert control.url == f"{app.url}/signup/"
    # A refused frame is replaced by the browser's error page: the app never loads in it.
    assert victim.url.startswith("chrome-error://"), victim.url
    assert victim.locator("#email").count() == 0
    page.context.close()


def test_log_has_no_cookie_or_authorization_header(app: RunningApp) -> None:
    fetch(
        app,
        "/ping",
        Cookie="onboard_session=secret-cookie-value",
        Authorization="Bearer abc.def.ghi",
    )
    assert "secret-cookie-value" not in app.log() and "abc.def.ghi" not in app.log()
