"""A per-worker memory of session rows, evicted on every change on every worker.

The guard runs on every navigation and every event that touches user data. Without this
module each run reads the user's row (the revocation check): a PostgreSQL round trip costs
several times the token verification itself. With it, a worker answers from memory until
the row changes, and every change is announced:

* the writer evicts its own copy after its transaction commits, and
* publishes the user id on a Redis channel (when Redis is configured); every worker's
  listener thread evicts its copy when the message arrives and confirms it, and the writer
  waits for those confirmations (a fraction of a millisecond), so a logout that has
  returned is seen by every worker.

Three rules keep a stale row from ever being served for long:

* A row read from the database is kept only if no change of that user was announced
  since the read began (a read racing a change is used once, never kept).
* While the listener is not subscribed (starting up, Redis unreachable), nothing is kept
  or served: every check reads the database.
* Every entry expires after ``ttl`` seconds, which bounds the damage of a change made
  outside the app (hand-written SQL) that nobody announces.

This module knows nothing of users or sessions: values are opaque, keys are user ids.
"""

from __future__ import annotations

import logging
import os
import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Final, Generic, TypeVar, cast

import redis

from onboard_app.settings import Settings, get_settings

log = logging.getLogger("onboard.session_cache")

V = TypeVar("V")

#: Changes remembered per user to reject racing reads; older ones fold into one floor.
_CHANGE_LOG_SIZE: Final = 50_000
#: How often the listener pings Redis, and how long a silent socket may stay silent.
_HEALTH_CHECK_SECONDS: Final = 5
_SOCKET_TIMEOUT_SECONDS: Final = 10.0
#: How long a change waits for every worker to confirm its eviction.
_ACK_TIMEOUT_SECONDS: Final = 0.5


class SessionCache(Generic[V]):
    """Entries ``user id -> (source, value)`` with expiry, eviction and racing-read rejection.

    ``source`` names where the value was read (the database URL): a lookup for another
    source misses, so two databases in one process (tests, benchmarks) never mix.
    Thread-safe: Reflex runs handlers on the event loop and in worker threads.
    """

    def __init__(
        self,
        ttl: float,
        *,
        max_entries: int = 100_000,
        enabled: bool = True,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """Create an empty cache.

        Args:
            ttl: Seconds an entry may be served; 0 or less keeps nothing.
            max_entries: Entries kept at most (the oldest is dropped first).
            enabled: Whether entries may be kept from the start (``False`` until a
                listener is subscribed).
            clock: Monotonic time source (tests).
        """
        self.ttl = ttl
        self.max_entries = max_entries
        self._clock = clock
        self._lock = threading.Lock()
        self._entries: OrderedDict[int, tuple[float, str, V]] = OrderedDict()
        self._sequence = 0
        self._changed_at: OrderedDict[int, int] = OrderedDict()
        self._floor = 0  # reads begun before this sequence number are never kept
        self._enabled = enabled and ttl > 0
        self.hits = 0
        self.misses = 0

    @property
    def enabled(self) -> bool:
        """Whether entries are kept and served."""
        return self._enabled

    def begin_read(self) -> int:
        """Mark the start of a database read; pass the result to :meth:`put`."""
        return self._sequence

    def get(self, user_id: int, source: str) -> V | None:
        """The remembered value for a user, or ``None`` (then read the database).

        Args:
            user_id: The user.
            source: Where the caller would read from (database URL).

        Returns:
            The value, or ``None`` on a miss, an expired entry or a disabled cache.
        """
        entry = self._entries.get(user_id)
        if entry is None or not self._enabled:
            self.misses += 1
            return None
        expires, entry_source, value = entry
        if entry_source != source or expires <= self._clock():
            self.misses += 1
            return None
        self.hits += 1
        return value

    def put(self, user_id: int, source: str, value: V, read_began: int) -> bool:
        """Remember a value read from the database, unless a change raced the read.

        Args:
            user_id: The user.
            source: Where it was read from.
            value: What was read.
            read_began: :meth:`begin_read` from before the read.

        Returns:
            Whether the value was kept.
        """
        with self._lock:
            if not self._enabled or read_began < self._floor:
                return False
            if self._changed_at.get(user_id, 0) > read_began:
                return False
            self._entries[user_id] = (self._clock() + self.ttl, source, value)
            self._entries.move_to_end(user_id)
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)
            return True

    def invalidate(self, user_id: int) -> None:
        """Forget a user's entry and reject every read of them begun before now.

        Args:
            user_id: The user whose row changed.
        """
        with self._lock:
            self._sequence += 1
            self._entries.pop(user_id, None)
            self._changed_at[user_id] = self._sequence
            self._changed_at.move_to_end(user_id)
            while len(self._changed_at) > _CHANGE_LOG_SIZE:
                _, sequence = self._changed_at.popitem(last=False)
                self._floor = max(self._floor, sequence)

    def set_enabled(self, enabled: bool) -> None:
        """Start or stop keeping entries; either way everything known so far is dropped.

        Reads begun before the switch are never kept: changes announced while nobody was
        listening are unknown, so nothing read before the switch can be trusted.

        Args:
            enabled: Whether entries may be kept from now on.
        """
        with self._lock:
            self._sequence += 1
            self._floor = self._sequence
            self._entries.clear()
            self._changed_at.clear()
            self._enabled = enabled and self.ttl > 0

    def __len__(self) -> int:
        """Number of entries (expired ones included until they are looked up or pushed out)."""
        return len(self._entries)


def change_channel(redis_url: str) -> str:
    """The pub/sub channel for one Redis logical database.

    Pub/sub ignores logical databases, so the number is part of the name: two apps on
    different databases of one server (tests, staging) do not evict each other's entries.
    """
    database = redis.Redis.from_url(redis_url).connection_pool.connection_kwargs.get("db", 0)
    return f"onboard:{database}:session-changed"


class ChangeFeed:
    """Announces user changes to every worker through Redis pub/sub, and listens for them.

    The listener runs in a daemon thread: it enables the cache once subscribed, evicts on
    every message, and disables the cache (and retries) whenever the connection fails.
    """

    def __init__(self, redis_url: str, cache: SessionCache[object]) -> None:
        """Create the feed; call :meth:`start` to listen.

        Args:
            redis_url: The Redis the workers share.
            cache: The cache to keep in step.
        """
        self.channel = change_channel(redis_url)
        self._cache = cache
        options = {"socket_timeout": _SOCKET_TIMEOUT_SECONDS, "socket_connect_timeout": 5}
        self._publisher = redis.Redis.from_url(redis_url, **options)
        self._listener = redis.Redis.from_url(
            redis_url,
            health_check_interval=_HEALTH_CHECK_SECONDS,
            client_name=self.channel.replace(":", "-"),  # seen in CLIENT LIST
            **options,
        )
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._listen, name="onboard-session-feed")
        self._thread.daemon = True

    def start(self) -> None:
        """Start the listener thread."""
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop listening (tests); the cache is left disabled."""
        self._stop.set()
        self._thread.join(timeout)
        self._cache.set_enabled(False)

    def publish(self, user_id: int) -> None:
        """Tell every worker that a user's row changed; return once they have evicted it.

        Each listener that receives the message evicts the user, then acknowledges on a
        one-off list key; this waits for as many acknowledgements as PUBLISH reached
        listeners (this worker's own included), at most ``_ACK_TIMEOUT_SECONDS``. So when a
        logout returns, no worker answers from a stale entry any more.

        A failure is logged, not raised: the change is committed, and a Redis that cannot
        take a PUBLISH has dropped the listeners' connections too, which disables their
        caches until they resubscribe.
        """
        ack_key = f"{self.channel}:ack:{secrets.token_hex(8)}"
        try:
            receivers = cast(int, self._publisher.publish(self.channel, f"{user_id} {ack_key}"))
            deadline = time.monotonic() + _ACK_TIMEOUT_SECONDS
            for _ in range(receivers):
                left = deadline - time.monotonic()
                if left <= 0 or self._publisher.blpop([ack_key], timeout=left) is None:
                    log.warning("a worker did not confirm evicting user %s in time", user_id)
                    return
        except redis.RedisError:
            log.exception("could not announce a change of user %s", user_id)

    def _listen(self) -> None:
        delay = 0.1
        while not self._stop.is_set():
            pubsub = self._listener.pubsub()
            try:
                pubsub.subscribe(self.channel)
                while not self._stop.is_set():
                    message = pubsub.get_message(timeout=1.0)
                    if message is None:
                        continue
                    if message["type"] == "subscribe":
                        # Also after redis-py reconnected on its own and re-subscribed:
                        # messages may have been lost meanwhile, and set_enabled drops
                        # everything known and every read begun before.
                        self._cache.set_enabled(True)
                        delay = 0.1
                    elif message["type"] == "message":
                        self._evict(message["data"])
            except (redis.RedisError, OSError):
                if self._cache.enabled:
                    log.warning("session change feed lost; reading every session from the database")
                self._cache.set_enabled(False)
                self._stop.wait(delay)
                delay = min(delay * 2, 5.0)
            finally:
                pubsub.close()

    def _evict(self, data: object) -> None:
        text = data.decode(errors="replace") if isinstance(data, bytes) else str(data)
        user_part, _, ack_key = text.partition(" ")
        if not user_part.isdigit() or len(user_part) > 18:
            log.warning("ignored a malformed session change message")
            return
        self._cache.invalidate(int(user_part))
        if ack_key.startswith(self.channel + ":ack:"):
            try:
                confirm = self._publisher.pipeline()
                confirm.rpush(ack_key, 1)
                confirm.expire(ack_key, 10)
                confirm.execute()
            except redis.RedisError:
                log.warning("could not confirm evicting user %s", user_part)


def _single_worker() -> bool:
    """False when several workers run without Redis: they could not hear each other.

    (Reflex itself needs Redis for several workers; this only keeps a misconfigured
    deployment from also accepting a logged-out token on the other workers.)
    """
    workers = os.environ.get("GRANIAN_WORKERS", "1").strip()
    if workers.isdigit() and int(workers) > 1:
        log.warning("%s workers without ONBOARD_REDIS_URL: session cache off", workers)
        return False
    return True


class _Process:
    """The cache and feed of this process (a forked child starts its own)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        listens = bool(settings.redis_url) and settings.session_cache_ttl > 0
        alone = bool(settings.redis_url) or _single_worker()
        self.cache: SessionCache[object] = SessionCache(
            settings.session_cache_ttl if alone else 0, enabled=not listens
        )
        self.feed: ChangeFeed | None = None
        if listens:
            assert settings.redis_url is not None
            self.feed = ChangeFeed(settings.redis_url, self.cache)
            self.feed.start()


_process: _Process | None = None
_process_lock = threading.Lock()


def _current() -> _Process:
    global _process
    process = _process
    settings = get_settings()
    if process is not None and process.settings is settings:
        return process
    with _process_lock:
        process = _process
        if process is None or process.settings is not settings:
            if process is not None and process.feed is not None:
                process.feed.stop(timeout=0)
            process = _process = _Process(settings)
        return process


def _forget_after_fork() -> None:
    # The listener thread does not survive a fork, and entries must not be shared with a
    # process that will not hear about changes: the child starts from nothing.
    global _process, _process_lock
    _process = None
    _process_lock = threading.Lock()


os.register_at_fork(after_in_child=_forget_after_fork)


def start() -> None:
    """Create this worker's cache and subscribe its listener now (an app lifespan task).

    Without it the first session check of a worker starts them, and checks read the
    database until the subscription is confirmed.
    """
    _current()


def get_session_cache() -> SessionCache[object]:
    """This worker's cache, for the current settings (listening to Redis when set)."""
    return _current().cache


def announce_change(user_id: int) -> None:
    """Evict a user everywhere: here at once, on the other workers through Redis.

    Call it after the transaction that changed the user's row has committed.

    Args:
        user_id: The user whose row changed.
    """
    process = _current()
    process.cache.invalidate(user_id)
    if process.feed is not None:
        process.feed.publish(user_id)


def reset() -> None:
    """Drop this process's cache and stop its listener (tests)."""
    global _process
    with _process_lock:
        if _process is not None and _process.feed is not None:
            _process.feed.stop(timeout=0)
        _process = None
