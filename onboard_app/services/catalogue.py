"""The explore query: one page of catalogue items ranked by a user's interests.

:func:`explore` returns the items ranked by how many of the user's interests they carry,
with literal search and topic chips. SQLAlchemy Core, so it runs the same on SQLite and
PostgreSQL; nothing here imports Reflex. The catalogue's content comes from
:mod:`~onboard_app.services.catalogue_file` and is stored by
:mod:`~onboard_app.services.catalogue_seed`.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Final, cast

import sqlalchemy as sa

from onboard_app.models import CatalogueItem, CatalogueItemTopic
from onboard_app.services.db import get_engine
from onboard_app.services.topics import TOPICS, topic_label

#: Search text longer than this is cut (after stripping whitespace).
MAX_QUERY_CHARS: Final = 100
DEFAULT_PAGE_SIZE: Final = 24
MAX_PAGE_SIZE: Final = 100


_LIKE_ESCAPE: Final = "\\"

_items = cast(sa.Table, CatalogueItem.__table__)  # type: ignore[attr-defined]
_item_topics = cast(sa.Table, CatalogueItemTopic.__table__)  # type: ignore[attr-defined]
#: An item's own columns, as every query of the catalogue reads them.
ITEM_COLUMNS: tuple[sa.Column[Any], ...] = (
    _items.c.id,
    _items.c.slug,
    _items.c.title,
    _items.c.description,
    _items.c.url,
    _items.c.kind,
    _items.c.topics,
)


def item_tables() -> tuple[sa.Table, sa.Table]:
    """The items table and the item-topic pairs table."""
    return _items, _item_topics


@dataclass(frozen=True)
class ExploreItem:
    """One catalogue item as shown on the explore page.

    Attributes:
        id: Database id.
        slug: Unique slug.
        title: Display name.
        description: One-sentence description.
        url: Canonical https URL.
        kind: ``project``, ``resource`` or ``community``.
        topics: The item's topic slugs, most relevant first.
        matched_topics: The item's topics that are among the user's interests (item order).
        reason: One line explaining the match, e.g. ``"Because you follow Python and
            Security"``; empty when the item carries none of the user's interests.

    """

    id: int
    slug: str
    title: str
    description: str
    url: str
    kind: str
    topics: tuple[str, ...]
    matched_topics: tuple[str, ...]
    reason: str


@dataclass(frozen=True)
class ExplorePage:
    """One page of explore results.

    Attributes:
        items: The items on this page, best match first.
        total: How many items match the query and topic filters, over all pages.
        page: The 1-based page number actually used (after clamping).
        page_size: The page size actually used (after clamping).
        has_next: Whether a later page holds more items.

    """

    items: tuple[ExploreItem, ...]
    total: int
    page: int
    page_size: int
    has_next: bool


def _known_topics(values: Iterable[str]) -> list[str]:
    """Known topic slugs among ``values``, normalised, deduplicated, in order."""
    known: list[str] = []
    for value in values:
        slug = value.strip().lower() if isinstance(value, str) else ""
        if slug in TOPICS and slug not in known:
            known.append(slug)
    return known


def clean_query(query: str) -> str:
    """Normalise search text: strip whitespace and cut to :data:`MAX_QUERY_CHARS`.

    Args:
        query: What the user typed.

    Returns:
        The text actually searched for (empty means no text filter).

    """
    return (query or "").strip()[:MAX_QUERY_CHARS].strip()


def _like_contains(text: str) -> str:
    r"""Build a LIKE pattern that matches ``text`` literally anywhere (``\`` escapes)."""
    escaped = (
        text.replace(_LIKE_ESCAPE, _LIKE_ESCAPE * 2)
        .replace("%", _LIKE_ESCAPE + "%")
        .replace("_", _LIKE_ESCAPE + "_")
    )
    return f"%{escaped}%"


def _join_words(words: Sequence[str]) -> str:
    if len(words) <= 1:
        return "".join(words)
    return f"{', '.join(words[:-1])} and {words[-1]}"


def match_reason(matched_topics: Sequence[str]) -> str:
    """Explain in one line why an explore item is suggested.

    Args:
        matched_topics: The item's topics that the user follows.

    Returns:
        ``"Because you follow Python"``, ``"Because you follow Python and Security"``,
        ``"Because you follow Go, Rust and Security"``; ``""`` when nothing matched.

    """
    if not matched_topics:
        return ""
    return f"Because you follow {_join_words([topic_label(t) for t in matched_topics])}"


@functools.cache
def _explore_statements(
    by_interest: bool, by_chips: bool, by_text: bool, on_sqlite: bool
) -> tuple[sa.Select[Any], sa.Select[Any]]:
    """Build the page and count statements for one shape of request (once per process).

    Every value is a bound parameter (``wanted`` and ``chips`` are expanding lists;
    ``n_chips``, ``pattern``, ``last_needed``, ``limit``, ``offset`` are scalars), so a
    call only binds values: building and cache-keying a statement this size costs about
    as much as running it on a small catalogue.

    The page statement also returns the total as a ``total`` column; the count statement
    is only needed when the page comes back empty.
    """
    items, links = _items, _item_topics
    limit = sa.bindparam("limit", type_=sa.Integer)
    offset = sa.bindparam("offset", type_=sa.Integer)

    def title_key(title: sa.ColumnElement[str]) -> sa.ColumnElement[Any]:
        return title.collate("NOCASE") if on_sqlite else sa.func.lower(title)

    conditions: list[sa.ColumnElement[bool]] = []
    if by_chips:
        carrying_all = (
            sa.select(links.c.item_id)
            .where(links.c.topic.in_(sa.bindparam("chips", expanding=True)))
            .group_by(links.c.item_id)
            .having(sa.func.count() == sa.bindparam("n_chips", type_=sa.Integer))
        )
        conditions.append(items.c.id.in_(carrying_all))
    if by_text:
        pattern = sa.bindparam("pattern", type_=sa.String)
        # SQLite's LIKE already ignores ASCII case and is about 3x cheaper than the
        # lower(x) LIKE lower(y) that ilike() renders there; PostgreSQL gets ILIKE.
        conditions.append(
            sa.or_(
                *(
                    column.like(pattern, escape=_LIKE_ESCAPE)
                    if on_sqlite
                    else column.ilike(pattern, escape=_LIKE_ESCAPE)
                    for column in (items.c.title, items.c.description)
                )
            )
        )
    count_query = sa.select(sa.func.count()).select_from(items).where(*conditions)

    # The filters run once per statement: "matching" is referenced several times, so
    # SQLite and PostgreSQL both materialise it.
    matching = sa.select(items.c.id).where(*conditions).cte("matching") if conditions else None
    if matching is not None:
        total = sa.select(sa.func.count()).select_from(matching).scalar_subquery()
        in_matching: list[sa.ColumnElement[bool]] = [items.c.id.in_(sa.select(matching.c.id))]
    else:
        total = sa.select(sa.func.count()).select_from(items).scalar_subquery()
        in_matching = []

    if not by_interest:
        page_query = (
            sa.select(*ITEM_COLUMNS, total.label("total"))
            .where(*in_matching)
            .order_by(title_key(items.c.title), items.c.title, items.c.id)
            .limit(limit)
            .offset(offset)
        )
        return page_query, count_query

    # scores: items that pass the filters and carry >= 1 interest, with how many they
    # carry, read from the (topic, item_id) index.
    scored = sa.select(links.c.item_id, sa.func.count().label("score")).where(
        links.c.topic.in_(sa.bindparam("wanted", expanding=True))
    )
    if matching is not None:
        # Count only items that pass the filters (a join, cheaper than IN on SQLite).
        scored = scored.select_from(matching.join(links, links.c.item_id == matching.c.id))
    scores = scored.group_by(links.c.item_id).cte("scores")
    # cutoff: the score of the last row this page needs (row number offset + limit), or 0
    # when the page reaches past the scored items. Every row of the page scores >= cutoff.
    last_needed = (
        sa.select(scores.c.score)
        .order_by(scores.c.score.desc())
        .limit(1)
        .offset(sa.bindparam("last_needed", type_=sa.Integer))
        .scalar_subquery()
    )
    cutoff_cte = sa.select(sa.func.coalesce(last_needed, 0).label("value")).cte("cutoff")
    cutoff = sa.select(cutoff_cte.c.value).scalar_subquery()
    # Usually cutoff >= 1: join only the scored items at or above it (a few hundred rows,
    # not the whole catalogue). Otherwise rank every filtered item, unscored ones as 0;
    # the constant "cutoff = 0" test comes first, so that branch costs nothing otherwise.
    above_cutoff = (
        sa.select(items.c.id, items.c.title, scores.c.score.label("score"))
        .select_from(scores.join(items, items.c.id == scores.c.item_id))
        .where(scores.c.score >= cutoff, cutoff > 0)
    )
    everything = (
        sa.select(items.c.id, items.c.title, sa.func.coalesce(scores.c.score, 0).label("score"))
        .select_from(items.outerjoin(scores, scores.c.item_id == items.c.id))
        .where(cutoff == 0, *in_matching)
    )
    ranked = sa.union_all(above_cutoff, everything).subquery("ranked")

    # Rank narrow (id, title, score) rows, then fetch the full rows of this page only.
    def order(rows: sa.Subquery) -> list[sa.ColumnElement[Any]]:
        return [rows.c.score.desc(), title_key(rows.c.title), rows.c.title, rows.c.id]

    on_page = (
        sa.select(ranked.c.id, ranked.c.title, ranked.c.score)
        .order_by(*order(ranked))
        .limit(limit)
        .offset(offset)
        .subquery("on_page")
    )
    page_query = (
        sa.select(*ITEM_COLUMNS, total.label("total"))
        .select_from(on_page.join(items, items.c.id == on_page.c.id))
        .order_by(*order(on_page))
    )
    return page_query, count_query


def explore(
    interests: Sequence[str],
    *,
    query: str = "",
    topics: Sequence[str] = (),
    page: int = 1,
    page_size: int = DEFAULT_PAGE_SIZE,
    url: str | None = None,
) -> ExplorePage:
    r"""Return one page of catalogue items, ranked for a user's interests.

    Items are ordered by how many of ``interests`` they carry (most first), then by title
    (case-insensitive), then id, so pages are stable. Filters narrow the set first:

    * ``topics`` (the topic chips): an item must carry **all** selected topics.
    * ``query``: case-insensitive substring of the title or the description, matched
      literally (``%``, ``_`` and ``\`` are not wildcards); stripped and cut to
      :data:`MAX_QUERY_CHARS`. On SQLite, case folding covers ASCII letters only.

    Slugs in ``interests`` and ``topics`` are stripped and lower-cased; unknown ones are
    ignored.

    One SQL statement returns the page and the number of matching items (a separate
    ``COUNT`` runs only for a page past the end). The filters are evaluated once, in a
    ``matching`` CTE. Matching topics per item are counted from ``catalogue_item_topics``
    (its ``(topic, item_id)`` index); the statement finds the score of the last row the
    page needs and joins only items scoring at least that. Only when the page reaches
    items with no matching interest does it rank every filtered item (a LEFT JOIN on the
    counts). Page 1 therefore touches hundreds of rows, not the whole catalogue. Ranking
    sorts narrow ``(id, title, score)`` rows; full rows are read for the page only.

    Args:
        interests: The user's interest topic slugs.
        query: Free-text search.
        topics: Topic chips selected as filters.
        page: 1-based page number; values below 1 become 1.
        page_size: Items per page, clamped to 1..:data:`MAX_PAGE_SIZE`.
        url: SQLAlchemy URL; ``None`` for the settings' database.

    Returns:
        The requested page (empty ``items`` past the last page).

    """
    wanted = _known_topics(interests)
    chips = _known_topics(topics)
    needle = clean_query(query)
    page = max(1, int(page))
    page_size = min(max(1, int(page_size)), MAX_PAGE_SIZE)
    offset = (page - 1) * page_size
    engine = get_engine(url)
    page_query, count_query = _explore_statements(
        bool(wanted), bool(chips), bool(needle), engine.dialect.name == "sqlite"
    )
    params: dict[str, Any] = {
        "wanted": wanted,
        "chips": chips,
        "n_chips": len(chips),
        "pattern": _like_contains(needle),
        "last_needed": offset + page_size - 1,
        "limit": page_size,
        "offset": offset,
    }
    with engine.connect() as conn:
        rows = conn.execute(page_query, params).all()
        if rows:
            total = int(rows[0].total)
        elif offset:  # past the last page: count separately
            total = int(conn.execute(count_query, params).scalar_one())
        else:
            total = 0

    followed = set(wanted)
    result: list[ExploreItem] = []
    for row in rows:
        own: tuple[str, ...] = tuple(row.topics)
        matched = tuple(t for t in own if t in followed)
        result.append(
            ExploreItem(
                id=row.id,
                slug=row.slug,
                title=row.title,
                description=row.description,
                url=row.url,
                kind=row.kind,
                topics=own,
                matched_topics=matched,
                reason=match_reason(matched),
            )
        )
    return ExplorePage(
        items=tuple(result),
        total=total,
        page=page,
        page_size=page_size,
        has_next=offset + len(result) < total,
    )
