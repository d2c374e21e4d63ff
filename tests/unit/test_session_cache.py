"""The per-worker session cache: what it keeps, what evicts it, and the Redis change feed.

The feed tests run against the machine's real Redis, on a claimed empty logical database.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any, cast

import pytest
import redis

from onboard_app.services import onboarding, session_cache
from onboard_app.services.onboarding import COMPLETED
from onboard_app.services.session_cache import ChangeFeed, SessionCache, change_channel
from onboard_app.services.sessions import authenticate, load_session_user, start_session
from onboard_app.services.tokens import Rejection, TokenRejected
from onboard_app.services.users import (
    complete_onboarding,
    create_local_user,
    delete_user,
    reopen_for_new_steps,
    revoke_sessions,
    save_step,
)
from onboard_app.settings import override_settings
from tests.conftest import make_settings
from tests.scale.infra import claimed_redis_db
from tests.unit.flow_steps import WORKPLACE

SOURCE = "sqlite:///one.db"
HASH = "$argon2id$v=19$m=24576,t=2,p=1$c2FsdHNhbHQ$ZmFrZWhhc2hmYWtlaGFzaA"


class Clock:
    """A hand-driven monotonic clock."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def cache_with_clock(ttl: float = 30, **options: object) -> tuple[SessionCache[str], Clock]:
    clock = Clock()
    return SessionCache(ttl, clock=clock, **options), clock  # type: ignore[arg-type]


def test_a_kept_value_is_served_until_it_expires() -> None:
    cache, clock = cache_with_clock(ttl=30)
    assert cache.get(1, SOURCE) is None
    assert cache.put(1, SOURCE, "row", cache.begin_read())
    assert cache.get(1, SOURCE) == "row"
    clock.now += 29.9
    assert cache.get(1, SOURCE) == "row"
    clock.now += 0.2
    assert cache.get(1, SOURCE) is None
    assert (cache.hits, cache.misses) == (2, 2)


def test_another_source_misses() -> None:
    cache, _ = cache_with_clock()
    cache.put(1, SOURCE, "row", cache.begin_read())
    assert cache.get(1, "sqlite:///other.db") is None


def test_invalidate_evicts_only_that_user() -> None:
    cache, _ = cache_with_clock()
    cache.put(1, SOURCE, "one", cache.begin_read())
    cache.put(2, SOURCE, "two", cache.begin_read())
    cache.invalidate(1)
    assert cache.get(1, SOURCE) is None
    assert cache.get(2, SOURCE) == "two"


def test_a_read_racing_a_change_is_not_kept() -> None:
    cache, _ = cache_with_clock()
    began = cache.begin_read()
    cache.invalidate(1)  # the row changed while the old value was being read
    assert not cache.put(1, SOURCE, "old", began)
    assert cache.get(1, SOURCE) is None
    assert cache.put(1, SOURCE, "new", cache.begin_read())
    assert cache.get(1, SOURCE) == "new"


def test_a_change_of_another_user_does_not_reject_a_read() -> None:
    cache, _ = cache_with_clock()
    began = cache.begin_read()
    cache.invalidate(2)
    assert cache.put(1, SOURCE, "row", began)


def test_forgotten_changes_still_reject_older_reads() -> None:
    cache, _ = cache_with_clock()
    began = cache.begin_read()
    for user_id in range(10, 10 + session_cache._CHANGE_LOG_SIZE + 1):
        cache.invalidate(user_id)  # user 10's change falls out of the change log
    assert not cache.put(10, SOURCE, "old", began)


def test_a_disabled_cache_keeps_and_serves_nothing() -> None:
    cache, _ = cache_with_clock(enabled=False)
    assert not cache.put(1, SOURCE, "row", cache.begin_read())
    cache.set_enabled(True)
    assert cache.put(1, SOURCE, "row", cache.begin_read())
    cache.set_enabled(False)
    assert cache.get(1, SOURCE) is None
    assert len(cache) == 0


def test_enabling_rejects_reads_begun_while_nobody_listened() -> None:
    cache, _ = cache_with_clock(enabled=False)
    began = cache.begin_read()
    cache.set_enabled(True)
    assert not cache.put(1, SOURCE, "read during the outage", began)


def test_ttl_zero_keeps_nothing() -> None:
    cache, _ = cache_with_clock(ttl=0)
    assert not cache.enabled
    assert not cache.put(1, SOURCE, "row", cache.begin_read())


def test_the_oldest_entry_goes_first_when_full() -> None:
    cache, _ = cache_with_clock(max_entries=2)
    for user_id in (1, 2, 3):
        cache.put(user_id, SOURCE, f"row {user_id}", cache.begin_read())
    assert cache.get(1, SOURCE) is None
    assert cache.get(2, SOURCE) == "row 2"
    assert cache.get(3, SOURCE) == "row 3"
    assert len(cache) == 2


# --- the guard with the cache: every change is seen at once in this process -----------------


@pytest.mark.usefixtures("app_db")
class TestGuardSeesEveryChange:
    def signed_in(self) -> tuple[int, str]:
        user = create_local_user("cache@example.com", HASH)
        assert user.id is not None
        token = start_session(user)
        assert not isinstance(authenticate(token), TokenRejected)  # now cached
        return user.id, token

    def test_repeated_checks_are_answered_from_memory(self) -> None:
        _user_id, token = self.signed_in()
        cache = session_cache.get_session_cache()
        hits = cache.hits
        for _ in range(5):
            assert not isinstance(authenticate(token), TokenRejected)
        assert cache.hits == hits + 5

    def test_logout_rejects_the_cached_token(self) -> None:
        user_id, token = self.signed_in()
        revoke_sessions(user_id)
        assert authenticate(token) == TokenRejected(Rejection.REVOKED)

    def test_deleting_the_user_rejects_the_cached_token(self) -> None:
        user_id, token = self.signed_in()
        delete_user(user_id)
        assert authenticate(token) == TokenRejected(Rejection.REVOKED)

    def test_a_saved_step_re_mints_from_the_new_row(self) -> None:
        user_id, token = self.signed_in()
        save_step(user_id, "profile", PROFILE)
        session = authenticate(token)
        assert not isinstance(session, TokenRejected)
        assert session.reminted
        assert session.user.display_name == "Ada"
        assert session.user.onboarding_step == "interests"

    def test_finishing_is_seen_at_once(self) -> None:
        user_id, _token = self.signed_in()
        save_step(user_id, "profile", PROFILE)
        save_step(user_id, "interests", {"interests": ["python", "rust", "go"]})
        save_step(user_id, "preferences", PREFERENCES)
        assert load_session_user(user_id) is not None
        assert complete_onboarding(user_id).transitioned
        user = load_session_user(user_id)
        assert user is not None
        assert (user.onboarding_step, user.flow_version) == (COMPLETED, 1)

    def test_reopening_for_a_new_step_is_seen_at_once(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        user_id, _token = self.signed_in()
        save_step(user_id, "profile", PROFILE)
        save_step(user_id, "interests", {"interests": ["python", "rust", "go"]})
        save_step(user_id, "preferences", PREFERENCES)
        assert complete_onboarding(user_id).transitioned
        remembered = load_session_user(user_id)
        assert remembered is not None and remembered.onboarding_step == COMPLETED
        assert load_session_user(user_id) is remembered  # answered from memory
        monkeypatch.setattr(onboarding, "STEPS", (*onboarding.STEPS, WORKPLACE))
        assert reopen_for_new_steps(user_id)
        user = load_session_user(user_id)
        assert user is not None
        assert (user.onboarding_step, user.flow_version) == ("workplace", 1)


PROFILE = {"display_name": "Ada", "role": "developer", "bio": ""}
PREFERENCES = {"experience_level": "advanced", "email_digest": False, "theme": "dark"}


# --- the change feed, over the machine's real Redis ------------------------------------------


@pytest.fixture(scope="module")
def redis_url() -> Iterator[str]:
    with claimed_redis_db() as url:
        yield url


def wait_for(condition: Callable[[], bool], seconds: float = 5.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.005)
    return condition()


@pytest.fixture
def two_workers(
    redis_url: str,
) -> Iterator[tuple[ChangeFeed, SessionCache[object], SessionCache[object]]]:
    """Two caches, each with its own feed, as two worker processes would have."""
    caches: list[SessionCache[object]] = [SessionCache(30, enabled=False) for _ in range(2)]
    feeds = [ChangeFeed(redis_url, cache) for cache in caches]
    for feed in feeds:
        feed.start()
    try:
        assert wait_for(lambda: all(cache.enabled for cache in caches)), "feed never subscribed"
        yield feeds[0], caches[0], caches[1]
    finally:
        for feed in feeds:
            feed.stop()


def test_a_change_announced_on_one_worker_evicts_on_the_other(
    two_workers: tuple[ChangeFeed, SessionCache[object], SessionCache[object]],
) -> None:
    feed, _, other = two_workers
    other.put(7, SOURCE, "row", other.begin_read())
    other.put(8, SOURCE, "row", other.begin_read())
    feed.publish(7)
    # No waiting here: publish returns once every listener confirmed the eviction.
    assert other.get(7, SOURCE) is None
    assert other.get(8, SOURCE) == "row"


def test_a_listener_that_never_confirms_delays_a_change_by_the_timeout_at_most(
    redis_url: str,
    two_workers: tuple[ChangeFeed, SessionCache[object], SessionCache[object]],
    caplog: pytest.LogCaptureFixture,
) -> None:
    feed, _, other = two_workers
    silent = redis.Redis.from_url(redis_url).pubsub()
    silent.subscribe(feed.channel)  # hears every change, never confirms one
    assert silent.get_message(timeout=2)["type"] == "subscribe"
    try:
        other.put(9, SOURCE, "row", other.begin_read())
        started = time.monotonic()
        feed.publish(9)
        waited = time.monotonic() - started
        assert session_cache._ACK_TIMEOUT_SECONDS * 0.9 <= waited < 5
        assert other.get(9, SOURCE) is None  # the live workers still evicted
        assert "did not confirm evicting user 9" in caplog.text
    finally:
        silent.close()


def test_a_malformed_message_is_ignored(
    redis_url: str, two_workers: tuple[ChangeFeed, SessionCache[object], SessionCache[object]]
) -> None:
    feed, _, other = two_workers
    other.put(7, SOURCE, "row", other.begin_read())
    other.put(8, SOURCE, "row", other.begin_read())
    redis.Redis.from_url(redis_url).publish(feed.channel, b"not a user id")
    feed.publish(8)  # messages arrive in order: once 8 is processed, the junk was too
    assert wait_for(lambda: other.get(8, SOURCE) is None)
    assert other.get(7, SOURCE) == "row"
    assert other.enabled


def test_a_dropped_listener_connection_forgets_everything_and_resubscribes(
    redis_url: str,
    two_workers: tuple[ChangeFeed, SessionCache[object], SessionCache[object]],
) -> None:
    feed, _, other = two_workers
    other.put(7, SOURCE, "row", other.begin_read())
    read_before_the_drop = other.begin_read()
    admin = redis.Redis.from_url(redis_url)
    name = feed.channel.replace(":", "-")
    clients = cast(list[dict[str, Any]], admin.client_list())  # sync client, typed as either
    killed = [c["id"] for c in clients if c.get("name") == name]
    assert len(killed) >= 2  # both workers' listeners (at least)
    for client_id in killed:
        admin.client_kill_filter(_id=client_id)
    # Messages sent while it was gone are lost: it must drop what it knew.
    assert wait_for(lambda: other.get(7, SOURCE) is None and other.enabled)
    assert not other.put(7, SOURCE, "read before the drop", read_before_the_drop)
    # And it hears changes again.
    other.put(8, SOURCE, "row", other.begin_read())
    feed.publish(8)
    assert wait_for(lambda: other.get(8, SOURCE) is None)


def test_without_redis_the_cache_stays_off() -> None:
    cache: SessionCache[object] = SessionCache(30, enabled=False)
    feed = ChangeFeed("redis://127.0.0.1:1/0", cache)  # nothing listens on port 1
    feed.start()
    try:
        time.sleep(0.3)
        assert not cache.enabled
        assert not cache.put(1, SOURCE, "row", cache.begin_read())
        feed.publish(1)  # logged, not raised: the change is already committed
    finally:
        feed.stop()


def test_each_logical_database_has_its_own_channel() -> None:
    assert change_channel("redis://127.0.0.1:6379/3") == "onboard:3:session-changed"
    assert change_channel("redis://127.0.0.1:6379") == "onboard:0:session-changed"


def test_the_process_cache_follows_the_settings(redis_url: str, db_url: str) -> None:
    override_settings(make_settings(database_url=db_url, redis_url=redis_url))
    try:
        cache = session_cache.get_session_cache()
        assert wait_for(lambda: cache.enabled), "the worker's feed never subscribed"
        user = create_local_user("feed@example.com", HASH, db_url)
        assert user.id is not None
        user_id = user.id
        token = start_session(user)
        assert not isinstance(authenticate(token), TokenRejected)
        assert cache.get(user_id, db_url) is not None
        # Another worker logs the user out: only the Redis message can tell this one.
        other: SessionCache[object] = SessionCache(30, enabled=False)
        other_feed = ChangeFeed(redis_url, other)
        other_feed.publish(user_id)
        assert wait_for(lambda: cache.get(user_id, db_url) is None)
    finally:
        override_settings(None)
        session_cache.reset()


def test_no_cache_when_ttl_is_zero(db_url: str) -> None:
    override_settings(make_settings(database_url=db_url, session_cache_ttl=0))
    try:
        assert not session_cache.get_session_cache().enabled
    finally:
        override_settings(None)


def test_no_cache_for_several_workers_without_redis(
    db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GRANIAN_WORKERS", "2")
    override_settings(make_settings(database_url=db_url))
    try:
        assert not session_cache.get_session_cache().enabled
    finally:
        override_settings(None)
    monkeypatch.setenv("GRANIAN_WORKERS", "1")
    override_settings(make_settings(database_url=db_url))
    try:
        assert session_cache.get_session_cache().enabled
    finally:
        override_settings(None)
