"""Sign-in with GitHub and OpenID Connect in a real browser, against real processes.

One app per module (``reflex run --env prod``) is configured for both providers: GitHub
points at the local GitHub fake (a thread of this process), OpenID Connect at a running
``oauth2-mock-server``. The browser follows every redirect for real: app -> provider ->
callback page -> where the guard says.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, Page, Request, expect

from onboard_app.services.oauth import MESSAGES
from tests.e2e.conftest import (
    RunningApp,
    at,
    free_port,
    new_email,
    sign_up,
    start_app,
    stop_app,
    stored_token,
    token_claims,
)
from tests.fakes.github import GitHubFake, GitHubUser
from tests.fakes.oidc import OidcProvider, start_oidc_provider

OIDC_LABEL = "Sign in with Acme ID"
_next_github_id = iter(range(910_000, 920_000))


@pytest.fixture(scope="module")
def app_port() -> int:
    return free_port()


@pytest.fixture(scope="module")
def github_server(app_port: int) -> Iterator[GitHubFake]:
    with GitHubFake(redirect_uri=f"http://localhost:{app_port}/auth/callback/github") as fake:
        yield fake


@pytest.fixture(scope="module")
def oidc_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OidcProvider]:
    provider = start_oidc_provider(tmp_path_factory.mktemp("oidc-e2e"))
    yield provider
    provider.stop()


@pytest.fixture(scope="module")
def app_server(
    tmp_path_factory: pytest.TempPathFactory,
    app_port: int,
    github_server: GitHubFake,
    oidc_server: OidcProvider,
) -> Iterator[RunningApp]:
    """This module's app (overrides the session's): both providers configured.

    It builds into its own web folder: the frontend bakes in its backend's address, so
    sharing ``.web`` with the session's app would point that app's pages at this one.
    """
    tmp = tmp_path_factory.mktemp("oauth-app")
    app = start_app(
        tmp,
        port=app_port,
        REFLEX_WEB_WORKDIR=str(tmp / "web"),
        ONBOARD_OAUTH_TIMEOUT="5",
        **github_server.app_env(),
        **oidc_server.app_env(OIDC_LABEL),
    )
    yield app
    stop_app(app)


@pytest.fixture
def github(github_server: GitHubFake) -> GitHubFake:
    github_server.reset()
    return github_server


@pytest.fixture
def oidc(oidc_server: OidcProvider) -> Iterator[OidcProvider]:
    oidc_server.reset()
    yield oidc_server
    oidc_server.reset()


def new_github_user(name: str = "Grace Hopper", email: str | None = None) -> GitHubUser:
    github_id = next(_next_github_id)
    return GitHubUser.with_verified_email(
        email or new_email("gh"),
        id=github_id,
        login=f"user{github_id}",
        name=name,
        avatar_url=f"https://avatars.example.com/u/{github_id}",
    )


def rows(app: RunningApp, where: str, *params: object) -> list[tuple[object, ...]]:
    path = app.database_url.removeprefix("sqlite:///")
    with sqlite3.connect(path) as db:
        return db.execute(
            f"select id, email, display_name from users where {where}", params
        ).fetchall()


def user_count(app: RunningApp) -> int:
    return len(rows(app, "1 = 1"))


def click_provider(page: Page, label: str) -> None:
    page.goto("/login")
    page.get_by_role("button", name=label).click()


def expect_login_error(page: Page, code: str) -> None:
    page.wait_for_url(at(f"/login?error={code}"))
    expect(page.get_by_role("alert")).to_have_text(MESSAGES[code])
    assert stored_token(page) == ""


def new_page(browser: Browser, app: RunningApp) -> Page:
    context = browser.new_context(base_url=app.url)
    context.set_default_timeout(15_000)
    return context.new_page()


# --- GitHub ------------------------------------------------------------------------------


def test_login_page_shows_both_providers(page: Page) -> None:
    page.goto("/login")
    expect(page.locator("#oauth-github")).to_have_text("Sign in with GitHub")
    expect(page.locator("#oauth-oidc")).to_have_text(OIDC_LABEL)


def test_github_sign_up_prefills_the_profile_and_a_second_login_finds_the_account(
    page: Page, github: GitHubFake, app_server: RunningApp, browser: Browser
) -> None:
    github.user = new_github_user("Grace Hopper")
    requested: list[str] = []
    page.on("request", lambda request: requested.append(request.url))

    click_provider(page, "Sign in with GitHub")
    page.wait_for_url(at("/onboarding/profile"))
    expect(page.locator("#display_name")).to_have_value("Grace Hopper")
    token = stored_token(page)
    assert token_claims(token)["onb"] == "profile"
    assert not any(token in url for url in requested)  # the JWT never travels in a URL
    [(user_id, email, name)] = rows(app_server, "github_id = ?", github.user.id)
    assert (email, name) == (github.user.emails[0]["email"], "Grace Hopper")

    # The user answers the first step; a later login (another browser) resumes there.
    page.locator("#display_name").fill("Rear Admiral Hopper")
    page.locator("#role").click()
    page.get_by_role("option", name="Software developer").click()
    page.locator("#next").click()
    page.wait_for_url(at("/onboarding/interests"))

    other = new_page(browser, app_server)
    try:
        click_provider(other, "Sign in with GitHub")
        other.wait_for_url(at("/onboarding/interests"))
        assert token_claims(stored_token(other))["sub"] == str(user_id)
    finally:
        other.context.close()
    assert rows(app_server, "github_id = ?", github.user.id) == [
        (user_id, email, "Rear Admiral Hopper")
    ]


def test_forged_state_is_refused_and_creates_nothing(
    page: Page, github: GitHubFake, app_server: RunningApp
) -> None:
    github.user = new_github_user()
    github.forged_state = "state-from-an-attackers-link"
    before = user_count(app_server)
    click_provider(page, "Sign in with GitHub")
    expect_login_error(page, "state_mismatch")
    assert github.token_requests == []
    assert user_count(app_server) == before


def test_replayed_callback_url_is_refused(
    page: Page, github: GitHubFake, app_server: RunningApp, browser: Browser
) -> None:
    github.user = new_github_user()
    callbacks: list[str] = []

    def remember(request: Request) -> None:
        if request.is_navigation_request() and "/auth/callback/github" in request.url:
            callbacks.append(request.url)

    page.on("request", remember)
    click_provider(page, "Sign in with GitHub")
    page.wait_for_url(at("/onboarding/profile"))
    callback = callbacks[0]
    assert re.search(r"[?&]code=", callback) and re.search(r"[?&]state=", callback)
    count = user_count(app_server)

    # Another browser opening the same callback URL: the state belongs to the first tab.
    other = new_page(browser, app_server)
    try:
        other.goto(callback)
        expect_login_error(other, "state_missing")
    finally:
        other.context.close()

    # The same tab, logged out, replaying it: the state was used up.
    page.locator("#wizard-logout").click()
    page.wait_for_url(at("/login"))
    page.goto(callback)
    expect_login_error(page, "state_missing")
    assert user_count(app_server) == count
    assert len(github.token_requests) == 1


def test_access_denied_at_github_shows_a_message(
    page: Page, github: GitHubFake, app_server: RunningApp
) -> None:
    github.deny = True
    before = user_count(app_server)
    click_provider(page, "Sign in with GitHub")
    expect_login_error(page, "provider_error")
    assert user_count(app_server) == before


def test_token_endpoint_failure_shows_a_message(
    page: Page, github: GitHubFake, app_server: RunningApp
) -> None:
    github.user = new_github_user()
    github.token_status = 500
    before = user_count(app_server)
    click_provider(page, "Sign in with GitHub")
    expect_login_error(page, "token_error")
    assert user_count(app_server) == before


def test_github_email_of_a_local_account_is_not_linked(
    page: Page, github: GitHubFake, app_server: RunningApp, browser: Browser
) -> None:
    email = new_email("local")
    sign_up(page, email)
    github.user = new_github_user(email=email)
    other = new_page(browser, app_server)
    try:
        click_provider(other, "Sign in with GitHub")
        expect_login_error(other, "email_taken")
        expect(other.get_by_role("alert")).to_have_text(
            "An account with this email already exists. Log in with your password."
        )
    finally:
        other.context.close()
    assert rows(app_server, "github_id = ?", github.user.id) == []
    assert len(rows(app_server, "email = ?", email)) == 1


# --- OpenID Connect ----------------------------------------------------------------------


def test_oidc_sign_up_prefills_the_profile(
    page: Page, oidc: OidcProvider, app_server: RunningApp
) -> None:
    subject = new_email("sub").split("@")[0]
    email = new_email("oidc")
    oidc.configure(
        id_token_claims={
            "sub": subject,
            "email": email,
            "email_verified": True,
            "name": "Katherine Johnson",
        }
    )
    click_provider(page, OIDC_LABEL)
    page.wait_for_url(at("/onboarding/profile"))
    expect(page.locator("#display_name")).to_have_value("Katherine Johnson")
    assert token_claims(stored_token(page))["onb"] == "profile"
    found = rows(app_server, "oidc_issuer = ? and oidc_subject = ?", oidc.issuer, subject)
    assert [(email_, name) for _, email_, name in found] == [(email, "Katherine Johnson")]


def test_oidc_id_token_with_a_wrong_nonce_is_refused(
    page: Page, oidc: OidcProvider, app_server: RunningApp
) -> None:
    oidc.configure(id_token_claims={"sub": "nonce-victim", "nonce": "replayed-nonce"})
    click_provider(page, OIDC_LABEL)
    expect_login_error(page, "invalid_id_token")
    assert rows(app_server, "oidc_subject = ?", "nonce-victim") == []


def test_oidc_response_naming_its_issuer_signs_in_with_basic_client_credentials(
    page: Page, oidc: OidcProvider, app_server: RunningApp
) -> None:
    subject = new_email("iss").split("@")[0]
    oidc.configure(id_token_claims={"sub": subject}, callback_params={"iss": oidc.issuer})
    click_provider(page, OIDC_LABEL)
    page.wait_for_url(at("/onboarding/profile"))
    assert len(rows(app_server, "oidc_subject = ?", subject)) == 1
    # The mock's discovery lists no method the app supports: HTTP Basic, never the form.
    [request] = oidc.token_requests()
    assert (request["method"], request["secret_in_body"]) == ("client_secret_basic", False)


def test_oidc_response_from_another_issuer_is_refused(
    page: Page, oidc: OidcProvider, app_server: RunningApp
) -> None:
    oidc.configure(
        id_token_claims={"sub": "mix-up-victim"},
        callback_params={"iss": "https://attacker.example.com"},
    )
    click_provider(page, OIDC_LABEL)
    expect_login_error(page, "issuer_mismatch")
    assert oidc.token_requests() == []
    assert rows(app_server, "oidc_subject = ?", "mix-up-victim") == []


def test_oidc_callback_with_a_control_character_is_refused(
    page: Page, oidc: OidcProvider, app_server: RunningApp
) -> None:
    oidc.configure(
        id_token_claims={"sub": "control-victim"}, callback_params={"code": "one\u0000time"}
    )
    click_provider(page, OIDC_LABEL)
    expect_login_error(page, "missing_code")
    assert oidc.token_requests() == []
    assert rows(app_server, "oidc_subject = ?", "control-victim") == []
