"""Two-factor authentication: the login page's code step and the settings section.

Every control has a visible label and its error tied to it (``aria-invalid``,
``aria-describedby``, the error announced as an alert); each step focuses its first
control (or heading) when it appears, and a refused submit focuses the field at fault.
"""

from __future__ import annotations

import reflex as rx
from reflex.components.radix.themes.components.checkbox import Checkbox
from reflex_base.vars.base import Var

from onboard_app.components.auth_forms import (
    described_by,
    form_actions,
    invalid,
    labelled,
    password_confirm,
    submit_button,
)
from onboard_app.components.fields import form_error
from onboard_app.components.layout import auth_card, focus_on_mount
from onboard_app.services.account_settings import CURRENT_PASSWORD
from onboard_app.services.two_factor import MAX_CODE_CHARS
from onboard_app.state.two_factor import (
    CODE,
    CONTROL_IDS,
    TwoFactorSettingsState,
    TwoFactorSignInState,
)

_MUTED = "var(--gray-11)"
CODE_ID = CONTROL_IDS[CODE]
PASSWORD_ID = CONTROL_IDS[CURRENT_PASSWORD]


def _code_input(error: Var | str, *, numeric: Var | bool, focus: bool) -> rx.Component:
    """The code field (``#two-factor-code``): digits from the app, or a recovery code."""
    return rx.input(
        name=CODE,
        id=CODE_ID,
        type="text",
        input_mode=rx.cond(numeric, "numeric", "text"),
        auto_complete="one-time-code",
        auto_capitalize="none",
        spell_check=False,
        max_length=MAX_CODE_CHARS,
        size="3",
        width="100%",
        required=True,
        letter_spacing="0.1em",
        aria_invalid=invalid(error),
        aria_describedby=described_by(CODE_ID),
        **({"on_mount": focus_on_mount(CODE_ID)} if focus else {}),
    )


def _code_field(
    label: Var | str, error: Var | str, *, numeric: Var | bool, focus: bool = False
) -> rx.Component:
    """The code field with its label and error."""
    return labelled(
        label,
        _code_input(error, numeric=numeric, focus=focus),
        field_id=CODE_ID,
        error=error,
    )


def _password_input(error: Var | str) -> rx.Component:
    """The current password (``#two-factor-password``), focused when the step appears."""
    return password_confirm(PASSWORD_ID, error, required=True, on_mount=focus_on_mount(PASSWORD_ID))


def _secondary(label: str, on_click: rx.EventHandler, button_id: str) -> rx.Component:
    return rx.button(
        label, type="button", variant="soft", size="3", on_click=on_click, id=button_id
    )


# --- sign-in --------------------------------------------------------------------------------


def two_factor_sign_in() -> rx.Component:
    """The login page's second step: the app's code, or a recovery code."""
    state = TwoFactorSignInState
    error = state.field_errors.get(CODE, "")
    return auth_card(
        rx.form(
            rx.vstack(
                form_error(state.form_error),
                _code_field(
                    rx.cond(
                        state.use_recovery_code,
                        "Recovery code",
                        "6-digit code from your authenticator app",
                    ),
                    error,
                    numeric=~state.use_recovery_code,
                    focus=True,
                ),
                submit_button("Verify", state.busy, button_id="verify-code"),
                spacing="4",
                width="100%",
            ),
            on_submit=state.submit_code,
            width="100%",
        ),
        rx.vstack(
            rx.button(
                rx.cond(
                    state.use_recovery_code,
                    "Use your authenticator app instead",
                    "Use a recovery code instead",
                ),
                type="button",
                variant="ghost",
                size="2",
                class_name="tap",
                on_click=state.toggle_recovery_code,
                id="toggle-recovery-code",
            ),
            rx.button(
                "Cancel and log in again",
                type="button",
                variant="ghost",
                size="2",
                color_scheme="gray",
                class_name="tap",
                on_click=state.cancel,
                id="cancel-two-factor",
            ),
            spacing="2",
            align="center",
            width="100%",
        ),
        title="Two-factor authentication",
        subtitle="Your password was right. Now enter a code to finish logging in.",
    )


# --- settings -------------------------------------------------------------------------------


def _summary() -> rx.Component:
    state = TwoFactorSettingsState
    return rx.cond(
        state.enrolled,
        rx.vstack(
            rx.text(
                rx.text.strong("On. "),
                "After your password, you are asked for a code from your authenticator app. ",
                state.recovery_codes_left.to_string(),
                rx.cond(
                    state.recovery_codes_left == 1,
                    " recovery code left.",
                    " recovery codes left.",
                ),
                size="2",
                id="two-factor-status",
            ),
            _secondary("Turn off", state.start_disable, "two-factor-turn-off"),
            spacing="3",
            width="100%",
        ),
        rx.cond(
            state.has_password,
            rx.vstack(
                rx.text(
                    rx.text.strong("Off. "),
                    "Turn it on to be asked for a code from an authenticator app (such as "
                    "Google Authenticator, Microsoft Authenticator or 1Password) after your "
                    "password. Someone who learns your password still cannot sign in.",
                    size="2",
                    id="two-factor-status",
                ),
                rx.button(
                    "Set up two-factor authentication",
                    type="button",
                    size="3",
                    variant="outline",
                    on_click=state.start,
                    id="two-factor-set-up",
                ),
                spacing="3",
                width="100%",
            ),
            rx.text(
                "You sign in with your provider: its own two-factor settings protect this account.",
                size="2",
                id="two-factor-status",
            ),
        ),
    )


def _buttons(label: str, busy: Var, button_id: str) -> rx.Component:
    """Cancel, then the step's submit: the order and place of the other settings forms."""
    return form_actions(
        rx.button(
            "Cancel",
            type="button",
            variant="soft",
            color_scheme="gray",
            size="3",
            on_click=TwoFactorSettingsState.cancel,
            id="two-factor-cancel",
        ),
        submit_button(label, busy, button_id=button_id, width="auto"),
    )


def _password_step() -> rx.Component:
    state = TwoFactorSettingsState
    return rx.form(
        rx.vstack(
            rx.text("First, confirm it is you.", size="2"),
            _password_input(state.field_errors.get(CURRENT_PASSWORD, "")),
            _buttons("Continue", state.busy, "two-factor-continue"),
            spacing="3",
            width="100%",
        ),
        on_submit=state.check_password,
        width="100%",
    )


def _scan_step() -> rx.Component:
    state = TwoFactorSettingsState
    error = state.field_errors.get(CODE, "")
    return rx.form(
        rx.vstack(
            rx.text(
                rx.text.strong("1. "),
                "Scan this QR code with your authenticator app.",
                size="2",
                id="two-factor-scan-title",
                tab_index=-1,
                on_mount=focus_on_mount("two-factor-scan-title"),
            ),
            rx.box(
                rx.image(
                    src=state.qr_code,
                    alt="QR code that sets up your authenticator app for Onboard",
                    width="200px",
                    height="200px",
                    id="two-factor-qr",
                ),
                # Dark on white in both themes: what cameras read.
                background="white",
                padding="0.5rem",
                border_radius="var(--radius-3)",
                border="1px solid var(--gray-6)",
            ),
            rx.text("Cannot scan it? Type this key into the app instead:", size="2"),
            rx.code(state.secret_text, size="3", id="two-factor-secret", word_break="break-all"),
            _code_field("2. Enter the 6-digit code the app shows", error, numeric=True),
            _buttons("Turn on", state.busy, "two-factor-confirm"),
            spacing="3",
            width="100%",
        ),
        on_submit=state.confirm,
        width="100%",
    )


def _codes_step() -> rx.Component:
    state = TwoFactorSettingsState
    all_codes = state.recovery_codes.join("\n")
    return rx.vstack(
        rx.heading(
            "Save your recovery codes",
            size="3",
            as_="h3",
            id="recovery-codes-title",
            tab_index=-1,
            on_mount=focus_on_mount("recovery-codes-title"),
        ),
        rx.text(
            "If you lose your phone, each of these codes signs you in once instead of a code "
            "from the app. This is the only time they are shown: keep them in a password "
            "manager or print them.",
            size="2",
        ),
        rx.el.ul(
            rx.foreach(
                state.recovery_codes,
                lambda code: rx.el.li(rx.code(code, size="3", variant="ghost")),
            ),
            id="recovery-codes",
            aria_labelledby="recovery-codes-title",
            display="grid",
            grid_template_columns="repeat(auto-fill, minmax(12rem, 1fr))",
            gap="0.5rem",
            list_style="none",
            padding="0",
            margin="0",
            width="100%",
        ),
        rx.hstack(
            _secondary("Copy", rx.set_clipboard(all_codes), "copy-recovery-codes"),
            _secondary(
                "Download",
                rx.download(data=all_codes, filename="onboard-recovery-codes.txt"),
                "download-recovery-codes",
            ),
            spacing="3",
            wrap="wrap",
        ),
        form_error(state.form_error),
        # The label is the box around the checkbox and its text: a 44 px target, one name.
        rx.text(
            rx.flex(
                Checkbox.create(
                    checked=state.codes_saved,
                    on_change=state.set_codes_saved,
                    id="two-factor-codes-saved",
                    size="3",
                ),
                "I have saved these codes somewhere safe",
                align="center",
                spacing="2",
                min_height="44px",
            ),
            as_="label",
            size="2",
        ),
        rx.button("Done", type="button", size="3", on_click=state.finish, id="two-factor-done"),
        spacing="3",
        width="100%",
    )


def _disable_step() -> rx.Component:
    state = TwoFactorSettingsState
    error = state.field_errors.get(CODE, "")
    return rx.form(
        rx.vstack(
            rx.text(
                "To turn it off, enter your password and a code from your authenticator app "
                "(or a recovery code).",
                size="2",
            ),
            _password_input(state.field_errors.get(CURRENT_PASSWORD, "")),
            _code_field("Code from the app, or a recovery code", error, numeric=False),
            _buttons("Turn off", state.busy, "two-factor-confirm-off"),
            spacing="3",
            width="100%",
        ),
        on_submit=state.disable,
        width="100%",
    )


def two_factor_section() -> rx.Component:
    """The "Two-factor authentication" card of ``/settings``."""
    state = TwoFactorSettingsState
    return rx.card(
        rx.vstack(
            rx.heading("Two-factor authentication", size="4", as_="h2", id="two-factor-title"),
            rx.cond(state.stage != "codes", form_error(state.form_error)),
            rx.cond(
                state.loaded,
                rx.match(
                    state.stage,
                    ("password", _password_step()),
                    ("scan", _scan_step()),
                    ("codes", _codes_step()),
                    ("disable", _disable_step()),
                    _summary(),
                ),
                rx.spinner(size="2"),
            ),
            spacing="4",
            width="100%",
        ),
        on_mount=state.load,
        size=rx.breakpoints(initial="3", sm="4"),
        width="100%",
        id="two-factor",
        aria_labelledby="two-factor-title",
        role="region",
    )
