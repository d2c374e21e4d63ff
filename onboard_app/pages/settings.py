"""``/settings``: edit profile, interests and preferences after onboarding."""

from __future__ import annotations

from collections.abc import Callable

import reflex as rx
from reflex.event import EventSpec

from onboard_app import routes
from onboard_app.components.answer_fields import interest_fields, preference_fields, profile_fields
from onboard_app.components.layout import app_shell
from onboard_app.state.settings import SettingsState


def _section(
    title: str, body: rx.Component, save: Callable[[], EventSpec], key: str
) -> rx.Component:
    return rx.card(
        rx.form(
            rx.vstack(
                rx.heading(title, size="4", as_="h2"),
                body,
                rx.hstack(
                    rx.spacer(),
                    rx.button(
                        rx.cond(SettingsState.saving, rx.spinner(size="2"), rx.fragment()),
                        f"Save {title.lower()}",
                        type="submit",
                        disabled=SettingsState.saving,
                        id=f"save-{key}",
                    ),
                    width="100%",
                ),
                spacing="4",
                width="100%",
            ),
            on_submit=lambda _form: save(),
            width="100%",
        ),
        size="3",
        width="100%",
    )


def settings_page() -> rx.Component:
    """Three independently saved sections, validated as in the wizard."""
    return app_shell(
        rx.vstack(
            rx.hstack(
                rx.heading("Settings", size="7", as_="h1", id="settings-title"),
                rx.spacer(),
                rx.link("Back to explore", href=routes.EXPLORE, size="2"),
                width="100%",
                align="center",
            ),
            rx.cond(
                SettingsState.loaded,
                rx.vstack(
                    _section(
                        "Profile",
                        profile_fields(SettingsState),
                        SettingsState.save_profile,
                        "profile",
                    ),
                    _section(
                        "Interests",
                        interest_fields(SettingsState),
                        SettingsState.save_interests,
                        "interests",
                    ),
                    _section(
                        "Preferences",
                        preference_fields(SettingsState),
                        SettingsState.save_preferences,
                        "preferences",
                    ),
                    spacing="4",
                    width="100%",
                ),
                rx.center(rx.spinner(size="3"), padding="3rem", width="100%"),
            ),
            spacing="5",
            width="100%",
            max_width="720px",
            margin_x="auto",
        )
    )
