"""The settings page: edit the onboarding answers after onboarding, with the same rules."""

from __future__ import annotations

from collections.abc import AsyncIterator

import reflex as rx

from onboard_app import routes
from onboard_app.services.access import COMPLETED
from onboard_app.services.onboarding import STEP_TABLE, Step
from onboard_app.state.onboarding import SAVE_FAILED, AnswersForm
from onboard_app.state.session import Events, requires


class SettingsState(AnswersForm):
    """Drafts of the answers on ``/settings``; each section saves on its own."""

    @requires(COMPLETED)
    async def load(self) -> Events:
        """``on_load``: the guard, then the saved answers."""
        return await self._open()

    async def _save_section(self, step: Step) -> AsyncIterator[Events]:
        """Save one section: the busy flag reaches the browser first, the result last."""
        if self.saving:
            return
        self.saving = True
        yield None
        try:
            session_state, saved = await self._save(step, editing=True)
        finally:
            self.saving = False
        if not session_state.signed_in:
            yield rx.redirect(routes.login_with_next(routes.SETTINGS), replace=True)
        elif saved:
            yield rx.toast.success(f"{STEP_TABLE[step].title} saved.")
        elif self.errors.get("form"):
            yield rx.toast.error(SAVE_FAILED)
        elif not self.errors:
            yield rx.redirect(session_state._home(), replace=True)

    @requires(COMPLETED)
    async def save_profile(self) -> AsyncIterator[Events]:
        """Save name, role and bio."""
        async for events in self._save_section(Step.PROFILE):
            yield events

    @requires(COMPLETED)
    async def save_interests(self) -> AsyncIterator[Events]:
        """Save the interests (explore re-ranks on its next load)."""
        async for events in self._save_section(Step.INTERESTS):
            yield events

    @requires(COMPLETED)
    async def save_preferences(self) -> AsyncIterator[Events]:
        """Save experience level, digest and theme (the theme applies at once)."""
        async for events in self._save_section(Step.PREFERENCES):
            yield events
