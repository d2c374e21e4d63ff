"""``/login`` and ``/signup``."""

from __future__ import annotations

import reflex as rx

from onboard_app import routes
from onboard_app.components.auth_forms import credentials_form
from onboard_app.components.layout import auth_card
from onboard_app.components.oauth_buttons import oauth_buttons
from onboard_app.services.passwords import MIN_PASSWORD
from onboard_app.state.auth import LoginState, SignupState


def login_page() -> rx.Component:
    """Email + password login, and the configured OAuth providers."""
    return auth_card(
        oauth_buttons(),
        credentials_form(
            LoginState,
            LoginState.log_in,
            submit_label="Log in",
            password_autocomplete="current-password",  # noqa: S106 (autocomplete token)
        ),
        rx.text(
            "New here? ",
            rx.link("Create an account", href=routes.SIGNUP, id="to-signup"),
            size="2",
            align="center",
            width="100%",
        ),
        title="Welcome back",
        subtitle="Log in to continue to Onboard.",
    )


def signup_page() -> rx.Component:
    """Create a local account."""
    return auth_card(
        oauth_buttons(),
        credentials_form(
            SignupState,
            SignupState.sign_up,
            submit_label="Create account",
            password_autocomplete="new-password",  # noqa: S106 (autocomplete token)
            password_hint=f"At least {MIN_PASSWORD} characters.",
        ),
        rx.text(
            "Already have an account? ",
            rx.link("Log in", href=routes.LOGIN, id="to-login"),
            size="2",
            align="center",
            width="100%",
        ),
        title="Create your account",
        subtitle="It takes a minute, then we set up your profile together.",
    )
