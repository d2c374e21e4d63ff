"""``/settings``: edit profile, interests and preferences after onboarding."""

from __future__ import annotations

import reflex as rx

from onboard_app import routes
from onboard_app.components.answer_fields import step_fields
from onboard_app.components.layout import app_shell
from onboard_app.services.onboarding import StepSpec, steps
from onboard_app.state.settings import SettingsState


def _section(step: StepSpec) -> rx.Component:
    return rx.card(
        rx.form(
            rx.vstack(
                rx.heading(step.title, size="4", as_="h2"),
                step_fields(SettingsState, step),
                rx.hstack(
                    rx.spacer(),
                    rx.button(
                        rx.cond(SettingsState.saving, rx.spinner(size="2"), rx.fragment()),
                        f"Save {step.title.lower()}",
                        type="submit",
                        disabled=SettingsState.saving,
                        id=f"save-{step.key}",
                    ),
                    width="100%",
                ),
                spacing="4",
                width="100%",
            ),
            on_submit=lambda _form: SettingsState.save_section(step.key),
            width="100%",
        ),
        size="3",
        width="100%",
    )


def settings_page() -> rx.Component:
    """One independently saved section per step of the spec, validated as in the wizard."""
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
                rx.vstack(*[_section(step) for step in steps()], spacing="4", width="100%"),
                rx.center(rx.spinner(size="3"), padding="3rem", width="100%"),
            ),
            spacing="5",
            width="100%",
            max_width="720px",
            margin_x="auto",
        )
    )
