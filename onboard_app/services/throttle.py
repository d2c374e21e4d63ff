"""Throttling of password work (logins, sign-ups), shared by every worker when Redis is set.

An attempt is counted *before* its password hash is computed, in one step that increments
the counter and tests it (``limits``' fixed-window ``hit``: one Lua script in Redis, a lock
in memory). However many hash slots run at once, no more passwords are checked against an
account or from an address than its limit allows.

The counters, each over a fixed window:

- login, per account (the normalised email, whether or not such an account exists, so the
  throttle reveals nothing): attempts that failed or are being checked; a successful login
  clears it.
- login, per client address: the same, but a successful login only gives its own attempt
  back, so the logins of a whole office behind one address never add up.
- sign-up, per client address: every sign-up that reaches its hash, successful or not.
- second factor (authenticator-app and recovery codes), per account (5 per 15 minutes and
  20 a day) and per client address (20 per 15 minutes): every code before it is checked;
  an accepted code clears the account's counts and gives the address its attempt back.

An attempt that is refused gives back what it took: hammering a locked key costs no hash
and does not add up either. Without Redis the counters live in the process, which is right
for the single-worker default.
"""

from __future__ import annotations

import contextlib
import math
import threading
import time
from dataclasses import dataclass
from functools import lru_cache
from typing import Final

from limits import RateLimitItem, RateLimitItemPerSecond
from limits.errors import StorageError
from limits.storage import MemoryStorage, RedisStorage, Storage, storage_from_string
from limits.strategies import FixedWindowRateLimiter

from onboard_app.settings import Settings

LOGIN_PER_ACCOUNT: Final = "login-account"
LOGIN_PER_CLIENT: Final = "login-client"
SIGNUP_PER_CLIENT: Final = "signup-client"
SECOND_FACTOR_PER_ACCOUNT: Final = "second-factor-account"
SECOND_FACTOR_PER_ACCOUNT_DAY: Final = "second-factor-account-day"
SECOND_FACTOR_PER_CLIENT: Final = "second-factor-client"
# At most 3 of the 10^6 codes are valid at any time: 20 tries a day give an attacker who
# has the password about a 2 % chance in a year.
SECOND_FACTOR_ACCOUNT_LIMIT: Final = RateLimitItemPerSecond(5, 900)
SECOND_FACTOR_ACCOUNT_DAILY_LIMIT: Final = RateLimitItemPerSecond(20, 86400)
SECOND_FACTOR_CLIENT_LIMIT: Final = RateLimitItemPerSecond(20, 900)

# Decrement, never below zero and never creating a key: a give-back that lands after its
# window ended must not leave credit for the next window. DECR keeps the key's expiry.
_GIVE_BACK_LUA: Final = b"""
local current = tonumber(redis.call('get', KEYS[1]) or '0')
if current > 0 then
    return redis.call('decr', KEYS[1])
end
return 0
"""


class ThrottleUnavailable(Exception):
    """The shared counters cannot be read or written (Redis is unreachable)."""


#: One counter: the limit, its namespace and the key (account or address) it counts.
Slot = tuple[RateLimitItem, str, str]


class Counters:
    """Fixed-window counters over one ``limits`` storage, taken and given back atomically."""

    def __init__(self, storage: Storage) -> None:
        """Wrap a memory or Redis storage.

        Args:
            storage: The ``limits`` storage (``MemoryStorage`` or a ``RedisStorage``).

        Raises:
            TypeError: For any other storage (it could not give attempts back atomically).
        """
        self.storage = storage
        self.limiter = FixedWindowRateLimiter(storage)
        self._errors: tuple[type[BaseException], ...] = (StorageError,)
        self._lock: contextlib.AbstractContextManager[object]
        if isinstance(storage, RedisStorage):
            # Each step is one atomic Redis command or script, shared by every worker.
            self._lock = contextlib.nullcontext()
            self._give_back_script = storage.get_connection().register_script(_GIVE_BACK_LUA)
            errors = storage.base_exceptions
            self._errors += errors if isinstance(errors, tuple) else (errors,)
        elif isinstance(storage, MemoryStorage):
            # MemoryStorage increments under a per-key lock but reads the new value after
            # releasing it (and drops that lock when a key expires): one lock per storage
            # makes increment-and-test exact across threads.
            self._lock = threading.Lock()
        else:
            raise TypeError(f"throttle counters need memory or Redis, not {type(storage)}")

    def take(self, *slots: Slot) -> int:
        """Count one attempt against every slot, or against none of them.

        Slots are taken in order; at the first one that is full, the ones already taken
        (and that one) are given back.

        Args:
            *slots: The counters the attempt needs.

        Returns:
            0 if the attempt was counted and may go ahead, else seconds until the full
            slot's window ends.

        Raises:
            ThrottleUnavailable: The storage did not answer.
        """
        taken: list[Slot] = []
        try:
            with self._lock:
                for slot in slots:
                    taken.append(slot)
                    item, namespace, key = slot
                    if not self.limiter.hit(item, namespace, key):
                        for done in taken:
                            self._give_back(done)
                        reset = self.limiter.get_window_stats(item, namespace, key).reset_time
                        return max(1, math.ceil(reset - time.time()))
        except self._errors as exc:
            raise ThrottleUnavailable from exc
        return 0

    def give_back(self, slot: Slot) -> None:
        """Uncount one attempt of a slot (never below zero, never into a later window).

        Args:
            slot: The counter.

        Raises:
            ThrottleUnavailable: The storage did not answer.
        """
        try:
            with self._lock:
                self._give_back(slot)
        except self._errors as exc:
            raise ThrottleUnavailable from exc

    def clear(self, slot: Slot) -> None:
        """Reset a slot's counter.

        Args:
            slot: The counter.

        Raises:
            ThrottleUnavailable: The storage did not answer.
        """
        item, namespace, key = slot
        try:
            with self._lock:
                self.limiter.clear(item, namespace, key)
        except self._errors as exc:
            raise ThrottleUnavailable from exc

    def _give_back(self, slot: Slot) -> None:
        item, namespace, key = slot
        storage_key = item.key_for(namespace, key)
        if isinstance(self.storage, RedisStorage):
            self._give_back_script(keys=[self.storage.prefixed_key(storage_key)])
        else:
            assert isinstance(self.storage, MemoryStorage)
            self.storage.decr(storage_key)  # floors at zero; an expired key stays gone


@dataclass(frozen=True)
class Throttle:
    """The counters in front of every password hash: logins and sign-ups.

    Attributes:
        counters: The shared counters.
        login_per_account: Login attempts per account.
        login_per_client: Login attempts per client address.
        signup_per_client: Sign-ups per client address.
        second_factor_per_account: Codes tried per account (short window).
        second_factor_per_account_daily: Codes tried per account per day.
        second_factor_per_client: Codes tried per client address.
    """

    counters: Counters
    login_per_account: RateLimitItem
    login_per_client: RateLimitItem
    signup_per_client: RateLimitItem
    second_factor_per_account: RateLimitItem = SECOND_FACTOR_ACCOUNT_LIMIT
    second_factor_per_account_daily: RateLimitItem = SECOND_FACTOR_ACCOUNT_DAILY_LIMIT
    second_factor_per_client: RateLimitItem = SECOND_FACTOR_CLIENT_LIMIT

    def start_login(self, account: str, client: str) -> int:
        """Count a login attempt before its password is checked.

        Args:
            account: Normalised email (or the raw text when it is not an email).
            client: Client address.

        Returns:
            0 if the password may be checked now, else seconds to wait (nothing counted).

        Raises:
            ThrottleUnavailable: The counters cannot be reached.
        """
        return self.counters.take(
            (self.login_per_client, LOGIN_PER_CLIENT, client),
            (self.login_per_account, LOGIN_PER_ACCOUNT, account),
        )

    def login_succeeded(self, account: str, client: str) -> None:
        """Clear the account's failures and give the address its attempt back.

        Args:
            account: Normalised email.
            client: Client address.

        Raises:
            ThrottleUnavailable: The counters cannot be reached.
        """
        self.counters.clear((self.login_per_account, LOGIN_PER_ACCOUNT, account))
        self.counters.give_back((self.login_per_client, LOGIN_PER_CLIENT, client))

    def login_not_checked(self, account: str, client: str) -> None:
        """Give back a counted attempt whose password check never ran (a database error).

        Args:
            account: Normalised email.
            client: Client address.

        Raises:
            ThrottleUnavailable: The counters cannot be reached.
        """
        self.counters.give_back((self.login_per_account, LOGIN_PER_ACCOUNT, account))
        self.counters.give_back((self.login_per_client, LOGIN_PER_CLIENT, client))

    def _second_factor_slots(self, account: str) -> tuple[Slot, Slot]:
        return (
            (self.second_factor_per_account, SECOND_FACTOR_PER_ACCOUNT, account),
            (self.second_factor_per_account_daily, SECOND_FACTOR_PER_ACCOUNT_DAY, account),
        )

    def start_second_factor(self, account: str, client: str) -> int:
        """Count a second-factor code before it is checked.

        Args:
            account: The account (``user:<id>``).
            client: Client address.

        Returns:
            0 if the code may be checked now, else seconds to wait (nothing counted).

        Raises:
            ThrottleUnavailable: The counters cannot be reached.
        """
        return self.counters.take(
            (self.second_factor_per_client, SECOND_FACTOR_PER_CLIENT, client),
            *self._second_factor_slots(account),
        )

    def second_factor_succeeded(self, account: str, client: str) -> None:
        """Clear the account's code counts and give the address its attempt back.

        Args:
            account: The account (``user:<id>``).
            client: Client address.

        Raises:
            ThrottleUnavailable: The counters cannot be reached.
        """
        for slot in self._second_factor_slots(account):
            self.counters.clear(slot)
        self.counters.give_back((self.second_factor_per_client, SECOND_FACTOR_PER_CLIENT, client))

    def second_factor_not_checked(self, account: str, client: str) -> None:
        """Give back a counted code whose check never ran (a database error).

        Args:
            account: The account (``user:<id>``).
            client: Client address.

        Raises:
            ThrottleUnavailable: The counters cannot be reached.
        """
        for slot in self._second_factor_slots(account):
            self.counters.give_back(slot)
        self.counters.give_back((self.second_factor_per_client, SECOND_FACTOR_PER_CLIENT, client))

    def start_sign_up(self, client: str) -> int:
        """Count a sign-up before its password is hashed.

        Args:
            client: Client address.

        Returns:
            0 if the sign-up may go ahead, else seconds to wait (nothing counted).

        Raises:
            ThrottleUnavailable: The counters cannot be reached.
        """
        return self.counters.take((self.signup_per_client, SIGNUP_PER_CLIENT, client))


def storage_uri(settings: Settings) -> str:
    """The ``limits`` storage URI for the settings (Redis when configured)."""
    return settings.redis_url or "memory://"


@lru_cache(maxsize=8)
def _counters(uri: str, key_prefix: str) -> Counters:
    # wrap_exceptions: a Redis outage surfaces as limits' StorageError (caught above).
    if uri.startswith("memory"):
        storage = storage_from_string(uri, wrap_exceptions=True)
    else:
        storage = storage_from_string(uri, key_prefix=key_prefix, wrap_exceptions=True)
    assert isinstance(storage, Storage)  # a sync URI gives a sync storage
    return Counters(storage)


def make_throttle(settings: Settings, key_prefix: str = "onboard") -> Throttle:
    """Build the throttle described by the settings.

    Args:
        settings: Limits, windows and Redis URL.
        key_prefix: Redis key prefix (tests use a throwaway one).

    Returns:
        The throttle; throttles built for the same storage share its counters.
    """
    login_window = settings.login_failure_window
    return Throttle(
        counters=_counters(storage_uri(settings), key_prefix),
        login_per_account=RateLimitItemPerSecond(
            settings.login_max_failures_per_account, login_window
        ),
        login_per_client=RateLimitItemPerSecond(
            settings.login_max_failures_per_client, login_window
        ),
        signup_per_client=RateLimitItemPerSecond(
            settings.signup_max_per_client, settings.signup_window
        ),
    )
