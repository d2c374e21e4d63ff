"""The catalogue file: the curated JSON the app ships, validated into entries.

:func:`load_catalogue_file` reads ``onboard_app/data/catalogue.json`` into
:class:`CatalogueEntry` objects; pydantic validates each entry as it is constructed. No
database here.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Final, Literal, get_args
from urllib.parse import urlsplit

from pydantic import (
    AfterValidator,
    ConfigDict,
    Field,
    StringConstraints,
    TypeAdapter,
    ValidationError,
)
from pydantic.dataclasses import dataclass
from pydantic_core import ErrorDetails

from onboard_app.services.topics import TOPICS

#: The catalogue shipped with the app.
CATALOGUE_FILE: Final = Path(__file__).resolve().parent.parent / "data" / "catalogue.json"

#: What an entry is: software, a learning resource, or a place where people meet.
Kind = Literal["project", "resource", "community"]
KINDS: Final[tuple[str, ...]] = get_args(Kind)


def _trimmed(value: str) -> str:
    if not value.strip():
        raise ValueError("must not be blank")
    if value != value.strip():
        raise ValueError("has leading or trailing whitespace")
    return value


def _https(value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme != "https" or not parts.hostname or any(c.isspace() for c in value):
        raise ValueError("is not an absolute https:// URL")
    return value


def _known_topics(value: tuple[str, ...]) -> tuple[str, ...]:
    unknown = [topic for topic in value if topic not in TOPICS]
    if unknown:
        raise ValueError(f"unknown topic(s) {', '.join(map(repr, unknown))}")
    if len(set(value)) != len(value):
        raise ValueError("lists a topic more than once")
    return value


_TRIMMED: Final = AfterValidator(_trimmed)
Topics = Annotated[
    tuple[str, ...], Field(min_length=1, max_length=4), AfterValidator(_known_topics)
]


@dataclass(frozen=True, config=ConfigDict(extra="forbid"))
class CatalogueEntry:
    """One validated catalogue entry, as written in the JSON file.

    Constructing an entry validates it (``pydantic.ValidationError``, a ``ValueError``),
    so every ``CatalogueEntry`` that exists is valid.

    Attributes:
        slug: Unique lowercase-kebab identifier (at most 120 characters).
        title: Display name (1-120 characters, no surrounding whitespace).
        description: One factual sentence (1-200 characters).
        url: Canonical ``https://`` address (at most 500 characters).
        kind: One of :data:`KINDS`.
        topics: 1 to 4 distinct topic slugs from ``TOPICS``, most relevant first.
    """

    slug: Annotated[str, Field(max_length=120, pattern=r"^[a-z0-9]+(?:-[a-z0-9]+)*$")]
    title: Annotated[str, StringConstraints(min_length=1, max_length=120), _TRIMMED]
    description: Annotated[str, StringConstraints(min_length=1, max_length=200), _TRIMMED]
    url: Annotated[str, Field(max_length=500), AfterValidator(_https)]
    kind: Kind
    topics: Topics


_ENTRY: Final = TypeAdapter(CatalogueEntry)


def _problem(error: ErrorDetails) -> str:
    field = ".".join(str(part) for part in error["loc"])
    if error["type"] == "value_error":
        message = str(error["ctx"]["error"])
    else:
        message = error["msg"][0].lower() + error["msg"][1:]
    return f"{field}: {message}" if field else message


def _entry_from_json(raw: object, index: int) -> CatalogueEntry:
    where = f"catalogue entry #{index}"
    if isinstance(raw, dict) and isinstance(raw.get("slug"), str):
        where += f" ({raw['slug']!r})"
    try:
        return _ENTRY.validate_python(raw)
    except ValidationError as error:
        raise ValueError(f"{where}: {'; '.join(map(_problem, error.errors()))}") from None


def check_unique(entries: Sequence[CatalogueEntry]) -> None:
    """Refuse two entries with one slug (``ValueError``)."""
    seen: set[str] = set()
    for entry in entries:
        if entry.slug in seen:
            raise ValueError(f"catalogue slug {entry.slug!r} appears more than once")
        seen.add(entry.slug)


def load_catalogue_file(path: str | Path | None = None) -> list[CatalogueEntry]:
    """Read and validate a catalogue JSON file.

    The file holds a JSON array of objects with exactly the keys ``slug``, ``title``,
    ``description``, ``url``, ``kind`` and ``topics`` (see :class:`CatalogueEntry`).

    Args:
        path: The file to read; ``None`` for the catalogue shipped with the app.

    Returns:
        The entries, in file order.

    Raises:
        ValueError: If the file is not valid JSON, not an array, or any entry is invalid
            (the message names the entry's position and slug, and every problem of it),
            or a slug repeats.
        OSError: If the file cannot be read.
    """
    file = Path(path) if path is not None else CATALOGUE_FILE
    try:
        data = json.loads(file.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise ValueError(f"{file}: not valid JSON ({error})") from None
    if not isinstance(data, list):
        raise ValueError(f"{file}: expected a JSON array of entries")
    entries = [_entry_from_json(raw, index) for index, raw in enumerate(data)]
    check_unique(entries)
    return entries
