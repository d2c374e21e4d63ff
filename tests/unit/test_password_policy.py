"""The ASVS level 2 password policy and the strength meter (zxcvbn, offline)."""

from __future__ import annotations

import secrets
import string
import sys
import threading
import time
import unicodedata

import pytest

from onboard_app.services import password_policy as policy
from onboard_app.services.password_policy import (
    ANALYSED_CHARS,
    LABELS,
    MAX_LENGTH,
    MIN_SCORE,
    context_words,
    password_problem,
    strength,
)
from onboard_app.services.passwords import hash_password, verify_password
from onboard_app.services.text import BAD_CHARACTERS

XANTHE = context_words("xanthe.q@mailbox.example", "Xanthe Quillfeather")
ALICE = context_words("alice.smith@example.com", "Alice Smith")


def random_password(length: int, alphabet: str = string.ascii_letters + string.digits) -> str:
    return "".join(secrets.choice(alphabet) for _ in range(length))


# --- the most common passwords --------------------------------------------------------------


@pytest.mark.parametrize(
    "password", ["password", "12345678", "123456789", "qwertyuiop", "iloveyou", "football"]
)
def test_the_most_common_passwords_are_refused_and_told_why(password: str) -> None:
    assert password_problem(password) == policy.COMMON
    assert password_problem(password.upper()) is not None


@pytest.mark.parametrize("password", ["P@ssw0rd", "drowssap", "Password1!", "1qaz2wsx!"])
def test_small_changes_to_a_common_password_are_refused(password: str) -> None:
    assert password_problem(password) in (policy.COMMON, policy.LIKE_COMMON)


@pytest.mark.parametrize(
    ("password", "why"),
    [
        ("aaaaaaaaaaaa", "Repeats"),
        ("abcdefghijkl", "Sequences"),
        ("asdfghjkl;", "rows of keys"),
    ],
)
def test_other_guessable_patterns_say_what_is_wrong(password: str, why: str) -> None:
    problem = password_problem(password)
    assert problem is not None
    assert why in problem and policy.ADVICE in problem


# --- built from the user's own words --------------------------------------------------------


def test_context_words_hold_the_email_the_name_and_their_pieces() -> None:
    assert set(XANTHE) == {
        "xanthe.q@mailbox.example",
        "xanthe.q",
        "xanthe",
        "mailbox.example",
        "mailbox",
        "xanthe quillfeather",
        "xanthequillfeather",
        "quillfeather",
        "onboard",
    }
    assert context_words() == ("onboard",)
    assert "com" not in ALICE  # the top-level domain is no context word


@pytest.mark.parametrize(
    "password",
    [
        "xanthequillfeather",
        "XantheQuillfeather!",
        "x4nth3qu1llf34th3r",  # l33t
        "xanthequillfeather"[::-1],
        "xanthe.q@mailbox.example",
        "xanthe.q@mailbox.example-9f!Qz",  # more than half of it is the email
        "Quillfeather2024",
    ],
)
def test_passwords_built_from_the_users_email_or_name_are_refused(password: str) -> None:
    assert password_problem(password, XANTHE) == policy.PERSONAL
    # Control: the same password is fine for somebody else (the words are not common).
    assert password_problem(password, ALICE) is None


def test_the_sites_name_is_a_context_word_for_everyone() -> None:
    assert password_problem("onboard2024") == policy.PERSONAL
    assert password_problem("Onboard-Onboard") == policy.PERSONAL


def test_a_context_word_inside_a_strong_password_is_fine() -> None:
    assert password_problem("tangerine velcro xanthe lobster", XANTHE) is None


# --- lengths, characters, no composition rules ----------------------------------------------


def test_under_eight_characters_is_refused_and_fifteen_are_suggested() -> None:
    problem = password_problem("vq7!Lm2")
    assert problem == policy.TOO_SHORT
    assert "8" in problem and "15" in problem
    assert password_problem("vq7!Lm2#") is None  # eight random characters are enough


@pytest.mark.parametrize("length", [64, 100, MAX_LENGTH])
def test_long_passwords_are_accepted_up_to_the_limit(length: int) -> None:
    assert password_problem(random_password(length)) is None


def test_over_the_limit_is_refused_not_truncated() -> None:
    assert password_problem(random_password(MAX_LENGTH + 1)) == policy.TOO_LONG
    huge = random_password(MAX_LENGTH * 40)
    started = time.perf_counter()
    assert password_problem(huge) == policy.TOO_LONG
    assert time.perf_counter() - started < 0.5


def test_the_whole_password_counts_when_it_is_stored() -> None:
    password = random_password(MAX_LENGTH)
    assert password_problem(password) is None
    stored = hash_password(password)
    assert verify_password(stored, password)
    assert not verify_password(stored, password[:ANALYSED_CHARS])
    assert not verify_password(stored, password[:-1])


@pytest.mark.parametrize(
    "password",
    [
        "tangerine velcro lobster",  # lower-case letters and spaces only
        "730195284617",  # digits only
        "ZEBRA PLANET MUFFIN",  # capitals only
    ],
)
def test_no_composition_rules(password: str) -> None:
    assert password_problem(password) is None


@pytest.mark.parametrize(
    "password",
    ["日本語のパスワードです", "пароль-лисица-мост", "🦊🌲🍄🚲🎈🧭🪁🦉", "Ünïcödé wörds ålso"],
)
def test_unicode_passwords_are_accepted(password: str) -> None:
    assert password_problem(password) is None


def test_length_counts_characters_not_code_points() -> None:
    four = unicodedata.normalize("NFD", "éèêë")  # 8 code points, 4 characters
    assert len(four) == 8
    assert password_problem(four + "zq") == policy.TOO_SHORT
    eight = unicodedata.normalize("NFD", "éèêëzqwj")
    assert password_problem(eight) is None


@pytest.mark.parametrize("password", ["pass\x00word-xyz", "x\ud800yyyyyyyy", "tab\there-xyz1"])
def test_characters_that_cannot_be_encoded_or_typed_are_refused(password: str) -> None:
    assert password_problem(password) == BAD_CHARACTERS


@pytest.mark.parametrize("value", [None, 12345678, b"bytes-password", ["list"], ""])
def test_missing_or_non_text_password(value: object) -> None:
    assert password_problem(value) == policy.ENTER_PASSWORD


def test_only_spaces_is_refused() -> None:
    assert password_problem(" " * 12) == policy.ONLY_SPACES


def test_a_weak_start_is_judged_even_when_the_rest_is_long() -> None:
    # zxcvbn looks at the first 64 characters only: what follows cannot rescue them...
    assert password_problem("a" * ANALYSED_CHARS + random_password(40)) is not None
    # ...and cannot spoil them either.
    assert password_problem(random_password(ANALYSED_CHARS) + "password" * 20) is None


def test_a_long_password_is_checked_quickly() -> None:
    # Uncapped, zxcvbn took 0.5-1.1 s on 256 such characters here; capped, ~20-45 ms.
    worst = ("p@55w0rd$1!a" * 30)[:MAX_LENGTH]
    password_problem(worst)  # warm-up
    started = time.perf_counter()
    password_problem(worst)
    assert time.perf_counter() - started < 0.3


def test_concurrent_checks_do_not_mix_up_their_users() -> None:
    # zxcvbn keeps each call's user inputs in a module global: the policy serialises calls.
    password = "xanthequillfeather"
    answers: dict[str, set[str | None]] = {"xanthe": set(), "alice": set()}

    def check(who: str, words: tuple[str, ...]) -> None:
        for _ in range(40):
            answers[who].add(password_problem(password, words))

    threads = [
        threading.Thread(target=check, args=("xanthe", XANTHE)),
        threading.Thread(target=check, args=("alice", ALICE)),
    ]
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-5)  # switch threads often, as a busy server would
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        sys.setswitchinterval(interval)
    assert answers == {"xanthe": {policy.PERSONAL}, "alice": {None}}


# --- the strength meter ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "password",
    [
        "",
        "short",
        "password",
        "P@ssw0rd",
        "xanthequillfeather",
        "aaaaaaaaaaaa",
        "kqzmvwhx",
        "vq7!Lm2#",
        "correct horse",
        "tangerine velcro lobster",
        random_password(64),
        random_password(MAX_LENGTH + 1),
    ],
)
def test_the_meter_agrees_with_the_policy(password: str) -> None:
    meter = strength(password, XANTHE)
    problem = password_problem(password, XANTHE)
    assert 0 <= meter.score <= 4
    assert meter.label == LABELS[meter.score]
    assert (meter.score >= MIN_SCORE) == (problem is None)
    if problem is not None:
        assert meter.hint == problem
    score, label, hint = meter  # a plain (score, label, hint) tuple too
    assert (score, label, hint) == (meter.score, meter.label, meter.hint)


def test_the_meter_grows_with_more_words() -> None:
    scores = [
        strength(words).score
        for words in ("correct", "correct horse", "correct horse battery staple")
    ]
    assert scores == sorted(scores) and scores[0] < scores[-1]
    assert strength("correct horse battery staple") == (4, "Strong", "")


def test_the_meter_suggests_more_length_below_fifteen_characters() -> None:
    meter = strength("Tr0ub4dor&3")
    assert meter.score == 4
    assert "15" in meter.hint
    fair = strength("kqzmvwhx")
    assert fair.score == 2 and fair.label == "Fair" and fair.hint
