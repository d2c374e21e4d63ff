"""The settings page: edit the onboarding answers after onboarding, with the same rules."""

from __future__ import annotations

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

    async def _save_section(self, step: Step) -> Events:
        session_state, saved = await self._save(step, editing=True)
        if not session_state.signed_in:
            return rx.redirect(routes.login_with_next(routes.SETTINGS), replace=True)
        if saved:
            return rx.toast.success(f"{STEP_TABLE[step].title} saved.")
        if self.errors.get("form"):
            return rx.toast.error(SAVE_FAILED)
        if not self.errors:
            return rx.redirect(session_state._home(), replace=True)
        return None

    @requires(COMPLETED)
    async def save_profile(self) -> Events:
        """Save name, role and bio."""
        return await self._save_section(Step.PROFILE)

    @requires(COMPLETED)
    async def save_interests(self) -> Events:
        """Save the interests (explore re-ranks on its next load)."""
        return await self._save_section(Step.INTERESTS)

    @requires(COMPLETED)
    async def save_preferences(self) -> Events:
        """Save experience level, digest and theme (the theme applies at once)."""
        return await self._save_section(Step.PREFERENCES)
