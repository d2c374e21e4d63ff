"""The account sections of ``/settings``: "Email", "Password" and, last, "Delete account".

Every control has a visible label and its error tied to it (``aria-invalid``,
``aria-describedby`` naming the error and the hint, the error announced as an alert); the
states move the focus to the first invalid field. Forms are not reset when refused, so
nothing typed is lost. Accounts without a password (GitHub, OpenID Connect) are told why
there is no address or password to change, and delete after signing in with their
provider again.
"""

from __future__ import annotations

from typing import Any

import reflex as rx
from reflex_base.vars.base import Var

from onboard_app.components.auth_forms import (
    described_by,
    form_actions,
    invalid,
    labelled,
    password_confirm,
    strength_meter,
    submit_button,
)
from onboard_app.components.fields import form_error
from onboard_app.components.layout import loading
from onboard_app.pages.login import PASSWORD_RULE
from onboard_app.services.account_settings import CONFIRM_WORD
from onboard_app.state.account import (
    AccountState,
    DeleteAccountState,
    EmailChangeState,
    PasswordChangeState,
)

_MUTED = "var(--gray-11)"


def _card(key: str, title: str, blurb: rx.Component | str, *body: rx.Component) -> rx.Component:
    """One section: a card named by its ``h2`` (``<key>-title``)."""
    return rx.card(
        rx.vstack(
            rx.vstack(
                rx.heading(title, size="4", as_="h2", id=f"{key}-title"),
                rx.text(blurb, size="2", color=_MUTED) if isinstance(blurb, str) else blurb,
                spacing="1",
                width="100%",
            ),
            *body,
            spacing="4",
            width="100%",
        ),
        size=rx.breakpoints(initial="3", sm="4"),
        width="100%",
    )


def _input(
    field_id: str, name: str, error: Var | str, *, hint: bool = False, **props: Any
) -> rx.Component:
    return rx.input(
        name=name,
        id=field_id,
        size="3",
        width="100%",
        max_length=props.pop("max_length", 256),
        aria_invalid=invalid(error),
        aria_describedby=described_by(field_id, hint),
        **props,
    )


def _submit(label: rx.Var | str, busy: Var, button_id: str, **props: Any) -> rx.Component:
    return submit_button(label, busy, button_id=button_id, width="auto", **props)


def _username(email: Var) -> rx.Component:
    """The account's address, for password managers to file the password under."""
    return rx.el.input(
        type="email",
        name="username",
        value=email,
        auto_complete="username",
        read_only=True,
        hidden=True,
    )


# --- Email ----------------------------------------------------------------------------------


def _provider_note(what: Var | str) -> rx.Component:
    """Why an account without a password has no address or password to change."""
    return rx.text(
        "You sign in with ",
        rx.text.strong(AccountState.provider_name),
        what,
        size="2",
    )


def _email_request() -> rx.Component:
    state = EmailChangeState
    email_error = state.field_errors.get("new_email", "")
    return rx.form(
        rx.vstack(
            form_error(state.form_error),
            labelled(
                "New email address",
                _input(
                    "new-email",
                    "new_email",
                    email_error,
                    hint=True,
                    type="email",
                    auto_complete="email",
                    placeholder="you@example.com",
                    max_length=254,
                    default_value=state.new_email,
                ),
                field_id="new-email",
                error=email_error,
                hint="We will email a link to the new address. Your address changes when "
                "you open it.",
            ),
            password_confirm("email-password", state.field_errors.get("current_password", "")),
            form_actions(_submit("Change email", state.busy, "change-email")),
            spacing="4",
            width="100%",
        ),
        on_submit=state.request_change,
        id="account-email",
        aria_busy=state.busy,
        aria_labelledby="email-title",
        width="100%",
    )


def _email_pending() -> rx.Component:
    state = EmailChangeState
    code_error = state.field_errors.get("code", "")
    return rx.vstack(
        rx.callout(
            rx.text(
                "We sent a link and a code to ",
                rx.text.strong(AccountState.pending_email),
                ". Open the link, or type the code here, to finish the change. Until then "
                "your account keeps its current address.",
            ),
            icon="mail-check",
            color_scheme="blue",
            role="status",
            width="100%",
            id="email-pending",
        ),
        rx.form(
            rx.vstack(
                form_error(state.form_error),
                labelled(
                    "Code from the email",
                    _input(
                        "email-code",
                        "code",
                        code_error,
                        type="text",
                        input_mode="numeric",
                        auto_complete="one-time-code",
                        placeholder="123 456",
                        max_length=12,
                        letter_spacing="0.2em",
                    ),
                    field_id="email-code",
                    error=code_error,
                ),
                form_actions(
                    rx.button(
                        "Cancel the change",
                        type="button",
                        variant="soft",
                        color_scheme="gray",
                        size="3",
                        disabled=state.busy,
                        on_click=state.cancel_change,
                        id="cancel-email-change",
                    ),
                    _submit("Confirm", state.busy, "confirm-email-code"),
                ),
                spacing="4",
                width="100%",
            ),
            on_submit=state.confirm_code,
            id="account-email-code",
            aria_busy=state.busy,
            aria_labelledby="email-title",
            width="100%",
        ),
        spacing="3",
        width="100%",
    )


def email_section() -> rx.Component:
    """Change the address: the new one is confirmed by its mailed link or code first."""
    return _card(
        "email",
        "Email",
        rx.text(
            rx.cond(
                AccountState.email,
                rx.fragment("Your email address is ", rx.text.strong(AccountState.email), "."),
                rx.fragment("Your account has no email address."),
            ),
            size="2",
            color=_MUTED,
            id="current-email",
        ),
        rx.cond(
            AccountState.has_password,
            rx.cond(AccountState.pending_email, _email_pending(), _email_request()),
            rx.cond(
                AccountState.email,
                rx.text(
                    "This address came from ",
                    rx.text.strong(AccountState.provider_name),
                    " when you signed up. Onboard uses it only for emails about your "
                    "account: you sign in with ",
                    AccountState.provider_name,
                    ", not with this address, so there is nothing to change here.",
                    size="2",
                ),
                _provider_note(", which did not share a verified address, so we cannot email you."),
            ),
        ),
    )


# --- Password -------------------------------------------------------------------------------


def _new_password() -> rx.Component:
    state = PasswordChangeState
    error = state.field_errors.get("password", "")
    return labelled(
        "New password",
        rx.input(
            rx.input.slot(
                rx.icon_button(
                    rx.cond(
                        state.show_password, rx.icon("eye-off", size=16), rx.icon("eye", size=16)
                    ),
                    on_click=state.toggle_password,
                    variant="ghost",
                    type="button",
                    aria_label=rx.cond(state.show_password, "Hide password", "Show password"),
                    aria_pressed=rx.cond(state.show_password, "true", "false"),
                    id="toggle-new-password",
                ),
                side="right",
            ),
            name="new_password",
            id="new-password",
            type=rx.cond(state.show_password, "text", "password"),
            auto_complete="new-password",
            size="3",
            width="100%",
            max_length=256,
            aria_invalid=invalid(error),
            aria_describedby=described_by("new-password", hint=True),
            on_change=state.rate_password.debounce(300),
        ),
        field_id="new-password",
        error=error,
        hint=strength_meter(state, PASSWORD_RULE),
    )


def password_section() -> rx.Component:
    """Change the password: the current one, a new one under the policy."""
    state = PasswordChangeState
    return _card(
        "password",
        "Password",
        rx.cond(
            AccountState.has_password,
            rx.text("Changing it signs you out on every other device.", size="2", color=_MUTED),
            rx.fragment(),
        ),
        rx.cond(
            AccountState.has_password,
            rx.form(
                rx.vstack(
                    form_error(state.form_error),
                    _username(AccountState.email),
                    password_confirm(
                        "current-password", state.field_errors.get("current_password", "")
                    ),
                    _new_password(),
                    form_actions(_submit("Change password", state.busy, "change-password")),
                    spacing="4",
                    width="100%",
                ),
                on_submit=state.change_password,
                id="account-password",
                aria_busy=state.busy,
                aria_labelledby="password-title",
                width="100%",
            ),
            _provider_note(", so your account has no password here."),
        ),
    )


# --- Delete account -------------------------------------------------------------------------


def delete_section() -> rx.Component:
    """Delete the account: type the word, and the password or a fresh provider sign-in."""
    state = DeleteAccountState
    confirm_error = state.field_errors.get("confirm", "")
    return _card(
        "delete",
        "Delete account",
        "This removes your account and everything in it: your answers, your sessions on "
        "every device and any pending links. It cannot be undone.",
        rx.form(
            rx.vstack(
                form_error(state.form_error),
                labelled(
                    f"To confirm, type {CONFIRM_WORD}",
                    _input(
                        "delete-confirm",
                        "confirm",
                        confirm_error,
                        type="text",
                        auto_complete="off",
                        spell_check=False,
                        auto_capitalize="characters",
                        max_length=40,
                    ),
                    field_id="delete-confirm",
                    error=confirm_error,
                ),
                rx.cond(
                    AccountState.has_password,
                    password_confirm(
                        "delete-password", state.field_errors.get("current_password", "")
                    ),
                    rx.text(
                        "You will sign in with ",
                        rx.text.strong(AccountState.provider_name),
                        " once more to confirm that it is you.",
                        size="2",
                    ),
                ),
                form_actions(
                    _submit(
                        rx.cond(
                            AccountState.has_password,
                            "Delete my account",
                            "Continue to delete",
                        ),
                        state.busy,
                        "delete-account",
                        color_scheme="red",
                    )
                ),
                spacing="4",
                width="100%",
            ),
            on_submit=state.delete_account,
            id="account-delete",
            aria_busy=state.busy,
            aria_labelledby="delete-title",
            width="100%",
        ),
    )


def account_sections() -> rx.Component:
    """The "Email" and "Password" sections, read from the database when they appear."""
    return rx.vstack(
        rx.cond(
            AccountState.loaded,
            rx.fragment(email_section(), password_section()),
            loading("2rem"),
        ),
        on_mount=AccountState.load,
        spacing="4",
        width="100%",
        id="account-settings",
    )


def delete_account_section() -> rx.Component:
    """The "Delete account" section, drawn last, once :func:`account_sections` has loaded."""
    return rx.cond(AccountState.loaded, delete_section())
