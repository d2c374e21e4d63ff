"""Local accounts: sign up and log in with email + password.

Blocking (argon2 is deliberately slow): the Reflex states call these through
``passwords.in_hash_pool`` so the event loop keeps serving other users. Each attempt is
counted by the throttle before its hash is computed (see ``services/throttle.py``), so
parallel attempts cannot check more passwords than the limits allow.
"""

from __future__ import annotations

import contextlib
from typing import Final

from onboard_app.models import User
from onboard_app.services import passwords, users
from onboard_app.services.throttle import Throttle, ThrottleUnavailable

LOGIN_FAILED: Final = "Email or password is incorrect."
#: Failures cannot be counted (Redis is down): refuse rather than allow unlimited guessing.
LOGIN_UNAVAILABLE: Final = "Logging in is not possible right now. Please try again in a minute."
#: The same for sign-ups: each one costs a hash, so none goes uncounted.
SIGNUP_UNAVAILABLE: Final = "Signing up is not possible right now. Please try again in a minute."


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


def _try_again(reason: str, seconds: int) -> str:
    minutes = max(1, (seconds + 59) // 60)
    return f"{reason} Try again in {minutes} minute{'s' if minutes > 1 else ''}."


def sign_up(
    email: object,
    password: object,
    client: str,
    throttle: Throttle,
    url: str | None = None,
) -> User:
    """Create a local account; valid sign-ups are counted per address before hashing.

    Args:
        email: Submitted email (any type).
        password: Submitted password (any type).
        client: The client's address, for the per-address throttle.
        throttle: Shared counters.
        url: Database URL.

    Returns:
        The new user, at the first onboarding step.

    Raises:
        FormErrors: Invalid email or password, or the address is already registered.
        SignUpRefused: Too many sign-ups from this address, or the counters are unreachable.
    """
    errors: dict[str, str] = {}
    address = users.normalise_email(email)
    if address is None:
        errors["email"] = "Enter a valid email address, like name@example.com."
    problem = passwords.password_problem(password)
    if problem:
        errors["password"] = problem
    if errors:
        raise FormErrors(errors)
    assert address is not None and isinstance(password, str)
    try:
        wait = throttle.start_sign_up(client)
    except ThrottleUnavailable:
        raise SignUpRefused(SIGNUP_UNAVAILABLE) from None
    if wait:
        raise SignUpRefused(_try_again("Too many sign-ups from your network.", wait))
    try:
        return users.create_local_user(address, passwords.hash_password(password), url)
    except users.EmailTaken:
        raise FormErrors(
            {"email": "An account with this email already exists. Log in instead."}
        ) from None


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
