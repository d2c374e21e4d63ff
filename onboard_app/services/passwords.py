"""Password hashing (argon2id) and the password rules a user is told about."""

from __future__ import annotations

import asyncio
import functools
import unicodedata
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Final, ParamSpec, TypeVar

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from onboard_app import telemetry
from onboard_app.services.text import has_bad_characters
from onboard_app.settings import get_settings

MIN_PASSWORD: Final = 8
MAX_PASSWORD: Final = 256

# OWASP's minimum for argon2id is m=19 MiB, t=2, p=1; we use a little more memory.
HASHER: Final = PasswordHasher(time_cost=2, memory_cost=19 * 1024 + 5 * 1024, parallelism=1)

# Verified against for unknown accounts so that "no such user" costs as much as a wrong
# password and the two cannot be told apart by timing.
_DUMMY_HASH: Final = HASHER.hash("onboard-dummy-password-for-timing")


_pools: dict[int, ThreadPoolExecutor] = {}


def _hash_pool() -> ThreadPoolExecutor:
    # Hashing is CPU-bound by design (~25 ms of a core each here): a burst of signups or
    # logins queues in this pool instead of taking every core from the event loop that
    # serves everyone else's clicks. Sized by ONBOARD_PASSWORD_HASH_SLOTS, per worker.
    slots = get_settings().password_hash_slots
    pool = _pools.get(slots)
    if pool is None:
        pool = _pools.setdefault(
            slots, ThreadPoolExecutor(max_workers=slots, thread_name_prefix="onboard-password")
        )
    return pool


P = ParamSpec("P")
R = TypeVar("R")


async def in_hash_pool(function: Callable[P, R], *args: P.args, **kwargs: P.kwargs) -> R:
    """Run password work (anything that hashes or verifies) off the event loop.

    At most ``password_hash_slots`` calls run at once in a worker; the others wait their
    turn without holding a thread.

    Args:
        function: The work, e.g. ``accounts.sign_up``.
        *args: Its positional arguments.
        **kwargs: Its keyword arguments.

    Returns:
        What ``function`` returned (its exceptions propagate).
    """
    call = telemetry.in_this_context(functools.partial(function, *args, **kwargs))
    with telemetry.span("onboard.password_hash"):
        return await asyncio.get_running_loop().run_in_executor(_hash_pool(), call)


def normalise_password(password: str) -> str:
    """NFC-normalise a password so the same characters typed differently match.

    Args:
        password: The password as typed.

    Returns:
        The normalised password.
    """
    return unicodedata.normalize("NFC", password)


def hash_password(password: str) -> str:
    """Hash a password with argon2id (CPU-heavy: call it off the event loop).

    Args:
        password: An acceptable password (see :mod:`~onboard_app.services.password_policy`).

    Returns:
        The encoded argon2id hash.
    """
    return HASHER.hash(normalise_password(password))


def verify_password(password_hash: str | None, password: str) -> bool:
    """Check a password; an absent hash still costs one verification.

    Args:
        password_hash: The stored hash, or ``None`` for an unknown / passwordless account.
        password: The submitted password.

    Returns:
        Whether the password matches.
    """
    if (
        not isinstance(password, str)
        or len(password) > MAX_PASSWORD * 4
        or has_bad_characters(password)
    ):
        password = ""
    candidate = normalise_password(password)
    if len(candidate) > MAX_PASSWORD:
        candidate = ""
    try:
        if password_hash is None:
            HASHER.verify(_DUMMY_HASH, candidate)
            return False
        return HASHER.verify(password_hash, candidate)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def needs_rehash(password_hash: str) -> bool:
    """Whether a stored hash uses weaker parameters than the current ones."""
    try:
        return HASHER.check_needs_rehash(password_hash)
    except InvalidHashError:
        return True
