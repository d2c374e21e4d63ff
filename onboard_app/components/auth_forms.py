"""The forms of the sign-in pages (credentials, new password, code, email), links to them.

Every control has a visible label; its error is tied to it (``aria-invalid``,
``aria-describedby`` naming the error and the hint), and the states move the focus to the
first invalid field after a refused submit. Forms are not reset on submit, so what was
typed stays after a failed attempt; a link to a guest page empties that page's form.
"""

from __future__ import annotations

from typing import Any

import reflex as rx
from reflex_base.vars.base import Var

from onboard_app import routes
from onboard_app.components.fields import form_error
from onboard_app.services.account_settings import CURRENT_PASSWORD
from onboard_app.state.account_recovery import ForgotPasswordState
from onboard_app.state.auth import AuthFormState, LoginState, SignupState

#: The form each guest page opens with: emptied by the links to it, not by its on_load.
_FORM_OF_PAGE: dict[str, rx.EventHandler] = {
    routes.LOGIN: LoginState.reset_form,
    routes.SIGNUP: SignupState.reset_form,
    routes.FORGOT_PASSWORD: ForgotPasswordState.reset_form,
}


def form_link(text: str, route: str, **props: Any) -> rx.Component:
    """A link to the login, sign-up or forgot-password page that empties its form on click.

    The click's reset reaches the server ahead of anything typed on the page. The page's
    ``on_load`` does not reset (onboard_app.py): it can arrive after a quick first submit
    and would wipe its answer. A fresh load's connect empties every form anyway.
    """
    return rx.link(text, href=route, on_click=_FORM_OF_PAGE[route], **props)


def labelled(
    label: str,
    control: rx.Component,
    *,
    field_id: str,
    error: Var | str = "",
    hint: rx.Component | str | None = None,
) -> rx.Component:
    """A label, the control, and under it the field's error, else its hint.

    The control must carry ``aria-describedby`` from :func:`described_by` and
    ``aria-invalid`` from :func:`invalid`.
    """
    return rx.vstack(
        rx.el.label(rx.text(label, size="2", weight="medium"), html_for=field_id),
        control,
        rx.cond(
            error,
            rx.text(error, color_scheme="red", size="2", id=f"{field_id}-error", role="alert"),
            rx.cond(
                hint is not None,
                rx.box(
                    hint or "",
                    id=f"{field_id}-hint",
                    color="var(--gray-11)",
                    font_size="13px",
                    width="100%",
                ),
            ),
        ),
        spacing="1",
        width="100%",
    )


def described_by(field_id: str, hint: bool = False) -> str:
    """The ``aria-describedby`` of a field: its error (when shown) and its hint."""
    return f"{field_id}-error" + (f" {field_id}-hint" if hint else "")


def invalid(error: Var | str) -> Var | str:
    """The ``aria-invalid`` of a field with this error."""
    return rx.cond(error, "true", "false")


def password_confirm(
    field_id: str,
    error: Var | str,
    *,
    label: str = "Current password",
    name: str = CURRENT_PASSWORD,
    **input_props: Any,
) -> rx.Component:
    """The password that confirms it is you (``#<field_id>``), with its label and error.

    ``input_props`` go to the input: ``required``, and how it takes the focus when it appears.
    """
    return labelled(
        label,
        rx.input(
            name=name,
            id=field_id,
            type="password",
            auto_complete="current-password",
            max_length=256,
            size="3",
            width="100%",
            aria_invalid=invalid(error),
            aria_describedby=described_by(field_id),
            **input_props,
        ),
        field_id=field_id,
        error=error,
    )


def form_actions(*buttons: rx.Component) -> rx.Component:
    """A settings form's buttons, at its end: the secondary ones first, the submit last."""
    return rx.flex(*buttons, spacing="3", justify="end", wrap="wrap", width="100%")


def submit_button(
    label: Var | str,
    busy: Var,
    *,
    button_id: str = "submit",
    busy_label: str | None = None,
    **props: Any,
) -> rx.Component:
    """The form's submit button: disabled, with a spinner (and ``busy_label``) while it runs.

    Full width and size 3 unless ``props`` say otherwise (``width="auto"``, ``size``,
    ``color_scheme``).
    """
    return rx.button(
        rx.cond(busy, rx.spinner(size="2"), rx.fragment()),
        rx.cond(busy, busy_label, label) if busy_label else label,
        type="submit",
        disabled=busy,
        id=button_id,
        **{"size": "3", "width": "100%", **props},
    )


def email_field(
    error: Var | str, *, value: Var | str | None = None, on_change: Any = None
) -> rx.Component:
    """The email address field (``#email``)."""
    props: dict[str, Any] = {"on_change": on_change} if on_change is not None else {}
    if value is not None:
        props["default_value"] = value
    return labelled(
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
            aria_invalid=invalid(error),
            aria_describedby=described_by("email"),
            **props,
        ),
        field_id="email",
        error=error,
    )


def password_input(
    state: type[AuthFormState], autocomplete: str, *, on_change: Any = None, hint: bool = False
) -> rx.Component:
    """A password input (``#password``) with a show/hide button."""
    props: dict[str, Any] = {"on_change": on_change} if on_change is not None else {}
    error = state.field_errors.get("password", "")
    return rx.input(
        rx.input.slot(
            rx.icon_button(
                rx.cond(state.show_password, rx.icon("eye-off", size=16), rx.icon("eye", size=16)),
                on_click=state.toggle_password,
                variant="ghost",
                type="button",
                aria_label=rx.cond(state.show_password, "Hide password", "Show password"),
                aria_pressed=rx.cond(state.show_password, "true", "false"),
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
        required=True,
        aria_invalid=invalid(error),
        aria_describedby=described_by("password", hint),
        **props,
    )


_METER_COLORS = ("red", "red", "amber", "grass", "green")


def strength_meter(state: type[AuthFormState], fallback: str) -> rx.Component:
    """Four bars and a word for the password typed so far, and the policy's hint.

    Before anything is typed it shows ``fallback`` (the length rule). Announced politely to
    screen readers as it changes.
    """
    color = rx.match(
        state.strength,
        *((score, f"var(--{c}-9)") for score, c in enumerate(_METER_COLORS)),
        "var(--gray-6)",
    )
    bars = rx.hstack(
        *(
            rx.box(
                height="4px",
                flex="1",
                border_radius="2px",
                background=rx.cond(state.strength >= index, color, "var(--gray-5)"),
            )
            for index in range(1, 5)
        ),
        spacing="1",
        width="100%",
        aria_hidden="true",
    )
    return rx.vstack(
        rx.cond(state.strength >= 0, bars),
        rx.cond(
            state.strength >= 0,
            rx.text(
                rx.text.strong("Strength: ", state.strength_label),
                rx.cond(state.strength_hint, rx.text.span(" — ", state.strength_hint)),
                size="1",
                id="password-strength",
            ),
            rx.text(fallback, size="1"),
        ),
        spacing="1",
        width="100%",
        aria_live="polite",
    )


def credentials_form(
    state: type[AuthFormState],
    on_submit: rx.EventHandler,
    *,
    submit_label: str,
    password_autocomplete: str,
    meter_fallback: str | None = None,
    on_email_change: Any = None,
    on_password_change: Any = None,
    below_password: rx.Component | None = None,
    busy_label: str | None = None,
) -> rx.Component:
    """Email + password with inline errors; with ``meter_fallback``, the strength meter.

    ``busy_label`` replaces the button's label while the form is busy (a sign-up waiting for
    its turn to hash the password says so).
    """
    password_hint = strength_meter(state, meter_fallback) if meter_fallback is not None else None
    return rx.form(
        rx.vstack(
            form_error(state.form_error),
            email_field(state.field_errors.get("email", ""), on_change=on_email_change),
            labelled(
                "Password",
                password_input(
                    state,
                    password_autocomplete,
                    on_change=on_password_change,
                    hint=password_hint is not None,
                ),
                field_id="password",
                error=state.field_errors.get("password", ""),
                hint=password_hint,
            ),
            below_password or rx.fragment(),
            submit_button(submit_label, state.busy, busy_label=busy_label),
            spacing="4",
            width="100%",
        ),
        on_submit=on_submit,
        width="100%",
    )


def new_password_form(
    state: type[AuthFormState],
    on_submit: rx.EventHandler,
    on_password_change: Any,
    *,
    submit_label: str,
    meter_fallback: str,
) -> rx.Component:
    """A new password with its strength meter (the reset page)."""
    return rx.form(
        rx.vstack(
            form_error(state.form_error),
            # The account's address, for password managers to file the new password under.
            rx.el.input(
                type="email",
                name="username",
                value=state.email,
                auto_complete="username",
                read_only=True,
                hidden=True,
            ),
            labelled(
                "New password",
                password_input(state, "new-password", on_change=on_password_change, hint=True),
                field_id="password",
                error=state.field_errors.get("password", ""),
                hint=strength_meter(state, meter_fallback),
            ),
            submit_button(submit_label, state.busy),
            spacing="4",
            width="100%",
        ),
        on_submit=on_submit,
        width="100%",
    )


def code_form(
    on_submit: rx.EventHandler, *, error: Var | str, form_error_text: Var, busy: Var
) -> rx.Component:
    """The 6-digit code of a mail, typed instead of opening its link (``#otp``)."""
    return rx.form(
        rx.vstack(
            form_error(form_error_text),
            labelled(
                "Code from the email",
                rx.input(
                    name="otp",
                    id="otp",
                    type="text",
                    input_mode="numeric",
                    auto_complete="one-time-code",
                    placeholder="123 456",
                    max_length=12,
                    size="3",
                    width="100%",
                    required=True,
                    aria_invalid=invalid(error),
                    aria_describedby=described_by("otp"),
                    letter_spacing="0.2em",
                ),
                field_id="otp",
                error=error,
            ),
            submit_button("Confirm", busy, button_id="confirm-code"),
            spacing="3",
            width="100%",
        ),
        on_submit=on_submit,
        width="100%",
    )
