"""Sign-in with a provider through the handlers: it ends in the one ``sign_in``.

The callback goes where its login was asked to go (when that is allowed), an account with
two-factor authentication on is asked for its code first, the sign-in is audited like every
other, and a database outage sends the tab back to the login page with a message.
"""

from __future__ import annotations

import logging
import time
from urllib.parse import urlsplit

import pytest
from sqlalchemy.exc import OperationalError

from onboard_app import routes
from onboard_app.models import TwoFactor, User, utcnow
from onboard_app.services import oauth, two_factor
from onboard_app.services.db import session_scope
from onboard_app.services.users import get_user_by_email
from onboard_app.settings import Settings, get_settings
from onboard_app.state.auth import LoginState
from onboard_app.state.oauth import OAuthState
from onboard_app.state.onboarding import OnboardingState
from onboard_app.state.session import SessionState
from onboard_app.state.two_factor import TwoFactorSignInState
from tests.fakes.github import GitHubFake, GitHubUser
from tests.state.harness import Client, redirects
from tests.state.two_factor import signed_in
from tests.state.wizard import reach_review
from tests.unit.test_oauth import GITHUB_CALLBACK, browser_visit


async def github_sign_in(tab: Client, next_path: str | None = None) -> list:
    """ "Sign in with GitHub" on ``/login`` (with ``next=``): the events of its callback."""
    tab.navigate(routes.LOGIN, {"next": next_path} if next_path else None)
    (authorize,) = redirects(await tab.call(OAuthState.start_login, "github"))
    tab.navigate(urlsplit(GITHUB_CALLBACK).path, browser_visit(authorize))
    return await tab.call(OAuthState.complete_login)


def account(email: str) -> User:
    user = get_user_by_email(email)
    assert user is not None and user.id is not None
    return user


async def finished_github_user(email: str, github_id: int, github: GitHubFake) -> None:
    """A GitHub account that has finished onboarding (signed in in a tab of its own)."""
    github.user = GitHubUser.with_verified_email(email, id=github_id)
    tab = Client(ip="198.51.100.31")
    assert redirects(await github_sign_in(tab)) == ["/onboarding/profile"]
    await reach_review(tab)
    assert redirects(await tab.call(OnboardingState.finish_onboarding)) == [routes.EXPLORE]


async def test_the_callback_goes_to_the_allowed_next_page_its_login_started_with(
    github: GitHubFake, caplog: pytest.LogCaptureFixture
) -> None:
    await finished_github_user("octo-next@example.com", 77_101, github)
    tab = Client(ip="198.51.100.32")
    with caplog.at_level(logging.INFO, logger="onboard.audit"):
        assert redirects(await github_sign_in(tab, routes.SETTINGS)) == [routes.SETTINGS]
    assert signed_in(tab)
    user_id = account("octo-next@example.com").id
    signins = [r.getMessage() for r in caplog.records if "event=signin " in r.getMessage()]
    assert signins == [f"audit event=signin user={user_id} method=github client={tab.ip}"]
    # A next= that is no allowed route is dropped: the user's home instead.
    for hostile in ("//evil.example/settings", "https://evil.example/", "/settings\\@evil"):
        other = Client(ip="198.51.100.33")
        assert redirects(await github_sign_in(other, hostile)) == [routes.EXPLORE]


async def test_an_unfinished_account_goes_to_its_step_whatever_next_says(
    github: GitHubFake,
) -> None:
    github.user = GitHubUser.with_verified_email("octo-step@example.com", id=77_102)
    tab = Client(ip="198.51.100.34")
    assert redirects(await github_sign_in(tab, routes.SETTINGS)) == ["/onboarding/profile"]


async def test_an_account_with_two_factor_on_is_asked_for_its_code_first(
    github: GitHubFake,
) -> None:
    # No provider account can turn it on today (it needs a password): the hold that every
    # other sign-in has is this one's all the same.
    await finished_github_user("octo-2fa@example.com", 77_103, github)
    user_id = account("octo-2fa@example.com").id
    assert user_id is not None
    secret, key = two_factor.new_secret(), get_settings().current_key
    with session_scope() as session:
        session.add(
            TwoFactor(
                user_id=user_id,
                secret_ciphertext=two_factor.seal(secret, user_id, key),
                secret_key_id=key.kid,
                confirmed_at=utcnow(),
            )
        )
    tab = Client(ip="198.51.100.35")
    assert redirects(await github_sign_in(tab, routes.SETTINGS)) == [
        routes.login_with_next(routes.SETTINGS)
    ]
    assert tab.state(TwoFactorSignInState).code_needed and not signed_in(tab)
    tab.navigate(routes.LOGIN, {"next": routes.SETTINGS})
    code = two_factor.code_at(secret, two_factor.time_step(time.time()))
    events = await tab.call(TwoFactorSignInState.submit_code, {"code": code})
    assert redirects(events) == [routes.SETTINGS] and signed_in(tab)


async def test_a_sign_in_the_database_cannot_record_goes_back_to_the_login_page(
    github: GitHubFake, app_db: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    github.user = GitHubUser.with_verified_email("octo-down@example.com", id=77_104)

    async def database_down(self: SessionState, user: User) -> None:
        raise OperationalError("INSERT INTO device_sessions", {}, Exception("disk I/O error"))

    monkeypatch.setattr(SessionState, "_start", database_down)
    tab = Client(ip="198.51.100.36")
    assert redirects(await github_sign_in(tab)) == [f"{routes.LOGIN}?error=server_error"]
    assert not signed_in(tab) and tab.state(SessionState).token == ""
    # The login page shows why, put on its form by the redirect (its on_load does not).
    assert tab.state(LoginState).form_error == oauth.MESSAGES["server_error"]


async def test_a_denied_sign_in_lands_on_an_emptied_login_form_with_its_message(
    github: GitHubFake,
) -> None:
    tab = Client(ip="198.51.100.37")
    tab.navigate(routes.LOGIN)
    await tab.call(LoginState.log_in, {"email": "", "password": ""})  # an earlier attempt
    github.deny = True
    assert redirects(await github_sign_in(tab)) == [f"{routes.LOGIN}?error=provider_error"]
    login = tab.state(LoginState)
    assert (login.form_error, login.field_errors) == (oauth.MESSAGES["provider_error"], {})
    # Nothing the login page runs as it opens (its on_load) changes that.
    tab.navigate(routes.LOGIN, {"error": "provider_error"})
    assert await tab.call(SessionState.guard) == []
    assert login.form_error == oauth.MESSAGES["provider_error"] and not signed_in(tab)
