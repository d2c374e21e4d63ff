"""``/auth/callback/<provider>``: where the provider sends the browser back."""

from __future__ import annotations

import reflex as rx

from onboard_app.components.layout import brand, frame


def oauth_callback_page() -> rx.Component:
    """Show a spinner while ``OAuthState.complete_login`` (``on_load``) checks the callback."""
    return frame(
        rx.el.main(
            rx.vstack(
                brand(),
                rx.hstack(
                    rx.spinner(size="3"),
                    rx.heading("Signing you in…", as_="h1", size="3", id="oauth-signing-in"),
                    align="center",
                    spacing="3",
                    role="status",
                ),
                align="center",
                spacing="5",
            ),
            display="flex",
            justify_content="center",
            align_items="center",
            min_height="100vh",
            padding="1rem",
            background="var(--gray-2)",
        )
    )
