"""``/login`` and ``/signup``."""

from __future__ import annotations

import reflex as rx

from onboard_app import routes
from onboard_app.components.auth_forms import credentials_form, form_link
from onboard_app.components.layout import auth_card
from onboard_app.components.oauth_buttons import oauth_buttons
from onboard_app.components.passkeys import passkey_sign_in
from onboard_app.components.two_factor import two_factor_sign_in
from onboard_app.services.password_policy import MIN_LENGTH, SUGGESTED_LENGTH
from onboard_app.state.auth import LoginState, SignupState
from onboard_app.state.two_factor import TwoFactorSignInState

#: What the meter says before anything is typed.
PASSWORD_RULE = (
    f"At least {MIN_LENGTH} characters; {SUGGESTED_LENGTH} or more is better. "
    "A few unrelated words work well."
)


def login_page() -> rx.Component:
    """Email + password login, and the configured OAuth providers; then a code if enrolled."""
    return rx.cond(TwoFactorSignInState.code_needed, two_factor_sign_in(), _password_step())


def _password_step() -> rx.Component:
    return auth_card(
        oauth_buttons(),
        credentials_form(
            LoginState,
            LoginState.log_in,
            submit_label="Log in",
            busy_label="Signing in…",
            password_autocomplete="current-password",  # noqa: S106 (autocomplete token)
            below_password=form_link(
                "Forgot password?",
                routes.FORGOT_PASSWORD,
                id="to-forgot-password",
                size="2",
                margin_top="-0.5rem",
                align_self="flex-end",
            ),
        ),
        passkey_sign_in(),
        rx.text(
            "New here? ",
            form_link("Create an account", routes.SIGNUP, id="to-signup"),
            size="2",
            align="center",
            width="100%",
        ),
        title="Welcome back",
        subtitle="Log in to continue to Onboard.",
    )


def signup_page() -> rx.Component:
    """Create a local account (confirmed by email before it can be used)."""
    return auth_card(
        oauth_buttons(),
        credentials_form(
            SignupState,
            SignupState.sign_up,
            submit_label="Create account",
            busy_label="Creating your account…",
            password_autocomplete="new-password",  # noqa: S106 (autocomplete token)
            meter_fallback=PASSWORD_RULE,
            on_email_change=SignupState.set_email.debounce(300),
            on_password_change=SignupState.rate_password.debounce(300),
        ),
        rx.text(
            "Already have an account? ",
            form_link("Log in", routes.LOGIN, id="to-login"),
            size="2",
            align="center",
            width="100%",
        ),
        title="Create your account",
        subtitle="It takes a minute: confirm your email, then we set up your profile together.",
    )
