"""Local sign-up and log-in: field errors, one generic failure, throttling, rehash on login.

``tests/unit/test_throttle.py`` covers the counters themselves; here the service is run as
the states run it, including bursts of parallel attempts through the bounded hash pool.
"""

from __future__ import annotations

import asyncio
import secrets
import socket
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import argon2
import pytest
from limits import RateLimitItemPerSecond
from limits.storage import MemoryStorage

from onboard_app.models import utcnow
from onboard_app.services import password_policy, passwords, users
from onboard_app.services.account_limits import AccountLimits
from onboard_app.services.accounts import (
    LOGIN_FAILED,
    LOGIN_UNAVAILABLE,
    MAILS_THROTTLED,
    SIGNUP_UNAVAILABLE,
    FormErrors,
    LoginFailed,
    LoginThrottled,
    SignedUp,
    SignUpRefused,
    log_in,
    needs_verification,
    rate_new_password,
)
from onboard_app.services.accounts import sign_up as sign_up_as
from onboard_app.services.throttle import Counters, Throttle, make_throttle
from onboard_app.settings import Settings, override_settings
from tests.conftest import make_settings
from tests.scale.infra import claimed_redis_db

pytestmark = pytest.mark.usefixtures("app_db")

EMAIL = "ada@example.com"
PASSWORD = "correct horse battery"
CLIENT = "203.0.113.7"


def throttle(
    per_account: int = 5, per_client: int = 20, signups: int = 10, window: int = 900
) -> Throttle:
    """A fresh in-memory throttle (make_throttle's storage is cached per process)."""
    return Throttle(
        counters=Counters(MemoryStorage()),
        login_per_account=RateLimitItemPerSecond(per_account, window),
        login_per_client=RateLimitItemPerSecond(per_client, window),
        signup_per_client=RateLimitItemPerSecond(signups, window),
    )


def failure_message(call: object) -> str:
    assert callable(call)
    with pytest.raises(LoginFailed) as info:
        call()
    return str(info.value)


def sign_up(email: object, password: object, client: str, t: Throttle) -> SignedUp:
    """Sign up with the limits on the throttle's own counters."""
    return sign_up_as(email, password, client, t, AccountLimits(t.counters))


def new_account(email: object, password: object) -> users.User:
    """Sign up from an address of its own (the sign-up throttle is tested on its own)."""
    outcome = sign_up(email, password, CLIENT, throttle())
    assert outcome.created and outcome.user is not None
    return outcome.user


@pytest.fixture
def account() -> users.User:
    return new_account(EMAIL, PASSWORD)


# --- sign up --------------------------------------------------------------------------------


def test_sign_up_creates_user(account: users.User) -> None:
    assert account.id is not None
    assert account.email == EMAIL
    assert account.onboarding_step == "profile"
    assert account.email_verified_at is None and needs_verification(account)
    assert account.password_hash is not None
    assert account.password_hash.startswith("$argon2id$")
    assert PASSWORD not in account.password_hash
    assert passwords.verify_password(account.password_hash, PASSWORD)


def test_sign_up_normalises_email() -> None:
    user = new_account("  Grace@Example.ORG ", PASSWORD)
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
        new_account(email, password)
    assert set(info.value.errors) == fields
    assert all(info.value.errors.values())
    assert users.get_user_by_email(EMAIL) is None


def test_sign_up_error_messages() -> None:
    with pytest.raises(FormErrors) as info:
        new_account("nope", "short")
    assert info.value.errors == {
        "email": "Enter a valid email address, like name@example.com.",
        "password": password_policy.TOO_SHORT,
    }


@pytest.mark.parametrize(
    ("password", "message"),
    [
        ("password123", password_policy.COMMON),
        ("P@ssw0rd!", password_policy.LIKE_COMMON),
        ("ada.example", password_policy.PERSONAL),
    ],
)
def test_sign_up_applies_the_password_policy_with_the_address(password: str, message: str) -> None:
    with pytest.raises(FormErrors) as info:
        new_account(EMAIL, password)
    assert info.value.errors == {"password": message}
    assert users.get_user_by_email(EMAIL) is None


def test_sign_up_of_a_registered_address_changes_nothing_and_costs_the_same(
    account: users.User, monkeypatch: pytest.MonkeyPatch
) -> None:
    hashes = CheckCounter(passwords.hash_password)
    monkeypatch.setattr(passwords, "hash_password", hashes)
    outcome = sign_up("ADA@example.com ", "another password", CLIENT, throttle())
    assert outcome == SignedUp(EMAIL, outcome.user, created=False)
    assert outcome.user is not None and outcome.user.id == account.id
    stored = users.get_user_by_email(EMAIL)
    assert stored is not None and stored.password_hash == account.password_hash
    fresh = sign_up("grace@example.com", "another password", CLIENT, throttle())
    assert fresh.created and len(hashes.hashes) == 2  # one hash each


def test_mails_to_one_address_are_limited_whatever_the_client(account: users.User) -> None:
    t = throttle(signups=100)
    limits = AccountLimits(t.counters)
    for i in range(limits.mails_per_recipient.amount):
        sign_up(EMAIL, PASSWORD, f"198.51.100.{i}", t)
    message = refusal(lambda: sign_up(EMAIL, PASSWORD, "198.51.100.99", t))
    assert message == f"{MAILS_THROTTLED} Try again in 15 minutes."
    # Counted whether or not the address is registered...
    for i in range(limits.mails_per_recipient.amount):
        sign_up("new@example.com", PASSWORD, f"198.51.100.{i}", t)
    assert refusal(lambda: sign_up("new@example.com", PASSWORD, "198.51.100.99", t)) == message
    # ...and the refused ones gave their client address its sign-up back.
    assert (
        t.counters.limiter.get_window_stats(
            t.signup_per_client, "signup-client", "198.51.100.99"
        ).remaining
        == 100
    )


def test_needs_verification_is_for_unconfirmed_password_accounts_only() -> None:
    local = users.User(email="a@example.com", password_hash="$argon2id$x")
    assert needs_verification(local)
    local.email_verified_at = utcnow()
    assert not needs_verification(local)
    assert not needs_verification(users.User(email="b@example.com", github_id=7))
    assert not needs_verification(users.User(email=None, oidc_issuer="i", oidc_subject="s"))


def test_the_meter_rates_like_the_policy_and_is_limited_per_address() -> None:
    limits = AccountLimits(throttle().counters)
    verdict = rate_new_password("ada.example", EMAIL, None, CLIENT, limits)
    assert verdict is not None and verdict.hint == password_policy.PERSONAL
    assert verdict.score < password_policy.MIN_SCORE
    for _ in range(limits.ratings_per_client.amount - 1):
        assert rate_new_password("x", None, None, CLIENT, limits) is not None
    assert rate_new_password("vivid otter quilt", None, None, CLIENT, limits) is None
    assert rate_new_password("vivid otter quilt", None, None, "198.51.100.4", limits) is not None


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
    with pytest.raises(LoginThrottled):  # the audit log can tell throttling apart
        log_in(EMAIL, PASSWORD, CLIENT, t)
    # from another address too: the lock is on the account
    assert failure_message(lambda: log_in(EMAIL, PASSWORD, "198.51.100.9", t)) == locked
    # other accounts are not affected
    new_account("grace@example.com", PASSWORD)
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
    t = throttle(per_account=2, window=1)
    for _ in range(2):
        failure_message(lambda: log_in(EMAIL, "wrong password", CLIENT, t))
    locked = failure_message(lambda: log_in(EMAIL, PASSWORD, CLIENT, t))
    assert locked == "Too many failed attempts. Try again in 1 minute."
    time.sleep(1.1)  # the window passes
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
    assert t.login_per_account.amount == app_db.login_max_failures_per_account
    assert t.login_per_client.amount == app_db.login_max_failures_per_client
    assert t.login_per_account.get_expiry() == app_db.login_failure_window
    assert t.login_per_client.get_expiry() == app_db.login_failure_window
    assert t.signup_per_client.amount == app_db.signup_max_per_client
    assert t.signup_per_client.get_expiry() == app_db.signup_window


def test_refused_attempts_do_not_use_up_the_address(account: users.User) -> None:
    t = throttle(per_account=2, per_client=4)
    new_account("grace@example.com", PASSWORD)
    for _ in range(2):
        failure_message(lambda: log_in(EMAIL, "wrong password", CLIENT, t))
    for _ in range(10):  # hammering the locked account: refused, no hash, not counted
        assert failure_message(lambda: log_in(EMAIL, PASSWORD, CLIENT, t)).startswith("Too many")
    assert log_in("grace@example.com", PASSWORD, CLIENT, t).email == "grace@example.com"


def test_successful_logins_from_one_address_never_add_up(account: users.User) -> None:
    t = throttle(per_client=2)
    failure_message(lambda: log_in("nobody@example.com", "wrong password", CLIENT, t))
    for _ in range(5):  # a whole office behind one address logging in
        assert log_in(EMAIL, PASSWORD, CLIENT, t).id == account.id
    assert failure_message(lambda: log_in("x@example.com", "wrong", CLIENT, t)) == LOGIN_FAILED
    assert failure_message(lambda: log_in(EMAIL, PASSWORD, CLIENT, t)).startswith("Too many")


def test_a_database_error_before_the_check_does_not_count(
    account: users.User, monkeypatch: pytest.MonkeyPatch
) -> None:
    t = throttle(per_account=2, per_client=2)
    real = users.get_user_by_email

    def database_gone(*_args: object) -> None:
        raise OSError("database unreachable")

    monkeypatch.setattr(users, "get_user_by_email", database_gone)
    for _ in range(5):  # the user retries while the database is down
        with pytest.raises(OSError):
            log_in(EMAIL, PASSWORD, CLIENT, t)
    monkeypatch.setattr(users, "get_user_by_email", real)
    assert log_in(EMAIL, PASSWORD, CLIENT, t).id == account.id


def unreachable_redis_throttle() -> Throttle:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return make_throttle(
        make_settings(redis_url=f"redis://127.0.0.1:{port}/0"), key_prefix=secrets.token_hex(4)
    )


def test_redis_down_refuses_logins_before_any_check(
    account: users.User, monkeypatch: pytest.MonkeyPatch
) -> None:
    checks = CheckCounter(passwords.verify_password)
    monkeypatch.setattr(passwords, "verify_password", checks)
    t = unreachable_redis_throttle()
    assert failure_message(lambda: log_in(EMAIL, PASSWORD, CLIENT, t)) == LOGIN_UNAVAILABLE
    assert checks.hashes == []


# --- sign-up throttle -----------------------------------------------------------------------


def refusal(call: object) -> str:
    assert callable(call)
    with pytest.raises(SignUpRefused) as info:
        call()
    return str(info.value)


def test_sign_ups_are_limited_per_address(account: users.User) -> None:
    t = throttle(signups=3)
    sign_up("one@example.com", PASSWORD, CLIENT, t)
    # An existing address costs a hash too: it counts.
    assert sign_up(EMAIL, PASSWORD, CLIENT, t).created is False
    sign_up("two@example.com", PASSWORD, CLIENT, t)
    message = refusal(lambda: sign_up("three@example.com", PASSWORD, CLIENT, t))
    assert message == "Too many sign-ups from your network. Try again in 15 minutes."
    assert users.get_user_by_email("three@example.com") is None
    # Another address signs up; the refused one does not log in less.
    assert sign_up("three@example.com", PASSWORD, "198.51.100.4", t).created
    assert log_in(EMAIL, PASSWORD, CLIENT, t).id == account.id


def test_invalid_sign_ups_are_not_counted() -> None:
    t = throttle(signups=1)
    for _ in range(5):  # no hash is computed for these
        with pytest.raises(FormErrors):
            sign_up("not an email", "short", CLIENT, t)
    assert sign_up("ada@example.com", PASSWORD, CLIENT, t).created


def test_redis_down_refuses_sign_ups_before_hashing(monkeypatch: pytest.MonkeyPatch) -> None:
    hashes = CheckCounter(passwords.hash_password)
    monkeypatch.setattr(passwords, "hash_password", hashes)
    message = refusal(lambda: sign_up(EMAIL, PASSWORD, CLIENT, unreachable_redis_throttle()))
    assert message == SIGNUP_UNAVAILABLE
    assert hashes.hashes == [] and users.get_user_by_email(EMAIL) is None


# --- parallel bursts through the bounded hash pool ------------------------------------------

SLOTS = 8
BURST = 30


class CheckCounter:
    """Wraps a password function: records each real call and how many ran at once."""

    def __init__(self, real: Callable[..., Any]) -> None:
        self.real = real
        self.hashes: list[object] = []
        self.running = 0
        self.most_at_once = 0
        self._lock = threading.Lock()

    def __call__(self, *args: Any) -> Any:
        with self._lock:
            self.hashes.append(args[0])
            self.running += 1
            self.most_at_once = max(self.most_at_once, self.running)
        try:
            return self.real(*args)
        finally:
            with self._lock:
                self.running -= 1


@pytest.fixture(scope="module")
def redis_url() -> Iterator[str]:
    with claimed_redis_db() as url:
        yield url


@pytest.fixture(params=["memory", "redis"])
def shared(request: pytest.FixtureRequest, app_db: Settings) -> Iterator[Throttle]:
    """The app's throttle with default limits, in memory or in the machine's Redis.

    The hash pool gets 8 slots: 8 attempts are checked at the same time.
    """
    redis_url = request.getfixturevalue("redis_url") if request.param == "redis" else None
    override_settings(make_settings(database_url=app_db.database_url, password_hash_slots=SLOTS))
    yield make_throttle(
        make_settings(redis_url=redis_url), key_prefix=f"test-burst-{secrets.token_hex(4)}"
    )
    override_settings(app_db)


async def login_burst(t: Throttle, attempts: list[tuple[str, str]]) -> list[str]:
    async def attempt(email: str, client: str) -> str:
        try:
            await passwords.in_hash_pool(log_in, email, "wrong password", client, t)
        except LoginFailed as failure:
            return str(failure)
        return "signed in"

    return list(await asyncio.gather(*(attempt(e, c) for e, c in attempts)))


LOCKED = "Too many failed attempts. Try again in 15 minutes."


async def test_a_parallel_burst_checks_at_most_five_passwords_of_one_account(
    shared: Throttle, account: users.User, monkeypatch: pytest.MonkeyPatch
) -> None:
    checks = CheckCounter(passwords.verify_password)
    monkeypatch.setattr(passwords, "verify_password", checks)
    answers = await login_burst(shared, [(EMAIL, f"198.51.100.{i}") for i in range(BURST)])
    assert checks.hashes.count(account.password_hash) == 5 == len(checks.hashes)
    assert checks.most_at_once > 1  # the checks really ran side by side
    assert sorted(answers) == sorted([LOGIN_FAILED] * 5 + [LOCKED] * (BURST - 5))


async def test_a_parallel_burst_from_one_address_checks_at_most_its_limit(
    shared: Throttle, monkeypatch: pytest.MonkeyPatch
) -> None:
    checks = CheckCounter(passwords.verify_password)
    monkeypatch.setattr(passwords, "verify_password", checks)
    answers = await login_burst(shared, [(f"sprayed{i}@example.com", CLIENT) for i in range(BURST)])
    assert len(checks.hashes) == 20  # the default per-address limit
    assert checks.most_at_once > 1
    assert sorted(answers) == sorted([LOGIN_FAILED] * 20 + [LOCKED] * (BURST - 20))


async def test_a_burst_at_one_account_from_one_address_leaves_the_address_its_rest(
    shared: Throttle, account: users.User, monkeypatch: pytest.MonkeyPatch
) -> None:
    checks = CheckCounter(passwords.verify_password)
    monkeypatch.setattr(passwords, "verify_password", checks)
    await login_burst(shared, [(EMAIL, CLIENT)] * BURST)
    assert len(checks.hashes) == 5
    # The 25 refused attempts gave the address back what they took: 15 more are checked.
    answers = await login_burst(shared, [(f"other{i}@example.com", CLIENT) for i in range(20)])
    assert answers.count(LOGIN_FAILED) == 15 and len(checks.hashes) == 20


async def test_a_parallel_burst_of_sign_ups_hashes_at_most_the_limit(
    shared: Throttle, monkeypatch: pytest.MonkeyPatch
) -> None:
    hashes = CheckCounter(passwords.hash_password)
    monkeypatch.setattr(passwords, "hash_password", hashes)

    async def attempt(index: int) -> str:
        email = f"new{index}@example.com"
        try:
            await passwords.in_hash_pool(
                sign_up_as, email, PASSWORD, CLIENT, shared, AccountLimits(shared.counters)
            )
        except SignUpRefused as refused:
            return str(refused)
        return "created"

    answers = await asyncio.gather(*(attempt(i) for i in range(BURST)))
    assert len(hashes.hashes) == 10  # the default per-address sign-up limit
    assert hashes.most_at_once > 1
    refused = "Too many sign-ups from your network. Try again in 15 minutes."
    assert sorted(answers) == sorted(["created"] * 10 + [refused] * (BURST - 10))
    created = [i for i in range(BURST) if users.get_user_by_email(f"new{i}@example.com")]
    assert len(created) == 10
