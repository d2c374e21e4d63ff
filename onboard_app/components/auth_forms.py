"""The email + password form used by login and signup."""

from __future__ import annotations

import reflex as rx

from onboard_app.components.fields import field, form_error
from onboard_app.state.auth import AuthFormState


def password_input(state: type[AuthFormState], autocomplete: str) -> rx.Component:
    """A password input with a show/hide button."""
    return rx.input(
        rx.input.slot(
            rx.icon_button(
                rx.cond(state.show_password, rx.icon("eye-off", size=16), rx.icon("eye", size=16)),
                on_click=state.toggle_password,
                variant="ghost",
                type="button",
                aria_label=rx.cond(state.show_password, "Hide password", "Show password"),
                id="toggle-password",
            ),
            side="right",
        ),
        name="password",
        id="password",
        type=rx.cond(state.show_password, "text", "password"),
        auto_complete=autocomplete,
        size="3",
        width="100%",
        max_length=256,
    )


def credentials_form(
    state: type[AuthFormState],
    on_submit: rx.EventHandler,
    *,
    submit_label: str,
    password_autocomplete: str,
    password_hint: str | None = None,
) -> rx.Component:
    """Email + password form with inline errors.

    The form is not reset on submit, so what was typed stays after a failed attempt.
    """
    return rx.form(
        rx.vstack(
            form_error(state.form_error),
            field(
                "Email",
                rx.input(
                    name="email",
                    id="email",
                    type="email",
                    placeholder="you@example.com",
                    auto_complete="email",
                    size="3",
                    width="100%",
                    max_length=254,
                    required=True,
                ),
                state.field_errors.get("email", ""),
                html_for="email",
            ),
            field(
                "Password",
                password_input(state, password_autocomplete),
                state.field_errors.get("password", ""),
                hint=password_hint,
                html_for="password",
            ),
            rx.button(
                rx.cond(state.busy, rx.spinner(size="2"), rx.fragment()),
                submit_label,
                type="submit",
                size="3",
                width="100%",
                disabled=state.busy,
                id="submit",
            ),
            spacing="4",
            width="100%",
        ),
        on_submit=on_submit,
        width="100%",
    )
