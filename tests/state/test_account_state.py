"""Account settings through the real handlers: honest use and crafted calls.

Each tab is a browser tab of its own (``tests/state/harness.py``); mail is read from the
development mailbox, as its recipient would read it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import pytest

from onboard_app import routes
from onboard_app.services import account_settings as core
from onboard_app.services import passwords, users
from onboard_app.services.accounts import LOGIN_FAILED
from onboard_app.services.email_links import REFUSAL_MESSAGES, Refusal
from onboard_app.services.sessions import authenticate
from onboard_app.services.tokens import TokenRejected, verify_session_token
from onboard_app.settings import Settings, override_settings
from onboard_app.state.account import (
    AccountState,
    ConfirmEmailState,
    DeleteAccountState,
    EmailChangeState,
    PasswordChangeState,
)
from onboard_app.state.auth import LoginState
from onboard_app.state.oauth import OAuthState
from onboard_app.state.onboarding import OnboardingState
from onboard_app.state.session import SessionState
from tests.fakes.github import GitHubFake, GitHubUser
from tests.state.conftest import PASSWORD, unique_email
from tests.state.harness import Client, redirects, toasts
from tests.state.mail import last_mail, mails_to, open_link, sign_up_and_confirm
from tests.state.test_auth_state import focused
from tests.state.wizard import reach_review
from tests.unit.test_account_settings import count
from tests.unit.test_oauth import GITHUB_CALLBACK, browser_visit, github_settings

pytestmark = pytest.mark.asyncio

NEW_PASSWORD = "lantern drizzle oboe"
_next_ip = iter(range(1, 60_000))


def new_tab() -> Client:
    n = next(_next_ip)
    return Client(ip=f"2001:db8:acc::{n // 256:x}:{n % 256:x}")


async def completed(tab: Client | None = None, email: str | None = None) -> tuple[Client, str]:
    """A tab signed in as a new user who finished onboarding, on /settings."""
    tab = tab or new_tab()
    email = email or unique_email("acct")
    assert redirects(await sign_up_and_confirm(tab, email)) == ["/onboarding/profile"]
    await reach_review(tab)
    assert redirects(await tab.call(OnboardingState.finish_onboarding)) == ["/explore"]
    tab.navigate(routes.SETTINGS)
    assert await tab.call(AccountState.load) == []
    return tab, email


async def log_in(tab: Client, email: str, password: str) -> list[Any]:
    tab.navigate(routes.LOGIN)
    return await tab.call(LoginState.log_in, {"email": email, "password": password})


def ref(element_id: str) -> str:
    """The ref Reflex gives the element of an id (what ``rx.set_focus`` names)."""
    return "ref_" + element_id.replace("-", "_")


def token(tab: Client) -> str:
    return tab.state(SessionState).token


def user_id_of(email: str) -> int:
    user = users.get_user_by_email(email)
    assert user is not None and user.id is not None
    return user.id


# --- the sections ---------------------------------------------------------------------------


async def test_the_sections_show_the_account_as_stored(app_db: Settings) -> None:
    tab, email = await completed()
    account = tab.state(AccountState)
    assert (account.loaded, account.email, account.has_password, account.provider) == (
        True,
        email,
        True,
        "",
    )
    assert account.pending_email == ""


async def test_nobody_and_unfinished_users_get_nothing(app_db: Settings) -> None:
    anonymous = new_tab()
    anonymous.navigate(routes.SETTINGS)
    assert redirects(await anonymous.call(AccountState.load)) == ["/login?next=/settings"]
    assert anonymous.state(AccountState).email == ""
    wizard = new_tab()
    await sign_up_and_confirm(wizard, unique_email())
    wizard.navigate(routes.SETTINGS)
    events = await wizard.call(
        EmailChangeState.request_change,
        {"new_email": unique_email(), "current_password": PASSWORD},
    )
    assert redirects(events) == ["/onboarding/profile"]
    assert wizard.state(AccountState).pending_email == ""


# --- email ----------------------------------------------------------------------------------


async def test_changing_the_email_with_the_mailed_code_remints_this_tab(app_db: Settings) -> None:
    tab, old = await completed()
    new = unique_email("new")
    before = token(tab)
    events = await tab.call(
        EmailChangeState.request_change, {"new_email": new.upper(), "current_password": PASSWORD}
    )
    assert focused(events) == [ref("email-code")]
    assert tab.state(AccountState).pending_email == new
    assert tab.state(EmailChangeState).form_error == ""
    verify, notice = last_mail(new, "email_change_verify"), last_mail(old, "email_change_notice")
    assert new in notice.text and "/reset-password#token=" in notice.link
    assert users.get_user_by_email(old) is not None  # nothing changed yet

    events = await tab.call(EmailChangeState.confirm_code, {"code": verify.code})
    assert any(new in t for t in toasts(events)), events
    assert users.get_user_by_email(new) is not None and users.get_user_by_email(old) is None
    session = tab.state(SessionState)
    assert session.user_email == new and session.token != before
    claims = verify_session_token(session.token, app_db)
    assert not isinstance(claims, TokenRejected)
    assert claims.user_id == user_id_of(new)
    assert tab.state(AccountState).email == new and tab.state(AccountState).pending_email == ""
    # Log in with the new address from now on.
    assert redirects(await log_in(new_tab(), new, PASSWORD)) == ["/explore"]
    assert (await log_in(new_tab(), old, PASSWORD)) == []


async def test_a_wrong_password_is_a_field_error_and_nothing_is_mailed(app_db: Settings) -> None:
    tab, _ = await completed()
    new = unique_email("new")
    events = await tab.call(
        EmailChangeState.request_change, {"new_email": new, "current_password": "not it"}
    )
    state = tab.state(EmailChangeState)
    assert state.field_errors == {"current_password": core.WRONG_PASSWORD}
    assert focused(events) == [ref("email-password")]
    assert state.new_email == new  # what was typed stays
    assert tab.state(AccountState).pending_email == ""
    assert mails_to(new) == []


async def test_password_attempts_are_throttled_like_logins(app_db: Settings) -> None:
    tab, email = await completed()
    for _ in range(app_db.login_max_failures_per_account):
        await tab.call(
            EmailChangeState.request_change,
            {"new_email": unique_email(), "current_password": "wrong wrong"},
        )
    await tab.call(
        EmailChangeState.request_change,
        {"new_email": unique_email(), "current_password": PASSWORD},
    )
    assert tab.state(EmailChangeState).form_error.startswith(core.TOO_MANY_PASSWORDS)
    assert tab.state(AccountState).pending_email == ""
    # The login of the same account counts on the same counter.
    other = new_tab()
    await log_in(other, email, PASSWORD)
    assert other.state(LoginState).form_error.startswith("Too many failed attempts.")


async def test_a_taken_address_answers_exactly_like_a_free_one(app_db: Settings) -> None:
    _, taken = await completed()
    asking, asking_email = await completed()
    control, _ = await completed()
    free = unique_email("free")
    for tab, address in ((asking, taken), (control, free)):
        await tab.call(
            EmailChangeState.request_change, {"new_email": address, "current_password": PASSWORD}
        )
    for name in ("form_error", "field_errors", "busy", "new_email"):
        assert getattr(asking.state(EmailChangeState), name) == getattr(
            control.state(EmailChangeState), name
        ), name
    assert asking.state(AccountState).pending_email == taken
    assert control.state(AccountState).pending_email == free
    # Its owner is told; nothing that could confirm it went anywhere.
    attempt = last_mail(taken, "email_change_attempt")
    assert "#token=" not in attempt.text
    assert mails_to(taken, "email_change_verify") == []
    assert last_mail(asking_email, "email_change_notice")
    # A reload says the same: the change waits for that address.
    asking.navigate(routes.SETTINGS)
    await asking.call(AccountState.load)
    assert asking.state(AccountState).pending_email == taken
    # Any code typed is simply not valid.
    await asking.call(EmailChangeState.confirm_code, {"code": "123456"})
    assert asking.state(EmailChangeState).field_errors == {
        "code": REFUSAL_MESSAGES[Refusal.INVALID]
    }


async def test_the_link_in_the_same_browser_keeps_it_signed_in_with_a_new_token(
    app_db: Settings,
) -> None:
    tab, _ = await completed()
    new = unique_email("new")
    await tab.call(
        EmailChangeState.request_change, {"new_email": new, "current_password": PASSWORD}
    )
    letter = last_mail(new, "email_change_verify")
    before = token(tab)
    open_link(tab, letter)
    events = await tab.call(ConfirmEmailState.open_link)
    assert redirects(events) == [routes.SETTINGS]
    assert token(tab) != before and tab.state(SessionState).user_email == new
    assert not isinstance(authenticate(token(tab)), TokenRejected)
    # Replayed: used.
    open_link(tab, letter)
    assert redirects(await tab.call(ConfirmEmailState.open_link)) == []
    assert tab.state(ConfirmEmailState).error == REFUSAL_MESSAGES[Refusal.USED]


async def test_the_link_elsewhere_makes_the_change_and_says_to_log_in(app_db: Settings) -> None:
    tab, _ = await completed()
    new = unique_email("new")
    await tab.call(
        EmailChangeState.request_change, {"new_email": new, "current_password": PASSWORD}
    )
    phone = new_tab()
    open_link(phone, last_mail(new, "email_change_verify"))
    events = await phone.call(ConfirmEmailState.open_link)
    assert redirects(events) == []
    assert phone.state(ConfirmEmailState).changed_to == new
    assert token(phone) == ""  # the link signs nobody in
    assert users.get_user_by_email(new) is not None


async def test_another_users_link_is_refused_and_keeps_working_for_its_owner(
    app_db: Settings,
) -> None:
    alice, alice_email = await completed()
    mallory, mallory_email = await completed()
    new = unique_email("alice-new")
    await alice.call(
        EmailChangeState.request_change, {"new_email": new, "current_password": PASSWORD}
    )
    letter = last_mail(new, "email_change_verify")
    open_link(mallory, letter)
    assert redirects(await mallory.call(ConfirmEmailState.open_link)) == []
    assert mallory.state(ConfirmEmailState).error == REFUSAL_MESSAGES[Refusal.INVALID]
    assert users.get_user_by_email(mallory_email) is not None
    assert users.get_user_by_email(alice_email) is not None
    # Mallory cannot use the code either: it is checked against her own pending change.
    await mallory.call(EmailChangeState.confirm_code, {"code": letter.code})
    assert users.get_user_by_email(new) is None
    open_link(alice, letter)
    assert redirects(await alice.call(ConfirmEmailState.open_link)) == [routes.SETTINGS]
    assert users.get_user_by_email(new) is not None


async def test_cancelling_a_change_kills_its_link(app_db: Settings) -> None:
    tab, _ = await completed()
    new = unique_email("new")
    await tab.call(
        EmailChangeState.request_change, {"new_email": new, "current_password": PASSWORD}
    )
    events = await tab.call(EmailChangeState.cancel_change)
    assert focused(events) == [ref("new-email")]
    assert tab.state(AccountState).pending_email == ""
    open_link(tab, last_mail(new, "email_change_verify"))
    await tab.call(ConfirmEmailState.open_link)
    assert tab.state(ConfirmEmailState).error == REFUSAL_MESSAGES[Refusal.INVALID]


@pytest.mark.parametrize(
    "form",
    [None, "x", {"new_email": ["a@b.co"]}, {"new_email": "a\ud800@b.co", "current_password": 1}],
)
async def test_crafted_change_requests_fail_cleanly(app_db: Settings, form: object) -> None:
    tab, _ = await completed()
    await tab.call(EmailChangeState.request_change, form)
    assert set(tab.state(EmailChangeState).field_errors) <= {"new_email", "current_password"}
    assert tab.state(EmailChangeState).field_errors
    assert tab.state(AccountState).pending_email == ""


async def test_the_confirm_page_without_a_token_says_so(app_db: Settings) -> None:
    tab = new_tab()
    tab.navigate(routes.CONFIRM_EMAIL)
    assert await tab.call(ConfirmEmailState.open_link) == []
    assert tab.state(ConfirmEmailState).error == REFUSAL_MESSAGES[Refusal.INVALID]


# --- password -------------------------------------------------------------------------------


async def test_changing_the_password_ends_other_sessions_and_keeps_this_one(
    app_db: Settings,
) -> None:
    tab, email = await completed()
    other = new_tab()
    assert redirects(await log_in(other, email, PASSWORD)) == ["/explore"]
    before = token(tab)
    events = await tab.call(
        PasswordChangeState.change_password,
        {"current_password": PASSWORD, "new_password": NEW_PASSWORD},
    )
    assert any("password has been changed" in t for t in toasts(events))
    assert token(tab) != before
    assert not isinstance(authenticate(token(tab)), TokenRejected)
    assert isinstance(authenticate(token(other)), TokenRejected)
    other.navigate(routes.SETTINGS)
    assert redirects(await other.call(AccountState.load)) == ["/login?next=/settings"]
    # The tab goes on working, and the mail tells the owner.
    tab.navigate(routes.SETTINGS)
    assert await tab.call(AccountState.load) == []
    assert last_mail(email, "password_changed")
    assert (await log_in(new_tab(), email, PASSWORD)) == []
    assert redirects(await log_in(new_tab(), email, NEW_PASSWORD)) == ["/explore"]


async def test_refused_password_changes_are_tied_to_their_fields(app_db: Settings) -> None:
    tab, email = await completed()
    events = await tab.call(
        PasswordChangeState.change_password,
        {"current_password": "nope nope", "new_password": NEW_PASSWORD},
    )
    assert tab.state(PasswordChangeState).field_errors == {"current_password": core.WRONG_PASSWORD}
    assert focused(events) == [ref("current-password")]
    events = await tab.call(
        PasswordChangeState.change_password,
        {"current_password": PASSWORD, "new_password": "password123"},
    )
    errors = tab.state(PasswordChangeState).field_errors
    assert list(errors) == ["password"] and "common" in errors["password"]
    assert focused(events) == [ref("new-password")]
    # The meter's verdict clears the error once what is typed is acceptable.
    await tab.call(PasswordChangeState.rate_password, NEW_PASSWORD)
    assert tab.state(PasswordChangeState).field_errors == {}
    stored = users.get_user_by_email(email)
    assert stored is not None and passwords.verify_password(stored.password_hash, PASSWORD)
    assert mails_to(email, "password_changed") == []


# --- deletion -------------------------------------------------------------------------------


async def test_deleting_signs_out_lands_on_the_goodbye_page_and_mails(app_db: Settings) -> None:
    tab, email = await completed()
    uid = user_id_of(email)
    other = new_tab()
    await log_in(other, email, PASSWORD)
    events = await tab.call(
        DeleteAccountState.delete_account, {"confirm": "delete", "current_password": "nope"}
    )
    assert tab.state(DeleteAccountState).field_errors == {"current_password": core.WRONG_PASSWORD}
    assert focused(events) == [ref("delete-password")]
    events = await tab.call(
        DeleteAccountState.delete_account, {"confirm": "yes", "current_password": PASSWORD}
    )
    assert tab.state(DeleteAccountState).field_errors == {"confirm": core.TYPE_TO_CONFIRM}
    assert focused(events) == [ref("delete-confirm")]
    assert count(app_db, "users", uid) == 1

    events = await tab.call(
        DeleteAccountState.delete_account, {"confirm": "DELETE", "current_password": PASSWORD}
    )
    assert redirects(events) == [routes.ACCOUNT_DELETED]
    assert token(tab) == "" and tab.state(SessionState).signed_in is False
    assert tab.state(AccountState).email == ""  # every user var is cleared ...
    assert tab.state(DeleteAccountState).farewell_email == email  # ... but the goodbye
    for table in ("users", "onboarding_answers", "email_links", "device_sessions"):
        assert count(app_db, table, uid) == 0, table
    assert last_mail(email, "account_deleted")
    assert isinstance(authenticate(token(other)), TokenRejected)
    # The old login fails like any wrong one.
    failed = new_tab()
    assert await log_in(failed, email, PASSWORD) == []
    assert failed.state(LoginState).form_error == LOGIN_FAILED


async def test_crafted_deletes_delete_nothing(app_db: Settings) -> None:
    tab, email = await completed()
    for form in (None, {}, {"confirm": ["DELETE"]}, {"confirm": "DELETE"}):
        await tab.call(DeleteAccountState.delete_account, form)
        assert users.get_user_by_email(email) is not None
    # The re-authentication's second half without its first half does nothing.
    events = await tab.call(DeleteAccountState.finish_reauthentication)
    assert redirects(events) == [routes.SETTINGS]
    assert users.get_user_by_email(email) is not None


# --- an account without a password: GitHub ---------------------------------------------------


@pytest.fixture(scope="module")
def github_server() -> Iterator[GitHubFake]:
    with GitHubFake(redirect_uri=GITHUB_CALLBACK) as fake:
        yield fake


@pytest.fixture
def github(github_server: GitHubFake, app_db: Settings) -> Iterator[GitHubFake]:
    github_server.reset()
    override_settings(dataclasses.replace(app_db, github=github_settings(github_server)))
    yield github_server
    override_settings(app_db)


async def through_github(tab: Client, authorize: str) -> list[Any]:
    """The browser's part of the round trip, then the callback page's loader."""
    tab.navigate(urlsplit(GITHUB_CALLBACK).path, browser_visit(authorize))
    return await tab.call(OAuthState.complete_login)


async def github_person(github: GitHubFake, github_id: int) -> Client:
    github.user = GitHubUser.with_verified_email(f"octo-{github_id}@example.com", id=github_id)
    tab = new_tab()
    tab.navigate(routes.LOGIN)
    (authorize,) = redirects(await tab.call(OAuthState.start_login, "github"))
    assert redirects(await through_github(tab, authorize)) == ["/onboarding/profile"]
    await reach_review(tab)
    assert redirects(await tab.call(OnboardingState.finish_onboarding)) == ["/explore"]
    tab.navigate(routes.SETTINGS)
    await tab.call(AccountState.load)
    return tab


async def test_a_github_account_is_told_why_and_deletes_after_signing_in_again(
    github: GitHubFake, app_db: Settings
) -> None:
    tab = await github_person(github, 81_001)
    account = tab.state(AccountState)
    assert (account.has_password, account.provider, account.provider_name) == (
        False,
        "github",
        "GitHub",
    )
    uid = user_id_of("octo-81001@example.com")
    # No password to check: a change of address or password does nothing.
    await tab.call(
        EmailChangeState.request_change,
        {"new_email": unique_email(), "current_password": "x"},
    )
    assert tab.state(AccountState).pending_email == ""
    events = await tab.call(DeleteAccountState.delete_account, {"confirm": "nope"})
    assert tab.state(DeleteAccountState).field_errors == {"confirm": core.TYPE_TO_CONFIRM}
    assert redirects(events) == []

    (authorize,) = redirects(
        await tab.call(DeleteAccountState.delete_account, {"confirm": "DELETE"})
    )
    assert authorize.startswith(github.authorize_url)
    handed_over = await through_github(tab, authorize)
    assert github.authorize_requests[-1]["prompt"] == "select_account"
    assert [str(e.handler.fn.__name__) for e in handed_over] == ["finish_reauthentication"]
    assert count(app_db, "users", uid) == 1  # nothing yet: the check is next
    events = await tab.call(DeleteAccountState.finish_reauthentication)
    assert redirects(events) == [routes.ACCOUNT_DELETED]
    assert count(app_db, "users", uid) == 0 and token(tab) == ""
    assert last_mail("octo-81001@example.com", "account_deleted")


async def test_another_github_account_deletes_nothing(github: GitHubFake, app_db: Settings) -> None:
    tab = await github_person(github, 81_002)
    uid = user_id_of("octo-81002@example.com")
    (authorize,) = redirects(
        await tab.call(DeleteAccountState.delete_account, {"confirm": "DELETE"})
    )
    github.user = GitHubUser.with_verified_email("someone-else@example.com", id=81_003)
    await through_github(tab, authorize)
    events = await tab.call(DeleteAccountState.finish_reauthentication)
    assert redirects(events) == [routes.SETTINGS]
    assert tab.state(DeleteAccountState).form_error == core.ANOTHER_ACCOUNT
    assert count(app_db, "users", uid) == 1 and token(tab) != ""
    # The callback is one-time: replaying it finds nothing.
    again = await tab.call(DeleteAccountState.finish_reauthentication)
    assert redirects(again) == [routes.SETTINGS] and count(app_db, "users", uid) == 1
