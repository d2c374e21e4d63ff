"""Confirming an email address and resetting a password, with a mailed link or code.

Confirming (the link of the verification mail, or its 6-digit code typed on the "check
your email" screen) marks the address verified and hands back the account to sign in.
The first confirmation of an account ends every session it had: none of them had proven
the address.

A password reset link is looked at when its page opens (:func:`reset_link_account`: whose
it is, for the strength meter and the policy, without using it) and used once when the
new password is submitted (:func:`reset_password`): the password is replaced, the address
counts as verified (the link proved it), a pending email change is cancelled, and every
other session of the account ends.

Requests for a reset answer the same whether or not the address has an account
(:func:`request_reset` returns a mail only for a registered one; the caller shows the
same screen either way). Blocking (database, Redis, argon2): call these off the event
loop, :func:`reset_password` through ``passwords.in_hash_pool``.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Final

import sqlalchemy as sa
from sqlmodel import col

from onboard_app.models import EmailLink, User, utcnow
from onboard_app.services import account_mail, email_links, passwords, users
from onboard_app.services.account_limits import AccountLimits
from onboard_app.services.accounts import FormErrors, needs_verification, new_password_problem
from onboard_app.services.db import session_scope
from onboard_app.services.email_links import REFUSAL_MESSAGES, LinkPurpose, Refusal
from onboard_app.services.mail import Mail
from onboard_app.services.sessions import end_other_sessions
from onboard_app.services.throttle import Slot, ThrottleUnavailable
from onboard_app.settings import Settings

ENTER_EMAIL: Final = "Enter a valid email address, like name@example.com."
UNAVAILABLE: Final = "This is not possible right now. Please try again in a minute."
TOO_MANY_MAILS: Final = "We have sent several emails to this address already."
TOO_MANY_RESETS: Final = "Too many password reset requests from your network."
TOO_MANY_CODES: Final = "Too many codes were tried for this address."


class LinkRefused(Exception):
    """A link or code did not work; ``str(exc)`` is the message for the user.

    Attributes:
        reason: Why (invalid, expired, used, too many attempts).
    """

    def __init__(self, reason: Refusal) -> None:
        """Keep the reason.

        Args:
            reason: Why it did not work.
        """
        super().__init__(REFUSAL_MESSAGES[reason])
        self.reason = reason


class Throttled(Exception):
    """Refused before any work (too many requests, or the counters are unreachable).

    ``str(exc)`` is the message for the user.
    """


@dataclass(frozen=True)
class Pending:
    """What one tab's "check your email" screen waits for (kept server-side only).

    Attributes:
        email: The address the mail went to (normalised).
        user_id: The account whose verification mail was sent; ``None`` when the address
            was registered already (its owner got the "someone tried to sign up" mail).
    """

    email: str
    user_id: int | None = None


@dataclass(frozen=True)
class ResetAccount:
    """Whose password a still-usable reset link would change.

    Attributes:
        user_id: The account.
        email: Its address.
        display_name: Its name (the password must not be built from it either).
    """

    user_id: int
    email: str
    display_name: str


def _take(limits: AccountLimits, message: str, *slots: Slot) -> None:
    """Count a request against every slot, or refuse it with ``message``."""
    try:
        wait = limits.counters.take(*slots)
    except ThrottleUnavailable:
        raise Throttled(UNAVAILABLE) from None
    if wait:
        minutes = max(1, (wait + 59) // 60)
        raise Throttled(f"{message} Try again in {minutes} minute{'s' if minutes > 1 else ''}.")


# --- email verification ---------------------------------------------------------------------


def verification_mail(
    user_id: int,
    email: str,
    limits: AccountLimits,
    settings: Settings | None = None,
    url: str | None = None,
) -> Mail:
    """A new verification link and code for an account, counted against its address.

    Args:
        user_id: The account (its earlier link and code stop working).
        email: Its address.
        limits: The limits on mails to one address.
        settings: The settings (public URL).
        url: Database URL.

    Returns:
        The mail to send.

    Raises:
        Throttled: Too many mails to this address lately.
    """
    _take(limits, TOO_MANY_MAILS, limits.recipient(email))
    return account_mail.verification(user_id, email, settings, url)


def mail_again(
    pending: Pending,
    limits: AccountLimits,
    settings: Settings | None = None,
    url: str | None = None,
) -> Mail:
    """The mail "send again" sends: what the screen's first mail was, made anew.

    A fresh verification link while the account still waits for its confirmation;
    otherwise (the address was registered, or is confirmed by now) the "someone tried to
    sign up" mail, which points its owner to the login.

    Args:
        pending: What the screen waits for.
        limits: The limits on mails to one address.
        settings: The settings (public URL).
        url: Database URL.

    Returns:
        The mail to send.

    Raises:
        Throttled: Too many mails to this address lately.
    """
    _take(limits, TOO_MANY_MAILS, limits.recipient(pending.email))
    user = users.get_user(pending.user_id, url) if pending.user_id is not None else None
    # Still waiting for its confirmation? (Confirmed meanwhile: the owner is told to log in.)
    if (
        user is not None
        and user.id is not None
        and user.email == pending.email
        and needs_verification(user)
    ):
        return account_mail.verification(user.id, pending.email, settings, url)
    return account_mail.signup_attempt(pending.email, settings)


def confirm_with_token(token: object, url: str | None = None) -> User:
    """Confirm an address with the token of a verification link (once).

    Args:
        token: The token from the link (any type: it comes from the client).
        url: Database URL.

    Returns:
        The account, to sign in.

    Raises:
        LinkRefused: Unknown, tampered with, expired or used.
    """
    redeemed = email_links.redeem_token(token, LinkPurpose.VERIFY_EMAIL, url=url)
    if isinstance(redeemed, Refusal):
        raise LinkRefused(redeemed)
    return _confirmed(redeemed.user_id, url)


def confirm_with_code(
    code: object, email: str, limits: AccountLimits, url: str | None = None
) -> User:
    """Confirm an address with the code of its verification mail (once).

    Args:
        code: The code as typed (any type).
        email: The address the screen's mail went to.
        limits: The limit on codes typed for one address.
        url: Database URL.

    Returns:
        The account, to sign in.

    Raises:
        Throttled: Too many codes typed for this address lately.
        LinkRefused: Not this address's code (always ``invalid``: nothing is told about
            the address, not even that its code expired).
    """
    _take(limits, TOO_MANY_CODES, limits.code(email))
    redeemed = email_links.redeem_code(code, LinkPurpose.VERIFY_EMAIL, email=email, url=url)
    if isinstance(redeemed, Refusal):
        raise LinkRefused(redeemed)
    return _confirmed(redeemed.user_id, url)


def _confirmed(user_id: int, url: str | None) -> User:
    """Mark the address verified; the first time, end every session the account had."""
    user = users.confirm_email(user_id, url)  # the confirming browser signs in anew
    if user is None:  # deleted between the link and now
        raise LinkRefused(Refusal.INVALID)
    return user


def _row(user_id: int, url: str | None) -> User:
    user = users.get_user(user_id, url)
    if user is None:  # deleted between the link and now
        raise LinkRefused(Refusal.INVALID)
    return user


# --- password reset -------------------------------------------------------------------------


def request_reset(
    email: object,
    client: str,
    limits: AccountLimits,
    settings: Settings | None = None,
    url: str | None = None,
) -> Mail | None:
    """Ask for a reset link; counted per client and per address, known or not.

    Args:
        email: The submitted address (any type).
        client: The client's address.
        limits: The limits on reset requests and mails.
        settings: The settings (public URL).
        url: Database URL.

    Returns:
        The mail to send, or ``None`` when no account has this address (the caller
        answers the same either way).

    Raises:
        FormErrors: Not an email address.
        Throttled: Too many requests from this client, or mails to this address.
    """
    address = users.normalise_email(email)
    if address is None:
        raise FormErrors({"email": ENTER_EMAIL})
    _take(limits, TOO_MANY_RESETS, limits.reset_client(client))
    try:
        _take(limits, TOO_MANY_MAILS, limits.recipient(address))
    except Throttled:
        with contextlib.suppress(ThrottleUnavailable):
            limits.counters.give_back(limits.reset_client(client))
        raise
    user = users.get_user_by_email(address, url)
    if user is None or user.id is None:
        return None
    return account_mail.password_reset(user.id, address, settings, url)


def reset_link_account(token: object, url: str | None = None) -> ResetAccount | Refusal:
    """Whose password a reset link would change, if it can still be used (it is not used).

    Args:
        token: The token from the link (any type: it comes from the client).
        url: Database URL.

    Returns:
        The account, or why the link cannot be used.
    """
    if not isinstance(token, str) or not token.isascii() or not 16 <= len(token) <= 128:
        return Refusal.INVALID
    query = (
        sa.select(col(User.id), col(User.email), col(User.display_name))
        .join(EmailLink, col(EmailLink.user_id) == col(User.id))
        .where(
            col(EmailLink.token_hash) == email_links._token_hash(token),
            col(EmailLink.purpose) == LinkPurpose.RESET_PASSWORD.value,
            col(EmailLink.used_at).is_(None),
            col(EmailLink.expires_at) > utcnow(),
        )
    )
    with session_scope(url) as session:
        row = session.execute(query).first()
    if row is None:
        # Unusable, so redeeming cannot succeed: it only says why (used, expired, unknown).
        refusal = email_links.redeem_token(token, LinkPurpose.RESET_PASSWORD, url=url)
        return refusal if isinstance(refusal, Refusal) else Refusal.INVALID
    if row.email is None:
        return Refusal.INVALID
    return ResetAccount(row.id, row.email, row.display_name)


def reset_password(token: object, password: object, url: str | None = None) -> User:
    """Use a reset link: the new password, a verified address, every other session ended.

    The policy is checked (against the account's own words) before the password is
    hashed, and the link is used only after both: a refused password keeps it working.

    Args:
        token: The token from the link (any type).
        password: The new password (any type).
        url: Database URL.

    Returns:
        The account after the change, to sign in.

    Raises:
        LinkRefused: The link is unknown, tampered with, expired or used.
        FormErrors: The password is not acceptable (``password``).
    """
    account = reset_link_account(token, url)
    if isinstance(account, Refusal):
        raise LinkRefused(account)
    problem = new_password_problem(password, account.email, account.display_name)
    if problem:
        raise FormErrors({"password": problem})
    assert isinstance(password, str)
    password_hash = passwords.hash_password(password)
    redeemed = email_links.redeem_token(
        token, LinkPurpose.RESET_PASSWORD, user_id=account.user_id, url=url
    )
    if isinstance(redeemed, Refusal):  # used or expired meanwhile
        raise LinkRefused(redeemed)
    now = utcnow()
    with session_scope(url) as session:
        session.execute(
            sa.update(User)
            .where(col(User.id) == account.user_id)
            .values(
                password_hash=password_hash,
                email_verified_at=sa.func.coalesce(col(User.email_verified_at), now),
                updated_at=now,
            )
        )
        # A pending email change stops (the change notice promises it to the old address).
        session.execute(
            sa.delete(EmailLink).where(
                col(EmailLink.user_id) == account.user_id,
                col(EmailLink.purpose) == LinkPurpose.CHANGE_EMAIL.value,
            )
        )
    end_other_sessions(account.user_id, keep=None, url=url)  # the link's browser signs in anew
    return _row(account.user_id, url)
