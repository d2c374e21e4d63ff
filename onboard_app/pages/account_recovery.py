"""``/verify-email`` ("check your email"), ``/forgot-password`` and ``/reset-password``."""

from __future__ import annotations

import reflex as rx

from onboard_app import routes
from onboard_app.components.auth_forms import (
    code_form,
    email_field,
    form_link,
    new_password_form,
)
from onboard_app.components.auth_forms import submit_button as submit
from onboard_app.components.fields import form_error
from onboard_app.components.layout import auth_card, loading
from onboard_app.pages.login import PASSWORD_RULE
from onboard_app.settings import get_settings
from onboard_app.state.account_recovery import ForgotPasswordState, ResetPasswordState
from onboard_app.state.auth import VerifyEmailState


def _dev_mailbox_note() -> rx.Component:
    """In development without an SMTP server, where the mail went (one click away)."""
    settings = get_settings()
    if settings.is_production or settings.smtp is not None:
        return rx.fragment()
    return rx.callout(
        rx.text(
            "Development: no mail server is set up, so the email is in the ",
            rx.link("development mailbox", href=routes.DEV_MAILBOX, id="to-dev-mailbox"),
            ".",
        ),
        icon="mail",
        color_scheme="gray",
        variant="surface",
        size="1",
        width="100%",
    )


def _notice(message: rx.Var) -> rx.Component:
    return rx.cond(
        message,
        rx.callout(message, icon="info", color_scheme="blue", role="status", width="100%"),
    )


def _footer(*children: rx.Component) -> rx.Component:
    return rx.text(*children, size="2", align="center", width="100%")


def verify_email_page() -> rx.Component:
    """The answer to every sign-up, and where a verification link lands."""
    state = VerifyEmailState
    return auth_card(
        _notice(state.notice),
        rx.text(
            rx.cond(
                state.email,
                rx.fragment("We sent an email to ", rx.text.strong(state.email), ". "),
                rx.fragment("We sent you an email. "),
            ),
            "Open its link to confirm your address, or type the 6-digit code it contains. "
            "Both work once, for 24 hours.",
            size="2",
        ),
        rx.cond(
            state.waiting,
            rx.vstack(
                code_form(
                    state.submit_code,
                    error=state.field_errors.get("otp", ""),
                    form_error_text=state.form_error,
                    busy=state.busy,
                ),
                rx.text("No email after a few minutes? Check your spam folder.", size="2"),
                rx.button(
                    "Send it again",
                    on_click=state.send_again,
                    disabled=state.busy,
                    type="button",
                    variant="soft",
                    size="2",
                    id="send-again",
                ),
                spacing="3",
                width="100%",
            ),
            rx.vstack(
                form_error(state.form_error),
                rx.cond(
                    state.busy,
                    rx.hstack(rx.spinner(size="2"), rx.text("Confirming your address…", size="2")),
                ),
                width="100%",
            ),
        ),
        _dev_mailbox_note(),
        _footer(
            "Wrong address? ",
            form_link("Sign up again", routes.SIGNUP, id="to-signup"),
            " or ",
            form_link("log in", routes.LOGIN, id="to-login"),
            ".",
        ),
        title="Check your email",
        subtitle="One more step: confirm that this address is yours.",
    )


def forgot_password_page() -> rx.Component:
    """Ask for a password reset link."""
    state = ForgotPasswordState
    return auth_card(
        rx.cond(
            state.sent,
            rx.vstack(
                rx.callout(
                    rx.text(
                        "If an account uses ",
                        rx.text.strong(state.email),
                        ", we sent it a link to choose a new password. "
                        "The link works once, for 30 minutes.",
                    ),
                    icon="mail-check",
                    color_scheme="green",
                    role="status",
                    width="100%",
                    id="reset-sent",
                ),
                form_error(state.form_error),
                _dev_mailbox_note(),
                spacing="3",
                width="100%",
            ),
            rx.form(
                rx.vstack(
                    form_error(state.form_error),
                    email_field(state.field_errors.get("email", "")),
                    submit("Send me a link", state.busy),
                    spacing="4",
                    width="100%",
                ),
                on_submit=state.request_reset,
                width="100%",
            ),
        ),
        _footer("Remembered it? ", form_link("Log in", routes.LOGIN, id="to-login")),
        title="Forgot your password?",
        subtitle="Enter your email address and we will send you a link to choose a new one.",
    )


def reset_password_page() -> rx.Component:
    """Choose a new password, from a reset link."""
    state = ResetPasswordState
    return auth_card(
        rx.cond(
            state.ready,
            rx.vstack(
                rx.text("For ", rx.text.strong(state.email), ".", size="2"),
                new_password_form(
                    state,
                    state.reset_password,
                    state.rate_password.debounce(300),
                    submit_label="Set new password",
                    meter_fallback=PASSWORD_RULE,
                ),
                rx.text("Every other device will be signed out.", size="1", color_scheme="gray"),
                spacing="3",
                width="100%",
            ),
            rx.cond(
                state.link_error | state.form_error,
                rx.vstack(
                    form_error(state.form_error),
                    rx.cond(
                        state.link_error,
                        rx.callout(
                            state.link_error,
                            icon="link-2-off",
                            color_scheme="red",
                            role="alert",
                            width="100%",
                            id="link-error",
                        ),
                    ),
                    form_link(
                        "Ask for a new link",
                        routes.FORGOT_PASSWORD,
                        id="to-forgot-password",
                        size="2",
                    ),
                    spacing="3",
                    width="100%",
                ),
                loading("1rem"),
            ),
        ),
        _footer("Remembered it? ", form_link("Log in", routes.LOGIN, id="to-login")),
        title="Choose a new password",
        subtitle="It replaces your current one.",
    )
