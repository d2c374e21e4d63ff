"""Local sign-up and log-in: field errors, one generic failure, throttling, rehash on login."""

from __future__ import annotations

import argon2
import pytest
from limits import RateLimitItemPerSecond
from limits.storage import MemoryStorage
from limits.strategies import FixedWindowRateLimiter

from onboard_app.services import passwords, users
from onboard_app.services.accounts import LOGIN_FAILED, FormErrors, LoginFailed, log_in, sign_up
from onboard_app.services.throttle import Throttle, make_throttle
from onboard_app.settings import Settings

pytestmark = pytest.mark.usefixtures("app_db")

EMAIL = "ada@example.com"
PASSWORD = "correct horse battery"
CLIENT = "203.0.113.7"


def throttle(per_account: int = 5, per_client: int = 20, window: int = 900) -> Throttle:
    """A fresh in-memory throttle (make_throttle's storage is cached per process)."""
    return Throttle(
        limiter=FixedWindowRateLimiter(MemoryStorage()),
        per_account=RateLimitItemPerSecond(per_account, window),
        per_client=RateLimitItemPerSecond(per_client, window),
    )


def failure_message(call: object) -> str:
    assert callable(call)
    with pytest.raises(LoginFailed) as info:
        call()
    return str(info.value)


@pytest.fixture
def account() -> users.User:
    return sign_up(EMAIL, PASSWORD)


# --- sign up --------------------------------------------------------------------------------


def test_sign_up_creates_user(account: users.User) -> None:
    assert account.id is not None
    assert account.email == EMAIL
    assert account.onboarding_step == "profile"
    assert account.password_hash is not None
    assert account.password_hash.startswith("$argon2id$")
    assert PASSWORD not in account.password_hash
    assert passwords.verify_password(account.password_hash, PASSWORD)


def test_sign_up_normalises_email() -> None:
    user = sign_up("  Grace@Example.ORG ", PASSWORD)
    assert user.email == "grace@example.org"


@pytest.mark.parametrize(
    ("email", "password", "fields"),
    [
        ("not-an-email", PASSWORD, {"email"}),
        (None, PASSWORD, {"email"}),
        (["ada@example.com"], PASSWORD, {"email"}),
        ("ada\x00@example.com", PASSWORD, {"email"}),
        (EMAIL, "short", {"password"}),
        (EMAIL, "", {"password"}),
        (EMAIL, None, {"password"}),
        (EMAIL, 12345678, {"password"}),
        (EMAIL, "nul\x00password", {"password"}),
        (EMAIL, "p" * 257, {"password"}),
        (EMAIL, " " * 12, {"password"}),
        ("", "", {"email", "password"}),
    ],
    ids=lambda v: repr(v)[:20],
)
def test_sign_up_field_errors(
    app_db: Settings, email: object, password: object, fields: set[str]
) -> None:
    with pytest.raises(FormErrors) as info:
        sign_up(email, password)
    assert set(info.value.errors) == fields
    assert all(info.value.errors.values())
    assert users.get_user_by_email(EMAIL) is None


def test_sign_up_error_messages() -> None:
    with pytest.raises(FormErrors) as info:
        sign_up("nope", "short")
    assert info.value.errors == {
        "email": "Enter a valid email address, like name@example.com.",
        "password": "Use at least 8 characters.",
    }


def test_sign_up_duplicate_email(account: users.User) -> None:
    with pytest.raises(FormErrors) as info:
        sign_up("ADA@example.com ", "another password")
    assert info.value.errors == {
        "email": "An account with this email already exists. Log in instead."
    }
    stored = users.get_user_by_email(EMAIL)
    assert stored is not None and stored.password_hash == account.password_hash


# --- log in ---------------------------------------------------------------------------------


def test_log_in_success(account: users.User) -> None:
    user = log_in(" ADA@Example.com", PASSWORD, CLIENT, throttle())
    assert user.id == account.id


def test_unknown_email_and_wrong_password_look_the_same(account: users.User) -> None:
    t = throttle()
    messages = {
        failure_message(lambda: log_in("nobody@example.com", PASSWORD, CLIENT, t)),
        failure_message(lambda: log_in(EMAIL, "wrong password", CLIENT, t)),
        failure_message(lambda: log_in(EMAIL, "", CLIENT, t)),
        failure_message(lambda: log_in(EMAIL, None, CLIENT, t)),
        failure_message(lambda: log_in("not an email", PASSWORD, "198.51.100.1", t)),
        failure_message(lambda: log_in(None, None, "198.51.100.2", t)),
        failure_message(lambda: log_in(12, ["x"], "198.51.100.3", t)),
    }
    assert messages == {LOGIN_FAILED}


def test_passwordless_account_fails_like_a_wrong_password() -> None:
    users.create_external_user(
        email="octo@example.com", display_name="Octo", avatar_url=None, github_id=1
    )
    t = throttle()
    assert failure_message(lambda: log_in("octo@example.com", "", CLIENT, t)) == LOGIN_FAILED
    assert failure_message(lambda: log_in("octo@example.com", PASSWORD, CLIENT, t)) == LOGIN_FAILED


def test_nul_and_oversized_passwords_fail(account: users.User) -> None:
    t = throttle()
    assert failure_message(lambda: log_in(EMAIL, PASSWORD + "\x00", CLIENT, t)) == LOGIN_FAILED
    assert failure_message(lambda: log_in(EMAIL, PASSWORD * 100, CLIENT, t)) == LOGIN_FAILED


def test_account_lockout_after_n_failures_even_with_right_password(account: users.User) -> None:
    t = throttle(per_account=3)
    for _ in range(3):
        assert failure_message(lambda: log_in(EMAIL, "wrong password", CLIENT, t)) == LOGIN_FAILED
    locked = failure_message(lambda: log_in(EMAIL, PASSWORD, CLIENT, t))
    assert locked.startswith("Too many failed attempts.")
    assert "15 minutes" in locked
    # from another address too: the lock is on the account
    assert failure_message(lambda: log_in(EMAIL, PASSWORD, "198.51.100.9", t)) == locked
    # other accounts are not affected
    sign_up("grace@example.com", PASSWORD)
    assert log_in("grace@example.com", PASSWORD, "198.51.100.9", t).email == "grace@example.com"


def test_lockout_is_identical_for_unknown_email(account: users.User) -> None:
    t = throttle(per_account=3)
    for email in (EMAIL, "nobody@example.com"):
        for _ in range(3):
            failure_message(lambda email=email: log_in(email, "wrong password", CLIENT + email, t))
    known = failure_message(lambda: log_in(EMAIL, PASSWORD, "198.51.100.1", t))
    unknown = failure_message(lambda: log_in("nobody@example.com", PASSWORD, "198.51.100.2", t))
    assert known == unknown
    assert known.startswith("Too many failed attempts.")


def test_lockout_key_is_the_normalised_email(account: users.User) -> None:
    t = throttle(per_account=3)
    for variant in ("ADA@example.com", " ada@EXAMPLE.com", "Ada@Example.Com"):
        failure_message(lambda variant=variant: log_in(variant, "wrong password", CLIENT, t))
    assert failure_message(lambda: log_in(EMAIL, PASSWORD, CLIENT, t)).startswith("Too many")


def test_client_lockout_across_emails(account: users.User) -> None:
    t = throttle(per_account=100, per_client=4)
    for i in range(4):
        failure_message(lambda i=i: log_in(f"user{i}@example.com", "wrong password", CLIENT, t))
    # spraying is stopped for this address, even for a correct login
    assert failure_message(lambda: log_in(EMAIL, PASSWORD, CLIENT, t)).startswith("Too many")
    # another address is unaffected
    assert log_in(EMAIL, PASSWORD, "198.51.100.50", t).id == account.id


def test_success_resets_the_account_counter(account: users.User) -> None:
    t = throttle(per_account=3, per_client=100)
    for _ in range(2):
        failure_message(lambda: log_in(EMAIL, "wrong password", CLIENT, t))
    log_in(EMAIL, PASSWORD, CLIENT, t)
    for _ in range(2):
        failure_message(lambda: log_in(EMAIL, "wrong password", CLIENT, t))
    # 4 failures in the window, but only 2 since the last success
    assert log_in(EMAIL, PASSWORD, CLIENT, t).id == account.id


def test_lock_lifts_when_the_window_passes(account: users.User) -> None:
    t = throttle(per_account=2)
    for _ in range(2):
        failure_message(lambda: log_in(EMAIL, "wrong password", CLIENT, t))
    assert t.blocked_for(EMAIL, CLIENT) > 0
    t.limiter.clear(t.per_account, "login", EMAIL)  # the window passes
    assert t.blocked_for(EMAIL, CLIENT) == 0
    assert log_in(EMAIL, PASSWORD, CLIENT, t).id == account.id


def test_rehash_on_login_when_stored_hash_is_weak() -> None:
    weak = argon2.PasswordHasher(time_cost=1, memory_cost=8192).hash(PASSWORD)
    user = users.create_local_user(EMAIL, weak)
    assert user.id is not None
    log_in(EMAIL, PASSWORD, CLIENT, throttle())
    stored = users.get_user(user.id)
    assert stored is not None and stored.password_hash is not None
    assert stored.password_hash != weak
    assert not passwords.needs_rehash(stored.password_hash)
    assert passwords.verify_password(stored.password_hash, PASSWORD)
    # and logging in again still works, without another rehash
    log_in(EMAIL, PASSWORD, CLIENT, throttle())
    again = users.get_user(user.id)
    assert again is not None and again.password_hash == stored.password_hash


def test_no_rehash_after_failed_login() -> None:
    weak = argon2.PasswordHasher(time_cost=1, memory_cost=8192).hash(PASSWORD)
    user = users.create_local_user(EMAIL, weak)
    assert user.id is not None
    failure_message(lambda: log_in(EMAIL, "wrong password", CLIENT, throttle()))
    stored = users.get_user(user.id)
    assert stored is not None and stored.password_hash == weak


def test_make_throttle_uses_settings(app_db: Settings) -> None:
    t = make_throttle(app_db, key_prefix="unit-test")
    assert t.per_account.amount == app_db.login_max_failures_per_account
    assert t.per_client.amount == app_db.login_max_failures_per_client
    assert t.per_account.get_expiry() == app_db.login_failure_window
