"""No raw token, password, OAuth code/verifier/access token or client secret in any log record.

The whole journey runs in-process with every logger at DEBUG (the app's, SQLAlchemy's,
httpx's, authlib's), including an OAuth sign-in against the local GitHub stand-in and the
failure paths that log exceptions. Every record is rendered the way a handler would
(message, arguments, traceback) and searched for every secret the journey handled.
(``test_http_hardening.py`` checks the running server's own log for the same.)
"""

from __future__ import annotations

import logging
import urllib.error
import urllib.request
from collections.abc import Iterator
from urllib.parse import parse_qsl, urlencode, urlsplit

import pytest
from reflex.istate.data import RouterData

from onboard_app.settings import OAuthClientSettings, Settings, override_settings
from onboard_app.state.auth import LoginState
from onboard_app.state.explore import ExploreState
from onboard_app.state.oauth import OAuthState
from onboard_app.state.onboarding import OnboardingState
from onboard_app.state.session import SessionState
from onboard_app.state.settings import SettingsState
from tests.conftest import make_settings
from tests.fakes.github import GitHubFake, GitHubUser
from tests.security.conftest import (
    PASSWORD,
    fill_interests,
    fill_preferences,
    fill_profile,
    new_tab,
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
    await tab.call(SettingsState.save_profile)
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
