"""Account settings attacked through the real handlers: email change, password change, deletion.

Each test plays someone with a tab of the app (the account's owner, a thief with a stolen
session, another user, a visitor with a forwarded mail) and checks what they see and what
the database holds afterwards. Mail is read from the development mailbox (in production
mode, from the test process's SMTP server), as its recipient would.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Iterator
from datetime import timedelta

import pytest
import sqlalchemy as sa
from reflex.state import UpdateVarsInternalState
from sqlmodel import col

from onboard_app import routes
from onboard_app.models import EmailLink, utcnow
from onboard_app.services import account_settings as core
from onboard_app.services import oauth, users
from onboard_app.services.db import session_scope
from onboard_app.services.email_links import MAX_CODE_ATTEMPTS, REFUSAL_MESSAGES, Refusal
from onboard_app.services.sessions import authenticate
from onboard_app.services.tokens import TokenRejected
from onboard_app.settings import Settings, override_settings
from onboard_app.state.account import (
    AccountState,
    ConfirmEmailState,
    DeleteAccountState,
    EmailChangeState,
    PasswordChangeState,
)
from onboard_app.state.account_recovery import ResetPasswordState
from onboard_app.state.auth import VerifyEmailState
from onboard_app.state.oauth import OAuthState
from onboard_app.state.onboarding import OnboardingState
from onboard_app.state.session import SessionState
from tests.conftest import make_settings
from tests.fakes.inbox import Letter
from tests.fakes.oidc import OidcProvider, start_oidc_provider
from tests.security.conftest import (
    PASSWORD,
    Person,
    completed_person,
    new_tab,
    reach_review,
    rows_of,
    snapshot,
    tampered_token,
    unique_email,
)
from tests.state.harness import Client, redirects
from tests.state.mail import last_mail, mail_reaches_us, mails_to
from tests.unit.test_oauth import browser_visit, oidc_settings

NEW_PASSWORD = "lantern drizzle oboe"


@dataclasses.dataclass
class Member(Person):
    """A user who finished onboarding; their id, kept (their address may change)."""

    user_id: int = 0


async def member() -> Member:
    person = await completed_person()
    return Member(person.email, person.tab, person.id)


async def on_settings(person: Person) -> Client:
    person.tab.navigate(routes.SETTINGS)
    assert await person.tab.call(AccountState.load) == []
    return person.tab


async def ask_change(person: Member, new: str, password: str = PASSWORD) -> Letter:
    """Ask for a change to ``new``; the mail its owner got (confirmation or notice)."""
    tab = await on_settings(person)
    await tab.call(
        EmailChangeState.request_change, {"new_email": new, "current_password": password}
    )
    assert tab.state(AccountState).pending_email == new
    found = mails_to(new, "email_change_verify") or mails_to(new, "email_change_attempt")
    assert found
    return found[0]


async def open_change_link(tab: Client, token: str) -> list:
    tab.navigate(f"{routes.CONFIRM_EMAIL}#token={token}")
    return await tab.call(ConfirmEmailState.open_link)


def email_of(person: Member) -> str | None:
    user = users.get_user(person.user_id)
    return user.email if user else None


def expire_change(user_id: int) -> None:
    with session_scope() as session:
        session.execute(
            sa.update(EmailLink)
            .where(col(EmailLink.user_id) == user_id, col(EmailLink.purpose) == "change_email")
            .values(expires_at=utcnow() - timedelta(seconds=1))
        )


# --- the change link ------------------------------------------------------------------------


async def test_a_change_link_works_once(app_db: Settings) -> None:
    person = await member()
    new = unique_email("new")
    letter = await ask_change(person, new)
    phone = new_tab()
    assert redirects(await open_change_link(phone, letter.token)) == []
    assert phone.state(ConfirmEmailState).changed_to == new and email_of(person) == new
    before = snapshot(app_db)
    again = new_tab()
    await open_change_link(again, letter.token)
    assert again.state(ConfirmEmailState).error == REFUSAL_MESSAGES[Refusal.USED]
    assert snapshot(app_db) == before


async def test_an_expired_change_link_changes_nothing(app_db: Settings) -> None:
    person = await member()
    letter = await ask_change(person, unique_email("new"))
    expire_change(person.user_id)
    before = snapshot(app_db)
    tab = new_tab()
    await open_change_link(tab, letter.token)
    assert tab.state(ConfirmEmailState).error == REFUSAL_MESSAGES[Refusal.EXPIRED]
    own = person.tab
    await own.call(EmailChangeState.confirm_code, {"code": letter.code})
    assert own.state(EmailChangeState).field_errors["code"] == REFUSAL_MESSAGES[Refusal.EXPIRED]
    assert snapshot(app_db) == before and email_of(person) == person.email


@tampered_token
async def test_a_tampered_change_link_changes_nothing(app_db: Settings, edit) -> None:
    person = await member()
    new = unique_email("new")
    letter = await ask_change(person, new)
    before = snapshot(app_db)
    for tab in (new_tab(), person.tab):  # nobody signed in, and the owner's own tab
        assert redirects(await open_change_link(tab, edit(letter.token))) == []
        assert tab.state(ConfirmEmailState).error
    assert snapshot(app_db) == before
    assert redirects(await open_change_link(person.tab, letter.token)) == [routes.SETTINGS]
    assert email_of(person) == new


async def test_tokens_of_other_purposes_are_not_change_tokens_and_back(app_db: Settings) -> None:
    person = await member()
    new = unique_email("new")
    letter = await ask_change(person, new)
    notice = last_mail(person.email, "email_change_notice")
    before = snapshot(app_db)
    # The notice's reset token does not confirm the change ...
    tab = new_tab()
    await open_change_link(tab, notice.token)
    assert tab.state(ConfirmEmailState).error == REFUSAL_MESSAGES[Refusal.INVALID]
    # ... and the change token neither resets the password nor confirms a sign-up.
    reset = new_tab()
    reset.navigate(f"{routes.RESET_PASSWORD}#token={letter.token}")
    await reset.call(ResetPasswordState.open_link)
    assert not reset.state(ResetPasswordState).ready
    verify = new_tab()
    verify.navigate(f"{routes.VERIFY_EMAIL}#token={letter.token}")
    assert redirects(await verify.call(VerifyEmailState.open_page)) == []
    assert snapshot(app_db) == before and email_of(person) == person.email


async def test_another_user_can_use_neither_the_link_nor_the_code(app_db: Settings) -> None:
    alice, mallory = await member(), await member()
    new = unique_email("alice-new")
    letter = await ask_change(alice, new)
    await on_settings(mallory)
    before = snapshot(app_db)
    await open_change_link(mallory.tab, letter.token)
    await mallory.tab.call(EmailChangeState.confirm_code, {"code": letter.code})
    assert snapshot(app_db) == before
    assert (email_of(alice), email_of(mallory)) == (alice.email, mallory.email)
    # Mallory asking for a change to that same address does not take it over either.
    await ask_change(mallory, new)
    assert redirects(await open_change_link(alice.tab, letter.token)) == [routes.SETTINGS]
    assert email_of(alice) == new and email_of(mallory) == mallory.email


async def test_wrong_codes_use_up_the_change(app_db: Settings) -> None:
    person = await member()
    letter = await ask_change(person, unique_email("new"))
    wrong = "000000" if letter.code != "000000" else "111111"
    tab = person.tab
    for _ in range(MAX_CODE_ATTEMPTS):
        await tab.call(EmailChangeState.confirm_code, {"code": wrong})
    await tab.call(EmailChangeState.confirm_code, {"code": letter.code})
    assert (
        tab.state(EmailChangeState).field_errors["code"]
        == (REFUSAL_MESSAGES[Refusal.TOO_MANY_ATTEMPTS])
    )
    assert email_of(person) == person.email
    # The link itself still works for its owner.
    assert redirects(await open_change_link(tab, letter.token)) == [routes.SETTINGS]


# --- enumeration ----------------------------------------------------------------------------


async def test_a_taken_address_cannot_be_told_from_a_free_one(app_db: Settings) -> None:
    owner = await member()
    asker, control = await member(), await member()
    free = unique_email("free")
    await ask_change(asker, owner.email)
    await ask_change(control, free)
    a, c = asker.tab, control.tab
    for cls in (EmailChangeState, AccountState):
        for name in ("form_error", "field_errors", "busy", "loaded", "has_password"):
            if hasattr(cls, name):
                assert getattr(a.state(cls), name) == getattr(c.state(cls), name), name
    # Both asked, both wait; the old addresses got the same notice.
    assert last_mail(asker.email, "email_change_notice").subject == (
        last_mail(control.email, "email_change_notice").subject
    )
    # The owner of the taken address keeps it, and can still log in with it.
    assert email_of(owner) == owner.email
    assert not isinstance(authenticate(owner.token), TokenRejected)


# --- stolen sessions ------------------------------------------------------------------------


async def test_a_stolen_session_cannot_change_or_delete_without_the_password(
    app_db: Settings,
) -> None:
    victim = await member()
    thief = new_tab()
    thief.state(SessionState).token = victim.token  # the session, not the password
    thief.navigate(routes.SETTINGS)
    await thief.call(AccountState.load)
    before = snapshot(app_db)
    for handler, form in (
        (
            EmailChangeState.request_change,
            {"new_email": unique_email("thief"), "current_password": "guess"},
        ),
        (
            PasswordChangeState.change_password,
            {"current_password": "guess", "new_password": NEW_PASSWORD},
        ),
        (DeleteAccountState.delete_account, {"confirm": "DELETE", "current_password": "guess"}),
    ):
        await thief.call(handler, form)
    assert snapshot(app_db) == before
    # Guessing costs the login's attempts: after the limit even the right password waits.
    for _ in range(app_db.login_max_failures_per_account):
        await thief.call(
            DeleteAccountState.delete_account, {"confirm": "DELETE", "current_password": "guess"}
        )
    await thief.call(
        DeleteAccountState.delete_account, {"confirm": "DELETE", "current_password": PASSWORD}
    )
    assert thief.state(DeleteAccountState).form_error.startswith(core.TOO_MANY_PASSWORDS)
    assert users.get_user(victim.user_id) is not None


async def test_a_token_swapped_mid_session_acts_only_as_its_own_user(app_db: Settings) -> None:
    alice, bob = await member(), await member()
    tab = await on_settings(alice)
    await tab.call(
        UpdateVarsInternalState.update_vars_internal,
        {f"{SessionState.get_full_name()}.token": bob.token},
    )
    alice_rows = rows_of(app_db, alice.user_id)
    # Alice's password is checked against Bob, the account the token now verifies as.
    await tab.call(
        DeleteAccountState.delete_account, {"confirm": "DELETE", "current_password": "wrong"}
    )
    assert tab.state(DeleteAccountState).field_errors == {"current_password": core.WRONG_PASSWORD}
    new = unique_email("bob-new")
    await tab.call(
        EmailChangeState.request_change, {"new_email": new, "current_password": PASSWORD}
    )
    assert core.pending_email_change(bob.user_id) == new
    assert core.pending_email_change(alice.user_id) is None
    assert rows_of(app_db, alice.user_id) == alice_rows


async def test_the_notice_gets_the_owner_back_after_a_thief_changed_the_address(
    app_db: Settings,
) -> None:
    victim = await member()
    thief_address = unique_email("thief")
    letter = await ask_change(victim, thief_address)  # the thief knows the password
    notice = last_mail(victim.email, "email_change_notice")
    await open_change_link(new_tab(), letter.token)
    assert email_of(victim) == thief_address
    # The old address's reset link still works: a new password, everyone else signed out.
    owner = new_tab()
    owner.navigate(f"{routes.RESET_PASSWORD}#token={notice.token}")
    await owner.call(ResetPasswordState.open_link)
    assert owner.state(ResetPasswordState).ready
    await owner.call(ResetPasswordState.reset_password, {"password": NEW_PASSWORD})
    assert owner.state(SessionState).signed_in
    assert isinstance(authenticate(victim.token), TokenRejected)


async def test_a_reset_before_the_confirmation_stops_the_change(app_db: Settings) -> None:
    victim = await member()
    letter = await ask_change(victim, unique_email("thief"))
    notice = last_mail(victim.email, "email_change_notice")
    owner = new_tab()
    owner.navigate(f"{routes.RESET_PASSWORD}#token={notice.token}")
    await owner.call(ResetPasswordState.open_link)
    await owner.call(ResetPasswordState.reset_password, {"password": NEW_PASSWORD})
    tab = new_tab()
    await open_change_link(tab, letter.token)
    assert tab.state(ConfirmEmailState).error == REFUSAL_MESSAGES[Refusal.INVALID]
    assert email_of(victim) == victim.email


# --- deletion -------------------------------------------------------------------------------


async def test_a_deleted_accounts_tokens_and_links_are_dead_everywhere(app_db: Settings) -> None:
    person = await member()
    letter = await ask_change(person, unique_email("new"))
    other = new_tab()
    other.state(SessionState).token = person.token
    tab = person.tab
    events = await tab.call(
        DeleteAccountState.delete_account, {"confirm": "DELETE", "current_password": PASSWORD}
    )
    assert redirects(events) == [routes.ACCOUNT_DELETED]
    assert rows_of(app_db, person.user_id) == [[], []]
    # The other tab's next event finds nobody, and the pending link nothing to change.
    other.navigate(routes.SETTINGS)
    assert redirects(await other.call(AccountState.load)) == ["/login?next=/settings"]
    assert other.state(SessionState).token == ""
    before = snapshot(app_db)
    await open_change_link(new_tab(), letter.token)
    assert snapshot(app_db) == before
    # A new account with the same address starts from nothing.
    fresh = await completed_person_with(person.email)
    assert fresh.id != person.user_id


async def completed_person_with(email: str) -> Person:
    from tests.security.conftest import sign_up

    person = await sign_up(email=email)
    await reach_review(person.tab)
    await person.tab.call(OnboardingState.finish_onboarding)
    return person


# --- re-authentication with an OpenID Connect provider ---------------------------------------


@pytest.fixture(scope="module")
def oidc_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OidcProvider]:
    provider = start_oidc_provider(tmp_path_factory.mktemp("oidc-delete"))
    yield provider
    provider.stop()


@pytest.fixture
def oidc(oidc_server: OidcProvider, app_db: Settings) -> Iterator[OidcProvider]:
    oidc_server.reset()
    oauth.clear_discovery_cache()
    override_settings(dataclasses.replace(app_db, oidc=oidc_settings(oidc_server)))
    yield oidc_server
    oidc_server.reset()
    override_settings(app_db)


async def oidc_round_trip(tab: Client, authorize: str) -> list:
    tab.navigate("/auth/callback/oidc", browser_visit(authorize))
    return await tab.call(OAuthState.complete_login)


async def oidc_person(oidc: OidcProvider, subject: str) -> Client:
    oidc.configure(id_token_claims={"sub": subject, "name": "Ida"})
    tab = new_tab()
    tab.navigate(routes.LOGIN)
    (authorize,) = redirects(await tab.call(OAuthState.start_login, "oidc"))
    assert redirects(await oidc_round_trip(tab, authorize)) == ["/onboarding/profile"]
    await reach_review(tab)
    assert redirects(await tab.call(OnboardingState.finish_onboarding)) == ["/explore"]
    tab.navigate(routes.SETTINGS)
    await tab.call(AccountState.load)
    return tab


@pytest.mark.parametrize(
    ("claims", "deleted"),
    [
        ({"auth_time": "now"}, True),
        ({}, False),  # the provider did not say when the user logged in
        ({"auth_time": "an hour ago"}, False),
        ({"auth_time": "now", "sub": "someone-else"}, False),
    ],
    ids=["fresh", "no-auth-time", "stale", "another-subject"],
)
async def test_an_oidc_account_is_deleted_only_after_a_fresh_login_of_its_own(
    oidc: OidcProvider, app_db: Settings, claims: dict[str, str], deleted: bool
) -> None:
    subject = f"ida-{time.monotonic_ns()}"
    tab = await oidc_person(oidc, subject)
    user = users.find_user_by_identity(oidc_issuer=oidc.issuer, oidc_subject=subject)
    assert user is not None and user.id is not None
    (authorize,) = redirects(
        await tab.call(DeleteAccountState.delete_account, {"confirm": "DELETE"})
    )
    times = {"now": int(time.time()), "an hour ago": int(time.time()) - 3600}
    id_token = {"sub": subject, **claims}
    if "auth_time" in claims:
        id_token["auth_time"] = times[claims["auth_time"]]  # type: ignore[assignment]
    oidc.configure(id_token_claims=id_token)
    handed_over = await oidc_round_trip(tab, authorize)
    assert len(handed_over) == 1 and users.get_user(user.id) is not None
    events = await tab.call(DeleteAccountState.finish_reauthentication)
    if deleted:
        assert redirects(events) == [routes.ACCOUNT_DELETED]
        assert users.get_user(user.id) is None and tab.state(SessionState).token == ""
    else:
        assert redirects(events) == [routes.SETTINGS]
        assert users.get_user(user.id) is not None and tab.state(SessionState).signed_in
        assert tab.state(DeleteAccountState).form_error in (core.NOT_RECENT, core.ANOTHER_ACCOUNT)


async def test_a_reauthentication_never_signs_anyone_in(
    oidc: OidcProvider, app_db: Settings
) -> None:
    subject = f"ida-{time.monotonic_ns()}"
    tab = await oidc_person(oidc, subject)
    (authorize,) = redirects(
        await tab.call(DeleteAccountState.delete_account, {"confirm": "DELETE"})
    )
    oidc.configure(id_token_claims={"sub": subject, "auth_time": int(time.time())})
    # The pending re-authentication carried to another browser (its client token) is
    # handed over there, but that browser has no session: nothing happens.
    stranger = new_tab()
    stranger.state(OAuthState)._pending = dict(tab.state(OAuthState)._pending or {})
    events = await oidc_round_trip(stranger, authorize)
    follow = await stranger.call(DeleteAccountState.finish_reauthentication)
    assert len(events) == 1 and redirects(follow) == [routes.LOGIN]
    assert stranger.state(SessionState).token == "" and not stranger.state(SessionState).signed_in
    assert users.find_user_by_identity(oidc_issuer=oidc.issuer, oidc_subject=subject) is not None


# --- logs -----------------------------------------------------------------------------------


async def test_no_token_code_or_password_reaches_any_log(
    app_db: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    production = make_settings(database_url=app_db.database_url, environment="production")
    override_settings(production)
    caplog.set_level(logging.DEBUG)
    try:
        with mail_reaches_us():
            person = await member()
            new = unique_email("new")
            tab = await on_settings(person)
            await tab.call(
                EmailChangeState.request_change, {"new_email": new, "current_password": PASSWORD}
            )
            verify = last_mail(new, "email_change_verify")
            notice = last_mail(person.email, "email_change_notice")
            await tab.call(EmailChangeState.confirm_code, {"code": verify.code})
            await tab.call(
                PasswordChangeState.change_password,
                {"current_password": PASSWORD, "new_password": NEW_PASSWORD},
            )
            token = tab.state(SessionState).token
            await tab.call(
                DeleteAccountState.delete_account,
                {"confirm": "DELETE", "current_password": NEW_PASSWORD},
            )
            assert last_mail(new, "account_deleted")
    finally:
        override_settings(app_db)
    text = "\n".join(record.getMessage() for record in caplog.records)
    for event in ("email_change_requested", "email_changed", "password_changed", "account_deleted"):
        assert f"audit event={event}" in text, event
    for secret in (verify.token, verify.code, notice.token, PASSWORD, NEW_PASSWORD, token):
        assert secret not in text, secret
