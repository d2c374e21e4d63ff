"""The catalogue file: the curated JSON the app ships, validated into entries.

:func:`load_catalogue_file` reads ``onboard_app/data/catalogue.json`` into
:class:`CatalogueEntry` objects; constructing an entry validates it. No database here.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final
from urllib.parse import urlsplit

from onboard_app.services.topics import TOPICS

#: The catalogue shipped with the app.
CATALOGUE_FILE: Final = Path(__file__).resolve().parent.parent / "data" / "catalogue.json"

#: What an entry is: software, a learning resource, or a place where people meet.
KINDS: Final = ("project", "resource", "community")

MIN_TOPICS: Final = 1
MAX_TOPICS: Final = 4
MAX_SLUG_CHARS: Final = 120
MAX_TITLE_CHARS: Final = 120
MAX_DESCRIPTION_CHARS: Final = 200
MAX_URL_CHARS: Final = 500


_FIELDS: Final = ("slug", "title", "description", "url", "kind", "topics")
_SLUG_RE: Final = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")


@dataclass(frozen=True)
class CatalogueEntry:
    """One validated catalogue entry, as written in the JSON file.

    Constructing an entry validates it, so every ``CatalogueEntry`` that exists is valid.

    Attributes:
        slug: Unique lowercase-kebab identifier (at most 120 characters).
        title: Display name (1-120 characters).
        description: One factual sentence (1-200 characters).
        url: Canonical ``https://`` address (at most 500 characters).
        kind: One of :data:`KINDS`.
        topics: 1 to 4 distinct topic slugs from ``TOPICS``, most relevant first.

    Raises:
        ValueError: If any field is invalid.

    """

    slug: str
    title: str
    description: str
    url: str
    kind: str
    topics: tuple[str, ...]

    def __post_init__(self) -> None:
        """Check every field; see the class docstring for the rules."""
        if not isinstance(self.slug, str) or not _SLUG_RE.fullmatch(self.slug):
            raise ValueError(f"slug {self.slug!r} is not lowercase-kebab (a-z, 0-9, '-')")
        if len(self.slug) > MAX_SLUG_CHARS:
            raise ValueError(f"slug is longer than {MAX_SLUG_CHARS} characters")
        _check_text("title", self.title, MAX_TITLE_CHARS)
        _check_text("description", self.description, MAX_DESCRIPTION_CHARS)
        _check_url(self.url)
        if self.kind not in KINDS:
            raise ValueError(f"kind {self.kind!r} is not one of {', '.join(KINDS)}")
        if not isinstance(self.topics, tuple):
            raise ValueError("topics must be a tuple of topic slugs")
        if not MIN_TOPICS <= len(self.topics) <= MAX_TOPICS:
            raise ValueError(
                f"has {len(self.topics)} topics; expected {MIN_TOPICS} to {MAX_TOPICS}"
            )
        unknown = [topic for topic in self.topics if topic not in TOPICS]
        if unknown:
            raise ValueError(f"unknown topic(s) {', '.join(map(repr, unknown))}")
        if len(set(self.topics)) != len(self.topics):
            raise ValueError("lists a topic more than once")


def _check_text(name: str, value: object, limit: int) -> None:
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{name} must be a non-empty string")
    if value != value.strip():
        raise ValueError(f"{name} has leading or trailing whitespace")
    if len(value) > limit:
        raise ValueError(f"{name} is {len(value)} characters; the limit is {limit}")


def _check_url(value: object) -> None:
    if not isinstance(value, str):
        raise ValueError("url must be a string")
    if len(value) > MAX_URL_CHARS:
        raise ValueError(f"url is longer than {MAX_URL_CHARS} characters")
    parts = urlsplit(value)
    if parts.scheme != "https" or not parts.hostname or any(c.isspace() for c in value):
        raise ValueError(f"url {value!r} is not an absolute https:// URL")


def _entry_from_json(raw: object, index: int) -> CatalogueEntry:
    where = f"catalogue entry #{index}"
    if not isinstance(raw, dict):
        raise ValueError(f"{where}: expected an object, got {type(raw).__name__}")
    if isinstance(raw.get("slug"), str):
        where += f" ({raw['slug']!r})"
    missing = [key for key in _FIELDS if key not in raw]
    extra = sorted(set(raw) - set(_FIELDS))
    if missing:
        raise ValueError(f"{where}: missing field(s) {', '.join(missing)}")
    if extra:
        raise ValueError(f"{where}: unexpected field(s) {', '.join(extra)}")
    topics = raw["topics"]
    if not isinstance(topics, list) or not all(isinstance(t, str) for t in topics):
        raise ValueError(f"{where}: topics must be a list of strings")
    try:
        return CatalogueEntry(
            slug=raw["slug"],
            title=raw["title"],
            description=raw["description"],
            url=raw["url"],
            kind=raw["kind"],
            topics=tuple(topics),
        )
    except ValueError as error:
        raise ValueError(f"{where}: {error}") from None


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
            (the message names the entry's position and slug), or a slug repeats.
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
