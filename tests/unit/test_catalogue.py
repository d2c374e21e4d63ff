"""The explore catalogue: the shipped JSON file, seeding, ranking, search, filters, paging."""

from __future__ import annotations

import json
import random
from collections import Counter
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import pytest
import sqlalchemy as sa

import onboard_app.models  # noqa: F401  (registers the tables on SQLModel.metadata)
from onboard_app.services.catalogue import MAX_PAGE_SIZE, MAX_QUERY_CHARS, explore, match_reason
from onboard_app.services.catalogue_file import CatalogueEntry, load_catalogue_file
from onboard_app.services.catalogue_seed import seed_catalogue
from onboard_app.services.db import get_engine
from onboard_app.services.topics import TOPICS

# --- helpers -------------------------------------------------------------------------


def entry(slug: str, title: str, topics: Sequence[str], description: str = "") -> CatalogueEntry:
    return CatalogueEntry(
        slug=slug,
        title=title,
        description=description or f"About {title}.",
        url=f"https://example.org/{slug}",
        kind="project",
        topics=tuple(topics),
    )


def table_counts(url: str) -> tuple[int, int]:
    with get_engine(url).connect() as conn:
        items = conn.execute(sa.text("SELECT count(*) FROM catalogue_items")).scalar_one()
        links = conn.execute(sa.text("SELECT count(*) FROM catalogue_item_topics")).scalar_one()
    return items, links


def all_slugs(interests: Sequence[str], url: str, **kwargs: object) -> list[str]:
    """Every slug explore() returns, walking all pages."""
    slugs: list[str] = []
    page = 1
    while True:
        result = explore(interests, url=url, page=page, **kwargs)  # type: ignore[arg-type]
        slugs += [item.slug for item in result.items]
        if not result.has_next:
            return slugs
        page += 1


def reference_ranking(
    entries: Sequence[CatalogueEntry],
    interests: Sequence[str],
    chips: Sequence[str] = (),
    query: str = "",
) -> list[str]:
    """The documented ranking, computed naively in Python (ASCII titles only)."""
    wanted = {t for t in interests if t in TOPICS}
    needed = {t for t in chips if t in TOPICS}
    needle = query.strip()[:MAX_QUERY_CHARS].strip().lower()
    order = {e.slug: i for i, e in enumerate(entries)}  # ids are assigned in this order
    kept = [
        e
        for e in entries
        if needed <= set(e.topics)
        and (not needle or needle in e.title.lower() or needle in e.description.lower())
    ]
    kept.sort(key=lambda e: (-len(wanted & set(e.topics)), e.title.lower(), e.title, order[e.slug]))
    return [e.slug for e in kept]


# --- fixtures ------------------------------------------------------------------------


# `db_url` (tests/conftest.py): a fresh SQLite file brought to the newest migration.


@pytest.fixture(scope="module")
def shipped() -> list[CatalogueEntry]:
    return load_catalogue_file()


@pytest.fixture
def seeded(db_url: str, shipped: list[CatalogueEntry]) -> str:
    assert seed_catalogue(db_url) == len(shipped)
    return db_url


SMALL = [
    entry("py-sec-web", "Gamma", ["python", "security", "web"]),
    entry("py-sec", "alpha", ["python", "security"]),
    entry("py-only", "Beta", ["python"]),
    entry("sec-only", "Delta", ["security", "go"]),
    entry("rust-only", "Epsilon", ["rust"]),
    entry("go-web", "zeta", ["go", "web"]),
    entry("py-rust", "Eta", ["rust", "python"]),
]


@pytest.fixture
def small(db_url: str) -> str:
    seed_catalogue(db_url, SMALL)
    return db_url


# --- the shipped file ----------------------------------------------------------------


def test_shipped_catalogue_is_valid_and_covers_every_topic(shipped: list[CatalogueEntry]) -> None:
    assert len(shipped) >= 150
    assert len({e.slug for e in shipped}) == len(shipped)
    per_topic = Counter(t for e in shipped for t in e.topics)
    thin = {t: per_topic[t] for t in TOPICS if per_topic[t] < 12}
    assert not thin, f"topics with fewer than 12 items: {thin}"
    for e in shipped:
        assert e.url.startswith("https://")
        assert len(e.description) <= 200
        assert 1 <= len(e.topics) <= 4
        assert e.kind in {"project", "resource", "community"}


def _write(tmp_path: Path, data: object) -> Path:
    path = tmp_path / "catalogue.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


GOOD = {
    "slug": "thing",
    "title": "Thing",
    "description": "A thing.",
    "url": "https://example.org/",
    "kind": "project",
    "topics": ["python"],
}


def test_load_accepts_a_valid_file(tmp_path: Path) -> None:
    (loaded,) = load_catalogue_file(_write(tmp_path, [GOOD]))
    assert loaded == CatalogueEntry(
        "thing", "Thing", "A thing.", "https://example.org/", "project", ("python",)
    )


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"topics": ["python", "cobol"]}, "unknown topic(s) 'cobol'"),
        ({"topics": []}, "topics: tuple should have at least 1 item"),
        (
            {"topics": ["python", "go", "rust", "web", "cloud"]},
            "topics: tuple should have at most 4",
        ),
        ({"topics": ["python", "python"]}, "topics: lists a topic more than once"),
        ({"topics": "python"}, "topics: input should be a valid tuple"),
        ({"topics": ["python", 3]}, "topics.1: input should be a valid string"),
        ({"url": "http://example.org/"}, "url: is not an absolute https:// URL"),
        ({"url": "https://"}, "url: is not an absolute https:// URL"),
        ({"url": "https://example.org/" + "x" * 500}, "url: string should have at most 500"),
        ({"description": "x" * 201}, "description: string should have at most 200 characters"),
        ({"description": "  "}, "description: must not be blank"),
        ({"description": ""}, "description: string should have at least 1 character"),
        ({"title": " Thing"}, "title: has leading or trailing whitespace"),
        ({"title": "t" * 121}, "title: string should have at most 120 characters"),
        ({"title": 7}, "title: input should be a valid string"),
        ({"slug": "Not Kebab"}, "slug: string should match pattern"),
        ({"slug": "trailing-"}, "slug: string should match pattern"),
        ({"slug": "a" * 121}, "slug: string should have at most 120 characters"),
        ({"kind": "tool"}, "kind: input should be 'project', 'resource' or 'community'"),
        ({"extra": 1}, "extra: unexpected keyword argument"),
    ],
)
def test_load_rejects_invalid_entries(
    tmp_path: Path, change: dict[str, object], message: str
) -> None:
    bad = {**GOOD, "slug": "bad-one", **change}
    with pytest.raises(ValueError, match=r"catalogue entry #1") as raised:
        load_catalogue_file(_write(tmp_path, [GOOD, bad]))
    assert message in str(raised.value)


def test_load_rejects_missing_fields_duplicates_and_non_arrays(tmp_path: Path) -> None:
    missing = {k: v for k, v in GOOD.items() if k != "url"}
    with pytest.raises(ValueError, match=r"#0 \('thing'\): url: field required"):
        load_catalogue_file(_write(tmp_path, [missing]))
    with pytest.raises(ValueError, match="'thing' appears more than once"):
        load_catalogue_file(_write(tmp_path, [GOOD, GOOD]))
    with pytest.raises(ValueError, match="expected a JSON array"):
        load_catalogue_file(_write(tmp_path, {"items": [GOOD]}))
    path = tmp_path / "broken.json"
    path.write_text("[{", encoding="utf-8")
    with pytest.raises(ValueError, match="not valid JSON"):
        load_catalogue_file(path)


# --- seeding -------------------------------------------------------------------------


def test_seed_is_idempotent_and_second_run_only_reads(
    seeded: str, shipped: list[CatalogueEntry]
) -> None:
    expected = (len(shipped), sum(len(e.topics) for e in shipped))
    assert table_counts(seeded) == expected

    statements: list[str] = []

    def record(_conn, _cursor, statement, *_args) -> None:  # type: ignore[no-untyped-def]
        statements.append(statement)

    engine = get_engine(seeded)
    sa.event.listen(engine, "before_cursor_execute", record)
    try:
        assert seed_catalogue(seeded) == 0
    finally:
        sa.event.remove(engine, "before_cursor_execute", record)
    assert len(statements) == 1
    assert statements[0].lstrip().upper().startswith("SELECT")
    assert table_counts(seeded) == expected


def test_seed_updates_changed_items_in_place(small: str) -> None:
    before = {i.slug: i.id for i in explore([], url=small, page_size=MAX_PAGE_SIZE).items}
    changed = [
        replace(e, title="Beta Prime", topics=("rust", "go")) if e.slug == "py-only" else e
        for e in SMALL
    ]
    changed.append(entry("brand-new", "New", ["design"]))
    assert seed_catalogue(small, changed) == 2  # one updated, one inserted
    assert seed_catalogue(small, changed) == 0
    assert table_counts(small) == (len(changed), sum(len(e.topics) for e in changed))

    page = explore([], url=small, page_size=MAX_PAGE_SIZE)
    by_slug = {i.slug: i for i in page.items}
    assert by_slug["py-only"].id == before["py-only"]  # updated, not re-inserted
    assert by_slug["py-only"].title == "Beta Prime"
    assert by_slug["py-only"].topics == ("rust", "go")
    # The topic rows moved too: a python chip no longer finds it, a go+rust chip does.
    assert "py-only" not in all_slugs([], small, topics=["python"])
    assert all_slugs([], small, topics=["go", "rust"]) == ["py-only"]


def test_seed_without_prune_keeps_and_with_prune_deletes_missing_items(small: str) -> None:
    assert seed_catalogue(small, SMALL[:3]) == 0
    assert table_counts(small)[0] == len(SMALL)
    assert seed_catalogue(small, SMALL[:3], prune=True) == len(SMALL) - 3
    assert table_counts(small) == (3, sum(len(e.topics) for e in SMALL[:3]))
    assert sorted(all_slugs([], small)) == sorted(e.slug for e in SMALL[:3])


def test_seed_rejects_duplicate_slugs(db_url: str) -> None:
    with pytest.raises(ValueError, match="more than once"):
        seed_catalogue(db_url, [SMALL[0], SMALL[0]])
    assert table_counts(db_url) == (0, 0)


# --- ranking and reasons -------------------------------------------------------------


def test_items_with_more_matching_interests_come_first(small: str) -> None:
    page = explore(["python", "security", "web"], url=small)
    scores = [len(i.matched_topics) for i in page.items]
    assert scores == sorted(scores, reverse=True)
    assert [i.slug for i in page.items] == [
        "py-sec-web",  # Gamma: python, security, web
        "py-sec",  # alpha: python, security
        "py-only",  # Beta: python
        "sec-only",  # Delta: security
        "py-rust",  # Eta: python
        "go-web",  # zeta: web
        "rust-only",  # Epsilon: none
    ]
    assert page.total == len(SMALL)


def test_ties_are_ordered_by_title_ignoring_case(small: str) -> None:
    page = explore([], url=small)
    assert [i.title for i in page.items] == [
        "alpha",
        "Beta",
        "Delta",
        "Epsilon",
        "Eta",
        "Gamma",
        "zeta",
    ]
    assert all(i.reason == "" and i.matched_topics == () for i in page.items)


def test_reason_names_the_followed_topics(small: str) -> None:
    by_slug = {i.slug: i for i in explore(["web", "security", "python"], url=small).items}
    assert by_slug["py-sec-web"].matched_topics == ("python", "security", "web")
    assert by_slug["py-sec-web"].reason == (
        "Because you follow Python, Security and Web development"
    )
    assert by_slug["py-sec"].reason == "Because you follow Python and Security"
    assert by_slug["py-only"].reason == "Because you follow Python"
    assert by_slug["rust-only"].reason == ""
    assert match_reason(["machine-learning"]) == "Because you follow Machine learning & AI"
    assert match_reason([]) == ""


def test_unknown_interests_and_topics_are_ignored(small: str) -> None:
    assert explore(["python", "cobol", "PYTHON ", ""], url=small) == explore(["python"], url=small)
    assert explore(["cobol"], url=small) == explore([], url=small)
    assert explore([], topics=["cobol"], url=small) == explore([], url=small)
    assert all_slugs([], small, topics=["rust", "cobol"]) == all_slugs([], small, topics=["rust"])


# --- filters -------------------------------------------------------------------------


def test_topic_chips_require_all_selected_topics(small: str) -> None:
    assert all_slugs([], small, topics=["python"]) == ["py-sec", "py-only", "py-rust", "py-sec-web"]
    assert all_slugs([], small, topics=["python", "security"]) == ["py-sec", "py-sec-web"]
    assert all_slugs([], small, topics=["python", "security", "web"]) == ["py-sec-web"]
    page = explore(["web"], topics=["python", "security"], url=small)
    assert [i.slug for i in page.items] == ["py-sec-web", "py-sec"]  # still ranked
    assert page.total == 2


SEARCHABLE = [
    entry("percent", "100% Pure", ["python"], "Fully organic."),
    entry("underscore", "snake_case tools", ["python"], "Renames things."),
    entry("backslash", "Path tools", ["python"], r"Handles C:\temp paths."),
    entry("quote", "It's quoted", ["python"], "Has a quote."),
    entry("plain", "Plain title", ["rust"], "Mentions PostgreSQL in the description."),
    entry("long", "Long one", ["go"], "Token " + "a" * MAX_QUERY_CHARS + " here."),
]


@pytest.fixture
def searchable(db_url: str) -> str:
    seed_catalogue(db_url, SEARCHABLE)
    return db_url


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("pure", ["percent"]),
        ("  PURE  ", ["percent"]),
        ("postgresql", ["plain"]),  # description match, case-insensitive
        ("%", ["percent"]),  # literal, not "anything"
        ("100%", ["percent"]),
        ("_", ["underscore"]),  # literal, not "any one character"
        ("e_c", ["underscore"]),
        ("\\", ["backslash"]),
        ("c:\\temp", ["backslash"]),
        ("'", ["quote"]),
        ("'; DROP TABLE catalogue_items; --", []),
        ('" OR 1=1 --', []),
        ("a" * MAX_QUERY_CHARS + "zzz", ["long"]),  # cut to 100 characters
        ("no such words", []),
    ],
)
def test_search_matches_literally_and_ignores_case(
    searchable: str, query: str, expected: list[str]
) -> None:
    page = explore([], query=query, url=searchable)
    assert [i.slug for i in page.items] == expected
    assert page.total == len(expected)
    assert table_counts(searchable) == (len(SEARCHABLE), len(SEARCHABLE))  # nothing dropped


def test_blank_query_does_not_filter(searchable: str) -> None:
    assert explore([], query="   ", url=searchable).total == len(SEARCHABLE)


def test_search_combines_with_chips_and_ranking(searchable: str) -> None:
    page = explore(["rust"], query="t", topics=["python"], url=searchable)
    assert [i.slug for i in page.items] == ["quote", "backslash", "underscore"]
    assert page.total == 3
    page = explore(["rust"], query="title", url=searchable)
    assert [i.slug for i in page.items] == ["plain"]
    assert page.items[0].reason == "Because you follow Rust"


def test_empty_results(seeded: str) -> None:
    page = explore(["python"], query="zz-no-such-thing-zz", url=seeded)
    assert page.items == ()
    assert page.total == 0
    assert page.has_next is False
    assert page.page == 1


def test_explore_on_an_empty_catalogue(db_url: str) -> None:
    page = explore(["python", "rust"], url=db_url)
    assert (page.items, page.total, page.has_next) == ((), 0, False)


# --- paging --------------------------------------------------------------------------


def test_pages_cover_every_item_exactly_once(seeded: str, shipped: list[CatalogueEntry]) -> None:
    interests = ["python", "security", "rust"]
    seen: list[str] = []
    page_number = 1
    while True:
        page = explore(interests, page=page_number, page_size=7, url=seeded)
        assert page.total == len(shipped)
        assert page.page == page_number and page.page_size == 7
        assert len(page.items) == (7 if page.has_next else len(shipped) - len(seen))
        seen += [i.slug for i in page.items]
        if not page.has_next:
            break
        page_number += 1
    assert len(seen) == len(set(seen)) == len(shipped)
    assert page_number == -(-len(shipped) // 7)
    assert seen == reference_ranking(shipped, interests)


def test_page_and_page_size_are_clamped(seeded: str, shipped: list[CatalogueEntry]) -> None:
    first = explore(["go"], url=seeded)
    assert explore(["go"], page=0, url=seeded) == first
    assert explore(["go"], page=-5, url=seeded) == first
    assert first.page == 1 and len(first.items) == 24 and first.has_next
    assert len(explore([], page_size=0, url=seeded).items) == 1
    assert len(explore([], page_size=10_000, url=seeded).items) == MAX_PAGE_SIZE
    past = explore(["go"], page=1000, url=seeded)
    assert (past.items, past.total, past.has_next, past.page) == ((), len(shipped), False, 1000)


def test_matches_a_naive_reference_on_random_catalogues(db_url: str) -> None:
    """The cutoff-based SQL ranks exactly like sorting everything in Python."""
    rng = random.Random(20240601)
    slugs = list(TOPICS)
    words = ["Alpha", "beta", "Gamma", "delta", "Kit", "kit", "Lab", "hub", "Zed"]
    entries = [
        entry(
            f"item-{n}",
            f"{rng.choice(words)} {rng.choice(words)}",
            rng.sample(slugs, rng.randint(1, 4)),
            description=f"Item {n} {rng.choice(words)}",
        )
        for n in range(300)
    ]
    seed_catalogue(db_url, entries)
    for _ in range(40):
        interests = rng.sample(slugs, rng.randint(0, 10))
        chips = rng.sample(slugs, rng.choice([0, 0, 1, 2]))
        query = rng.choice(["", "", "kit", "ALPHA", "item 1"])
        page_size = rng.choice([5, 24, 50])
        expected = reference_ranking(entries, interests, chips, query)
        got = all_slugs(interests, db_url, topics=chips, query=query, page_size=page_size)
        assert got == expected, (interests, chips, query, page_size)
        # a single deep page agrees too (the cutoff is computed per page)
        pages = max(1, -(-len(expected) // page_size))
        number = rng.randint(1, pages)
        page = explore(
            interests, topics=chips, query=query, page=number, page_size=page_size, url=db_url
        )
        start = (number - 1) * page_size
        assert [i.slug for i in page.items] == expected[start : start + page_size]
        assert page.total == len(expected)
        assert page.has_next == (start + page_size < len(expected))
