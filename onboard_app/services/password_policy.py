"""The password policy (OWASP ASVS 5.0 level 2) and the strength meter, on zxcvbn's data.

ASVS V6.2: at least 8 characters (15 suggested), at least 64 accepted (we take 256), any
characters, no composition rules, never truncated. Refused: the most common passwords and
small changes to them (zxcvbn's bundled frequency lists, offline), passwords built from
context words (the user's email and name, the name of this site), and anything else zxcvbn
rates as guessable in under 10^6 tries (repeats, sequences, keyboard rows, dates).

zxcvbn's cost grows with the square of the length (measured here: ~20-45 ms at 64
characters, 60-160 ms at 128, 0.5-1.1 s at 256), so only the first
:data:`ANALYSED_CHARS` characters are analysed; the whole password is still what is
hashed and stored.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterable, Sequence
from typing import Any, Final, NamedTuple

from zxcvbn import zxcvbn

from onboard_app.services.passwords import MAX_PASSWORD, MIN_PASSWORD, normalise_password
from onboard_app.services.text import BAD_CHARACTERS, has_bad_characters

MIN_LENGTH: Final = MIN_PASSWORD
SUGGESTED_LENGTH: Final = 15
MAX_LENGTH: Final = MAX_PASSWORD
#: Characters zxcvbn looks at; a longer password is judged by its first 64.
ANALYSED_CHARS: Final = 64
#: zxcvbn score a password needs (2: more than 10^6 guesses, safe against online guessing).
MIN_SCORE: Final = 2
#: Context words every password is checked against besides the user's own.
SITE_WORDS: Final = ("onboard",)
#: Meter labels by score; 0 and 1 are refused by the policy.
LABELS: Final = ("Very weak", "Weak", "Fair", "Good", "Strong")

ENTER_PASSWORD: Final = "Enter a password."  # noqa: S105 (a message, not a password)
TOO_SHORT: Final = (
    f"Use at least {MIN_LENGTH} characters. {SUGGESTED_LENGTH} or more is better: "
    "a few unrelated words work well."
)
TOO_LONG: Final = f"Use at most {MAX_LENGTH} characters."
ONLY_SPACES: Final = "The password cannot be only spaces."
COMMON: Final = "This is one of the most common passwords. Choose another."
LIKE_COMMON: Final = "This is a small change to a very common password. Choose another."
PERSONAL: Final = (
    "Don't build the password from your email address, your name or the name of this site."
)
GUESSABLE: Final = "This password is easy to guess."
ADVICE: Final = "Add a few unrelated words; uncommon ones are best."

_MIN_WORD: Final = 3
_WORD_SPLIT: Final = re.compile(r"[\W_]+")
# zxcvbn keeps the user inputs of the running call in a module-level dictionary, so two
# threads checking passwords at once would see each other's words: one call at a time.
_ZXCVBN_LOCK: Final = threading.Lock()


class Strength(NamedTuple):
    """What the strength meter shows.

    ``score >= MIN_SCORE`` exactly when :func:`password_problem` accepts the password.

    Attributes:
        score: 0 (very weak) to 4 (strong).
        label: The word for the score (:data:`LABELS`).
        hint: Why it is refused, or how to make it stronger; ``""`` when strong.
    """

    score: int
    label: str
    hint: str


def context_words(email: str | None = None, name: str | None = None) -> tuple[str, ...]:
    """The words a user's password must not be built from.

    Args:
        email: The user's email address.
        name: The user's display name.

    Returns:
        The email, its local part and the pieces of both, the name and its pieces, and
        the site's name; lower-cased, each at least three characters.
    """
    words: set[str] = set(SITE_WORDS)
    if email:
        address = email.strip().lower()
        local, _, domain = address.rpartition("@")
        words.update((address, local, domain))
        words.update(_WORD_SPLIT.split(local))
        words.update(domain.split(".")[:-1])  # not the top-level domain
    if name:
        full = " ".join(name.lower().split())
        pieces = [piece for piece in _WORD_SPLIT.split(full) if piece]
        words.update((full, "".join(pieces), *pieces))
    return tuple(sorted(word for word in words if len(word) >= _MIN_WORD))


def password_problem(password: object, user_inputs: Sequence[str] = ()) -> str | None:
    """Why a new password is not acceptable, or ``None`` if it is.

    A drop-in for :func:`onboard_app.services.passwords.password_problem` that also applies
    the ASVS level 2 checks. CPU work of up to ~50 ms: call it off the event loop.

    Args:
        password: The submitted password (any type).
        user_inputs: Context words, usually :func:`context_words` of the user.

    Returns:
        A message for the user, or ``None``.
    """
    return _judge(password, user_inputs)[0]


def strength(password: object, user_inputs: Sequence[str] = ()) -> Strength:
    """How strong a password is, for the meter beside the field.

    Args:
        password: The password typed so far (any type).
        user_inputs: Context words, usually :func:`context_words` of the user.

    Returns:
        Score, label and hint; consistent with :func:`password_problem`.
    """
    problem, analysis = _judge(password, user_inputs)
    score = int(analysis["score"]) if analysis else 0
    if problem is not None:
        score = min(score, MIN_SCORE - 1)
        return Strength(score, LABELS[score], problem)
    assert analysis is not None
    suggestions = [s for s in analysis["feedback"]["suggestions"] if s]
    if score < len(LABELS) - 1:
        hint = suggestions[0] if suggestions else ADVICE
    elif len(normalise_password(str(password))) < SUGGESTED_LENGTH:
        hint = f"{SUGGESTED_LENGTH} or more characters make it stronger still."
    else:
        hint = ""
    return Strength(score, LABELS[score], hint)


def _judge(
    password: object, user_inputs: Sequence[str]
) -> tuple[str | None, dict[str, Any] | None]:
    """The policy's verdict and zxcvbn's analysis (``None`` when not analysed)."""
    if not isinstance(password, str) or not password:
        return ENTER_PASSWORD, None
    if len(password) > MAX_LENGTH * 4:
        return TOO_LONG, None
    if has_bad_characters(password):
        return BAD_CHARACTERS, None
    password = normalise_password(password)
    if not password.strip():
        return ONLY_SPACES, None
    analysis = _analyse(password, user_inputs)
    if len(password) < MIN_LENGTH:
        return TOO_SHORT, analysis
    if len(password) > MAX_LENGTH:
        return TOO_LONG, analysis
    return _guessable_because(analysis), analysis


def _analyse(password: str, user_inputs: Iterable[str]) -> dict[str, Any]:
    words = [word.lower() for word in (*SITE_WORDS, *user_inputs) if len(word) >= _MIN_WORD]
    with _ZXCVBN_LOCK:
        return zxcvbn(password[:ANALYSED_CHARS], user_inputs=words, max_length=ANALYSED_CHARS)


def _guessable_because(analysis: dict[str, Any]) -> str | None:
    """Why zxcvbn's analysis makes the password unacceptable, or ``None``."""
    sequence: list[dict[str, Any]] = analysis["sequence"]
    analysed = len(analysis["password"])
    personal = sum(
        len(match["token"]) for match in sequence if match.get("dictionary_name") == "user_inputs"
    )
    # Half of it from the user's own words is "built from" them, however strong the rest.
    if personal and (analysis["score"] < MIN_SCORE or 2 * personal >= analysed):
        return PERSONAL
    if analysis["score"] >= MIN_SCORE:
        return None
    common = [match for match in sequence if match.get("dictionary_name") == "passwords"]
    if len(sequence) == 1 and common and not (common[0]["l33t"] or common[0]["reversed"]):
        return COMMON
    if common:
        return LIKE_COMMON
    warning = analysis["feedback"]["warning"]
    return f"{warning or GUESSABLE} {ADVICE}"
