"""The "Where you're signed in" section of ``/settings``: every session, each with a sign-out.

A list named by its heading; each item says the device and browser, the client address,
when it was last active and when it signed in. This browser's session is marked "This
device" (it logs out with "Log out"); every other one has a "Sign out" button whose
accessible name says which ("Sign out Chrome on Linux") and whose description is that
item's details. On a phone the button moves under the details.
"""

from __future__ import annotations

import reflex as rx

from onboard_app.state.devices import DeviceRow, DevicesState

TITLE_ID = "devices-title"
_MUTED = "var(--gray-11)"


def _icon(row: DeviceRow) -> rx.Component:
    return rx.match(
        row.icon,
        ("smartphone", rx.icon("smartphone", size=20, aria_hidden="true")),
        ("tablet", rx.icon("tablet", size=20, aria_hidden="true")),
        rx.icon("laptop", size=20, aria_hidden="true"),
    )


def _device(row: DeviceRow) -> rx.Component:
    details_id = "device-" + row.id + "-details"
    return rx.el.li(
        rx.flex(
            rx.hstack(
                rx.box(_icon(row), color=_MUTED, padding_top="2px"),
                rx.vstack(
                    rx.hstack(
                        rx.text(row.label, size="3", weight="medium"),
                        rx.cond(
                            row.current,
                            rx.badge("This device", color_scheme="green", variant="soft"),
                        ),
                        spacing="2",
                        align="center",
                        wrap="wrap",
                    ),
                    rx.text(
                        row.address,
                        " · ",
                        rx.el.time(row.activity, date_time=row.seen_at),
                        " · ",
                        row.signed_in,
                        size="2",
                        color=_MUTED,
                        id=details_id,
                    ),
                    spacing="1",
                ),
                spacing="3",
                align="start",
            ),
            rx.cond(
                row.current,
                rx.fragment(),
                rx.button(
                    "Sign out",
                    on_click=DevicesState.sign_out_device(row.id),
                    loading=DevicesState.busy == row.id,
                    disabled=DevicesState.busy != "",
                    aria_label=row.sign_out_label,
                    aria_describedby=details_id,
                    variant="outline",
                    color_scheme="gray",
                    size="2",
                    flex_shrink="0",
                ),
            ),
            direction=rx.breakpoints(initial="column", sm="row"),
            justify="between",
            align=rx.breakpoints(initial="start", sm="center"),
            spacing="3",
            width="100%",
        ),
        padding_y="0.75rem",
        border_top="1px solid var(--gray-a5)",
        list_style="none",
    )


def signed_in_devices() -> rx.Component:
    """The "Where you're signed in" section (it loads its list when it appears)."""
    return rx.card(
        rx.vstack(
            rx.vstack(
                rx.heading("Where you're signed in", size="4", as_="h2", id=TITLE_ID),
                rx.text(
                    "Sign out any device you no longer use or do not recognise: "
                    "it has to log in again.",
                    size="2",
                    color=_MUTED,
                ),
                spacing="1",
                width="100%",
            ),
            rx.cond(
                DevicesState.error != "",
                rx.callout(
                    DevicesState.error, icon="triangle-alert", color_scheme="red", role="alert"
                ),
            ),
            rx.cond(
                DevicesState.loaded,
                rx.el.ul(
                    rx.foreach(DevicesState.devices, _device),
                    aria_labelledby=TITLE_ID,
                    id="signed-in-devices",
                    margin="0",
                    padding="0",
                    width="100%",
                ),
                rx.center(
                    rx.spinner(size="3"), padding="1.5rem", width="100%", aria_label="Loading"
                ),
            ),
            rx.cond(
                DevicesState.has_others,
                rx.button(
                    "Sign out everywhere else",
                    on_click=DevicesState.sign_out_everywhere_else,
                    loading=DevicesState.busy == "*",
                    disabled=DevicesState.busy != "",
                    id="sign-out-everywhere-else",
                    variant="soft",
                    color_scheme="red",
                    size="3",
                ),
            ),
            spacing="4",
            width="100%",
            aria_busy=DevicesState.busy != "",
        ),
        on_mount=DevicesState.load,
        id="devices-section",
        size=rx.breakpoints(initial="3", sm="4"),
        width="100%",
    )
