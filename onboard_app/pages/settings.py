"""``/settings``: edit profile, interests and preferences after onboarding."""

from __future__ import annotations

import reflex as rx

from onboard_app import routes
from onboard_app.components.account_forms import account_sections, delete_account_section
from onboard_app.components.answer_fields import step_fields
from onboard_app.components.deferred import after_first_paint
from onboard_app.components.fields import focus_first_invalid
from onboard_app.components.layout import app_shell, dismiss_toasts, loading, page_heading
from onboard_app.components.passkeys import passkeys_section
from onboard_app.components.signed_in_devices import signed_in_devices
from onboard_app.components.two_factor import two_factor_section
from onboard_app.services.onboarding import StepSpec, steps
from onboard_app.state.settings import SettingsState


def _section(step: StepSpec) -> rx.Component:
    form_id = f"section-{step.key}"
    heading_id = f"{form_id}-title"
    return rx.card(
        rx.form(
            rx.vstack(
                rx.vstack(
                    rx.heading(step.title, size="4", as_="h2", id=heading_id),
                    rx.text(step.blurb, size="2", color="var(--gray-11)"),
                    spacing="1",
                ),
                step_fields(SettingsState, step),
                rx.hstack(
                    rx.spacer(),
                    rx.button(
                        rx.cond(SettingsState.saving, rx.spinner(size="2"), rx.fragment()),
                        "Save",
                        type="submit",
                        size="3",
                        disabled=SettingsState.saving,
                        aria_describedby=heading_id,
                        id=f"save-{step.key}",
                    ),
                    width="100%",
                ),
                spacing="5",
                width="100%",
            ),
            on_submit=lambda _form: [
                focus_first_invalid(form_id),
                SettingsState.save_section(step.key),
            ],
            id=form_id,
            aria_busy=SettingsState.saving,
            aria_labelledby=heading_id,
            width="100%",
        ),
        size=rx.breakpoints(initial="3", sm="4"),
        width="100%",
    )


#: The jump list at the top: each section's heading id and a short name for it.
_JUMPS: tuple[tuple[str, str], ...] = (
    *((f"section-{step.key}-title", step.title) for step in steps()),
    ("email-title", "Email"),
    ("password-title", "Password"),
    ("passkeys-title", "Passkeys"),
    ("two-factor-title", "Two-factor"),
    ("devices-title", "Devices"),
    ("delete-title", "Delete account"),
)


def _jump_list() -> rx.Component:
    """Links to every section (one row, scrolled sideways on a phone): a long page's index."""
    return rx.el.nav(
        rx.el.ul(
            *[
                rx.el.li(rx.el.a(name, href=f"#{target}", class_name="tap jump"))
                for target, name in _JUMPS
            ],
            class_name="jumps",
        ),
        aria_label="Settings sections",
        width="100%",
    )


def settings_page() -> rx.Component:
    """One independently saved section per step of the spec, validated as in the wizard."""
    first, *rest = steps()
    return app_shell(
        rx.vstack(
            rx.hstack(
                page_heading("Settings", heading_id="settings-title"),
                rx.spacer(),
                rx.link(
                    "Back to explore",
                    href=routes.EXPLORE,
                    size="2",
                    class_name="tap",
                    on_click=dismiss_toasts(),
                ),
                width="100%",
                align="center",
            ),
            _jump_list(),
            rx.cond(
                SettingsState.loaded,
                rx.vstack(
                    _section(first),
                    # Below the fold on every screen: drawn right after the first frame.
                    after_first_paint(
                        rx.fragment(
                            *[_section(step) for step in rest],
                            account_sections(),
                            passkeys_section(),
                            two_factor_section(),
                        )
                    ),
                    spacing="4",
                    width="100%",
                ),
                loading(),
            ),
            after_first_paint(rx.fragment(signed_in_devices(), delete_account_section())),
            spacing="5",
            width="100%",
            max_width="720px",
        )
    )
