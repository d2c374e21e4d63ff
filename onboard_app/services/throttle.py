"""Login throttling with the ``limits`` library, shared by every worker when Redis is set.

Failures are counted per account (the normalised email, whether or not such an account
exists, so the throttle reveals nothing) and per client address. Without Redis the
counters live in the process, which is right for the single-worker default.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from functools import lru_cache

from limits import RateLimitItem, RateLimitItemPerSecond
from limits.errors import StorageError
from limits.storage import Storage, storage_from_string
from limits.strategies import FixedWindowRateLimiter

from onboard_app.settings import Settings


class ThrottleUnavailable(Exception):
    """The shared failure counters cannot be read or written (Redis is unreachable)."""


@dataclass(frozen=True)
class Throttle:
    """Failure counters for logins.

    Attributes:
        limiter: The ``limits`` limiter over the shared storage.
        per_account: The per-account limit.
        per_client: The per-address limit.
    """

    limiter: FixedWindowRateLimiter
    per_account: RateLimitItem
    per_client: RateLimitItem

    def blocked_for(self, account: str, client: str) -> int:
        """Seconds until a login may be tried again; 0 if it may be tried now.

        Args:
            account: Normalised email (or the raw text when it is not an email).
            client: Client address.

        Returns:
            Seconds to wait.
        """
        waits = []
        try:
            for item, key in ((self.per_account, account), (self.per_client, client)):
                if not self.limiter.test(item, "login", key):
                    reset = self.limiter.get_window_stats(item, "login", key).reset_time
                    waits.append(reset)
        except StorageError as exc:
            raise ThrottleUnavailable from exc
        if not waits:
            return 0
        return max(1, int(max(waits) - time.time()))

    def record_failure(self, account: str, client: str) -> None:
        """Count one failed login against the account and the address.

        Args:
            account: Normalised email.
            client: Client address.
        """
        try:
            self.limiter.hit(self.per_account, "login", account)
            self.limiter.hit(self.per_client, "login", client)
        except StorageError as exc:
            raise ThrottleUnavailable from exc

    def record_success(self, account: str) -> None:
        """Reset the account's counter after a successful login.

        Args:
            account: Normalised email.
        """
        try:
            self.limiter.clear(self.per_account, "login", account)
        except StorageError as exc:
            raise ThrottleUnavailable from exc


def storage_uri(settings: Settings) -> str:
    """The ``limits`` storage URI for the settings (Redis when configured)."""
    return settings.redis_url or "memory://"


@lru_cache(maxsize=8)
def _storage(uri: str, key_prefix: str) -> Storage:
    # wrap_exceptions: a Redis outage surfaces as limits' StorageError (caught above).
    if uri.startswith("redis"):
        storage = storage_from_string(uri, key_prefix=key_prefix, wrap_exceptions=True)
    else:
        storage = storage_from_string(uri, wrap_exceptions=True)
    assert isinstance(storage, Storage)  # a sync URI gives a sync storage
    return storage


def make_throttle(settings: Settings, key_prefix: str = "onboard") -> Throttle:
    """Build the throttle described by the settings.

    Args:
        settings: Limits, window and Redis URL.
        key_prefix: Redis key prefix (tests use a throwaway one).

    Returns:
        The throttle.
    """
    window = settings.login_failure_window
    return Throttle(
        limiter=FixedWindowRateLimiter(_storage(storage_uri(settings), key_prefix)),
        per_account=RateLimitItemPerSecond(settings.login_max_failures_per_account, window),
        per_client=RateLimitItemPerSecond(settings.login_max_failures_per_client, window),
    )
