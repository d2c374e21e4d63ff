"""Confirming an address and resetting a password (services/recovery, services/account_mail)."""

from __future__ import annotations

from datetime import timedelta
from urllib.parse import urlsplit

import pytest
import sqlalchemy as sa
from limits.storage import MemoryStorage
from sqlmodel import col

from onboard_app import routes
from onboard_app.models import EmailLink, User, utcnow
from onboard_app.services import account_mail, email_links, passwords, recovery, users
from onboard_app.services.account_limits import AccountLimits
from onboard_app.services.accounts import FormErrors
from onboard_app.services.db import session_scope
from onboard_app.services.email_links import LinkPurpose, Refusal
from onboard_app.services.recovery import LinkRefused, Pending, ResetAccount
from onboard_app.services.throttle import Counters
from onboard_app.settings import Settings

pytestmark = pytest.mark.usefixtures("app_db")

PASSWORD = "correct horse battery staple"
NEW_PASSWORD = "lantern drizzle oboe"
CLIENT = "203.0.113.9"


def limits() -> AccountLimits:
    return AccountLimits(Counters(MemoryStorage()))


def account(email: str = "ada@example.com", *, verified: bool = False) -> User:
    user = users.create_local_user(email, passwords.hash_password(PASSWORD))
    if verified:
        with session_scope() as session:
            session.execute(
                sa.update(User).where(col(User.id) == user.id).values(email_verified_at=utcnow())
            )
    fresh = users.get_user(user.id)  # type: ignore[arg-type]
    assert fresh is not None
    return fresh


def fragment_token(link: str) -> str:
    parts = urlsplit(link)
    assert parts.query == ""  # never in the query: it would reach server logs
    token = routes.link_token(parts.fragment)
    assert token
    return token


def test_mailed_links_are_absolute_with_the_token_in_the_fragment(app_db: Settings) -> None:
    user = account()
    assert user.id is not None
    mail = account_mail.verification(user.id, "ada@example.com")
    assert mail.link and mail.link.startswith(f"{app_db.public_url}/verify-email#token=")
    assert email_links.redeem_token(fragment_token(mail.link), LinkPurpose.VERIFY_EMAIL)
    reset = account_mail.password_reset(user.id, "ada@example.com")
    assert reset.link and reset.link.startswith(f"{app_db.public_url}/reset-password#token=")
    attempt = account_mail.signup_attempt("ada@example.com")
    assert f"{app_db.public_url}/login" in attempt.text
    assert f"{app_db.public_url}/forgot-password" in attempt.text
    assert "#token=" not in attempt.text + account_mail.password_changed("a@example.com").text


def test_confirming_with_the_link_verifies_once_and_ends_older_sessions() -> None:
    user = account()
    assert user.id is not None
    token = fragment_token(account_mail.verification(user.id, "ada@example.com").link or "")
    confirmed = recovery.confirm_with_token(token)
    assert confirmed.email_verified_at is not None
    assert confirmed.token_version == user.token_version + 1
    with pytest.raises(LinkRefused) as info:
        recovery.confirm_with_token(token)
    assert info.value.reason is Refusal.USED
    # A later link of an account confirmed meanwhile signs in without ending anything.
    later = fragment_token(account_mail.verification(user.id, "ada@example.com").link or "")
    assert recovery.confirm_with_token(later).token_version == confirmed.token_version


def test_confirming_with_the_code_needs_the_address_it_was_sent_to() -> None:
    alice, bob = account("alice@example.com"), account("bob@example.com")
    assert alice.id is not None and bob.id is not None
    code = account_mail.verification(alice.id, "alice@example.com").text
    digits = next(
        line.strip().replace(" ", "") for line in code.splitlines() if line.startswith("    ")
    )
    with pytest.raises(LinkRefused):
        recovery.confirm_with_code(digits, "bob@example.com", limits())
    assert recovery.confirm_with_code(digits, "alice@example.com", limits()).id == alice.id
    assert users.get_user(bob.id).email_verified_at is None  # type: ignore[union-attr]


def test_codes_per_address_are_limited_before_any_check() -> None:
    shared = limits()
    for _ in range(shared.codes_per_recipient.amount):
        with pytest.raises(LinkRefused):
            recovery.confirm_with_code("000000", "nobody@example.com", shared)
    with pytest.raises(recovery.Throttled) as info:
        recovery.confirm_with_code("000000", "nobody@example.com", shared)
    assert str(info.value).startswith(recovery.TOO_MANY_CODES)


def test_mail_again_sends_what_the_screen_was_waiting_for() -> None:
    user = account()
    assert user.id is not None
    assert recovery.mail_again(Pending("ada@example.com", user.id), limits()).kind.value == (
        "verify_email"
    )
    assert recovery.mail_again(Pending("ada@example.com"), limits()).kind.value == (
        "signup_attempt"
    )
    recovery.confirm_with_token(
        fragment_token(account_mail.verification(user.id, "ada@example.com").link or "")
    )
    # Confirmed meanwhile: no code that could confirm anything, the owner is told to log in.
    assert recovery.mail_again(Pending("ada@example.com", user.id), limits()).kind.value == (
        "signup_attempt"
    )


def test_request_reset_answers_the_same_and_mails_only_an_account() -> None:
    user = account(verified=True)
    mail = recovery.request_reset(" ADA@example.com", CLIENT, limits())
    assert mail is not None and mail.to == "ada@example.com"
    assert recovery.reset_link_account(fragment_token(mail.link or "")) == ResetAccount(
        user.id or 0, "ada@example.com", ""
    )
    assert recovery.request_reset("nobody@example.com", CLIENT, limits()) is None
    with pytest.raises(FormErrors):
        recovery.request_reset("not an email", CLIENT, limits())


def test_a_reset_link_says_why_it_cannot_be_used() -> None:
    user = account(verified=True)
    assert user.id is not None
    token = fragment_token(account_mail.password_reset(user.id, "ada@example.com").link or "")
    for junk in (None, 5, "", "x" * 500, "é" * 20, token[:-1] + "_"):
        assert recovery.reset_link_account(junk) is Refusal.INVALID
    with session_scope() as session:
        session.execute(sa.update(EmailLink).values(expires_at=utcnow() - timedelta(seconds=1)))
    assert recovery.reset_link_account(token) is Refusal.EXPIRED
    fresh = fragment_token(account_mail.password_reset(user.id, "ada@example.com").link or "")
    assert recovery.reset_link_account(token) is Refusal.INVALID  # replaced by the new one
    recovery.reset_password(fresh, NEW_PASSWORD)
    assert recovery.reset_link_account(fresh) is Refusal.USED


def test_reset_password_checks_the_policy_before_using_the_link() -> None:
    user = account()
    assert user.id is not None
    token = fragment_token(account_mail.password_reset(user.id, "ada@example.com").link or "")
    with pytest.raises(FormErrors) as info:
        recovery.reset_password(token, "ada.example")  # built from the address
    assert set(info.value.errors) == {"password"}
    assert isinstance(recovery.reset_link_account(token), ResetAccount)  # still usable
    changed = recovery.reset_password(token, NEW_PASSWORD)
    assert passwords.verify_password(changed.password_hash, NEW_PASSWORD)
    assert changed.email_verified_at is not None  # the link proved the address
    assert changed.token_version == user.token_version + 1
    with pytest.raises(LinkRefused) as refused:
        recovery.reset_password(token, "another lantern oboe")
    assert refused.value.reason is Refusal.USED
