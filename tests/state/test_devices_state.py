"""The sessions on /settings: the list, "Sign out", "Sign out everywhere else", and logout.

Each person signs in from several browsers (tabs of their own state tree, address and user
agent) through the real handlers; what a signed-out browser sees is its next event.
"""

from __future__ import annotations

import secrets
from urllib.parse import urlsplit

from sqlmodel import select

from onboard_app import routes
from onboard_app.models import DeviceSession
from onboard_app.services.db import session_scope
from onboard_app.services.tokens import SessionClaims, verify_session_token
from onboard_app.services.users import get_user_by_email
from onboard_app.settings import Settings, get_settings
from onboard_app.state.account_recovery import ResetPasswordState
from onboard_app.state.auth import LoginState
from onboard_app.state.devices import DevicesState, ago
from onboard_app.state.oauth import OAuthState
from onboard_app.state.onboarding import OnboardingState
from onboard_app.state.session import SessionState
from tests.fakes.github import GitHubFake, GitHubUser
from tests.security.test_account_recovery import (
    NEW_PASSWORD,
    ask_reset,
    open_reset_link,
    open_verify_link,
    pending_sign_up,
)
from tests.state.conftest import PASSWORD, unique_email
from tests.state.harness import Client, redirects, toasts
from tests.state.mail import last_mail, sign_up_and_confirm
from tests.unit.test_oauth import GITHUB_CALLBACK, browser_visit

CHROME_LINUX = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Safari/537.36"
)
SAFARI_IPHONE = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1"
)
FIREFOX_MAC = "Mozilla/5.0 (Macintosh; Intel Mac OS X 10.15; rv:128.0) Gecko/20100101 Firefox/128.0"


def browser(user_agent: str) -> Client:
    """A tab of a new browser with its own address."""
    return Client(ip=f"198.51.100.{secrets.randbelow(250) + 1}", user_agent=user_agent)


async def log_in(email: str, user_agent: str) -> Client:
    tab = browser(user_agent)
    tab.navigate("/login")
    events = await tab.call(LoginState.log_in, {"email": email, "password": PASSWORD})
    assert redirects(events) == ["/onboarding/profile"]
    return tab


def user_version(email: str) -> int:
    user = get_user_by_email(email)
    assert user is not None
    return user.token_version


async def devices_of(tab: Client) -> list[tuple[str, bool]]:
    tab.navigate("/settings")
    assert await tab.call(DevicesState.load) == []
    return [(row.label, row.current) for row in tab.state(DevicesState).devices]


async def still_signed_in(tab: Client) -> bool:
    tab.navigate("/onboarding/profile")
    events = await tab.call(OnboardingState.open_step)
    return tab.state(SessionState).signed_in and not redirects(events)


async def test_the_list_names_each_browser_and_marks_this_one(app_db: Settings, signed_up) -> None:
    laptop = browser(CHROME_LINUX)
    email = await signed_up(laptop)
    phone = await log_in(email, SAFARI_IPHONE)
    assert await devices_of(phone) == [("Safari on iPhone", True), ("Chrome on Linux", False)]
    assert await devices_of(laptop) == [("Chrome on Linux", True), ("Safari on iPhone", False)]
    other = laptop.state(DevicesState).devices[1]
    assert other.sign_out_label == "Sign out Safari on iPhone"
    assert other.address == phone.ip
    assert other.activity == "Last active just now" and other.signed_in == "Signed in just now"
    assert laptop.state(DevicesState).devices[0].activity == "Active now"
    assert laptop.state(DevicesState).has_others


async def test_sign_out_ends_the_other_browser_at_its_next_event(
    app_db: Settings, signed_up
) -> None:
    laptop = browser(CHROME_LINUX)
    email = await signed_up(laptop)
    phone = await log_in(email, SAFARI_IPHONE)
    assert await still_signed_in(phone)
    await devices_of(laptop)
    phone_id = laptop.state(DevicesState).devices[1].id

    events = await laptop.call(DevicesState.sign_out_device, phone_id)
    assert toasts(events) and "Signed out Safari on iPhone." in toasts(events)[0]
    assert [row.label for row in laptop.state(DevicesState).devices] == ["Chrome on Linux"]
    assert not laptop.state(DevicesState).has_others
    assert laptop.state(DevicesState).busy == ""

    # The phone's very next event: sent to log in, its token and user data gone.
    phone.navigate("/onboarding/profile")
    events = await phone.call(OnboardingState.open_step)
    assert redirects(events) == ["/login?next=/onboarding/profile"]
    assert phone.state(SessionState).token == ""
    assert phone.state(SessionState).user_email == ""
    # The laptop goes on (its token re-minted at the version that moved).
    assert await still_signed_in(laptop)


async def test_sign_out_everywhere_else_keeps_only_this_browser(
    app_db: Settings, signed_up
) -> None:
    laptop = browser(CHROME_LINUX)
    email = await signed_up(laptop)
    phone = await log_in(email, SAFARI_IPHONE)
    mac = await log_in(email, FIREFOX_MAC)
    events = await mac.call(DevicesState.sign_out_everywhere_else)
    assert any("Signed out everywhere else." in t for t in toasts(events))
    assert [(r.label, r.current) for r in mac.state(DevicesState).devices] == [
        ("Firefox on macOS", True)
    ]
    assert not await still_signed_in(laptop)
    assert not await still_signed_in(phone)
    assert await still_signed_in(mac)
    assert await devices_of(mac) == [("Firefox on macOS", True)]


async def test_log_out_ends_this_browser_only(app_db: Settings, signed_up) -> None:
    laptop = browser(CHROME_LINUX)
    email = await signed_up(laptop)
    phone = await log_in(email, SAFARI_IPHONE)
    events = await laptop.call(SessionState.log_out)
    assert redirects(events) == ["/login"]
    assert not await still_signed_in(laptop)
    assert await still_signed_in(phone)
    assert await devices_of(phone) == [("Safari on iPhone", True)]


async def test_a_sign_in_after_everywhere_else_is_a_new_session(
    app_db: Settings, signed_up
) -> None:
    laptop = browser(CHROME_LINUX)
    email = await signed_up(laptop)
    await log_in(email, SAFARI_IPHONE)
    await laptop.call(DevicesState.sign_out_everywhere_else)
    phone = await log_in(email, SAFARI_IPHONE)
    assert await devices_of(phone) == [("Safari on iPhone", True), ("Chrome on Linux", False)]


async def test_odd_arguments_end_nothing_and_show_nothing(app_db: Settings, signed_up) -> None:
    laptop = browser(CHROME_LINUX)
    email = await signed_up(laptop)
    phone = await log_in(email, SAFARI_IPHONE)
    before = await devices_of(laptop)
    own = laptop.state(DevicesState).devices[0].id
    version = user_version(email)
    for crafted in (own, None, 5, ["x"], {"id": own}, "", "x" * 100_000, "' OR 1=1 --"):
        events = await laptop.call(DevicesState.sign_out_device, crafted)
        assert toasts(events) == [] and redirects(events) == [], crafted
        assert laptop.state(DevicesState).busy == ""
        assert await devices_of(laptop) == before
    assert await still_signed_in(phone) and await still_signed_in(laptop)
    assert user_version(email) == version  # nothing ended, nothing bumped


async def test_signed_out_visitors_are_sent_to_log_in(app_db: Settings) -> None:
    tab = browser(CHROME_LINUX)
    tab.navigate("/settings")
    for handler, args in (
        (DevicesState.load, ()),
        (DevicesState.sign_out_device, ("0" * 32,)),
        (DevicesState.sign_out_everywhere_else, ()),
    ):
        assert redirects(await tab.call(handler, *args)) == ["/login?next=/settings"]
    assert tab.state(DevicesState).devices == [] and not tab.state(DevicesState).loaded


def test_ago_reads_as_people_say_it() -> None:
    assert [ago(s) for s in (-5, 0, 59, 60, 119, 3600, 7200, 86400, 86400 * 3)] == [
        "just now",
        "just now",
        "just now",
        "1 minute ago",
        "1 minute ago",
        "1 hour ago",
        "2 hours ago",
        "1 day ago",
        "3 days ago",
    ]


# --- every way of signing in is a session ----------------------------------------------------


def session_rows(email: str) -> list[DeviceSession]:
    user = get_user_by_email(email)
    assert user is not None
    with session_scope() as db:
        return list(db.exec(select(DeviceSession).where(DeviceSession.user_id == user.id)).all())


def named_session(tab: Client) -> str:
    """The session the tab's token names (it must have one)."""
    claims = verify_session_token(tab.state(SessionState).token, get_settings())
    assert isinstance(claims, SessionClaims) and claims.sid is not None
    return claims.sid


async def test_every_way_of_signing_in_records_a_session(app_db: Settings) -> None:
    # The mailed code (the screen of the tab that signed up).
    by_code = browser(CHROME_LINUX)
    email = unique_email("ways")
    await sign_up_and_confirm(by_code, email, PASSWORD)
    # The mailed link, opened in another browser (a second account).
    _, linked_email = await pending_sign_up()
    by_link, _ = await open_verify_link(
        last_mail(linked_email, "verify_email"), browser(FIREFOX_MAC)
    )
    # The password.
    by_password = await log_in(email, SAFARI_IPHONE)
    # A password reset: it signs in and ends every other session of the account.
    await ask_reset(email)
    by_reset = await open_reset_link(last_mail(email, "password_reset").link, browser(CHROME_LINUX))
    events = await by_reset.call(ResetPasswordState.reset_password, {"password": NEW_PASSWORD})
    assert redirects(events) == ["/onboarding/profile"]

    assert {row.id for row in session_rows(linked_email)} == {named_session(by_link)}
    [reset_row] = session_rows(email)  # the code's and the password's sessions ended
    assert reset_row.id == named_session(by_reset) and reset_row.browser == "Chrome"
    for ended in (by_code, by_password):
        assert not await still_signed_in(ended)


async def test_signing_in_with_a_provider_records_a_session(github: GitHubFake) -> None:
    github.user = GitHubUser.with_verified_email("octo-devices@example.com", id=77_001)
    tab = browser(SAFARI_IPHONE)
    tab.navigate(routes.LOGIN)
    (authorize,) = redirects(await tab.call(OAuthState.start_login, "github"))
    tab.navigate(urlsplit(GITHUB_CALLBACK).path, browser_visit(authorize))
    assert redirects(await tab.call(OAuthState.complete_login)) == ["/onboarding/profile"]
    [row] = session_rows("octo-devices@example.com")
    assert row.id == named_session(tab)
    assert (row.browser, row.device, row.client_address) == ("Safari", "iPhone", tab.ip)
