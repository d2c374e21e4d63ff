"""``/explore``: the app behind the wizard."""

from __future__ import annotations

import reflex as rx

from onboard_app.components.layout import app_shell
from onboard_app.state.session import SessionState


def explore_page() -> rx.Component:
    """Items personalised by the onboarding answers."""
    return app_shell(
        rx.vstack(
            rx.heading("Explore", size="7", as_="h1", id="explore-title"),
            rx.text("Welcome, ", SessionState.user_name, "!", id="welcome"),
            spacing="3",
        )
    )
