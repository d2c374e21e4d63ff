"""No raw token, password, OAuth code/verifier/access token or client secret in any log record.

In-process: the whole journey runs with every logger at DEBUG (the app's, SQLAlchemy's,
httpx's, authlib's), including an OAuth sign-in against the local GitHub stand-in and the
failure paths that log exceptions. Every record is rendered the way a handler would
(message, arguments, traceback) and searched for every secret the journey handled: the
app's own records hold none, before any redaction.

In production: a real ``reflex run --env prod`` subprocess (``start_app``) receives crafted
websocket events that carry the session JWT, the client token, Cookie and Authorization
headers and a password, to a handler that does not exist and as malformed payloads, each
repeated 200 times. Its captured stdout/stderr holds none of those secrets (nor the signing
key or the SMTP password), at most a bounded number of junk lines, and the audit lines
of the app's ``onboard.audit`` logger, written by a worker process.
(``test_http_hardening.py`` checks the same server log after a browser journey.)
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import secrets
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

import pytest
from reflex.istate.data import RouterData

from bench.reflex_client import EVENT_PATH, FrontendBuild, OnboardClient, OnboardNames
from onboard_app.logs import RepeatLimiter
from onboard_app.settings import OAuthClientSettings, Settings, override_settings
from onboard_app.state.auth import LoginState
from onboard_app.state.explore import ExploreState
from onboard_app.state.oauth import OAuthState
from onboard_app.state.onboarding import OnboardingState
from onboard_app.state.session import SessionState
from onboard_app.state.settings import SettingsState
from tests.conftest import make_settings
from tests.e2e.conftest import RunningApp, new_email, start_app, stop_app
from tests.fakes.github import GitHubFake, GitHubUser
from tests.fakes.inbox import from_smtp, wait_for_letter
from tests.fakes.smtp import SmtpFake, make_tls_files
from tests.scale.infra import worker_pids
from tests.security.conftest import (
    PASSWORD,
    fill_interests,
    fill_preferences,
    fill_profile,
    new_tab,
    private_web_dir,
    sign_up,
)
from tests.security.test_faults import short_busy_timeout, write_lock
from tests.state.harness import Client, redirects

CALLBACK = "http://localhost:3000/auth/callback/github"
WRONG_PASSWORD = "hunter2-wrong-password"


@pytest.fixture
def github() -> Iterator[GitHubFake]:
    with GitHubFake(redirect_uri=CALLBACK) as fake:
        yield fake


def rendered(caplog: pytest.LogCaptureFixture) -> str:
    formatter = logging.Formatter()
    parts = []
    for record in caplog.records:
        parts.append(record.getMessage())
        parts.append(repr(record.args))
        if record.exc_info:
            parts.append(formatter.formatException(record.exc_info))
        if record.stack_info:
            parts.append(record.stack_info)
    return "\n".join(parts)


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: object, **kwargs: object) -> None:
        return None


def browser_visit(authorize_url: str) -> str:
    """The browser's part: open the authorization URL, read where it is sent back.

    urllib, not httpx: the browser's own traffic is not the app's log.
    """
    opener = urllib.request.build_opener(_NoRedirect)
    try:
        opener.open(authorize_url, timeout=5)
    except urllib.error.HTTPError as redirect:
        assert redirect.code == 302
        return redirect.headers["Location"]
    raise AssertionError("the provider did not redirect back")


def at_callback(tab: Client, location: str) -> None:
    parts = urlsplit(location)
    tab.root.router = RouterData.from_router_data(
        {
            "pathname": parts.path,
            "query": dict(parse_qsl(parts.query)),
            "asPath": f"{parts.path}?{parts.query}",
            "headers": {"origin": "http://localhost:3000"},
            "ip": tab.ip,
        }
    )


async def test_no_secret_reaches_any_log_record(
    app_db: Settings, github: GitHubFake, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    for name in ("sqlalchemy.engine", "httpx", "httpcore", "authlib", "onboard"):
        caplog.set_level(logging.DEBUG, logger=name)
    secrets_seen: set[str] = {PASSWORD, WRONG_PASSWORD, github.client_secret}

    # Local account: signup, a wrong and a right login, the wizard, Finish, explore, settings.
    person = await sign_up()
    tab = person.tab
    secrets_seen.add(person.token)
    wrong = new_tab()
    wrong.navigate("/login")
    await wrong.call(LoginState.log_in, {"email": person.email, "password": WRONG_PASSWORD})
    other = new_tab()
    other.navigate("/login")
    await other.call(LoginState.log_in, {"email": person.email, "password": PASSWORD})
    secrets_seen.add(other.state(SessionState).token)
    for step in (fill_profile, fill_interests, fill_preferences):
        await step(tab)
        secrets_seen.add(person.token)
    await tab.open("/onboarding/review", OnboardingState.open_step)
    with short_busy_timeout(app_db.database_url), write_lock(app_db.database_url):
        await tab.call(OnboardingState.finish_onboarding)  # logs an exception
    assert redirects(await tab.call(OnboardingState.finish_onboarding)) == ["/explore"]
    secrets_seen.add(person.token)
    await tab.open("/explore", ExploreState.load)
    await tab.open("/settings", SettingsState.load)
    await tab.call(SettingsState.save_section, "profile")
    # A forged token and a revoked one are rejected (and that is logged).
    forged = new_tab()
    forged.state(SessionState).token = person.token[:-4] + "AAAA"
    forged.navigate("/explore")
    await forged.call(SessionState.guard)
    secrets_seen.add(person.token[:-4] + "AAAA")
    await tab.call(SessionState.log_out)
    other.navigate("/explore")
    await other.call(SessionState.guard)

    # GitHub sign-in, then a callback replayed with the same code.
    github.user = GitHubUser.with_verified_email("octo-log@example.com", id=77_001)
    override_settings(
        make_settings(
            database_url=app_db.database_url,
            github=OAuthClientSettings(
                name="github",
                label="Sign in with GitHub",
                client_id=github.client_id,
                client_secret=github.client_secret,
                authorize_url=github.authorize_url,
                token_url=github.token_url,
                api_url=github.base_url,
                scope="read:user user:email",
                timeout=5.0,
            ),
        )
    )
    try:
        octo = new_tab()
        octo.navigate("/login")
        (authorize,) = redirects(await octo.call(OAuthState.start_login, "github"))
        pending = dict(octo.state(OAuthState)._pending)
        secrets_seen |= {pending["state"], pending["code_verifier"]}
        location = browser_visit(authorize)
        code = dict(parse_qsl(urlsplit(location).query))["code"]
        secrets_seen.add(code)
        at_callback(octo, location)
        assert redirects(await octo.call(OAuthState.complete_login)) == ["/onboarding/profile"]
        secrets_seen.add(octo.state(SessionState).token)
        secrets_seen |= set(github._tokens)  # the access token GitHub issued
        replay = new_tab()
        at_callback(replay, location)
        await replay.call(OAuthState.complete_login)
        # A login that fails at the token endpoint (bad code).
        failed = new_tab()
        failed.navigate("/login")
        (authorize,) = redirects(await failed.call(OAuthState.start_login, "github"))
        state = dict(parse_qsl(urlsplit(authorize).query))["state"]
        bad = f"{CALLBACK}?{urlencode({'code': 'made-up-code-123456', 'state': state})}"
        secrets_seen.add("made-up-code-123456")
        at_callback(failed, bad)
        await failed.call(OAuthState.complete_login)
    finally:
        override_settings(app_db)

    log = rendered(caplog)
    # The journey was logged (by user id and outcome) ...
    assert "event=signin user=" in log and "re-minted" in log and "event=finish user=" in log
    assert "finishing onboarding for user" in log
    assert len(github._tokens) == 1
    # ... without a single secret.
    leaked = sorted(s[:12] + "..." for s in secrets_seen if s and s in log)
    assert leaked == []


# --- the production log -------------------------------------------------------------------

SMTP_PASSWORD = "smtp-" + secrets.token_urlsafe(16)
COOKIE_SECRET = "cookie-" + secrets.token_urlsafe(16)
AUTHORIZATION_SECRET = secrets.token_urlsafe(24)
JUNK_REPEATS = 200


@pytest.fixture(scope="module")
def prod_app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningApp]:
    """The app as an operator starts it, with an SMTP password that must never be logged.

    Its mail goes over STARTTLS with that password to a real SMTP server of this test,
    which is where the sign-up reads its code.
    """
    tmp = tmp_path_factory.mktemp("logging-app")
    tls = make_tls_files(tmp / "tls")
    with SmtpFake("starttls", tls=tls, logins={"mailer": SMTP_PASSWORD}) as smtp:
        running = start_app(
            tmp,
            ONBOARD_SMTP_URL=smtp.url("mailer", SMTP_PASSWORD),
            ONBOARD_SMTP_CA_FILE=str(tls.ca_file),
            **private_web_dir(tmp),
        )
        _SMTP[running.url] = smtp
        yield running
        stop_app(running)


#: The SMTP server of each app this module started (by the app's address).
_SMTP: dict[str, SmtpFake] = {}


def code_of(app: RunningApp) -> Callable[[str], str]:
    """Reads the verification code the app mailed to an address."""
    return lambda address: (
        wait_for_letter(lambda: from_smtp(_SMTP[app.url]), address, "verify_email").code
    )


def squeezed(text: str) -> str:
    """Text without whitespace: Reflex's console wraps long lines at 80 columns."""
    return re.sub(r"\s+", "", text)


async def wait_for(app: RunningApp, ready: Callable[[str], bool], timeout: float = 30) -> str:
    """The app's log once ``ready(log)`` holds (and has stopped growing), or fail."""
    deadline = time.monotonic() + timeout
    while not ready(log := app.log()):
        assert time.monotonic() < deadline, f"the log never got there:\n{log[-3000:]}"
        await asyncio.sleep(0.25)
    while (again := app.log()) != log:  # whatever is still being written
        await asyncio.sleep(0.5)
        log = again
    return log


def tab(app: RunningApp, names: OnboardNames, **extra: Any) -> OnboardClient:
    """A protocol-level tab on the app (see tests/scale/conftest.py)."""
    build = FrontendBuild.load(Path(app.env["REFLEX_WEB_WORKDIR"]))
    return OnboardClient(
        app.url.replace("localhost", "127.0.0.1"), names, build=build, origin=app.url, **extra
    )


def handshake_headers(client: OnboardClient, headers: dict[str, str]) -> None:
    """Send extra HTTP headers with the websocket handshake (a browser sends its cookies)."""
    connect = client._sio.connect

    async def connect_with(url: str, *, headers: dict[str, str], **kwargs: Any) -> None:
        await connect(url, headers={**headers, **extra}, **kwargs)

    extra = headers
    client._sio.connect = connect_with  # type: ignore[method-assign]


async def send_raw(client: OnboardClient, data: Any) -> None:
    """Emit anything as an ``event`` message, as a modified client can."""
    await client._sio.emit("event", data, namespace=EVENT_PATH)


async def test_crafted_events_leave_no_secret_and_bounded_junk_in_the_production_log(
    prod_app: RunningApp,
) -> None:
    names = OnboardNames.resolve()
    email = new_email("logs")
    person = tab(prod_app, names)
    await person.connect("/signup")
    await person.sign_up(email, PASSWORD, code_of(prod_app))
    token, user = person.token, person.claims()["sub"]
    failed = tab(prod_app, names)
    await failed.connect("/login")
    await failed.log_in(email, WRONG_PASSWORD)
    assert failed.form_error

    # Another tab presents the same JWT, and a browser's Cookie and Authorization headers.
    attacker = tab(prod_app, names, local_storage={names.token_storage: token})
    handshake_headers(
        attacker,
        {
            "Cookie": f"{names.token_storage}={token}; other={COOKIE_SECRET}",
            "Authorization": f"Bearer {AUTHORIZATION_SECRET}",
        },
    )
    await attacker.connect("/explore")
    secret_payload = {
        "password": PASSWORD,
        "token": token,
        "client_token": person.client_token,
        "headers": {"cookie": COOKIE_SECRET, "set-cookie": f"s={COOKIE_SECRET}"},
    }
    junk: list[Any] = [
        # A handler that does not exist ("No registered handler found"), with secrets.
        {
            "name": f"{names.session}.no_such_handler",
            "payload": secret_payload,
            "router_data": {"pathname": "/explore", "asPath": f"/explore?token={token}"},
        },
        # A real handler with arguments it does not take.
        {"name": names.handlers["log_in"], "payload": {"form": [PASSWORD], "jwt": token}},
        # Malformed: not JSON, JSON that is not an event, not an object at all. (A password
        # is known by its field: free text with no name says nothing about what it is.)
        f"not json {token} password={PASSWORD!r}",
        json.dumps({"name": 5, "payload": secret_payload}),
        [token, {"password": PASSWORD}, person.client_token],
        # Big: the middle of the record is cut, the secrets around the cut still redacted.
        {"name": f"{names.session}.no_such_handler", "payload": {"x": "y " * 60_000, "t": token}},
    ]
    for _ in range(JUNK_REPEATS):
        for data in junk:
            await send_raw(attacker, data)

    # A forged token is rejected, and the person logs out: both audited.
    forged = tab(prod_app, names, local_storage={names.token_storage: token[:-6] + "AAAAAA"})
    await forged.connect("/explore")
    await person.log_out()
    tabs = (person, failed, attacker, forged)
    for each in tabs:
        await each.close()

    kinds = (
        "Errorprocessingeventqueueentryfor",  # unknown handlers (name=5 too)
        "[ReflexBackendException]",  # the handler called with arguments it does not take
        "Receivedeventdataasastring",  # Reflex's warning for string data
        "messageasynchandlererror",  # the deserialisation errors, through engineio
    )
    log = await wait_for(
        prod_app,
        lambda text: all(k in squeezed(text) for k in kinds) and "event=logout" in text,
    )
    flat = squeezed(log)

    # No secret, not even wrapped over two lines.
    signing_key = prod_app.env["ONBOARD_SIGNING_KEY"].split(":", 1)[1]
    secrets_sent = {
        "password": PASSWORD,
        "wrong password": WRONG_PASSWORD,
        "jwt": token,
        "jwt signature": token.rsplit(".", 1)[1],
        "forged jwt": token[:-6] + "AAAAAA",
        "cookie": COOKIE_SECRET,
        "authorization": AUTHORIZATION_SECRET,
        "signing key": signing_key,
        "smtp password": SMTP_PASSWORD,
        **{f"client token {i}": t.client_token for i, t in enumerate(tabs)},
    }
    leaked = [what for what, value in secrets_sent.items() if squeezed(value) in flat]
    assert leaked == []
    assert "<redacted" in log  # the dumps are there, redacted

    # Junk is bounded: of 1,200 crafted events, at most a library's budget of lines
    # (RepeatLimiter: 10 per shape of line, 100 per library and minute), with notices.
    limiter = RepeatLimiter()
    counts = {kind: flat.count(kind) for kind in kinds}
    assert all(counts.values()), counts  # every kind was received, and logged
    assert sum(counts.values()) <= limiter.per_family, counts
    assert all(n <= 3 * limiter.per_key for n in counts.values()), counts
    assert "(limitreached:similarlinesareheldbackforupto60s)" in flat
    assert len(log) < 400_000  # unbounded, the big junk alone would write ~24 MB

    # The app's own INFO lines reach the production log, from a worker process.
    lines = {
        "signup": (
            rf"audit event=signup user={user} method=password existing=false "
            r"client=127\.0\.0\.1"
        ),
        "signin_failed": r"audit event=signin_failed reason=bad_credentials client=127\.0\.0\.1",
        "token_rejected": r"audit event=token_rejected reason=\w+ client=127\.0\.0\.1",
        "logout": rf"audit event=logout user={user} client=127\.0\.0\.1",
    }
    pids = set()
    for event, line in lines.items():
        found = re.search(rf"INFO onboard\.audit\[(\d+)\]: {line}\n", log)
        assert found, f"no {event} audit line"
        pids.add(int(found.group(1)))
    port = int(urlsplit(prod_app.url).port or 0)
    assert pids <= set(worker_pids(prod_app.process.pid, port))
