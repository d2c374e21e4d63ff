"""The settings page: edit the onboarding answers after onboarding, section by section."""

from __future__ import annotations

from collections.abc import AsyncIterator

import reflex as rx

from onboard_app import routes
from onboard_app.services.access import COMPLETED
from onboard_app.services.onboarding import spec_of
from onboard_app.state.onboarding import SAVE_FAILED, AnswersForm
from onboard_app.state.session import Events, requires


class SettingsState(AnswersForm, rx.State):
    """Drafts of the answers on ``/settings``; each step of the spec is a section."""

    @requires(COMPLETED)
    async def load(self) -> Events:
        """``on_load``: the saved answers."""
        return await self._open()

    @requires(COMPLETED)
    def set_field(self, name: str, value: str) -> None:
        """Draft one field (text, a choice, yes/no)."""
        self._draft(name, value)

    @requires(COMPLETED)
    def toggle_choice(self, name: str, option: str) -> None:
        """Select or unselect one option of a multiple-choice field."""
        self._toggle(name, option)

    @requires(COMPLETED)
    async def save_section(self, section: str) -> AsyncIterator[Events]:
        """Save one section (a step of the spec): the busy flag first, the result last."""
        spec = spec_of(section)
        if self.saving or spec is None:
            return
        self.saving = True
        yield None
        try:
            session_state, saved = await self._save(spec.key, editing=True)
        finally:
            self.saving = False
        if not session_state.signed_in:
            yield rx.redirect(routes.login_with_next(routes.SETTINGS), replace=True)
        elif saved:
            yield rx.toast.success(f"{spec.title} saved.")
        elif self.errors.get("form"):
            yield rx.toast.error(SAVE_FAILED)
        elif not self.errors:
            yield rx.redirect(session_state._home(), replace=True)
