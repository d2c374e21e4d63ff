"""The sessions on /settings: the list, "Sign out", "Sign out everywhere else", and logout.

Each person signs in from several browsers (tabs of their own state tree, address and user
agent) through the real handlers; what a signed-out browser sees is its next event.
"""

from __future__ import annotations

import secrets

from onboard_app.services.users import get_user_by_email
from onboard_app.settings import Settings
from onboard_app.state.auth import LoginState
from onboard_app.state.devices import DevicesState, ago
from onboard_app.state.onboarding import OnboardingState
from onboard_app.state.session import SessionState
from tests.state.conftest import PASSWORD
from tests.state.harness import Client, redirects, toasts

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
