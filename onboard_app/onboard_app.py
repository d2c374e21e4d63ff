"""The Reflex app: registers tables and pages, nothing else."""

import reflex as rx

from onboard_app import logs, routes, telemetry
from onboard_app.models import ALL_TABLES
from onboard_app.pages.explore import explore_page
from onboard_app.pages.login import login_page, signup_page
from onboard_app.pages.onboarding import wizard_page
from onboard_app.pages.settings import settings_page
from onboard_app.security import security_headers
from onboard_app.services.catalogue_seed import seed_catalogue
from onboard_app.services.db import upgrade_to_head
from onboard_app.services.onboarding import title_of, wizard_steps
from onboard_app.state.explore import ExploreState
from onboard_app.state.onboarding import OnboardingState
from onboard_app.state.session import AccessGate, SessionState, answer_backend_error
from onboard_app.state.settings import SettingsState

# First, in every process (CLI, supervisor, workers): redaction, onboard.* at INFO (logs.py).
logs.install()
# Spans of every event when ONBOARD_TRACE_DIR is set (bench/breakdown.py); else nothing.
telemetry.install()

# `reflex db` reads rx.ModelRegistry, whose built-in entry (rx.Model) shares SQLModel's
# metadata: importing ALL_TABLES is what puts our tables there. Registering them again
# would only make Reflex merge duplicate metadata (and warn about each table).
assert ALL_TABLES[0].metadata is rx.ModelRegistry.get_metadata()

# The schema is brought to the newest migration, and the shipped catalogue loaded
# (idempotent: one SELECT when nothing changed), before the first request.
upgrade_to_head()
seed_catalogue()

app = rx.App(
    head_components=[rx.el.link(rel="icon", href="/favicon.ico")],
    # The GitHub mark is a black SVG: keep it visible in dark mode.
    style={".dark .github-mark": {"filter": "invert(1)"}},
    # The app-wide rules the theme does not give (focus ring, touch targets, toasts): in the
    # global stylesheet, so a navigation adds no style sheet to restyle the page against.
    stylesheets=["/onboard.css"],
    # Security headers on every HTTP response (pages too, in production's single port).
    api_transformer=security_headers,
    # Redis or the database unreachable: the app's own message, not Reflex's generic one.
    backend_exception_handler=answer_backend_error,
)
# Every event passes the access gate: its handler's declared rule, checked from the
# verified session of the connection, before the handler body runs.
app.add_middleware(AccessGate(), index=0)

app.add_page(rx.fragment, route=routes.HOME, on_load=SessionState.guard, title="Onboard")
# The login, sign-up and forgot-password forms are emptied by the links that open them
# (components.auth_forms.form_link), by a fresh load's connect, and for a failed OAuth
# sign-in by its redirect (which puts the message on the form), not by the pages' on_load:
# Reflex sends on_load from an effect after the page is drawn, so a quick first submit
# could reach the server before it, and a reset then would wipe its answer.
app.add_page(login_page, route=routes.LOGIN, title="Log in · Onboard", on_load=SessionState.guard)
app.add_page(
    signup_page, route=routes.SIGNUP, title="Sign up · Onboard", on_load=SessionState.guard
)
for step in wizard_steps():
    app.add_page(
        wizard_page(step),
        route=routes.onboarding(step),
        title=f"{title_of(step)} · Onboarding · Onboard",
        on_load=OnboardingState.open_step,
    )
app.add_page(
    explore_page, route=routes.EXPLORE, title="Explore · Onboard", on_load=ExploreState.load
)
app.add_page(
    settings_page, route=routes.SETTINGS, title="Settings · Onboard", on_load=SettingsState.load
)

# --- OAuth callback pages ---
from onboard_app.pages.oauth_callback import oauth_callback_page  # noqa: E402
from onboard_app.state.oauth import OAuthState  # noqa: E402

for provider in routes.PROVIDERS:
    app.add_page(
        oauth_callback_page,
        route=routes.oauth_callback(provider),
        title="Signing in · Onboard",
        on_load=OAuthState.complete_login,
    )
# --- OAuth callback pages ---

# --- Email verification, password reset, development mailbox ---
from onboard_app.pages.account_recovery import (  # noqa: E402
    forgot_password_page,
    reset_password_page,
    verify_email_page,
)
from onboard_app.settings import get_settings  # noqa: E402
from onboard_app.state.account_recovery import (  # noqa: E402
    ResetPasswordState,
)
from onboard_app.state.auth import VerifyEmailState  # noqa: E402

app.add_page(
    verify_email_page,
    route=routes.VERIFY_EMAIL,
    title="Check your email · Onboard",
    on_load=VerifyEmailState.open_page,
)
app.add_page(
    forgot_password_page,
    route=routes.FORGOT_PASSWORD,
    title="Forgot your password · Onboard",
    # Its form is emptied by the links that open it, not here (see the login page above).
    on_load=SessionState.guard,
)
app.add_page(
    reset_password_page,
    route=routes.RESET_PASSWORD,
    title="Choose a new password · Onboard",
    on_load=ResetPasswordState.open_link,
)
if not get_settings().is_production:
    # Development only: in production neither the page nor its state exists.
    from onboard_app.pages.dev_mail import dev_mailbox_page
    from onboard_app.state.dev_mail import DevMailboxState

    app.add_page(
        dev_mailbox_page,
        route=routes.DEV_MAILBOX,
        title="Development mailbox · Onboard",
        on_load=DevMailboxState.load,
    )
# --- Email verification, password reset, development mailbox ---

# --- Admin: onboarding insights ---
from onboard_app.pages.admin import admin_onboarding_page  # noqa: E402
from onboard_app.state.admin import AdminState  # noqa: E402

app.add_page(
    admin_onboarding_page,
    route=routes.ADMIN_ONBOARDING,
    title="Onboarding insights · Onboard",
    on_load=AdminState.load,
)
# --- Admin: onboarding insights ---

# --- Account settings: the email change's link, the page after a deletion ---
from onboard_app.pages.account import account_deleted_page, confirm_email_page  # noqa: E402
from onboard_app.state.account import ConfirmEmailState  # noqa: E402

app.add_page(
    confirm_email_page,
    route=routes.CONFIRM_EMAIL,
    title="Your new email address · Onboard",
    on_load=ConfirmEmailState.open_link,
)
app.add_page(account_deleted_page, route=routes.ACCOUNT_DELETED, title="Account deleted · Onboard")
# --- Account settings ---
