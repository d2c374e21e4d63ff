"""Mailed links and codes attacked through the real handlers: verification and password reset.

Each test plays a visitor who got (or guessed, edited, replayed) a link or a code and checks
what they see, that no session starts unless the mail's owner used it once, and what the
database holds afterwards. Mail is read from the app's development mailbox (in production
mode, from the test process's SMTP server), as the recipient would read it.
"""

from __future__ import annotations

import dataclasses
import logging
from datetime import timedelta

import pytest
import sqlalchemy as sa
from sqlmodel import col

from onboard_app.models import EmailLink, utcnow
from onboard_app.services import passwords
from onboard_app.services.account_limits import CODES_PER_RECIPIENT, MAILS_PER_RECIPIENT
from onboard_app.services.db import get_engine, session_scope
from onboard_app.services.email_links import MAX_CODE_ATTEMPTS, REFUSAL_MESSAGES, Refusal
from onboard_app.services.mail import MAIL_FAILED
from onboard_app.services.recovery import TOO_MANY_CODES, TOO_MANY_MAILS, TOO_MANY_RESETS
from onboard_app.services.users import get_user_by_email
from onboard_app.settings import Settings, override_settings
from onboard_app.state.account_recovery import ForgotPasswordState, ResetPasswordState
from onboard_app.state.auth import LoginState, SignupState, VerifyEmailState
from onboard_app.state.dev_mail import DevMailboxState
from onboard_app.state.onboarding import OnboardingState
from onboard_app.state.session import SessionState
from tests.conftest import make_settings
from tests.fakes.inbox import Letter, from_smtp, shared_smtp
from tests.fakes.smtp import silent_server
from tests.security.conftest import (
    PASSWORD,
    Person,
    new_tab,
    rows_of,
    sign_up,
    snapshot,
    tampered_token,
    unique_email,
    unique_ip,
)
from tests.state.harness import Client, redirects, toasts
from tests.state.mail import last_mail, mail_reaches_us, mails_to, open_link

NEW_PASSWORD = "lantern drizzle oboe"


def signed_in(tab: Client) -> bool:
    session = tab.state(SessionState)
    return bool(session.signed_in and session.token)


def verified(email: str) -> bool:
    user = get_user_by_email(email)
    return user is not None and user.email_verified_at is not None


async def pending_sign_up(
    email: str | None = None, tab: Client | None = None
) -> tuple[Client, str]:
    """A sign-up whose address is not confirmed yet: its tab and address."""
    tab = tab or new_tab()
    email = email or unique_email("pending")
    tab.navigate("/signup")
    events = await tab.call(SignupState.sign_up, {"email": email, "password": PASSWORD})
    assert redirects(events) == ["/verify-email"]
    tab.navigate("/verify-email")
    return tab, email


async def open_verify_link(letter: Letter, tab: Client | None = None) -> tuple[Client, list]:
    tab = tab or new_tab()
    open_link(tab, letter)
    return tab, await tab.call(VerifyEmailState.open_page)


async def ask_reset(email: str, ip: str | None = None) -> tuple[Client, list]:
    tab = Client(ip=ip or unique_ip())
    tab.navigate("/forgot-password")
    await tab.call(ForgotPasswordState.reset_form)
    return tab, await tab.call(ForgotPasswordState.request_reset, {"email": email})


async def open_reset_link(link: str, tab: Client | None = None) -> Client:
    tab = tab or new_tab()
    path, _, fragment = link.partition("://")[2].partition("/")[2].partition("#")
    tab.navigate(f"/{path}#{fragment}")
    await tab.call(ResetPasswordState.open_link)
    return tab


def expire(email: str, purpose: str) -> None:
    """Move a user's link of one purpose past its expiry."""
    user = get_user_by_email(email)
    assert user is not None
    with session_scope() as session:
        session.execute(
            sa.update(EmailLink)
            .where(col(EmailLink.user_id) == user.id, col(EmailLink.purpose) == purpose)
            .values(expires_at=utcnow() - timedelta(seconds=1))
        )


# --- verification links ---------------------------------------------------------------------


async def test_a_verification_link_works_once(app_db: Settings) -> None:
    _, email = await pending_sign_up()
    letter = last_mail(email, "verify_email")
    first, events = await open_verify_link(letter)
    assert redirects(events) == ["/onboarding/profile"] and signed_in(first)
    again, events = await open_verify_link(letter)
    assert redirects(events) == [] and not signed_in(again)
    assert again.state(VerifyEmailState).form_error == REFUSAL_MESSAGES[Refusal.USED]
    # The confirmed owner, following the spent link again, is just sent home.
    events = await open_verify_link(letter, first)
    assert redirects(events[1]) == ["/onboarding/profile"]
    assert signed_in(first)


async def test_an_expired_verification_link_confirms_nothing(app_db: Settings) -> None:
    _, email = await pending_sign_up()
    letter = last_mail(email, "verify_email")
    expire(email, "verify_email")
    before = snapshot(app_db)
    tab, events = await open_verify_link(letter)
    assert redirects(events) == [] and not signed_in(tab)
    assert tab.state(VerifyEmailState).form_error == REFUSAL_MESSAGES[Refusal.EXPIRED]
    assert snapshot(app_db) == before and not verified(email)
    # Its code has expired with it; the screen says only "not valid" about the address.
    screen, _ = await pending_sign_up(email)
    assert last_mail(email).kind == "signup_attempt"
    await screen.call(VerifyEmailState.submit_code, {"otp": letter.code})
    assert screen.state(VerifyEmailState).field_errors["otp"] == REFUSAL_MESSAGES[Refusal.INVALID]
    assert not verified(email)


@tampered_token
async def test_a_tampered_verification_link_confirms_nothing(app_db: Settings, edit) -> None:
    _, email = await pending_sign_up()
    token = last_mail(email, "verify_email").token
    before = snapshot(app_db)
    tab = new_tab()
    tab.navigate(f"/verify-email#token={edit(token)}")
    events = await tab.call(VerifyEmailState.open_page)
    assert redirects(events) == [] and not signed_in(tab)
    assert snapshot(app_db) == before and not verified(email)
    tab.navigate(f"/verify-email#token={token}")  # the real one still works
    assert redirects(await tab.call(VerifyEmailState.open_page)) == ["/onboarding/profile"]


async def test_a_reset_token_is_not_a_verification_token_and_back(app_db: Settings) -> None:
    person = await sign_up()
    await ask_reset(person.email)
    reset = last_mail(person.email, "password_reset")
    tab = new_tab()
    tab.navigate(f"/verify-email#token={reset.token}")
    assert redirects(await tab.call(VerifyEmailState.open_page)) == []
    assert tab.state(VerifyEmailState).form_error == REFUSAL_MESSAGES[Refusal.INVALID]
    _, email = await pending_sign_up()
    verify = last_mail(email, "verify_email")
    tab = await open_reset_link(verify.link.replace("/verify-email", "/reset-password"))
    assert tab.state(ResetPasswordState).ready is False
    assert tab.state(ResetPasswordState).link_error == REFUSAL_MESSAGES[Refusal.INVALID]
    # Both still work for what they are.
    assert (await open_reset_link(reset.link)).state(ResetPasswordState).ready
    assert redirects((await open_verify_link(verify))[1]) == ["/onboarding/profile"]


# --- codes ----------------------------------------------------------------------------------


async def test_another_users_code_confirms_neither_account(app_db: Settings) -> None:
    alice_tab, alice = await pending_sign_up()
    bob_tab, bob = await pending_sign_up()
    bobs_code = last_mail(bob, "verify_email").code
    alices_code = last_mail(alice, "verify_email").code
    if bobs_code == alices_code:  # one in a million: the test would prove nothing
        pytest.skip("both codes are equal")
    await alice_tab.call(VerifyEmailState.submit_code, {"otp": bobs_code})
    assert (
        alice_tab.state(VerifyEmailState).field_errors["otp"] == REFUSAL_MESSAGES[Refusal.INVALID]
    )
    assert not signed_in(alice_tab) and not verified(alice) and not verified(bob)
    # Each code works on its own screen.
    assert redirects(await bob_tab.call(VerifyEmailState.submit_code, {"otp": bobs_code})) == [
        "/onboarding/profile"
    ]
    assert redirects(await alice_tab.call(VerifyEmailState.submit_code, {"otp": alices_code})) == [
        "/onboarding/profile"
    ]


async def test_wrong_codes_use_up_the_link_and_the_address(app_db: Settings) -> None:
    tab, email = await pending_sign_up()
    code = last_mail(email, "verify_email").code
    wrong = [f"{(int(code) + n) % 1_000_000:06d}" for n in range(1, 1 + MAX_CODE_ATTEMPTS)]
    for guess in wrong:
        await tab.call(VerifyEmailState.submit_code, {"otp": guess})
    # The right code now fails like any other (the mail's link still works).
    await tab.call(VerifyEmailState.submit_code, {"otp": code})
    assert not signed_in(tab) and not verified(email)
    # Across new links, the address takes a bounded number of codes per hour.
    for _ in range(CODES_PER_RECIPIENT.amount - MAX_CODE_ATTEMPTS - 1):
        await tab.call(VerifyEmailState.submit_code, {"otp": wrong[0]})
    await tab.call(VerifyEmailState.send_again)
    fresh = last_mail(email, "verify_email").code
    await tab.call(VerifyEmailState.submit_code, {"otp": fresh})
    assert tab.state(VerifyEmailState).form_error.startswith(TOO_MANY_CODES)
    assert not signed_in(tab) and not verified(email)
    # The link of the mail is not a code: it still confirms.
    assert redirects((await open_verify_link(last_mail(email, "verify_email")))[1]) == [
        "/onboarding/profile"
    ]


async def test_send_again_is_limited_per_address(app_db: Settings) -> None:
    tab, email = await pending_sign_up()
    for _ in range(MAILS_PER_RECIPIENT.amount - 1):
        await tab.call(VerifyEmailState.send_again)
        assert tab.state(VerifyEmailState).form_error == ""
    await tab.call(VerifyEmailState.send_again)
    assert tab.state(VerifyEmailState).form_error.startswith(TOO_MANY_MAILS)
    assert tab.state(VerifyEmailState).busy is False
    assert len(mails_to(email)) == MAILS_PER_RECIPIENT.amount
    # Signing the address up again from elsewhere is refused too, before any hash.
    other = new_tab()
    other.navigate("/signup")
    await other.call(SignupState.sign_up, {"email": email, "password": PASSWORD})
    assert other.state(SignupState).form_error.startswith("We have sent several emails")
    assert len(mails_to(email)) == MAILS_PER_RECIPIENT.amount


# --- accounts from before verification ------------------------------------------------------


async def test_an_unconfirmed_login_gets_no_session_until_the_code(app_db: Settings) -> None:
    _, email = await pending_sign_up()
    tab = new_tab()
    tab.navigate("/login")
    events = await tab.call(LoginState.log_in, {"email": email, "password": PASSWORD})
    assert redirects(events) == ["/verify-email"] and not signed_in(tab)
    assert tab.state(SessionState).token == ""
    events = await tab.call(VerifyEmailState.submit_code, {"otp": last_mail(email).code})
    assert redirects(events) == ["/onboarding/profile"] and signed_in(tab)


async def test_a_session_from_before_verification_confirms_and_keeps_its_answers(
    app_db: Settings,
) -> None:
    person = await sign_up()
    assert redirects(await fill_profile_of(person)) == ["/onboarding/interests"]
    with get_engine(app_db.database_url).begin() as db:  # as the migration leaves it
        db.execute(
            sa.text("UPDATE users SET email_verified_at = NULL WHERE id = :id"), {"id": person.id}
        )
    old_token = person.token
    tab = person.tab
    tab.navigate("/verify-email")
    await tab.call(VerifyEmailState.open_page)
    assert tab.state(VerifyEmailState).waiting and tab.state(VerifyEmailState).email == person.email
    await tab.call(VerifyEmailState.send_again)
    events = await tab.call(VerifyEmailState.submit_code, {"otp": last_mail(person.email).code})
    assert redirects(events) == ["/onboarding/interests"]  # where it was, nothing lost
    assert verified(person.email) and person.token != old_token
    # The sessions from before the confirmation ended.
    stale = new_tab()
    stale.state(SessionState).token = old_token
    stale.navigate("/onboarding/interests")
    assert redirects(await stale.call(OnboardingState.open_step)) == [
        "/login?next=/onboarding/interests"
    ]


async def fill_profile_of(person: Person) -> list:
    from tests.state.wizard import fill_profile

    return await fill_profile(person.tab)


# --- password reset -------------------------------------------------------------------------


async def test_reset_answers_the_same_for_known_and_unknown_addresses(app_db: Settings) -> None:
    person = await sign_up()
    seen = {}
    for label, email in (("known", person.email), ("unknown", unique_email("nobody"))):
        tab, events = await ask_reset(email)
        form = tab.state(ForgotPasswordState)
        seen[label] = (redirects(events), toasts(events), form.sent, form.form_error, form.busy)
        seen[label + " mails"] = len(mails_to(email, "password_reset"))
    assert seen["known"] == seen["unknown"] == ([], [], True, "", False)
    assert (seen["known mails"], seen["unknown mails"]) == (1, 0)


async def test_reset_signs_in_ends_every_other_session_and_tells_the_owner(
    app_db: Settings,
) -> None:
    person = await sign_up()
    old_token = person.token
    await ask_reset(person.email)
    tab = await open_reset_link(last_mail(person.email, "password_reset").link)
    assert (
        tab.state(ResetPasswordState).ready and tab.state(ResetPasswordState).email == person.email
    )
    events = await tab.call(ResetPasswordState.reset_password, {"password": NEW_PASSWORD})
    assert redirects(events) == ["/onboarding/profile"] and signed_in(tab)
    assert any("password has been changed" in t for t in toasts(events))
    assert last_mail(person.email).kind == "password_changed"
    # The other browser is out on its next event; the old password is gone.
    person.tab.navigate("/onboarding/profile")
    assert redirects(await person.tab.call(OnboardingState.open_step)) == [
        "/login?next=/onboarding/profile"
    ]
    assert person.tab.state(SessionState).token == "" != old_token
    for password, works in ((PASSWORD, False), (NEW_PASSWORD, True)):
        login = new_tab()
        login.navigate("/login")
        await login.call(LoginState.log_in, {"email": person.email, "password": password})
        assert signed_in(login) is works


async def test_a_reset_link_works_once_and_confirms_the_address(app_db: Settings) -> None:
    _, email = await pending_sign_up()
    await ask_reset(email)
    link = last_mail(email, "password_reset").link
    tab = await open_reset_link(link)
    await tab.call(ResetPasswordState.reset_password, {"password": NEW_PASSWORD})
    assert signed_in(tab) and verified(email)
    replay = await open_reset_link(link)
    assert replay.state(ResetPasswordState).link_error == REFUSAL_MESSAGES[Refusal.USED]
    assert replay.state(ResetPasswordState).ready is False
    # A tab that opened the link before it was used cannot use it after.
    await ask_reset(email)
    link = last_mail(email, "password_reset").link
    early, late = await open_reset_link(link), await open_reset_link(link)
    await early.call(ResetPasswordState.reset_password, {"password": "second lantern oboe"})
    before = snapshot(app_db)
    events = await late.call(ResetPasswordState.reset_password, {"password": "third lantern"})
    assert redirects(events) == [] and not signed_in(late)
    assert late.state(ResetPasswordState).link_error == REFUSAL_MESSAGES[Refusal.USED]
    assert snapshot(app_db) == before


async def test_an_expired_or_tampered_reset_link_changes_nothing(app_db: Settings) -> None:
    person = await sign_up()
    await ask_reset(person.email)
    letter = last_mail(person.email, "password_reset")
    before = rows_of(app_db, person.id)
    for link in (
        letter.link[:-1] + ("A" if letter.link[-1] != "A" else "B"),
        letter.link.split("#")[0],
        letter.link + letter.link,
    ):
        tab = await open_reset_link(link)
        assert tab.state(ResetPasswordState).ready is False
        events = await tab.call(ResetPasswordState.reset_password, {"password": NEW_PASSWORD})
        assert redirects(events) == [] and not signed_in(tab)
    expire(person.email, "reset_password")
    tab = await open_reset_link(letter.link)
    assert tab.state(ResetPasswordState).link_error == REFUSAL_MESSAGES[Refusal.EXPIRED]
    assert rows_of(app_db, person.id) == before


async def test_a_reset_link_resets_only_its_owner(app_db: Settings) -> None:
    alice, bob = await sign_up(), await sign_up()
    bob_rows = rows_of(app_db, bob.id)
    await ask_reset(alice.email)
    tab = await open_reset_link(last_mail(alice.email, "password_reset").link)
    tab.state(ResetPasswordState).email = bob.email  # what the page shows is not what counts
    await tab.call(ResetPasswordState.reset_password, {"password": NEW_PASSWORD})
    assert tab.state(SessionState).user_email == alice.email
    assert rows_of(app_db, bob.id) == bob_rows
    bob.tab.navigate("/onboarding/profile")  # Bob's session lives on
    assert redirects(await bob.tab.call(OnboardingState.open_step)) == []


async def test_a_refused_new_password_keeps_the_link(app_db: Settings) -> None:
    person = await sign_up()
    await ask_reset(person.email)
    tab = await open_reset_link(last_mail(person.email, "password_reset").link)
    local = person.email.split("@")[0].replace("-", "")
    for bad in ("short", "password123", f"{local}2024!"):
        events = await tab.call(ResetPasswordState.reset_password, {"password": bad})
        assert tab.state(ResetPasswordState).field_errors["password"], bad
        assert redirects(events) == [] and not signed_in(tab)
    await tab.call(ResetPasswordState.rate_password, f"{local}2024!")
    assert tab.state(ResetPasswordState).strength < 2  # the meter knows the owner's words
    events = await tab.call(ResetPasswordState.reset_password, {"password": NEW_PASSWORD})
    assert redirects(events) == ["/onboarding/profile"]
    assert NEW_PASSWORD not in repr(tab.root.dict())


async def test_reset_requests_are_limited_per_address_and_per_client(app_db: Settings) -> None:
    person = await sign_up()  # its verification mail counts against the address too
    unknown = unique_email("nobody")
    for email, allowed in ((person.email, MAILS_PER_RECIPIENT.amount - 1), (unknown, 5)):
        for _ in range(allowed):
            tab, _ = await ask_reset(email)
            assert tab.state(ForgotPasswordState).form_error == ""
        tab, _ = await ask_reset(email)
        assert tab.state(ForgotPasswordState).form_error.startswith(TOO_MANY_MAILS)
        assert tab.state(ForgotPasswordState).sent is False
    assert len(mails_to(person.email, "password_reset")) == MAILS_PER_RECIPIENT.amount - 1
    assert mails_to(unknown) == []
    # One client address asking for many addresses; refusals for a throttled address do
    # not use up its requests.
    client = unique_ip()
    for _ in range(5):
        tab, _ = await ask_reset(person.email, ip=client)
        assert tab.state(ForgotPasswordState).form_error.startswith(TOO_MANY_MAILS)
    for n in range(10):
        tab, _ = await ask_reset(unique_email(f"spray{n}"), ip=client)
        assert tab.state(ForgotPasswordState).sent
    tab, _ = await ask_reset(unique_email("spray"), ip=client)
    assert tab.state(ForgotPasswordState).form_error.startswith(TOO_MANY_RESETS)


async def test_crafted_reset_forms_fail_cleanly(app_db: Settings) -> None:
    for form in (None, "email=x", ["a"], {"email": 5}, {"email": "x" * 100_000}, {}):
        tab = new_tab()
        tab.navigate("/forgot-password")
        await tab.call(ForgotPasswordState.request_reset, form)
        state = tab.state(ForgotPasswordState)
        assert state.field_errors == {
            "email": "Enter a valid email address, like name@example.com."
        }
        assert state.busy is False and state.sent is False
    tab = new_tab()
    tab.navigate("/reset-password")
    await tab.call(ResetPasswordState.open_link)
    for form in (None, {"password": ["x"]}, {"password": NEW_PASSWORD}):
        assert redirects(await tab.call(ResetPasswordState.reset_password, form)) == []
    assert not signed_in(tab)


# --- mail failures --------------------------------------------------------------------------


async def test_a_mail_server_that_is_down_is_told_on_the_screen(app_db: Settings) -> None:
    with silent_server() as port:
        smtp = dataclasses.replace(shared_smtp().settings(), port=port, timeout=0.5)
        override_settings(make_settings(database_url=app_db.database_url, smtp=smtp))
        try:
            tab = new_tab()
            tab.navigate("/signup")
            events = await tab.call(
                SignupState.sign_up, {"email": unique_email(), "password": PASSWORD}
            )
            assert redirects(events) == ["/verify-email"]  # the same answer first
            screen = tab.state(VerifyEmailState)
            assert (screen.form_error, screen.busy, screen.waiting) == (MAIL_FAILED, False, True)
            registered = await sign_up_while_down()
            forgot, _ = await ask_reset(registered)
            assert forgot.state(ForgotPasswordState).sent
            assert forgot.state(ForgotPasswordState).form_error == MAIL_FAILED
        finally:
            override_settings(app_db)


async def sign_up_while_down() -> str:
    """An account made straight in the database (no mail can be sent right now)."""
    from onboard_app.services.users import create_local_user

    email = unique_email("down")
    create_local_user(email, passwords.hash_password(PASSWORD))
    return email


# --- logs -----------------------------------------------------------------------------------


def mail_of(address: str, kind: str) -> Letter:
    return next(x for x in from_smtp(shared_smtp()) if x.to == address and x.kind == kind)


async def test_no_token_code_or_password_reaches_any_log(
    app_db: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    production = make_settings(database_url=app_db.database_url, environment="production")
    override_settings(production)
    caplog.set_level(logging.DEBUG)
    try:
        with mail_reaches_us():
            person = await sign_up()
            await ask_reset(person.email)
            reset = mail_of(person.email, "password_reset")
            tab = await open_reset_link(reset.link)
            await tab.call(ResetPasswordState.rate_password, NEW_PASSWORD)
            await tab.call(ResetPasswordState.reset_password, {"password": NEW_PASSWORD})
            assert signed_in(tab)
            verify = mail_of(person.email, "verify_email")
    finally:
        override_settings(app_db)
    text = "\n".join(record.getMessage() for record in caplog.records)
    assert "audit event=signin" in text and "method=password_reset" in text
    for secret in (verify.token, verify.code, reset.token, PASSWORD, NEW_PASSWORD, person.token):
        assert secret not in text, secret


# --- the development mailbox ----------------------------------------------------------------


async def test_the_development_mailbox_lists_mails_in_development_only(app_db: Settings) -> None:
    _, email = await pending_sign_up()
    tab = new_tab()
    tab.navigate("/dev/mail")
    assert await tab.call(DevMailboxState.load) == []
    mailbox = tab.state(DevMailboxState)
    assert (
        mailbox.mails[0]["to"] == email and mailbox.opened_subject == "Confirm your email address"
    )
    assert 'target="_blank"' in mailbox.opened_html and "#token=" in mailbox.opened_link
    await tab.call(DevMailboxState.open_mail, "../../etc/passwd")
    assert tab.state(DevMailboxState).opened_id == ""
    override_settings(make_settings(database_url=app_db.database_url, environment="production"))
    try:
        for handler, args in (
            (DevMailboxState.load, ()),
            (DevMailboxState.open_mail, (mailbox.mails[0]["id"],)),
            (DevMailboxState.clear, ()),
        ):
            refused = new_tab()
            refused.navigate("/dev/mail")
            events = await refused.call(handler, *args)
            assert redirects(events) == ["/login"], handler
            assert refused.state(DevMailboxState).mails == []
            assert refused.state(DevMailboxState).opened_html == ""
    finally:
        override_settings(app_db)
    assert mails_to(email)  # nothing was cleared


async def test_a_session_from_before_verification_is_sent_to_confirm_by_every_handler(
    app_db: Settings,
) -> None:
    person = await sign_up()
    with get_engine(app_db.database_url).begin() as db:  # as the migration leaves it
        db.execute(
            sa.text("UPDATE users SET email_verified_at = NULL WHERE id = :id"), {"id": person.id}
        )
    before = snapshot(app_db)
    person.tab.navigate("/onboarding/profile")
    for handler in (OnboardingState.open_step, OnboardingState.submit, SessionState.guard):
        assert redirects(await person.tab.call(handler)) == ["/verify-email"], handler
    assert snapshot(app_db) == before
