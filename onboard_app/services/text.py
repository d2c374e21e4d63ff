"""Text from the client: one check for every field, before anything encodes it.

A browser (or a crafted websocket message) can send lone UTF-16 surrogates, NUL bytes and
other control characters. argon2, the database drivers and JSON encoders raise on some of
them, so every text field passes through :func:`clean_text` at the edge and a bad value
becomes a field message, never an exception inside a handler.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from typing import Final

#: The message shown under a field that holds characters we refuse.
BAD_CHARACTERS: Final = "This contains characters we cannot accept. Retype it without them."

_ALLOWED_IN_MULTILINE: Final = frozenset("\n\t")


@dataclass(frozen=True)
class TextRefused:
    """Why a value is not acceptable text.

    Attributes:
        message: The field message to show.
    """

    message: str = BAD_CHARACTERS


def has_bad_characters(value: str, *, multiline: bool = False) -> bool:
    """Whether ``value`` holds lone surrogates or control characters.

    Args:
        value: The text.
        multiline: Allow newlines and tabs.

    Returns:
        True if the text must be refused.
    """
    for ch in value:
        category = unicodedata.category(ch)
        if category == "Cs":  # a lone surrogate: no encoder accepts it
            return True
        if category == "Cc" and not (multiline and ch in _ALLOWED_IN_MULTILINE):
            return True
    return False


def clean_text(
    value: object, *, max_chars: int, multiline: bool = False, strip: bool = True
) -> str | TextRefused:
    """Normalise client text (NFC), or say why it is refused.

    Over-long text is cut at ``4 * max_chars`` before normalising (a field validator
    reports the exact length limit); anything that is not a string is refused.

    Args:
        value: What the client sent (any JSON type).
        max_chars: The field's limit in characters.
        multiline: Keep newlines and tabs (and do not fold inner white space).
        strip: Strip surrounding white space (passwords keep theirs).

    Returns:
        The cleaned text, or :class:`TextRefused`.
    """
    if not isinstance(value, str):
        return TextRefused("Enter text here.")
    value = value[: max_chars * 4]
    if strip:
        value = value.strip()
    if has_bad_characters(value, multiline=multiline):
        return TextRefused()
    value = unicodedata.normalize("NFC", value)
    if strip and not multiline:
        value = " ".join(value.split())
    return value


def safe_text(value: object, *, max_chars: int) -> str:
    """Client text for places that only need something harmless (search, query values).

    Args:
        value: What the client sent.
        max_chars: Longest result.

    Returns:
        The cleaned text, or ``""`` when it is refused.
    """
    cleaned = clean_text(value, max_chars=max_chars)
    return cleaned[:max_chars] if isinstance(cleaned, str) else ""
