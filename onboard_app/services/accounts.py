"""Local accounts: sign up and log in with email + password.

Blocking (argon2 is deliberately slow): the Reflex states call these through
``passwords.in_hash_pool`` so the event loop keeps serving other users. Each attempt is
counted by the throttle before its hash is computed (see ``services/throttle.py``), so
parallel attempts cannot check more passwords than the limits allow.

Sign-up never says whether an address is registered: a new address gets an account that
waits for its owner to confirm it, a registered one gets nothing new, and both cost one
hash; the mail tells the owner which it was (:mod:`onboard_app.services.account_mail`).
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Final

from onboard_app.models import User
from onboard_app.services import password_policy, passwords, users
from onboard_app.services.account_limits import AccountLimits
from onboard_app.services.throttle import SIGNUP_PER_CLIENT, Throttle, ThrottleUnavailable

LOGIN_FAILED: Final = "Email or password is incorrect."
#: Failures cannot be counted (Redis is down): refuse rather than allow unlimited guessing.
LOGIN_UNAVAILABLE: Final = "Logging in is not possible right now. Please try again in a minute."
#: The same for sign-ups: each one costs a hash, so none goes uncounted.
SIGNUP_UNAVAILABLE: Final = "Signing up is not possible right now. Please try again in a minute."
#: Too many mails to one address (counted whether or not it is registered).
MAILS_THROTTLED: Final = "We have sent several emails to this address already."


class FormErrors(Exception):
    """Submitted fields are not acceptable.

    Attributes:
        errors: Field name -> message shown under that field.
    """

    def __init__(self, errors: dict[str, str]) -> None:
        """Keep the per-field messages.

        Args:
            errors: Field name -> message.
        """
        super().__init__("; ".join(errors.values()))
        self.errors = errors


class LoginFailed(Exception):
    """A login attempt did not succeed; ``str(exc)`` is the message for the user."""


class LoginThrottled(LoginFailed):
    """Refused before any check: too many attempts on the account or from the address.

    A subclass so the audit log can tell throttling apart; the user sees only the message.
    """


class SignUpRefused(Exception):
    """A sign-up was not attempted (throttled, or counters unreachable).

    ``str(exc)`` is the message for the whole form.
    """


@dataclass(frozen=True)
class SignedUp:
    """A sign-up that went through: the visitor sees the same in every case.

    Attributes:
        email: The normalised address (what the mail goes to).
        user: The account of that address (``None`` only if it vanished meanwhile).
        created: True if the account was created now (it waits for the owner to confirm
            the address), False if the address was registered already.
    """

    email: str
    user: User | None
    created: bool


def needs_verification(user: User) -> bool:
    """Whether an account must confirm its address before using the app.

    Password accounts must; provider accounts need not (their address, if any, is kept
    only when the provider says it is verified). ``services/sessions.py`` asks the same
    of the session's row in SQL.

    Args:
        user: The account.

    Returns:
        True for a password account whose address is not confirmed yet.
    """
    return user.password_hash is not None and user.email_verified_at is None


def new_password_problem(
    password: object, email: str | None, name: str | None = None
) -> str | None:
    """Why a new password is not acceptable for this account, or ``None``.

    The policy of :mod:`onboard_app.services.password_policy` (ASVS level 2), with the
    account's email address and name as the words it must not be built from.

    Args:
        password: The submitted password (any type).
        email: The account's address.
        name: The account's display name.

    Returns:
        A message for the password field, or ``None``.
    """
    return password_policy.password_problem(password, password_policy.context_words(email, name))


def rate_new_password(
    password: object, email: str | None, name: str | None, client: str, limits: AccountLimits
) -> password_policy.Strength | None:
    """The strength meter's verdict on a password being typed (the policy's, exactly).

    Args:
        password: What is typed so far (any type).
        email: The account's address, or what is typed in the email field.
        name: The account's display name.
        client: The client's address (ratings are counted per address).
        limits: The counters.

    Returns:
        The verdict, or ``None`` when this address asked for too many ratings lately.
    """
    try:
        if limits.counters.take(limits.rating(client)):
            return None
    except ThrottleUnavailable:
        return None
    return password_policy.strength(password, password_policy.context_words(email, name))


def _try_again(reason: str, seconds: int) -> str:
    minutes = max(1, (seconds + 59) // 60)
    return f"{reason} Try again in {minutes} minute{'s' if minutes > 1 else ''}."


def sign_up(
    email: object,
    password: object,
    client: str,
    throttle: Throttle,
    limits: AccountLimits,
    url: str | None = None,
) -> SignedUp:
    """Sign up: a new account for a new address, nothing new for a registered one.

    Valid sign-ups are counted per client address and per recipient before hashing; the
    hash is computed in both cases, so the answer and its cost are the same.

    Args:
        email: Submitted email (any type).
        password: Submitted password (any type).
        client: The client's address, for the per-address throttle.
        throttle: Shared counters.
        limits: The limits on mails to one address.
        url: Database URL.

    Returns:
        What happened, for the mail to send (never for the visitor to see).

    Raises:
        FormErrors: The email or password is not acceptable (never "already registered").
        SignUpRefused: Too many sign-ups from this address or mails to that one, or the
            counters are unreachable.
    """
    errors: dict[str, str] = {}
    address = users.normalise_email(email)
    if address is None:
        errors["email"] = "Enter a valid email address, like name@example.com."
    problem = new_password_problem(password, address)
    if problem:
        errors["password"] = problem
    if errors:
        raise FormErrors(errors)
    assert address is not None and isinstance(password, str)
    per_client = (throttle.signup_per_client, SIGNUP_PER_CLIENT, client)
    try:
        wait = throttle.counters.take(per_client)
        if wait:
            raise SignUpRefused(_try_again("Too many sign-ups from your network.", wait))
        wait = throttle.counters.take(limits.recipient(address))
        if wait:
            throttle.counters.give_back(per_client)
            raise SignUpRefused(_try_again(MAILS_THROTTLED, wait))
    except ThrottleUnavailable:
        raise SignUpRefused(SIGNUP_UNAVAILABLE) from None
    password_hash = passwords.hash_password(password)
    try:
        return SignedUp(address, users.create_local_user(address, password_hash, url), True)
    except users.EmailTaken:
        return SignedUp(address, users.get_user_by_email(address, url), False)


def log_in(
    email: object,
    password: object,
    client: str,
    throttle: Throttle,
    url: str | None = None,
) -> User:
    """Check an email + password login; the attempt is counted before the check.

    Unknown account, wrong password and passwordless (GitHub/OIDC) account all fail with
    the same message after the same amount of work.

    Args:
        email: Submitted email (any type).
        password: Submitted password (any type).
        client: The client's address, for the per-address throttle.
        throttle: Shared counters.
        url: Database URL.

    Returns:
        The user.

    Raises:
        LoginFailed: With the message to show.
    """
    address = users.normalise_email(email)
    account_key = address or (email if isinstance(email, str) else "")[:300].strip().lower()
    try:
        wait = throttle.start_login(account_key, client)
    except ThrottleUnavailable:
        raise LoginFailed(LOGIN_UNAVAILABLE) from None
    if wait:
        raise LoginThrottled(_try_again("Too many failed attempts.", wait))
    secret = password if isinstance(password, str) else ""
    try:
        user = users.get_user_by_email(address, url) if address else None
    except Exception:
        # No password was checked: a database outage must not lock out those who retry.
        with contextlib.suppress(ThrottleUnavailable):
            throttle.login_not_checked(account_key, client)
        raise
    if not passwords.verify_password(user.password_hash if user else None, secret) or not user:
        raise LoginFailed(LOGIN_FAILED)  # counted already, before the check
    # The login succeeded; if Redis is down, the stale counters expire with their window.
    with contextlib.suppress(ThrottleUnavailable):
        throttle.login_succeeded(account_key, client)
    assert user.password_hash is not None and user.id is not None
    if passwords.needs_rehash(user.password_hash):
        users.update_password_hash(user.id, passwords.hash_password(secret), url)
    return user
