"""``/admin/onboarding``: where people drop off, how long each step takes, who is stuck."""

from __future__ import annotations

import reflex as rx

from onboard_app.components.admin_insights import (
    completions_chart,
    date_filter,
    header_cell,
    labelled,
    method_filter,
    scrolling,
    sortable_header,
    version_filter,
)
from onboard_app.components.layout import app_shell, loading, page_heading
from onboard_app.state.admin import AdminState, FunnelRow, StuckRow


def _section(
    title: str, title_id: str, *children: rx.Component, action: rx.Component | None = None
) -> rx.Component:
    """A region of the page named by its ``h2``, with an optional action beside the title."""
    return rx.el.section(
        rx.card(
            rx.vstack(
                rx.hstack(
                    rx.heading(title, size="4", as_="h2", id=title_id),
                    rx.spacer(),
                    action or rx.fragment(),
                    width="100%",
                    align="center",
                    wrap="wrap",
                    spacing="2",
                ),
                *children,
                spacing="3",
                width="100%",
            ),
            size="2",
            width="100%",
        ),
        aria_labelledby=title_id,
        width="100%",
    )


def _download_button(label: str, on_click: object, button_id: str) -> rx.Component:
    return rx.button(
        rx.icon("download", size=16, aria_hidden="true"),
        label,
        on_click=on_click,
        variant="soft",
        size="2",
        id=button_id,
    )


def _filters() -> rx.Component:
    return rx.card(
        rx.vstack(
            rx.grid(
                date_filter(
                    "Signed up from",
                    "signed-up-from",
                    AdminState.signed_up_from,
                    AdminState.set_signed_up_from,
                ),
                date_filter(
                    "Signed up to",
                    "signed-up-to",
                    AdminState.signed_up_to,
                    AdminState.set_signed_up_to,
                ),
                method_filter(),
                version_filter(),
                columns=rx.breakpoints(initial="1", sm="2", md="4"),
                spacing="3",
                width="100%",
            ),
            rx.hstack(
                rx.cond(
                    AdminState.filter_error,
                    rx.text(
                        AdminState.filter_error,
                        color="var(--red-11)",
                        size="2",
                        id="filter-error",
                        role="alert",
                    ),
                ),
                rx.spacer(),
                rx.cond(AdminState.loading, rx.spinner(size="2")),
                rx.button(
                    "Clear filters",
                    on_click=AdminState.clear_filters,
                    variant="soft",
                    color_scheme="gray",
                    id="clear-filters",
                ),
                width="100%",
                align="center",
            ),
            spacing="3",
            width="100%",
        ),
        size="2",
        width="100%",
        role="search",
        aria_label="Filter the insights",
    )


def _funnel_row(row: FunnelRow) -> rx.Component:
    return rx.table.row(
        rx.table.row_header_cell(row.title, scope="row"),
        rx.table.cell(row.reached, text_align="right"),
        rx.table.cell(row.finished, text_align="right"),
        rx.table.cell(row.drop_off, text_align="right"),
        rx.table.cell(row.median, text_align="right"),
        rx.table.cell(row.p90, text_align="right"),
    )


def _funnel() -> rx.Component:
    return _section(
        "Funnel",
        "funnel-title",
        rx.text(
            "Reached: people with any event at the step. Finished: saved, skipped or "
            "finished it. Times run from opening a step to finishing it.",
            size="2",
            color="var(--gray-11)",
        ),
        scrolling(
            rx.table.root(
                rx.table.header(
                    rx.table.row(
                        header_cell("Step"),
                        header_cell("Reached", align="right"),
                        header_cell("Finished", align="right"),
                        header_cell("Drop-off", align="right"),
                        header_cell("Median time", align="right"),
                        header_cell("90th percentile", align="right"),
                    )
                ),
                rx.table.body(rx.foreach(AdminState.funnel, _funnel_row)),
                variant="surface",
                size="2",
                width="100%",
                aria_labelledby="funnel-title",
                id="funnel-table",
            ),
            "Funnel table",
        ),
        action=_download_button("Download CSV", AdminState.export_funnel, "export-funnel"),
    )


def _stuck_row(row: StuckRow) -> rx.Component:
    return rx.table.row(
        rx.table.row_header_cell(
            rx.vstack(
                rx.text(row.name, size="2", weight="medium"),
                rx.text(row.email, size="1", color="var(--gray-11)"),
                spacing="0",
            ),
            scope="row",
        ),
        rx.table.cell(row.step),
        rx.table.cell(row.days, text_align="right"),
        rx.table.cell(row.signed_up),
        rx.table.cell(row.method),
        rx.table.cell(row.flow_version, text_align="right"),
    )


def _pager() -> rx.Component:
    return rx.hstack(
        rx.button(
            rx.icon("chevron-left", size=16, aria_hidden="true"),
            "Previous",
            on_click=AdminState.previous_page,
            disabled=AdminState.page <= 1,
            variant="soft",
            id="stuck-previous",
        ),
        rx.text(AdminState.range_text, size="2", color="var(--gray-11)", id="stuck-range"),
        rx.button(
            "Next",
            rx.icon("chevron-right", size=16, aria_hidden="true"),
            on_click=AdminState.next_page,
            disabled=AdminState.page >= AdminState.page_count,
            variant="soft",
            id="stuck-next",
        ),
        justify="between",
        align="center",
        width="100%",
    )


def _stuck() -> rx.Component:
    return _section(
        "People stuck at a step",
        "stuck-title",
        rx.box(
            labelled(
                "Stuck for more than (days)",
                rx.input(
                    type="number",
                    min=0,
                    max=365,
                    value=AdminState.stuck_days.to_string(),
                    on_change=AdminState.set_stuck_days,
                    debounce_timeout=400,
                    id="stuck-days",
                    size="2",
                    width="8rem",
                ),
                "stuck-days",
            ),
            width="auto",
        ),
        rx.cond(
            AdminState.stuck_total > 0,
            rx.vstack(
                scrolling(
                    rx.table.root(
                        rx.table.header(
                            rx.table.row(
                                header_cell("Person"),
                                sortable_header("Step", "step"),
                                sortable_header("Days stuck", "days"),
                                sortable_header("Signed up", "signed_up"),
                                sortable_header("Sign-in method", "method"),
                                header_cell("Flow version", align="right"),
                            )
                        ),
                        rx.table.body(rx.foreach(AdminState.stuck, _stuck_row)),
                        variant="surface",
                        size="2",
                        width="100%",
                        aria_labelledby="stuck-title",
                        id="stuck-table",
                    ),
                    "Table of people stuck at a step",
                ),
                _pager(),
                spacing="3",
                width="100%",
            ),
            rx.text(
                "Nobody is stuck for that long.", size="2", color="var(--gray-11)", id="stuck-none"
            ),
        ),
        action=_download_button("Download CSV", AdminState.export_stuck, "export-stuck"),
    )


def admin_onboarding_page() -> rx.Component:
    """The funnel, step times, completions per day and the stuck list, with filters."""
    return app_shell(
        rx.vstack(
            rx.vstack(
                page_heading("Onboarding insights", heading_id="insights-title"),
                rx.text(
                    "Where people drop off, how long each step takes, and who is stuck. "
                    "Sign-up days are in UTC.",
                    size="2",
                    color="var(--gray-11)",
                ),
                spacing="1",
            ),
            _filters(),
            rx.cond(
                AdminState.loaded,
                rx.vstack(
                    _funnel(),
                    _section("Completions per day", "completions-title", completions_chart()),
                    _stuck(),
                    spacing="4",
                    width="100%",
                ),
                loading(),
            ),
            spacing="5",
            width="100%",
        )
    )
