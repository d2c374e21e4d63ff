"""Seeding: the catalogue file's entries upserted into the database, idempotently.

:func:`seed_catalogue` upserts entries into ``catalogue_items`` / ``catalogue_item_topics``
(one ``SELECT`` when nothing changed). SQLAlchemy Core: the same on SQLite and PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Final

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from onboard_app.services.catalogue import ITEM_COLUMNS, item_tables
from onboard_app.services.catalogue_file import CatalogueEntry, check_unique, load_catalogue_file
from onboard_app.services.db import get_engine

_CHUNK: Final = 500
_items, _item_topics = item_tables()


@dataclass
class _Stored:
    id: int
    row: tuple[Any, ...]
    linked: set[str]


def _row_of(entry: CatalogueEntry) -> tuple[Any, ...]:
    return (entry.title, entry.description, entry.url, entry.kind, list(entry.topics))


def _chunks(values: Sequence[Any]) -> Iterable[Sequence[Any]]:
    for start in range(0, len(values), _CHUNK):
        yield values[start : start + _CHUNK]


def _seed_once(engine: sa.Engine, wanted: Sequence[CatalogueEntry], prune: bool) -> int:
    items, links = _items, _item_topics
    with engine.begin() as conn:
        # The only statement when nothing changed: every item with its link rows.
        stored: dict[str, _Stored] = {}
        select_all = sa.select(*ITEM_COLUMNS, links.c.topic).select_from(
            items.outerjoin(links, links.c.item_id == items.c.id)
        )
        for found in conn.execute(select_all):
            current = stored.get(found.slug)
            if current is None:
                row = (found.title, found.description, found.url, found.kind, list(found.topics))
                current = stored[found.slug] = _Stored(found.id, row, set())
            if found.topic is not None:
                current.linked.add(found.topic)

        new = [entry for entry in wanted if entry.slug not in stored]
        changed = [
            (stored[entry.slug], entry)
            for entry in wanted
            if entry.slug in stored
            and (
                stored[entry.slug].row != _row_of(entry)
                or stored[entry.slug].linked != set(entry.topics)
            )
        ]
        wanted_slugs = {entry.slug for entry in wanted}
        stale = [s.id for slug, s in stored.items() if slug not in wanted_slugs] if prune else []
        if not (new or changed or stale):
            return 0

        if changed:
            conn.execute(
                sa.update(items)
                .where(items.c.id == sa.bindparam("b_id"))
                .values(
                    title=sa.bindparam("b_title"),
                    description=sa.bindparam("b_description"),
                    url=sa.bindparam("b_url"),
                    kind=sa.bindparam("b_kind"),
                    topics=sa.bindparam("b_topics", type_=items.c.topics.type),
                ),
                [
                    {
                        "b_id": s.id,
                        "b_title": e.title,
                        "b_description": e.description,
                        "b_url": e.url,
                        "b_kind": e.kind,
                        "b_topics": list(e.topics),
                    }
                    for s, e in changed
                ],
            )
            gone = [
                {"b_item": s.id, "b_topic": t}
                for s, e in changed
                for t in sorted(s.linked - set(e.topics))
            ]
            if gone:
                conn.execute(
                    sa.delete(links).where(
                        links.c.item_id == sa.bindparam("b_item"),
                        links.c.topic == sa.bindparam("b_topic"),
                    ),
                    gone,
                )
            added = [
                {"item_id": s.id, "topic": t}
                for s, e in changed
                for t in e.topics
                if t not in s.linked
            ]
            if added:
                conn.execute(sa.insert(links), added)

        if new:
            conn.execute(
                sa.insert(items),
                [
                    {
                        "slug": e.slug,
                        "title": e.title,
                        "description": e.description,
                        "url": e.url,
                        "kind": e.kind,
                        "topics": list(e.topics),
                    }
                    for e in new
                ],
            )
            ids: dict[str, int] = {}
            for chunk in _chunks([e.slug for e in new]):
                query = sa.select(items.c.slug, items.c.id).where(items.c.slug.in_(chunk))
                ids.update({found.slug: found.id for found in conn.execute(query)})
            conn.execute(
                sa.insert(links),
                [{"item_id": ids[e.slug], "topic": t} for e in new for t in e.topics],
            )

        for chunk in _chunks(stale):
            conn.execute(sa.delete(links).where(links.c.item_id.in_(chunk)))
            conn.execute(sa.delete(items).where(items.c.id.in_(chunk)))

        return len(new) + len(changed) + len(stale)


def seed_catalogue(
    url: str | None = None,
    entries: Iterable[CatalogueEntry] | None = None,
    *,
    prune: bool = False,
) -> int:
    """Upsert catalogue entries into the database, keyed by slug (idempotent).

    Reads every stored item with its topic rows in one ``SELECT`` and compares; when nothing
    differs it writes nothing. Otherwise, in one transaction, it updates changed items
    (fields and ``catalogue_item_topics`` rows), inserts new ones with their topic rows and,
    with ``prune``, deletes items whose slug is not among ``entries``. Without ``prune``,
    items missing from ``entries`` are left alone.

    Args:
        url: SQLAlchemy URL; ``None`` for the settings' database.
        entries: The entries to store; ``None`` for :func:`load_catalogue_file` ``()``.
        prune: Also delete stored items that are not in ``entries``.

    Returns:
        The number of catalogue items inserted, updated or (with ``prune``) deleted;
        ``0`` when the database already matched.

    Raises:
        ValueError: If two entries share a slug (or the default file is invalid).

    """
    wanted = list(load_catalogue_file() if entries is None else entries)
    check_unique(wanted)
    engine = get_engine(url)
    try:
        return _seed_once(engine, wanted, prune)
    except IntegrityError:
        # Another process inserted some of the same slugs between our SELECT and INSERT;
        # its rows are committed now, so a second pass only updates what still differs.
        return _seed_once(engine, wanted, prune)
