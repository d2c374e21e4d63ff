"""``/confirm-email`` (where an email change's link lands) and ``/account-deleted``."""

from __future__ import annotations

import reflex as rx

from onboard_app import routes
from onboard_app.components.auth_forms import form_link
from onboard_app.components.fields import form_error
from onboard_app.components.layout import auth_card
from onboard_app.state.account import ConfirmEmailState, DeleteAccountState


def confirm_email_page() -> rx.Component:
    """The new address is confirmed here (a signed-in tab goes on to its settings)."""
    state = ConfirmEmailState
    return auth_card(
        rx.cond(
            state.changed_to,
            rx.vstack(
                rx.callout(
                    rx.text("Your email address is now ", rx.text.strong(state.changed_to), "."),
                    icon="mail-check",
                    color_scheme="green",
                    role="status",
                    width="100%",
                    id="email-changed",
                ),
                rx.text("Log in with it from now on.", size="2"),
                form_link("Log in", routes.LOGIN, id="to-login", size="2"),
                spacing="3",
                width="100%",
            ),
            rx.cond(
                state.error,
                rx.vstack(
                    form_error(state.error),
                    rx.text(
                        "To change your address, ask again in your ",
                        rx.link("settings", href=routes.SETTINGS, id="to-settings"),
                        ".",
                        size="2",
                    ),
                    spacing="3",
                    width="100%",
                ),
                rx.hstack(
                    rx.spinner(size="2"),
                    rx.text("Confirming your new address…", size="2"),
                    align="center",
                ),
            ),
        ),
        title="Your new email address",
        subtitle="The link from the email confirms that the new address is yours.",
    )


def account_deleted_page() -> rx.Component:
    """Where a tab lands once its account is deleted (it is signed out)."""
    state = DeleteAccountState
    return auth_card(
        rx.text("Your answers and any pending links are gone with it.", size="2"),
        rx.cond(
            state.farewell_email,
            rx.text(
                "We sent a confirmation to ",
                rx.text.strong(state.farewell_email),
                ".",
                size="2",
                id="farewell-mail",
            ),
        ),
        rx.cond(
            state.farewell_mail_failed,
            rx.callout(
                "We could not send the confirming email just now. Your account is deleted "
                "all the same.",
                icon="info",
                color_scheme="gray",
                role="status",
                width="100%",
            ),
        ),
        rx.text(
            "Changed your mind? You are welcome to ",
            form_link("sign up again", routes.SIGNUP, id="to-signup"),
            ".",
            size="2",
        ),
        title="Your account has been deleted",
        subtitle="You are signed out, here and on every other device.",
    )
