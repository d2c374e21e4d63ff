"""The throttle's counters, in memory and in the machine's real Redis, and their settings.

Every counter is taken (increment and test in one step) before a password hash is
computed, so the tests race real threads against one counter and check that exactly the
limit gets through. ``tests/unit/test_accounts.py`` runs the same through the login and
sign-up services and the bounded hash pool.
"""

from __future__ import annotations

import secrets
import socket
import threading
import time
from collections.abc import Callable, Iterator

import pytest
import redis
from limits import RateLimitItem, RateLimitItemPerSecond
from limits.storage import MemoryStorage

from onboard_app.services.throttle import (
    Counters,
    Slot,
    Throttle,
    ThrottleUnavailable,
    make_throttle,
)
from onboard_app.settings import SettingsError, load_settings
from tests.conftest import make_settings
from tests.scale.infra import claimed_redis_db

CLIENT = "203.0.113.7"


@pytest.fixture(scope="module")
def redis_url() -> Iterator[str]:
    """An empty logical database of the machine's Redis, emptied again afterwards."""
    with claimed_redis_db() as url:
        yield url


@pytest.fixture
def redis_prefix() -> str:
    """A key prefix no other test uses."""
    return f"test-throttle-{secrets.token_hex(4)}"


@pytest.fixture(params=["memory", "redis"])
def counters(request: pytest.FixtureRequest) -> Counters:
    """Fresh counters in each storage the app can use."""
    if request.param == "memory":
        return Counters(MemoryStorage())
    url = request.getfixturevalue("redis_url")
    prefix = request.getfixturevalue("redis_prefix")
    return make_throttle(make_settings(redis_url=url), key_prefix=prefix).counters


def slot(amount: int, key: str = "k", window: int = 900) -> Slot:
    return (RateLimitItemPerSecond(amount, window), "test", key)


def race(threads: int, work: Callable[[], object]) -> list[object]:
    """Run ``work`` in many threads released at the same instant; their results."""
    start = threading.Barrier(threads)
    results: list[object] = [None] * threads

    def run(index: int) -> None:
        start.wait()
        results[index] = work()

    pool = [threading.Thread(target=run, args=(i,)) for i in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    return results


# --- take: increment and test in one step ---------------------------------------------------


def test_exactly_the_limit_gets_through_a_race_of_threads(counters: Counters) -> None:
    limit = slot(7)
    results = race(40, lambda: counters.take(limit))
    assert results.count(0) == 7
    assert all(isinstance(wait, int) and wait > 0 for wait in results if wait != 0)


def test_a_race_on_two_counters_admits_no_more_than_the_smaller_allows(
    counters: Counters,
) -> None:
    client, account = slot(20, "client"), slot(5, "account")
    results = race(30, lambda: counters.take(client, account))
    assert results.count(0) == 5
    # The refused attempts gave the client counter back what they took: 15 more fit.
    assert [counters.take(client) for _ in range(16)].count(0) == 15


def test_a_refused_attempt_counts_nowhere(counters: Counters) -> None:
    full, free = slot(1, "full"), slot(1, "free")
    assert counters.take(full) == 0
    assert counters.take(free, full) > 0
    # ``free`` was taken first and given back when ``full`` refused.
    assert counters.take(free) == 0
    assert counters.take(free) > 0


def test_the_wait_is_the_rest_of_the_window(counters: Counters) -> None:
    limit = slot(1, window=900)
    assert counters.take(limit) == 0
    assert 890 <= counters.take(limit) <= 900


def test_give_back_frees_one_attempt_and_never_goes_below_zero(counters: Counters) -> None:
    limit = slot(2)
    for _ in range(3):
        counters.give_back(limit)  # nothing taken yet: no credit either
    first, second, third = (counters.take(limit) for _ in range(3))
    assert first == 0 and second == 0 and third > 0
    counters.give_back(limit)
    assert counters.take(limit) == 0
    assert counters.take(limit) > 0


def test_a_give_back_after_the_window_leaves_no_credit_for_the_next(counters: Counters) -> None:
    limit = slot(2, window=1)
    assert counters.take(limit) == 0
    time.sleep(1.2)  # the window ends while the attempt is being checked
    counters.give_back(limit)
    assert [counters.take(limit) for _ in range(3)].count(0) == 2


def test_clear_resets_one_counter_only(counters: Counters) -> None:
    one, other = slot(1, "one"), slot(1, "other")
    assert counters.take(one) == 0 and counters.take(other) == 0
    counters.clear(one)
    assert counters.take(one) == 0
    assert counters.take(other) > 0


# --- the throttle's counters ----------------------------------------------------------------


def throttle_over(counters: Counters, per_account: int, per_client: int, signups: int) -> Throttle:
    def item(amount: int) -> RateLimitItem:
        return RateLimitItemPerSecond(amount, 900)

    return Throttle(counters, item(per_account), item(per_client), item(signups))


def test_login_and_sign_up_counters_are_separate(counters: Counters) -> None:
    t = throttle_over(counters, per_account=1, per_client=1, signups=1)
    assert t.start_sign_up(CLIENT) == 0
    assert t.start_sign_up(CLIENT) > 0
    assert t.start_login("ada@example.com", CLIENT) == 0  # sign-ups did not use it up
    assert t.start_login("grace@example.com", CLIENT) > 0


def test_an_account_key_that_looks_like_an_address_is_not_that_address(
    counters: Counters,
) -> None:
    t = throttle_over(counters, per_account=2, per_client=2, signups=1)
    for _ in range(2):
        assert t.start_login(CLIENT, "198.51.100.1") == 0  # "email" typed as an address
    assert t.start_login("ada@example.com", CLIENT) == 0


def test_a_success_clears_the_account_and_returns_only_its_own_attempt(
    counters: Counters,
) -> None:
    t = throttle_over(counters, per_account=3, per_client=3, signups=1)
    for email in ("a@example.com", "b@example.com"):
        assert t.start_login(email, CLIENT) == 0  # two failures from this address
    assert t.start_login("a@example.com", CLIENT) == 0
    t.login_succeeded("a@example.com", CLIENT)
    # The address keeps its two failures: one more attempt fits, not three.
    assert t.start_login("c@example.com", CLIENT) == 0
    assert t.start_login("d@example.com", CLIENT) > 0
    # The account was cleared: three attempts from other addresses fit again.
    assert [t.start_login("a@example.com", f"198.51.100.{i}") for i in range(4)].count(0) == 3


def test_an_attempt_never_checked_is_given_back_everywhere(counters: Counters) -> None:
    t = throttle_over(counters, per_account=1, per_client=1, signups=1)
    assert t.start_login("a@example.com", CLIENT) == 0
    t.login_not_checked("a@example.com", CLIENT)
    assert t.start_login("a@example.com", CLIENT) == 0


def test_make_throttle_shares_counters_per_storage_and_prefix() -> None:
    settings = make_settings()
    assert make_throttle(settings).counters is make_throttle(settings).counters
    assert make_throttle(settings, key_prefix="x").counters is not make_throttle(settings).counters


# --- Redis specifics: key prefix, outage ----------------------------------------------------


def test_redis_keys_live_under_the_prefix_and_expire(redis_url: str, redis_prefix: str) -> None:
    settings = make_settings(redis_url=redis_url, login_max_failures_per_account=1)
    t = make_throttle(settings, key_prefix=redis_prefix)
    assert t.start_login("ada@example.com", CLIENT) == 0
    assert t.start_sign_up(CLIENT) == 0
    client = redis.Redis.from_url(redis_url)
    try:
        ours = list(client.scan_iter(match=f"{redis_prefix}:*"))
        assert len(ours) == 3  # account, address (login), address (sign-up)
        assert all(0 < int(client.ttl(key)) <= 900 for key in ours)  # type: ignore[arg-type]
    finally:
        client.close()
    # Another prefix (another app on the same Redis) has counters of its own.
    other = make_throttle(settings, key_prefix=redis_prefix + "-b")
    assert other.start_login("ada@example.com", "198.51.100.1") == 0
    assert t.start_login("ada@example.com", "198.51.100.1") > 0


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_redis_down_is_throttle_unavailable_for_every_operation() -> None:
    settings = make_settings(redis_url=f"redis://127.0.0.1:{closed_port()}/0")
    t = make_throttle(settings, key_prefix=f"down-{secrets.token_hex(4)}")
    for operation in (
        lambda: t.start_login("ada@example.com", CLIENT),
        lambda: t.start_sign_up(CLIENT),
        lambda: t.login_succeeded("ada@example.com", CLIENT),
        lambda: t.login_not_checked("ada@example.com", CLIENT),
    ):
        with pytest.raises(ThrottleUnavailable):
            operation()


# --- settings that shape the throttle -------------------------------------------------------


def env(**extra: str) -> dict[str, str]:
    return {"ONBOARD_SIGNING_KEY": secrets.token_urlsafe(32), **extra}


@pytest.mark.parametrize(
    ("name", "field", "default"),
    [
        ("SIGNUP_MAX_PER_CLIENT", "signup_max_per_client", 10),
        ("SIGNUP_WINDOW", "signup_window", 900),
    ],
)
def test_sign_up_limit_settings(name: str, field: str, default: int) -> None:
    var = f"ONBOARD_{name}"
    assert getattr(load_settings(env()), field) == default
    assert getattr(load_settings(env(**{var: " "})), field) == default
    assert getattr(load_settings(env(**{var: "25"})), field) == 25
    for junk in ("ten", "1.5", "10/15min"):
        with pytest.raises(SettingsError, match=f"{var} must be a whole number"):
            load_settings(env(**{var: junk}))
    for small in ("0", "-1"):
        with pytest.raises(SettingsError, match=f"{var} must be at least 1"):
            load_settings(env(**{var: small}))


def test_trusted_proxy_hops_default_to_none_and_are_bounded() -> None:
    var = "ONBOARD_TRUSTED_PROXY_HOPS"
    assert load_settings(env()).trusted_proxy_hops == 0
    assert load_settings(env(**{var: ""})).trusted_proxy_hops == 0
    assert load_settings(env(**{var: "0"})).trusted_proxy_hops == 0
    assert load_settings(env(**{var: " 2 "})).trusted_proxy_hops == 2
    assert load_settings(env(**{var: "10"})).trusted_proxy_hops == 10
    with pytest.raises(SettingsError, match=f"{var} must be at least 0"):
        load_settings(env(**{var: "-1"}))
    with pytest.raises(SettingsError, match=f"{var} must be at most 10"):
        load_settings(env(**{var: "11"}))
    for junk in ("yes", "true", "1.0", "one"):
        with pytest.raises(SettingsError, match=f"{var} must be a whole number"):
            load_settings(env(**{var: junk}))
