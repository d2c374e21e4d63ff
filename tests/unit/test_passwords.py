"""Password hashing (argon2id parameters, verification, normalisation, limits)."""

from __future__ import annotations

import asyncio
import threading
import time
import unicodedata

import argon2
import pytest

from onboard_app.services.passwords import (
    MAX_PASSWORD,
    hash_password,
    in_hash_pool,
    needs_rehash,
    verify_password,
)
from onboard_app.settings import override_settings
from tests.conftest import make_settings

PASSWORD = "correct horse battery"
UNICODE_PASSWORD = "caf\u00e9-cr\u00e8me-\u00c5ngstr\u00f6m"


@pytest.fixture(scope="module")
def stored() -> str:
    return hash_password(PASSWORD)


@pytest.fixture(scope="module")
def stored_unicode() -> str:
    return hash_password(UNICODE_PASSWORD)


def parse(encoded: str) -> tuple[str, int, dict[str, int]]:
    # $argon2id$v=19$m=24576,t=2,p=1$salt$hash
    _, variant, version, params, salt, digest = encoded.split("$")
    assert salt and digest
    values = dict(item.split("=") for item in params.split(","))
    return variant, int(version.removeprefix("v=")), {k: int(v) for k, v in values.items()}


def test_hash_is_argon2id_with_owasp_minimum(stored: str) -> None:
    variant, version, params = parse(stored)
    assert variant == "argon2id"
    assert version == 19
    assert params["m"] >= 19456
    assert params["t"] >= 2
    assert params["p"] == 1


def test_hash_is_salted(stored: str) -> None:
    again = hash_password(PASSWORD)
    assert again != stored
    assert PASSWORD not in stored


def test_verify_right_and_wrong(stored: str) -> None:
    assert verify_password(stored, PASSWORD) is True
    for wrong in ("correct horse batterY", "correct horse battery ", "", "x" * 8, PASSWORD[:-1]):
        assert verify_password(stored, wrong) is False


def test_nfc_and_nfd_of_the_same_password_verify(stored_unicode: str) -> None:
    nfd = unicodedata.normalize("NFD", UNICODE_PASSWORD)
    nfc = unicodedata.normalize("NFC", UNICODE_PASSWORD)
    assert nfd != nfc
    assert verify_password(stored_unicode, nfc)
    assert verify_password(stored_unicode, nfd)
    # and a hash made from the NFD form accepts the NFC form
    assert verify_password(hash_password(nfd), nfc)


def test_nfkc_lookalikes_are_different_passwords(stored: str) -> None:
    # full-width letters are not folded into ASCII (only NFC is applied)
    fullwidth = "".join(chr(ord(c) + 0xFEE0) if "!" <= c <= "~" else c for c in PASSWORD)
    assert not verify_password(stored, fullwidth)


def test_nul_and_oversized_passwords_fail_verify() -> None:
    with_nul = "pass\x00word"
    # a hash of the string argon2 would see if NUL were silently accepted
    assert not verify_password(hash_password(with_nul), with_nul)
    huge = "h" * (MAX_PASSWORD + 1)
    assert not verify_password(hash_password(huge), huge)
    assert not verify_password(hash_password(huge), "h" * 10_000)


def test_verify_none_hash_is_false() -> None:
    assert verify_password(None, PASSWORD) is False
    assert verify_password(None, "") is False


@pytest.mark.parametrize(
    "bad_hash", ["", "not-a-hash", "$argon2id$v=19$m=1,t=1,p=1$xx$yy", "$2b$12$abc"]
)
def test_verify_garbage_hash_is_false(bad_hash: str) -> None:
    assert verify_password(bad_hash, PASSWORD) is False


def test_verify_non_string_password_is_false(stored: str) -> None:
    for value in (None, 123, b"correct horse battery", [PASSWORD]):
        assert verify_password(stored, value) is False  # type: ignore[arg-type]


def test_needs_rehash(stored: str) -> None:
    weak = argon2.PasswordHasher(time_cost=1, memory_cost=8192).hash(PASSWORD)
    assert verify_password(weak, PASSWORD)  # still verifies
    assert needs_rehash(weak) is True
    assert needs_rehash(stored) is False
    assert needs_rehash("not-a-hash") is True


# --- the hash pool: a burst of password work queues instead of taking every core -------------


class _Concurrency:
    """Records how many calls run at once."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.running = 0
        self.most = 0

    def work(self, value: int) -> int:
        with self.lock:
            self.running += 1
            self.most = max(self.most, self.running)
        time.sleep(0.05)
        with self.lock:
            self.running -= 1
        return value * 2


@pytest.mark.parametrize("slots", [1, 2])
def test_the_hash_pool_runs_at_most_its_slots_at_once(slots: int) -> None:
    override_settings(make_settings(password_hash_slots=slots))
    try:
        counter = _Concurrency()

        async def burst() -> list[int]:
            return await asyncio.gather(*(in_hash_pool(counter.work, n) for n in range(6)))

        assert asyncio.run(burst()) == [0, 2, 4, 6, 8, 10]
        assert counter.most == slots
    finally:
        override_settings(None)


def test_the_hash_pool_passes_errors_through() -> None:
    def fails() -> None:
        raise ValueError("wrong password")

    with pytest.raises(ValueError, match="wrong password"):
        asyncio.run(in_hash_pool(fails))
