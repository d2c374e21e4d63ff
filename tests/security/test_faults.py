"""Faults: the database locked or gone at Finish, Redis gone at login or losing a tab's state,
the OAuth provider down, and what an event no handler caught answers during an outage.

Each test checks the catalogue's promise for a fault: a clear message (no 500, no generic
"contact the administrator"), nothing half-written, the user's inputs and token kept, and
that the same action works once the dependency is back.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlencode, urlsplit

import pytest
import redis.exceptions
import sqlalchemy as sa
from reflex.istate.data import RouterData
from reflex.state import State
from reflex_base.event import EventSpec

from onboard_app.services import db, oauth
from onboard_app.services.accounts import LOGIN_FAILED
from onboard_app.services.users import get_user_by_email
from onboard_app.settings import OAuthClientSettings, Settings, override_settings
from onboard_app.state.auth import LoginState
from onboard_app.state.oauth import OAuthState
from onboard_app.state.onboarding import SAVE_FAILED, OnboardingState
from onboard_app.state.session import (
    OUTAGE_MESSAGE,
    REATTACHED_MESSAGE,
    REHYDRATE_COOKIE,
    SessionState,
    admit,
    answer_backend_error,
)
from tests.conftest import make_settings
from tests.scale.infra import PrivateRedis
from tests.security.conftest import (
    PASSWORD,
    fill_profile,
    new_tab,
    reach_review,
    sign_up,
    snapshot,
)
from tests.state.harness import Client, redirects, toasts


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# --- database at Finish ---------------------------------------------------------------------


@contextlib.contextmanager
def short_busy_timeout(url: str, milliseconds: int = 200) -> Iterator[None]:
    """New connections of the app's engine wait at most ``milliseconds`` for a lock."""
    engine = db.get_engine(url)

    def on_connect(dbapi_connection, _record) -> None:  # type: ignore[no-untyped-def]
        dbapi_connection.execute(f"PRAGMA busy_timeout={milliseconds}")

    sa.event.listen(engine, "connect", on_connect)
    engine.dispose()
    try:
        yield
    finally:
        sa.event.remove(engine, "connect", on_connect)
        engine.dispose()


@contextlib.contextmanager
def write_lock(url: str) -> Iterator[None]:
    """Another process's open write transaction on the SQLite file (readers still work)."""
    holder = sqlite3.connect(sa.make_url(url).database or "", isolation_level=None, timeout=0)
    try:
        holder.execute("BEGIN EXCLUSIVE")
        yield
    finally:
        holder.execute("ROLLBACK")
        holder.close()


async def test_database_locked_at_finish_rolls_back_keeps_everything_and_retry_works(
    app_db: Settings,
) -> None:
    person = await sign_up()
    tab = person.tab
    await reach_review(tab)
    token, before = person.token, snapshot(app_db)
    form = tab.state(OnboardingState)
    answers = (
        form.values["display_name"],
        form.values["role"],
        list(form.selections["interests"]),
        form.values["theme"],
    )

    with short_busy_timeout(app_db.database_url), write_lock(app_db.database_url):
        started = time.monotonic()
        events = await tab.call(OnboardingState.finish_onboarding)
        assert time.monotonic() - started < 5
    assert redirects(events) == []
    assert toasts(events) and SAVE_FAILED in toasts(events)[0]
    assert snapshot(app_db) == before  # rolled back: still at review, nothing half-written
    assert tab.state(SessionState).token == token  # the session is kept, not re-minted
    assert tab.state(SessionState).signed_in
    assert (
        form.values["display_name"],
        form.values["role"],
        list(form.selections["interests"]),
        form.values["theme"],
    ) == answers
    assert form.saving is False

    events = await tab.call(OnboardingState.finish_onboarding)
    assert redirects(events) == ["/explore"]
    assert get_user_by_email(person.email).onboarding_step == "completed"  # type: ignore[union-attr]


@contextlib.contextmanager
def database_gone(url: str) -> Iterator[None]:
    """The SQLite database at ``url`` cannot be opened (its directory is gone) meanwhile.

    Every engine of the URL is disposed first (``db.dispose_engine``), so no pooled
    connection to the old file survives: every read and write of the app fails.
    """
    folder = Path(sa.make_url(url).database or "").parent
    away = folder.with_name(folder.name + "-away")
    db.dispose_engine(url)
    folder.rename(away)
    try:
        yield
    finally:
        db.dispose_engine(url)
        away.rename(folder)


async def test_database_unreachable_at_finish_shows_a_clear_message_and_retry_works(
    app_db: Settings,
) -> None:
    person = await sign_up()
    tab = person.tab
    await reach_review(tab)
    token = person.token

    with database_gone(app_db.database_url):
        events = await tab.call(OnboardingState.finish_onboarding)
    assert redirects(events) == []
    # The gate's session check reads the database first on every event, so the outage is
    # told there, before the handler runs (a save that fails after it: the locked test).
    assert toasts(events) and OUTAGE_MESSAGE in toasts(events)[0]
    assert tab.state(SessionState).token == token
    assert get_user_by_email(person.email).onboarding_step == "review"  # type: ignore[union-attr]
    assert redirects(await tab.call(OnboardingState.finish_onboarding)) == ["/explore"]


async def test_database_unreachable_never_signs_the_user_out(app_db: Settings) -> None:
    """Whatever the outcome today, an outage must not cost the user their token."""
    person = await sign_up()
    tab = person.tab
    await reach_review(tab)
    token = person.token
    with database_gone(app_db.database_url):
        with contextlib.suppress(sa.exc.SQLAlchemyError):
            await tab.call(OnboardingState.finish_onboarding)
        with contextlib.suppress(sa.exc.SQLAlchemyError):
            await tab.open("/onboarding/review", OnboardingState.open_step)
    assert tab.state(SessionState).token == token
    assert redirects(await tab.call(OnboardingState.finish_onboarding)) == ["/explore"]


# --- Redis (production throttle) ------------------------------------------------------------


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[PrivateRedis]:
    if not PrivateRedis.installed():
        pytest.skip("redis-server is not installed")
    server = PrivateRedis(tmp_path)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def production_with_redis(app_db: Settings, redis_server: PrivateRedis) -> Iterator[Settings]:
    value = make_settings(
        environment="production",
        database_url=app_db.database_url,
        redis_url=redis_server.url,
    )
    override_settings(value)
    yield value
    override_settings(app_db)


async def log_in(tab: Client, email: str, password: str) -> list:
    tab.navigate("/login")
    return await tab.call(LoginState.log_in, {"email": email, "password": password})


async def test_redis_down_at_login_gives_a_clear_message_and_no_session(
    production_with_redis: Settings, redis_server: PrivateRedis
) -> None:
    person = await sign_up()
    redis_server.stop()
    tab = new_tab()
    await log_in(tab, person.email, PASSWORD)
    form = tab.state(LoginState)
    assert "try again" in form.form_error.lower() and form.form_error != LOGIN_FAILED
    assert form.busy is False
    assert tab.state(SessionState).signed_in is False and tab.state(SessionState).token == ""


async def test_login_recovers_when_redis_returns_and_counters_are_shared_again(
    production_with_redis: Settings, redis_server: PrivateRedis
) -> None:
    person = await sign_up()
    tab = new_tab()
    await log_in(tab, person.email, "wrong password")
    assert tab.state(LoginState).form_error == LOGIN_FAILED

    redis_server.stop()
    with contextlib.suppress(Exception):  # the outage itself is the test above
        await log_in(new_tab(), person.email, PASSWORD)
    redis_server.start()  # same port, empty: counters restart

    tab = new_tab()
    assert redirects(await log_in(tab, person.email, PASSWORD)) == ["/onboarding/profile"]
    assert tab.state(SessionState).signed_in
    # Failures are counted in the new Redis (shared by every worker) again.
    for _ in range(production_with_redis.login_max_failures_per_account):
        await log_in(new_tab(), person.email, "wrong password")
    locked = new_tab()
    await log_in(locked, person.email, PASSWORD)
    assert locked.state(LoginState).form_error.startswith("Too many failed attempts.")


# --- a tab's state lost (Redis restarted empty, or expired it) ------------------------------


def lost_state(tab: Client) -> Client:
    """The same tab after the server lost its state: a fresh tree, never hydrated.

    The browser keeps the token in localStorage; the fresh state holds none, and no
    connection has hydrated it (a websocket that stayed open sends no hydrate).
    """
    fresh = Client(ip=tab.ip)
    fresh.sid = tab.sid
    fresh.navigate(tab.root.router.url.path)
    fresh.state(SessionState)._connection = None
    return fresh


def rehydrates(events: list) -> bool:
    """Whether the events ask the page to hydrate again (removing the unused cookie)."""
    return any(
        isinstance(e, EventSpec)
        and e.handler.fn.__qualname__ == "_remove_cookie"
        and any(str(value) == f'"{REHYDRATE_COOKIE}"' for _, value in e.args)
        for e in events
    )


async def page_load(tab: Client, path: str, token: str | None) -> list:
    """The page hydrates: the gate, the stored token (if any), then the page's on_load."""
    tab.navigate(path)
    assert await admit(tab.root, State, "hydrate") is None
    if token is not None:  # what Reflex's hydrate does with the storage it was sent
        tab.state(SessionState).token = token
    return await tab.call(OnboardingState.open_step)


async def test_a_tab_whose_state_was_lost_loads_its_page_again_instead_of_going_to_login(
    app_db: Settings,
) -> None:
    person = await sign_up()
    await person.tab.open("/onboarding/profile", OnboardingState.open_step)
    before = snapshot(app_db)
    tab = lost_state(person.tab)

    for _ in range(2):  # until the page hydrates again, every event is answered so
        events = await tab.call(OnboardingState.submit)
        assert rehydrates(events) and redirects(events) == []
        assert any(REATTACHED_MESSAGE in toast for toast in toasts(events))
    assert snapshot(app_db) == before  # the events did nothing

    # The hydrate sends the browser's token, then the page's on_load runs: the tab is the
    # user's again, on the same step.
    assert redirects(await page_load(tab, "/onboarding/profile", person.token)) == []
    assert tab.state(SessionState).signed_in
    assert tab.state(OnboardingState).current_step == "profile"
    await fill_profile(tab)
    assert get_user_by_email(person.email).onboarding_step == "interests"  # type: ignore[union-attr]


async def test_a_lost_state_without_a_token_in_the_browser_goes_to_login(
    app_db: Settings,
) -> None:
    person = await sign_up()
    await person.tab.open("/onboarding/profile", OnboardingState.open_step)
    tab = lost_state(person.tab)
    # An undeclared handler stays refused, with nothing to say.
    assert await tab.call(SessionState.setvar, "signed_in", True) == []
    assert tab.state(SessionState).signed_in is False
    tab = lost_state(person.tab)
    assert rehydrates(await tab.call(OnboardingState.submit))
    # The browser holds no token (another tab logged out): the hydrate brings none.
    assert redirects(await page_load(tab, "/onboarding/profile", None)) == [
        "/login?next=/onboarding/profile"
    ]
    assert tab.state(SessionState).signed_in is False


# --- what an event no handler caught answers --------------------------------------------------


def wrapped(cause: Exception) -> RuntimeError:
    """``cause`` re-raised as another error (as a framework wrapping it would)."""
    try:
        try:
            raise cause
        except Exception as inner:
            raise RuntimeError("event failed") from inner
    except RuntimeError as outer:
        return outer


@pytest.mark.parametrize(
    "exception",
    [
        redis.exceptions.ConnectionError("Error 111 connecting to 127.0.0.1:1. Refused."),
        redis.exceptions.TimeoutError("Timeout reading from socket"),
        wrapped(redis.exceptions.ConnectionError("Connection closed by server.")),
        sa.exc.OperationalError("SELECT secret FROM t WHERE a = %s", ("carol@x",), Exception()),
    ],
    ids=["redis-refused", "redis-timeout", "redis-wrapped", "database"],
)
def test_an_outage_no_handler_caught_gets_the_apps_message(
    exception: Exception, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING):
        answer = answer_backend_error(exception)
    assert toasts([answer]) and OUTAGE_MESSAGE in toasts([answer])[0]
    assert "Contact the website administrator" not in toasts([answer])[0]
    logged = "\n".join(record.getMessage() for record in caplog.records)
    assert "unreachable" in logged
    assert "carol@x" not in logged and "secret" not in logged  # no query text or values


def test_any_other_error_keeps_reflexs_answer() -> None:
    answer = answer_backend_error(ValueError("a bug"))
    assert OUTAGE_MESSAGE not in toasts([answer])[0]
    assert "An error occurred." in toasts([answer])[0]


# --- OAuth provider down --------------------------------------------------------------------


@contextlib.contextmanager
def silent_server() -> Iterator[int]:
    """A port that accepts connections and never answers (a hung provider)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(16)
        yield int(sock.getsockname()[1])


def github_settings(token_url: str) -> OAuthClientSettings:
    return OAuthClientSettings(
        name="github",
        label="Sign in with GitHub",
        client_id="client-id",
        client_secret="client-secret",
        authorize_url="https://github.invalid/login/oauth/authorize",
        token_url=token_url,
        api_url="https://api.github.invalid",
        scope="read:user user:email",
        timeout=0.5,
    )


def callback(tab: Client, query: dict[str, str]) -> None:
    path = "/auth/callback/github"
    tab.root.router = RouterData.from_router_data(
        {
            "pathname": path,
            "query": query,
            "asPath": f"{path}?{urlencode(query)}",
            "headers": {"origin": "http://localhost:3000"},
            "ip": tab.ip,
        }
    )


async def provider_down_login(app_db: Settings, token_url: str) -> tuple[Client, list, float]:
    override_settings(
        make_settings(database_url=app_db.database_url, github=github_settings(token_url))
    )
    try:
        tab = new_tab()
        tab.navigate("/login")
        (authorize,) = redirects(await tab.call(OAuthState.start_login, "github"))
        state = dict(p.split("=", 1) for p in urlsplit(authorize).query.split("&"))["state"]
        callback(tab, {"code": "one-time-code-abc", "state": state})
        started = time.monotonic()
        events = await tab.call(OAuthState.complete_login)
        return tab, events, time.monotonic() - started
    finally:
        override_settings(app_db)


@pytest.mark.parametrize("failure", ["refused", "timeout"])
async def test_oauth_provider_down_shows_a_clear_message_and_creates_nothing(
    app_db: Settings, failure: str
) -> None:
    before = snapshot(app_db)
    if failure == "refused":
        tab, events, took = await provider_down_login(
            app_db, f"http://127.0.0.1:{free_port()}/login/oauth/access_token"
        )
    else:
        with silent_server() as port:
            tab, events, took = await provider_down_login(
                app_db, f"http://127.0.0.1:{port}/login/oauth/access_token"
            )
        assert took < 3  # bounded by the configured 0.5 s timeout, not hanging
    assert redirects(events) == ["/login?error=unavailable"]
    # What the login page then shows (put on its form by the redirect):
    assert tab.state(LoginState).form_error == oauth.MESSAGES["unavailable"]
    assert "try again" in tab.state(LoginState).form_error.lower()
    assert tab.state(SessionState).token == "" and tab.state(SessionState).signed_in is False
    assert snapshot(app_db) == before
    # The pending login was used up: replaying the callback cannot retry the code.
    assert tab.state(OAuthState)._pending is None
