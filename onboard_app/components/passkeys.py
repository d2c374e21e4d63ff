"""Passkeys in the UI: "Sign in with a passkey" (login page) and the "Passkeys" settings section.

Nothing here calls WebAuthn: the buttons start a ceremony on the server, which answers with
the browser half (``state/passkeys.js``). Every control has a visible label or one that names
its passkey ("Rename Work laptop"), errors are announced as alerts, and the forms that open
inline (the password confirmation, a new name, "remove?") take the focus when they appear.
"""

from __future__ import annotations

import reflex as rx

from onboard_app.components.auth_forms import (
    described_by,
    invalid,
    labelled,
    password_confirm,
    submit_button,
)
from onboard_app.components.fields import form_error
from onboard_app.components.oauth_buttons import or_divider
from onboard_app.services.passkeys import MAX_NAME
from onboard_app.state.passkeys import (
    PASSWORD_FIELD,
    RECENT_SIGN_IN,
    PasskeyLoginState,
    PasskeyRow,
    PasskeySettingsState,
)
from onboard_app.state.session import SessionState

_MUTED = "var(--gray-11)"


def passkey_sign_in() -> rx.Component:
    """An "or" divider, then "Sign in with a passkey" and its error (login page)."""
    state = PasskeyLoginState
    return rx.vstack(
        or_divider(),
        rx.button(
            rx.cond(state.busy, rx.spinner(size="2"), rx.icon("fingerprint", size=16)),
            "Sign in with a passkey",
            on_click=state.start_sign_in,
            disabled=state.busy,
            variant="outline",
            size="3",
            width="100%",
            type="button",
            id="passkey-sign-in",
            aria_describedby=rx.cond(state.error, "passkey-error", ""),
        ),
        rx.cond(
            state.error,
            rx.text(state.error, color_scheme="red", size="2", id="passkey-error", role="alert"),
        ),
        spacing="3",
        width="100%",
    )


# --- settings -------------------------------------------------------------------------------


def _button(label: rx.Var | str, **props: object) -> rx.Component:
    return rx.button(label, type="button", size="2", **props)  # type: ignore[arg-type]


def _rename_form(row: PasskeyRow) -> rx.Component:
    state = PasskeySettingsState
    return rx.form(
        rx.vstack(
            labelled(
                "New name",
                rx.input(
                    name="name",
                    id="passkey-name",
                    default_value=row.name,
                    max_length=MAX_NAME,
                    size="3",
                    width="100%",
                    auto_focus=True,
                    aria_invalid=invalid(state.rename_error),
                    aria_describedby=described_by("passkey-name"),
                ),
                field_id="passkey-name",
                error=state.rename_error,
            ),
            rx.hstack(
                _button("Cancel", variant="soft", color_scheme="gray", on_click=state.close_dialog),
                rx.button("Save", type="submit", size="2", id="save-passkey-name"),
                justify="end",
                width="100%",
            ),
            spacing="3",
            width="100%",
        ),
        on_submit=state.rename,
        id="rename-passkey",
        width="100%",
    )


def _remove_question(row: PasskeyRow) -> rx.Component:
    state = PasskeySettingsState
    return rx.vstack(
        rx.text(
            "Remove ",
            rx.text.strong(row.name),
            "? It will no longer sign you in. You can also delete it from your device.",
            size="2",
            id="remove-passkey-question",
        ),
        rx.hstack(
            _button(
                "Keep it",
                variant="soft",
                color_scheme="gray",
                on_click=state.close_dialog,
                auto_focus=True,
            ),
            _button(
                "Remove",
                color_scheme="red",
                on_click=state.remove,
                id="confirm-remove-passkey",
                aria_describedby="remove-passkey-question",
            ),
            justify="end",
            width="100%",
        ),
        spacing="3",
        width="100%",
        role="group",
        aria_label="Remove this passkey?",
    )


def _row(row: PasskeyRow) -> rx.Component:
    state = PasskeySettingsState
    summary = rx.flex(
        rx.vstack(
            rx.text(row.name, weight="medium", size="3"),
            rx.text(
                "Added ",
                row.added,
                " · ",
                rx.cond(row.last_used, rx.fragment("Last used ", row.last_used), "Never used"),
                size="2",
                color=_MUTED,
            ),
            spacing="1",
        ),
        rx.spacer(),
        rx.hstack(
            _button(
                "Rename",
                variant="soft",
                on_click=state.start_rename(row.id),
                aria_label=f"Rename {row.name}",
            ),
            _button(
                "Remove",
                variant="soft",
                color_scheme="red",
                on_click=state.start_remove(row.id),
                aria_label=f"Remove {row.name}",
            ),
            spacing="2",
        ),
        spacing="3",
        align="center",
        wrap="wrap",
        width="100%",
    )
    return rx.el.li(
        rx.cond(
            state.renaming_id == row.id,
            _rename_form(row),
            rx.cond(state.removing_id == row.id, _remove_question(row), summary),
        ),
        class_name="passkey",
        padding_y="0.75rem",
        border_top="1px solid var(--gray-a5)",
    )


def _confirm_it_is_you() -> rx.Component:
    """The proof asked before a passkey is added: the password, or a recent sign-in."""
    state = PasskeySettingsState
    cancel = _button("Cancel", variant="soft", color_scheme="gray", on_click=state.close_dialog)
    with_password = rx.form(
        rx.vstack(
            rx.heading("Confirm it's you", size="3", as_="h3", id="passkey-confirm-title"),
            password_confirm(
                PASSWORD_FIELD,
                state.password_error,
                name="password",
                auto_focus=True,
            ),
            rx.hstack(
                cancel,
                submit_button(
                    "Continue",
                    state.busy,
                    button_id="confirm-passkey-password",
                    size="2",
                    width="auto",
                ),
                justify="end",
                width="100%",
            ),
            spacing="3",
            width="100%",
        ),
        on_submit=state.confirm_password,
        aria_labelledby="passkey-confirm-title",
        aria_busy=state.busy,
        id="passkey-confirm",
        width="100%",
    )
    sign_in_again = rx.vstack(
        rx.heading("Sign in again first", size="3", as_="h3", id="passkey-confirm-title"),
        rx.text(
            f"For your security, a passkey can be added within {RECENT_SIGN_IN // 60} minutes "
            "of signing in. Sign out, sign in again with your provider, and add it then.",
            size="2",
        ),
        rx.hstack(
            cancel,
            _button("Sign out", on_click=SessionState.log_out, id="passkey-sign-out"),
            justify="end",
            width="100%",
        ),
        spacing="3",
        width="100%",
        role="group",
        aria_labelledby="passkey-confirm-title",
        id="passkey-confirm",
    )
    return rx.cond(state.has_password, with_password, sign_in_again)


def passkeys_section() -> rx.Component:
    """The "Passkeys" card of ``/settings``: the user's passkeys, add, rename, remove."""
    state = PasskeySettingsState
    return rx.card(
        rx.vstack(
            rx.vstack(
                rx.heading("Passkeys", size="4", as_="h2", id="passkeys-title"),
                rx.text(
                    "Sign in with your fingerprint, face or screen lock instead of your "
                    "password. Passkeys cannot be phished or guessed.",
                    size="2",
                    color=_MUTED,
                ),
                spacing="1",
                width="100%",
            ),
            form_error(state.error),
            rx.cond(
                state.rows,
                rx.el.ul(
                    rx.foreach(state.rows, _row),
                    aria_labelledby="passkeys-title",
                    list_style="none",
                    padding="0",
                    margin="0",
                    width="100%",
                ),
                rx.cond(
                    state.loaded,
                    rx.text("You have no passkeys yet.", size="2", id="no-passkeys"),
                ),
            ),
            rx.cond(
                state.confirming,
                _confirm_it_is_you(),
                rx.button(
                    rx.cond(state.busy, rx.spinner(size="2"), rx.icon("plus", size=16)),
                    "Add a passkey",
                    type="button",
                    size="3",
                    variant="outline",
                    disabled=state.busy,
                    on_click=state.begin_add,
                    id="add-passkey",
                ),
            ),
            spacing="4",
            width="100%",
        ),
        on_mount=state.load,
        size=rx.breakpoints(initial="3", sm="4"),
        width="100%",
        id="passkeys",
    )
