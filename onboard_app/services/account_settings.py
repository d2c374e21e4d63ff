"""Account settings: change the email address, change the password, delete the account.

Each change asks the signed-in user to prove again who they are: the current password
(counted like a login, on the login throttle's per-account and per-address counters,
before it is checked), or for an account without a password a fresh sign-in with its
provider (:func:`reauthentication_problem`).

* **Email**: a change is a link and a code mailed to the new address; it takes effect
  only when one of them is used (:func:`confirm_with_token`, :func:`confirm_with_code`).
  The old address is told at once, with a one-time reset link. An address that belongs
  to another account gets the same answer and the same database writes; its owner gets
  a mail instead of a confirmation, so the answer says nothing about the address.
* **Password**: the current one, a new one under the policy; every other session ends.
* **Deletion**: the account and everything of it (answers, sessions, links, events).

Accounts without a password (GitHub, OpenID Connect) keep the address their provider
gave: they sign in with the provider, not with it, so there is no address or password to
change here; they can delete their account after signing in with the provider again.

Pure Python, blocking (database, argon2): the states call these off the event loop, the
password ones through ``passwords.in_hash_pool``.
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass
from typing import Final

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlmodel import col

from onboard_app.models import EmailLink, User, utcnow
from onboard_app.services import account_mail, email_links, mail_templates, passwords, users
from onboard_app.services.account_limits import AccountLimits
from onboard_app.services.accounts import FormErrors, new_password_problem
from onboard_app.services.db import session_scope
from onboard_app.services.email_links import LinkPurpose, Refusal
from onboard_app.services.linking import ExternalIdentity
from onboard_app.services.mail import Mail
from onboard_app.services.oauth import REAUTH_MAX_AGE
from onboard_app.services.recovery import (
    ENTER_EMAIL,
    TOO_MANY_CODES,
    TOO_MANY_MAILS,
    UNAVAILABLE,
    LinkRefused,
    Throttled,
)
from onboard_app.services.sessions import end_other_sessions
from onboard_app.services.throttle import Slot, Throttle, ThrottleUnavailable
from onboard_app.settings import Settings, get_settings

#: The names of the fields of the settings forms, as the errors are keyed.
NEW_EMAIL: Final = "new_email"
CURRENT_PASSWORD: Final = "current_password"  # noqa: S105 (a field name)
NEW_PASSWORD: Final = "new_password"  # noqa: S105 (a field name)
CONFIRM: Final = "confirm"
CODE: Final = "code"

#: What the user types to confirm a deletion (any case, spaces around ignored).
CONFIRM_WORD: Final = "DELETE"
ENTER_PASSWORD: Final = "Enter your current password."  # noqa: S105
WRONG_PASSWORD: Final = "This is not your current password."  # noqa: S105
TOO_MANY_PASSWORDS: Final = "Too many wrong passwords."
SAME_EMAIL: Final = "This is already your email address."
SAME_PASSWORD: Final = "Choose a password different from your current one."  # noqa: S105
ENTER_CODE: Final = "Enter the 6-digit code from the email."
TYPE_TO_CONFIRM: Final = f"Type {CONFIRM_WORD} to confirm."
EMAIL_NOW_TAKEN: Final = (
    "This address now belongs to another account, so your address was not changed."
)
NO_PASSWORD: Final = "This account signs in with its provider and has no password."  # noqa: S105
ANOTHER_ACCOUNT: Final = (
    "That was another account at your provider. Sign in there with the account you use "
    "here, then try again."
)
NOT_RECENT: Final = (
    "Your provider did not confirm a sign-in just now. Please try again and sign in there."
)
#: Seconds of clock skew allowed on the provider's ``auth_time``.
AUTH_TIME_LEEWAY: Final = 30


class WrongPassword(FormErrors):
    """The current password typed is not the account's (a field error of its own kind)."""

    def __init__(self) -> None:
        """The message of the current password's field."""
        super().__init__({CURRENT_PASSWORD: WRONG_PASSWORD})


class NoPassword(Exception):
    """The account has no password (GitHub / OpenID Connect): nothing to check or change."""


@dataclass(frozen=True)
class Account:
    """What the settings page shows of an account.

    Attributes:
        user_id: The account.
        email: Its address, if any.
        has_password: Whether it signs in with a password.
        provider: ``github`` or ``oidc`` for an account without a password, else ``None``.
        pending_email: The address a change waits to be confirmed for, if any.
    """

    user_id: int
    email: str | None
    has_password: bool
    provider: str | None
    pending_email: str | None


@dataclass(frozen=True)
class Deleted:
    """An account that no longer exists.

    Attributes:
        user_id: Its id (for the audit line).
        email: Its address, for the confirming mail (``None``: it had none).
    """

    user_id: int
    email: str | None


def provider_of(user: User) -> str | None:
    """The provider an account without a password signs in with (``None`` otherwise)."""
    if user.password_hash is not None:
        return None
    if user.github_id is not None:
        return "github"
    return "oidc" if user.oidc_subject else None


def _user(user_id: int, url: str | None) -> User:
    user = users.get_user(user_id, url)
    if user is None or user.id is None:
        raise users.UserGone(user_id)
    return user


def account(user_id: int, url: str | None = None) -> Account:
    """The account as the settings page shows it.

    Args:
        user_id: The user (from a verified session).
        url: Database URL.

    Returns:
        The account.

    Raises:
        UserGone: The user no longer exists.
    """
    user = _user(user_id, url)
    return Account(
        user_id,
        user.email,
        user.password_hash is not None,
        provider_of(user),
        pending_email_change(user_id, url),
    )


def pending_email_change(user_id: int, url: str | None = None) -> str | None:
    """The address an email change of the user waits to be confirmed for, if any.

    Args:
        user_id: The user.
        url: Database URL.

    Returns:
        The new address, or ``None`` (no change asked, or its link used or expired).
    """
    query = sa.select(col(EmailLink.new_email)).where(
        col(EmailLink.user_id) == user_id,
        col(EmailLink.purpose) == LinkPurpose.CHANGE_EMAIL.value,
        col(EmailLink.used_at).is_(None),
        col(EmailLink.expires_at) > utcnow(),
    )
    with session_scope(url) as session:
        found: str | None = session.execute(query).scalar_one_or_none()
    return found


def _take(limits: AccountLimits, message: str, slot: Slot) -> None:
    try:
        wait = limits.counters.take(slot)
    except ThrottleUnavailable:
        raise Throttled(UNAVAILABLE) from None
    if wait:
        raise Throttled(_try_again(message, wait))


def _try_again(message: str, seconds: int) -> str:
    minutes = max(1, (seconds + 59) // 60)
    return f"{message} Try again in {minutes} minute{'s' if minutes > 1 else ''}."


def check_password(user: User, password: object, client: str, throttle: Throttle) -> None:
    """Check the current password a signed-in user typed, counted like a login first.

    The attempt is counted against the account (its address) and the client address on
    the login throttle before the hash is checked; a right password clears the account's
    count as a login does.

    Args:
        user: The account (with a password).
        password: What was typed (any type).
        client: The client's address.
        throttle: The login throttle.

    Raises:
        NoPassword: The account has no password.
        FormErrors: Nothing typed (nothing counted).
        Throttled: Too many attempts lately, or the counters are unreachable.
        WrongPassword: Not the account's password.
    """
    if user.password_hash is None:
        raise NoPassword
    if not isinstance(password, str) or not password:
        raise FormErrors({CURRENT_PASSWORD: ENTER_PASSWORD})
    key = user.email or f"user:{user.id}"
    try:
        wait = throttle.start_login(key, client)
    except ThrottleUnavailable:
        raise Throttled(UNAVAILABLE) from None
    if wait:
        raise Throttled(_try_again(TOO_MANY_PASSWORDS, wait))
    if not passwords.verify_password(user.password_hash, password):
        raise WrongPassword  # counted already, before the check
    with contextlib.suppress(ThrottleUnavailable):
        throttle.login_succeeded(key, client)


# --- email ----------------------------------------------------------------------------------


def request_email_change(
    user_id: int,
    new_email: object,
    password: object,
    client: str,
    throttle: Throttle,
    limits: AccountLimits,
    settings: Settings | None = None,
    url: str | None = None,
) -> tuple[str, list[Mail]]:
    """Ask to move an account to another address, after its current password.

    The answer and the writes are the same whether or not the new address belongs to
    another account (see :func:`account_mail.email_change`); mails to the new address
    are counted per recipient like every other mail a visitor can cause.

    Args:
        user_id: The user (from a verified session).
        new_email: The address typed (any type).
        password: The current password typed (any type).
        client: The client's address.
        throttle: The login throttle (for the password).
        limits: The limits on mails to one address.
        settings: The settings (public URL).
        url: Database URL.

    Returns:
        The new address (normalised) and the mails to send.

    Raises:
        UserGone: The user no longer exists.
        NoPassword: The account has no password.
        FormErrors: The address or the password is missing or not acceptable.
        Throttled: Too many password attempts, or mails to that address, lately.
    """
    user = _user(user_id, url)
    if user.password_hash is None or user.email is None:
        raise NoPassword
    address = users.normalise_email(new_email)
    errors: dict[str, str] = {}
    if address is None:
        errors[NEW_EMAIL] = ENTER_EMAIL
    elif address == user.email:
        errors[NEW_EMAIL] = SAME_EMAIL
    if not isinstance(password, str) or not password:
        errors[CURRENT_PASSWORD] = ENTER_PASSWORD
    if errors:
        raise FormErrors(errors)
    assert address is not None
    check_password(user, password, client, throttle)
    _take(limits, TOO_MANY_MAILS, limits.recipient(address))
    taken = users.get_user_by_email(address, url) is not None
    mails = account_mail.email_change(
        user_id, user.email, address, taken=taken, settings=settings, url=url
    )
    return address, list(mails)


def cancel_email_change(user_id: int, url: str | None = None) -> None:
    """Drop the user's pending email change (its link and code stop working).

    Args:
        user_id: The user (from a verified session).
        url: Database URL.
    """
    email_links.revoke(user_id, LinkPurpose.CHANGE_EMAIL, url)


class EmailUnavailable(Exception):
    """The confirmed address belongs to another account by now; nothing was changed."""


def confirm_with_token(token: object, user_id: int | None, url: str | None = None) -> User:
    """Make an email change with the token of its mailed link (once).

    Args:
        token: The token from the link (any type: it comes from the client).
        user_id: The signed-in user, whose link it must be; ``None`` when the link is
            opened where nobody is signed in (the link alone proves the new address).
        url: Database URL.

    Returns:
        The account with its new address.

    Raises:
        LinkRefused: Unknown, another user's, expired or used.
        EmailUnavailable: Another account has the address now.
    """
    redeemed = email_links.redeem_token(token, LinkPurpose.CHANGE_EMAIL, user_id=user_id, url=url)
    if isinstance(redeemed, Refusal):
        raise LinkRefused(redeemed)
    return _move(redeemed, url)


def confirm_with_code(
    code: object, user_id: int, email: str, limits: AccountLimits, url: str | None = None
) -> User:
    """Make the signed-in user's email change with the code of its mail (once).

    Args:
        code: The code as typed (any type).
        user_id: The user (from a verified session).
        email: Their current address (typed codes are counted per address).
        limits: The limit on codes typed.
        url: Database URL.

    Returns:
        The account with its new address.

    Raises:
        FormErrors: Nothing typed.
        Throttled: Too many codes typed lately.
        LinkRefused: Not the code of the user's pending change (or it is spent).
        EmailUnavailable: Another account has the address now.
    """
    if not isinstance(code, str) or not code.strip():
        raise FormErrors({CODE: ENTER_CODE})
    _take(limits, TOO_MANY_CODES, limits.code(email))
    redeemed = email_links.redeem_code(code, LinkPurpose.CHANGE_EMAIL, user_id=user_id, url=url)
    if isinstance(redeemed, Refusal):
        raise LinkRefused(redeemed)
    return _move(redeemed, url)


def _move(redeemed: email_links.Redeemed, url: str | None) -> User:
    """Give the account its confirmed address; its verification links stop working."""
    now = utcnow()
    try:
        with session_scope(url) as session:
            moved = session.execute(
                sa.update(User)
                .where(col(User.id) == redeemed.user_id)
                .values(email=redeemed.new_email, email_verified_at=now, updated_at=now)
            )
            # A verification link mailed to the old address has nothing left to confirm.
            session.execute(
                sa.delete(EmailLink).where(
                    col(EmailLink.user_id) == redeemed.user_id,
                    col(EmailLink.purpose) == LinkPurpose.VERIFY_EMAIL.value,
                )
            )
    except IntegrityError:
        raise EmailUnavailable from None
    if getattr(moved, "rowcount", 0) != 1:  # deleted between the link and now
        raise LinkRefused(Refusal.INVALID)
    return _user(redeemed.user_id, url)


# --- password -------------------------------------------------------------------------------


def change_password(
    user_id: int,
    current: object,
    new: object,
    keep_session: str,
    client: str,
    throttle: Throttle,
    url: str | None = None,
) -> User:
    """Replace the password after the current one; every other session of the user ends.

    The new password is checked by the policy (against the account's own words) before
    the current one is counted and checked, so a refused new password costs no attempt.

    Args:
        user_id: The user (from a verified session).
        current: The current password typed (any type).
        new: The new password (any type).
        keep_session: The caller's session (``Authenticated.session_id``): it stays.
        client: The client's address.
        throttle: The login throttle (for the current password).
        url: Database URL.

    Returns:
        The account after the change (to re-mint the caller's token from).

    Raises:
        UserGone: The user no longer exists.
        NoPassword: The account has no password.
        FormErrors: A field is missing, or the new password is not acceptable.
        Throttled: Too many password attempts lately.
        WrongPassword: The current password is wrong.
    """
    user = _user(user_id, url)
    if user.password_hash is None:
        raise NoPassword
    errors: dict[str, str] = {}
    if not isinstance(current, str) or not current:
        errors[CURRENT_PASSWORD] = ENTER_PASSWORD
    problem = new_password_problem(new, user.email, user.display_name)
    if problem:
        errors[NEW_PASSWORD] = problem
    elif new == current:
        errors[NEW_PASSWORD] = SAME_PASSWORD
    if errors:
        raise FormErrors(errors)
    check_password(user, current, client, throttle)
    assert isinstance(new, str)
    users.update_password_hash(user_id, passwords.hash_password(new), url)
    end_other_sessions(user_id, keep=keep_session, url=url)
    return _user(user_id, url)


# --- deletion -------------------------------------------------------------------------------


def confirm_problem(typed: object) -> str | None:
    """Why the typed confirmation does not confirm a deletion, or ``None``."""
    if isinstance(typed, str) and typed.strip().upper() == CONFIRM_WORD:
        return None
    return TYPE_TO_CONFIRM


def delete_with_password(
    user_id: int,
    password: object,
    typed: object,
    client: str,
    throttle: Throttle,
    url: str | None = None,
) -> Deleted:
    """Delete an account after its confirmation word and current password.

    Args:
        user_id: The user (from a verified session).
        password: The current password typed (any type).
        typed: The confirmation typed (any type).
        client: The client's address.
        throttle: The login throttle (for the password).
        url: Database URL.

    Returns:
        What is left to tell (the address for the confirming mail).

    Raises:
        UserGone: The user no longer exists.
        NoPassword: The account has no password (it re-authenticates with its provider).
        FormErrors: The confirmation or the password is missing or wrong.
        Throttled: Too many password attempts lately.
    """
    user = _user(user_id, url)
    if user.password_hash is None:
        raise NoPassword
    errors: dict[str, str] = {}
    problem = confirm_problem(typed)
    if problem:
        errors[CONFIRM] = problem
    if not isinstance(password, str) or not password:
        errors[CURRENT_PASSWORD] = ENTER_PASSWORD
    if errors:
        raise FormErrors(errors)
    check_password(user, password, client, throttle)
    return _delete(user, url)


def reauthentication_problem(
    user: User, identity: ExternalIdentity, now: float | None = None
) -> str | None:
    """Why a provider's answer does not prove that the account's owner just signed in.

    It must be the account's own identity (GitHub's numeric id, or the OpenID Connect
    issuer and subject). An OpenID Connect provider must say when the user logged in
    (``auth_time``, which the re-authentication's ``max_age`` makes it send) and that
    must be within :data:`~onboard_app.services.oauth.REAUTH_MAX_AGE`. GitHub says no such
    thing: its fresh round trip (with its account picker) is the proof it offers.

    Args:
        user: The signed-in account.
        identity: What the provider's callback vouched for.
        now: Current Unix time (tests).

    Returns:
        The message for the user, or ``None`` when the proof holds.
    """
    if identity.provider == "github":
        same = identity.github_id is not None and identity.github_id == user.github_id
    else:
        same = identity.oidc_subject is not None and (
            identity.oidc_issuer,
            identity.oidc_subject,
        ) == ((user.oidc_issuer or "").rstrip("/"), user.oidc_subject)
    if not same or provider_of(user) != identity.provider:
        return ANOTHER_ACCOUNT
    if identity.provider == "oidc":
        now = time.time() if now is None else now
        at = identity.auth_time
        if (
            at is None
            or not now - REAUTH_MAX_AGE - AUTH_TIME_LEEWAY <= at <= now + AUTH_TIME_LEEWAY
        ):
            return NOT_RECENT
    return None


def delete_after_reauthentication(
    user_id: int, identity: ExternalIdentity, now: float | None = None, url: str | None = None
) -> Deleted:
    """Delete an account without a password once its provider proved it is the owner.

    Args:
        user_id: The user (from a verified session).
        identity: What the provider's callback vouched for.
        now: Current Unix time (tests).
        url: Database URL.

    Returns:
        What is left to tell.

    Raises:
        UserGone: The user no longer exists.
        FormErrors: The provider's answer proves nothing (``form``: why).
    """
    user = _user(user_id, url)
    problem = reauthentication_problem(user, identity, now)
    if problem:
        raise FormErrors({"form": problem})
    return _delete(user, url)


def _delete(user: User, url: str | None) -> Deleted:
    assert user.id is not None
    users.delete_user(user.id, url)
    return Deleted(user.id, user.email)


def deleted_mail(deleted: Deleted) -> Mail | None:
    """The mail confirming a deletion (``None`` for an account that had no address)."""
    return mail_templates.account_deleted(deleted.email) if deleted.email else None


def provider_name(provider: str, settings: Settings | None = None) -> str:
    """How the page names a provider: ``GitHub``, or the OpenID Connect button's words."""
    if provider == "github":
        return "GitHub"
    oidc = (settings or get_settings()).oidc
    label = oidc.label if oidc is not None else ""
    return label.removeprefix("Sign in with ").strip() or "your sign-in provider"
