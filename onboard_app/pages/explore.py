"""``/explore``: the app behind the wizard, personalised by the onboarding answers."""

from __future__ import annotations

import reflex as rx

from onboard_app import routes
from onboard_app.components.deferred import after_first_paint
from onboard_app.components.layout import app_shell, dismiss_toasts, loading, page_heading
from onboard_app.components.prefetch import prefetch_page
from onboard_app.services.topics import TOPICS
from onboard_app.state.explore import Card, ExploreState
from onboard_app.state.session import SessionState


def _card(card: Card) -> rx.Component:
    return rx.card(
        rx.vstack(
            rx.hstack(
                rx.link(
                    rx.heading(card.title, size="4", as_="h2"),
                    href=card.url,
                    is_external=True,
                    rel="noopener noreferrer",
                    color="inherit",
                ),
                rx.spacer(),
                rx.badge(card.kind, variant="surface", color_scheme="gray"),
                width="100%",
                align="center",
            ),
            rx.text(card.description, size="2", color_scheme="gray"),
            rx.flex(
                rx.foreach(card.topics, lambda t: rx.badge(t, radius="full", variant="soft")),
                wrap="wrap",
                spacing="1",
            ),
            rx.cond(
                card.reason,
                rx.hstack(
                    rx.icon("sparkles", size=14, color="var(--accent-11)"),
                    rx.text(card.reason, size="1", color="var(--accent-11)", class_name="reason"),
                    align="center",
                    spacing="1",
                ),
            ),
            spacing="2",
            height="100%",
        ),
        class_name="explore-card",
        height="100%",
    )


def _chip(slug: str, label: str) -> rx.Component:
    on = ExploreState.chips.contains(slug)
    return rx.button(
        label,
        on_click=ExploreState.toggle_chip(slug),
        size="1",
        radius="full",
        variant=rx.cond(on, "solid", "soft"),
        color_scheme=rx.cond(on, "indigo", "gray"),
        aria_pressed=rx.cond(on, "true", "false"),
        id=f"chip-{slug}",
    )


def _filters() -> rx.Component:
    """Topic chips: behind one "Filters" control on a phone (see assets/onboard.css), open above."""
    return rx.el.details(
        rx.el.summary(
            rx.icon("sliders-horizontal", size=16, aria_hidden="true"),
            "Filters",
            rx.cond(
                ExploreState.chips.length() > 0,
                rx.badge(ExploreState.chips.length(), radius="full", variant="solid"),
            ),
            id="filters-toggle",
            class_name="tap",
            display="inline-flex",
            align_items="center",
            gap="var(--space-2)",
            height="32px",
            padding_x="var(--space-3)",
            border_radius="var(--radius-3)",
            background="var(--gray-a3)",
            color="var(--gray-12)",
            font_size="var(--font-size-2)",
            font_weight="500",
            cursor="pointer",
            width="fit-content",
        ),
        rx.flex(
            *[_chip(slug, label) for slug, label in TOPICS.items()],
            wrap="wrap",
            spacing="2",
            role="group",
            aria_label="Filter by topic",
            padding_top=rx.breakpoints(initial="var(--space-3)", sm="0"),
        ),
        class_name="filters",
        width="100%",
    )


def _toolbar() -> rx.Component:
    return rx.vstack(
        rx.input(
            rx.input.slot(rx.icon("search", size=16, aria_hidden="true")),
            value=ExploreState.query,
            on_change=ExploreState.search,
            debounce_timeout=250,
            placeholder="Search projects and resources",
            size="3",
            width="100%",
            max_length=100,
            id="search",
            type="search",
            aria_label="Search the catalogue",
        ),
        _filters(),
        spacing="3",
        width="100%",
        role="search",
    )


def _empty() -> rx.Component:
    return rx.center(
        rx.vstack(
            rx.icon("search-x", size=32, color="var(--gray-9)"),
            rx.heading("Nothing matches", as_="h2", size="4"),
            rx.text("Try other words, or fewer topic filters.", color_scheme="gray", size="2"),
            rx.button(
                "Clear filters",
                on_click=ExploreState.clear_filters,
                variant="soft",
                id="clear-filters",
            ),
            align="center",
            spacing="2",
        ),
        padding="3rem",
        width="100%",
        id="empty-state",
    )


def _pager() -> rx.Component:
    return rx.hstack(
        rx.button(
            rx.icon("chevron-left", size=16),
            "Previous",
            on_click=ExploreState.previous_page,
            disabled=ExploreState.page <= 1,
            variant="soft",
            id="previous-page",
        ),
        rx.text(
            ExploreState.range_text, size="2", color_scheme="gray", id="range", aria_live="polite"
        ),
        rx.button(
            "Next",
            rx.icon("chevron-right", size=16),
            on_click=ExploreState.next_page,
            disabled=~ExploreState.has_next,
            variant="soft",
            id="next-page",
        ),
        justify="between",
        align="center",
        width="100%",
    )


def _results() -> rx.Component:
    """The page of cards and the pager, a spinner until they are loaded."""
    return rx.cond(
        ExploreState.loaded,
        rx.cond(
            ExploreState.total > 0,
            rx.vstack(
                rx.grid(
                    rx.foreach(ExploreState.cards, _card),
                    columns=rx.breakpoints(initial="1", sm="2", lg="3"),
                    spacing="4",
                    width="100%",
                    id="results",
                ),
                _pager(),
                spacing="4",
                width="100%",
            ),
            _empty(),
        ),
        loading(),
    )


def _all_set() -> rx.Component:
    """Right after Finish: onboarding is done (once; the next visit does not say it)."""
    return rx.cond(
        ExploreState.welcome,
        rx.callout(
            "You're all set. Welcome to Onboard!",
            icon="circle-check",
            color_scheme="green",
            # The page's gray background under the callout's tint: its text needs the
            # darker shade to keep 4.5:1.
            high_contrast=True,
            role="status",
            size="1",
            id="all-set",
            width="100%",
        ),
    )


def explore_page() -> rx.Component:
    """Items ranked by the user's interests, with search, topic chips and pages."""
    return app_shell(
        rx.vstack(
            # Settings' code is fetched while this page is read ("Change them", the menu).
            prefetch_page(routes.SETTINGS),
            rx.vstack(
                page_heading("Explore", heading_id="explore-title"),
                rx.text(
                    "Hi ",
                    SessionState.user_name,
                    ", here is what fits your interests: ",
                    rx.text.strong(ExploreState.interest_labels.join(", ")),
                    ". ",
                    rx.link(
                        "Change them",
                        href=routes.SETTINGS,
                        on_click=dismiss_toasts(),
                        id="edit-interests",
                    ),
                    size="2",
                    color="var(--gray-11)",
                    id="welcome",
                ),
                spacing="1",
            ),
            # The heading and the greeting are drawn first; the search, the filters and
            # the results (already here when Finish sent them) right after that frame.
            after_first_paint(
                rx.fragment(_all_set(), _toolbar(), _results()),
                placeholder=rx.fragment(rx.box(height="40px", width="100%"), loading()),
            ),
            spacing="5",
            width="100%",
        )
    )
