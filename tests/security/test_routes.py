"""Routes through the pages' real ``on_load`` handlers, and ``next=`` after a real login.

``tests/unit/test_access.py`` and ``tests/unit/test_routes.py`` cover ``decide`` and
``safe_next`` as functions; here the same cases go through the handlers a browser runs
(``open_step``, ``ExploreState.load``, ``SettingsState.load``, ``LoginState.log_in``,
``SignupState.sign_up``, ``OAuthState.start_login``), checking what the user is shown.
"""

from __future__ import annotations

from urllib.parse import urlencode

import pytest
from reflex.istate.data import RouterData

from onboard_app.services.onboarding import wizard_steps
from onboard_app.settings import OAuthClientSettings, Settings, override_settings
from onboard_app.state.auth import LoginState, SignupState, VerifyEmailState
from onboard_app.state.explore import ExploreState
from onboard_app.state.oauth import OAuthState
from onboard_app.state.onboarding import OnboardingState
from onboard_app.state.session import SessionState
from onboard_app.state.settings import SettingsState
from tests.conftest import make_settings
from tests.security.conftest import (
    PASSWORD,
    completed_person,
    fill_interests,
    fill_profile,
    new_tab,
    sign_up,
    snapshot,
    unique_email,
)
from tests.state.harness import Client, redirects
from tests.state.mail import last_mail

WIZARD_PAGES = [f"/onboarding/{step}" for step in wizard_steps()]

HOSTILE_NEXT = [
    "https://evil.example/",
    "http://evil.example/explore",
    "//evil.example",
    "//evil.example/explore",
    "///evil.example",
    "/\\evil.example",
    "\\\\evil.example",
    "/\\/evil.example",
    "/%2f%2fevil.example",
    "/%2F%2Fevil.example",
    "%2F%2Fevil.example",
    "/explore%2F..%2F..%2Fevil",
    "javascript:alert(document.domain)",
    "JaVaScRiPt:alert(1)",
    "data:text/html,<script>alert(1)</script>",
    "/explore\r\nSet-Cookie: onboard_session=x",
    "/explore%0d%0aLocation:%20https://evil.example",
    "/explore\n",
    "/explore\t",
    "/explore#@evil.example",
    "/explore?next=//evil.example",
    "/settings/../explore",
    "/settings?x=1",
    "/settings ",
    " /settings",
    "/SETTINGS",
    "/auth/callback/github",
    "/login",
    "",
]


def navigate_encoded(tab: Client, path: str, next_param: str) -> None:
    """Open ``path?next=...`` with the value percent-encoded, as a browser sends it.

    (The shared harness joins the query unencoded, so ``\n`` or ``#`` would be cut off by
    the URL parser before the app saw them.)
    """
    query = urlencode({"next": next_param})
    tab.root.router = RouterData.from_router_data(
        {
            "pathname": path,
            "query": {"next": next_param},
            "asPath": f"{path}?{query}",
            "headers": {"origin": "http://localhost:3000"},
            "ip": tab.ip,
        }
    )
    assert tab.root.router.url.query_parameters.get("next", "") == next_param


async def open_page(tab: Client, path: str) -> list[str]:
    """Run the on_load of the page at ``path`` (as app.add_page registered it)."""
    page = path.rstrip("/")
    if page.startswith("/onboarding/"):
        return redirects(await tab.open(path, OnboardingState.open_step))
    if page == "/explore":
        return redirects(await tab.open(path, ExploreState.load))
    if page == "/settings":
        return redirects(await tab.open(path, SettingsState.load))
    tab.navigate(path)
    return redirects(await tab.call(SessionState.guard))


# --- direct URLs ----------------------------------------------------------------------------


async def test_onboarding_user_typing_later_urls_is_sent_back(app_db: Settings) -> None:
    person = await sign_up()
    await fill_profile(person.tab)  # reached: interests
    tab = person.tab
    before = snapshot(app_db)
    for path in [*WIZARD_PAGES[2:], "/explore", "/settings", "/explore/", "/settings/"]:
        assert await open_page(tab, path) == ["/onboarding/interests"], path
        assert tab.state(ExploreState).cards == []
    for path in WIZARD_PAGES[2:]:
        assert await open_page(tab, path + "/") == ["/onboarding/interests"], path
    assert snapshot(app_db) == before  # a refused page writes nothing, not even an event
    # Earlier and current steps open, with the saved answers; only their openings are new.
    assert await open_page(tab, "/onboarding/profile/") == []
    assert tab.state(OnboardingState).values["display_name"] == "Grace Hopper"
    assert await open_page(tab, "/onboarding/interests") == []
    after = snapshot(app_db)
    assert after[:2] == before[:2]
    new_events = [row[2:4] for row in after[2] if row not in before[2]]
    assert new_events == [("opened", "profile"), ("opened", "interests")]


async def test_explore_while_onboarding_shows_no_catalogue(app_db: Settings) -> None:
    person = await sign_up()
    await fill_profile(person.tab)
    await fill_interests(person.tab)  # reached: preferences
    tab = person.tab
    assert await open_page(tab, "/explore") == ["/onboarding/preferences"]
    explore = tab.state(ExploreState)
    assert explore.loaded is False and explore.cards == [] and explore.total == 0
    # Its handlers do nothing for this user either.
    for handler, args in (
        (ExploreState.search, ("python",)),
        (ExploreState.toggle_chip, ("python",)),
        (ExploreState.next_page, ()),
    ):
        assert redirects(await tab.call(handler, *args)) == ["/onboarding/preferences"]
        assert explore.cards == []


async def test_completed_user_opening_onboarding_goes_to_explore(app_db: Settings) -> None:
    person = await completed_person()
    before = snapshot(app_db)
    for path in [*WIZARD_PAGES, *(p + "/" for p in WIZARD_PAGES)]:
        assert await open_page(person.tab, path) == ["/explore"], path
        assert person.tab.state(OnboardingState).loaded is False
    assert snapshot(app_db) == before


async def test_anonymous_direct_urls_go_to_login_and_load_nothing(app_db: Settings) -> None:
    tab = new_tab()
    for path in [*WIZARD_PAGES, "/explore", "/settings"]:
        assert await open_page(tab, path) == [f"/login?next={path}"]
    assert tab.state(ExploreState).cards == []
    assert tab.state(OnboardingState).loaded is False
    assert tab.state(SettingsState).loaded is False


# --- next= after a real login ---------------------------------------------------------------


async def test_login_never_follows_a_hostile_next(app_db: Settings) -> None:
    person = await completed_person()
    followed = {}
    for next_param in HOSTILE_NEXT:
        tab = new_tab()
        navigate_encoded(tab, "/login", next_param)
        events = await tab.call(LoginState.log_in, {"email": person.email, "password": PASSWORD})
        assert tab.state(SessionState).signed_in, next_param
        if redirects(events) != ["/explore"]:
            followed[next_param] = redirects(events)
    assert followed == {}


async def test_login_follows_an_allowed_next_only_as_far_as_the_user_may_go(
    app_db: Settings,
) -> None:
    """Control for the test above: ``next`` is honoured when it is legitimate."""
    person = await completed_person()
    tab = new_tab()
    tab.navigate("/login", {"next": "/settings"})
    events = await tab.call(LoginState.log_in, {"email": person.email, "password": PASSWORD})
    assert redirects(events) == ["/settings"]
    onboarding = await sign_up()
    tab = new_tab()
    tab.navigate("/login", {"next": "/settings"})
    events = await tab.call(LoginState.log_in, {"email": onboarding.email, "password": PASSWORD})
    assert redirects(events) == ["/onboarding/profile"]


@pytest.mark.parametrize("next_param", HOSTILE_NEXT[:13], ids=repr)
async def test_signup_never_follows_a_hostile_next(app_db: Settings, next_param: str) -> None:
    tab = new_tab()
    email = unique_email()
    navigate_encoded(tab, "/signup", next_param)
    events = await tab.call(SignupState.sign_up, {"email": email, "password": PASSWORD})
    assert redirects(events) == ["/verify-email"]
    events = await tab.call(VerifyEmailState.submit_code, {"otp": last_mail(email).code})
    assert redirects(events) == ["/onboarding/profile"]


@pytest.mark.parametrize("next_param", HOSTILE_NEXT, ids=repr)
async def test_oauth_start_drops_a_hostile_next(app_db: Settings, next_param: str) -> None:
    github = OAuthClientSettings(
        name="github",
        label="Sign in with GitHub",
        client_id="id",
        client_secret="secret",
        authorize_url="https://github.invalid/login/oauth/authorize",
        token_url="https://github.invalid/login/oauth/access_token",
        api_url="https://api.github.invalid",
    )
    override_settings(make_settings(database_url=app_db.database_url, github=github))
    try:
        tab = new_tab()
        navigate_encoded(tab, "/login", next_param)
        events = await tab.call(OAuthState.start_login, "github")
        (target,) = redirects(events)
        assert target.startswith("https://github.invalid/login/oauth/authorize?")
        assert "evil" not in target and "javascript" not in target.lower()
        assert tab.state(OAuthState)._pending["next_path"] is None
    finally:
        override_settings(app_db)
