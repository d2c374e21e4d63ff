"""Page frames: the centred card of the sign-in pages and the app shell with its navbar."""

from __future__ import annotations

import reflex as rx
from reflex.style import set_color_mode

from onboard_app import routes
from onboard_app.state.session import SessionState


def brand(size: str = "6") -> rx.Component:
    """The Onboard logo and name."""
    return rx.hstack(
        rx.image(src="/logo.svg", width="28px", height="28px", alt=""),
        rx.heading("Onboard", size=size, weight="bold"),
        align="center",
        spacing="2",
    )


def session_watch() -> rx.Component:
    """Sends this tab to the login page when another tab logs out (synced token gone)."""
    return rx.cond(
        SessionState.session_lost,
        rx.box(on_mount=SessionState.guard, display="none"),
    )


def auth_card(*children: rx.Component, title: str, subtitle: str) -> rx.Component:
    """A centred card for login and signup."""
    return rx.center(
        rx.vstack(
            rx.link(brand(), href=routes.HOME, underline="none", color="inherit"),
            rx.card(
                rx.vstack(
                    rx.heading(title, size="6", as_="h1"),
                    rx.text(subtitle, color_scheme="gray", size="2"),
                    *children,
                    spacing="4",
                    width="100%",
                ),
                size="4",
                width="100%",
            ),
            spacing="5",
            align="center",
            width="100%",
            max_width="420px",
        ),
        min_height="100vh",
        padding="1rem",
        background="var(--gray-2)",
    )


def user_menu() -> rx.Component:
    """Avatar with a menu: settings and log out."""
    return rx.menu.root(
        rx.menu.trigger(
            rx.button(
                rx.avatar(
                    src=SessionState.user_avatar,
                    fallback=SessionState.user_initials,
                    size="2",
                    radius="full",
                ),
                rx.text(SessionState.user_name, size="2", display=["none", "inline"]),
                rx.icon("chevron-down", size=14),
                variant="ghost",
                aria_label="Account menu",
                id="user-menu",
            ),
        ),
        rx.menu.content(
            rx.menu.item(
                rx.hstack(rx.icon("settings", size=14), rx.text("Settings")),
                on_select=rx.redirect(routes.SETTINGS),
            ),
            rx.menu.separator(),
            rx.menu.item(
                rx.hstack(rx.icon("log-out", size=14), rx.text("Log out")),
                on_select=SessionState.log_out,
                color="red",
            ),
        ),
    )


def navbar() -> rx.Component:
    """Top bar of the signed-in app."""
    return rx.box(
        rx.hstack(
            rx.link(brand("5"), href=routes.EXPLORE, underline="none", color="inherit"),
            rx.spacer(),
            rx.cond(SessionState.signed_in, user_menu()),
            align="center",
            width="100%",
            max_width="1100px",
            margin_x="auto",
        ),
        padding_x="1rem",
        padding_y="0.75rem",
        border_bottom="1px solid var(--gray-5)",
        background="var(--color-panel-solid)",
        position="sticky",
        top="0",
        z_index="10",
    )


def _apply_color_mode(mode: str) -> rx.Component:
    return rx.box(on_mount=set_color_mode(mode), display="none")  # type: ignore[arg-type]


def themed(*children: rx.Component) -> rx.Component:
    """Children drawn in the signed-in user's theme preference.

    The preference becomes the app's color mode: when it changes, another branch of the
    match mounts and its ``on_mount`` calls the color mode setter in the browser.
    """
    sync = rx.cond(
        SessionState.signed_in,
        rx.match(
            SessionState.theme,
            ("dark", _apply_color_mode("dark")),
            ("light", _apply_color_mode("light")),
            _apply_color_mode("system"),
        ),
    )
    return rx.fragment(sync, *children)


def app_shell(*children: rx.Component) -> rx.Component:
    """The signed-in frame; nothing inside renders until the guard has verified the token."""
    return themed(
        rx.box(
            session_watch(),
            navbar(),
            rx.cond(
                SessionState.signed_in,
                rx.box(*children, max_width="1100px", margin_x="auto", padding="1.5rem 1rem"),
                rx.center(rx.spinner(size="3"), padding="4rem"),
            ),
            min_height="100vh",
            background="var(--gray-2)",
        )
    )
