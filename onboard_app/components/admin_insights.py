"""Pieces of the insights page: labelled filters, data tables, the completions chart.

Colours come from the theme's scales (``var(--accent-9)``, ``var(--gray-11)``...), so the
chart and tables follow light and dark mode like every other component.
"""

from __future__ import annotations

import reflex as rx

from onboard_app.state.admin import ALL, METHOD_LABELS, AdminState


def labelled(label: str, control: rx.Component, control_id: str) -> rx.Component:
    """A control with its visible label above it."""
    return rx.vstack(
        rx.el.label(rx.text(label, as_="span", size="2", weight="medium"), html_for=control_id),
        control,
        spacing="1",
        width="100%",
    )


def date_filter(label: str, control_id: str, value: rx.Var, on_change: object) -> rx.Component:
    """A sign-up date bound of the filters."""
    return labelled(
        label,
        rx.input(
            type="date",
            value=value,
            on_change=on_change,
            id=control_id,
            size="2",
            width="100%",
        ),
        control_id,
    )


def method_filter() -> rx.Component:
    """The sign-in method of the filters."""
    return labelled(
        "Sign-in method",
        rx.select.root(
            rx.select.trigger(id="method", width="100%"),
            rx.select.content(
                rx.select.item("Every method", value=ALL),
                *[rx.select.item(label, value=key) for key, label in METHOD_LABELS.items()],
            ),
            value=AdminState.method,
            on_change=AdminState.set_method,
        ),
        "method",
    )


def version_filter() -> rx.Component:
    """The flow version of the filters."""
    return labelled(
        "Flow version",
        rx.select.root(
            rx.select.trigger(id="version", width="100%"),
            rx.select.content(
                rx.select.item("Every version", value=ALL),
                rx.foreach(
                    AdminState.version_options,
                    lambda v: rx.select.item("Version " + v, value=v),
                ),
            ),
            value=AdminState.version,
            on_change=AdminState.set_version,
        ),
        "version",
    )


def header_cell(text: str, *, align: str = "left") -> rx.Component:
    """A column header."""
    return rx.table.column_header_cell(text, scope="col", text_align=align)


def sortable_header(text: str, column: str) -> rx.Component:
    """A column header of the stuck list that sorts by its column (again: reversed)."""
    active = AdminState.sort == column
    return rx.table.column_header_cell(
        rx.button(
            text,
            rx.cond(
                active,
                rx.cond(
                    AdminState.descending,
                    rx.icon("arrow-down", size=14, aria_hidden="true"),
                    rx.icon("arrow-up", size=14, aria_hidden="true"),
                ),
                rx.icon("arrow-up-down", size=14, aria_hidden="true", color="var(--gray-9)"),
            ),
            on_click=AdminState.sort_stuck(column),
            variant="ghost",
            size="2",
            color_scheme="gray",
            high_contrast=True,
            font_weight="bold",
            id=f"sort-{column}",
        ),
        scope="col",
        aria_sort=rx.cond(
            active, rx.cond(AdminState.descending, "descending", "ascending"), "none"
        ),
    )


#: The table's own scroll area is switched off: the box around it scrolls instead, and
#: takes the keyboard focus, so a keyboard can scroll a table wider than a phone.
SCROLL_CSS = """
.insights-scroll .rt-ScrollAreaViewport { overflow: visible !important; }
.insights-scroll:focus-visible {
  outline: 2px solid var(--accent-11); outline-offset: 2px; border-radius: var(--radius-2);
}
"""


def scrolling(table: rx.Component, label: str) -> rx.Component:
    """A table that scrolls sideways on a phone instead of squeezing its columns."""
    return rx.box(
        rx.el.style(SCROLL_CSS),
        table,
        class_name="insights-scroll",
        tab_index=0,
        role="region",
        aria_label=label,
        width="100%",
        overflow_x="auto",
    )


def completions_chart() -> rx.Component:
    """Completions per day as bars; the figure's text says what it shows."""
    return rx.cond(
        AdminState.completions.length() > 0,
        rx.el.figure(
            rx.box(
                rx.recharts.responsive_container(
                    rx.recharts.bar_chart(
                        rx.recharts.cartesian_grid(
                            stroke_dasharray="3 3", stroke="var(--gray-6)", vertical=False
                        ),
                        rx.recharts.x_axis(
                            data_key="day", stroke="var(--gray-11)", tick={"fontSize": 12}
                        ),
                        rx.recharts.y_axis(
                            allow_decimals=False, stroke="var(--gray-11)", tick={"fontSize": 12}
                        ),
                        rx.recharts.graphing_tooltip(
                            cursor={"fill": "var(--gray-a3)"},
                            content_style={
                                "background": "var(--color-panel-solid)",
                                "border": "1px solid var(--gray-6)",
                                "color": "var(--gray-12)",
                            },
                        ),
                        rx.recharts.bar(
                            data_key="completions", name="Completions", fill="var(--accent-9)"
                        ),
                        data=AdminState.completions,
                    ),
                    width="100%",
                    height=260,
                ),
                width="100%",
            ),
            rx.el.figcaption(
                rx.text(AdminState.chart_summary, size="2", color="var(--gray-11)"),
            ),
            id="completions-chart",
            margin="0",
            width="100%",
        ),
        rx.text("Nobody has finished onboarding yet.", size="2", color="var(--gray-11)"),
    )
