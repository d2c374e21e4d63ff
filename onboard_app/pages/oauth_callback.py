"""``/auth/callback/<provider>``: where the provider sends the browser back."""

from __future__ import annotations

import reflex as rx

from onboard_app.components.layout import brand


def oauth_callback_page() -> rx.Component:
    """Show a spinner while ``OAuthState.complete_login`` (``on_load``) checks the callback."""
    return rx.center(
        rx.vstack(
            brand(),
            rx.hstack(
                rx.spinner(size="3"),
                rx.text("Signing you in…", size="3", id="oauth-signing-in"),
                align="center",
                spacing="3",
            ),
            align="center",
            spacing="5",
        ),
        min_height="100vh",
        padding="1rem",
        background="var(--gray-2)",
    )
