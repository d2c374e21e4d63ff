"""The onboarding wizard, driven by the step spec: one draft, one setter, one submit.

Nothing here names a field or a step: the spec (``services/onboarding.py``) says what
each step asks, and the drafts, validation, storage and re-mint follow from it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Sequence
from typing import Any

import reflex as rx
from sqlalchemy.exc import SQLAlchemyError

from onboard_app import routes
from onboard_app.services import access, users
from onboard_app.services.audit import audit
from onboard_app.services.onboarding import (
    Answers,
    Kind,
    StepInputError,
    blurb_of,
    field_of,
    fields_of,
    next_step,
    parse_step,
    previous_step,
    spec_of,
    step_index,
    steps,
    title_of,
    wizard_steps,
)
from onboard_app.services.text import TextRefused, clean_text
from onboard_app.state.explore import ExploreState
from onboard_app.state.session import (
    Events,
    SessionState,
    SessionUnavailable,
    requires,
    session_of,
)

log = logging.getLogger("onboard.onboarding")

SAVE_FAILED = "We could not save your answers just now. Nothing was lost: try again."


def _all_fields() -> tuple[str, ...]:
    return tuple(f.name for spec in steps() for f in spec.fields)


class AnswersForm(rx.State, mixin=True):
    """Drafts of the spec's answers, shared machinery of the wizard and the settings page.

    ``values`` holds every single-valued field as text (choices by value, yes/no as
    ``yes``/``no``), ``selections`` every multiple choice. The database keeps only what a
    submit validated.
    """

    values: dict[str, str] = {}
    selections: dict[str, list[str]] = {}
    errors: dict[str, str] = {}
    avatar_url: str = ""
    saving: bool = False
    loaded: bool = False

    @rx.var
    def shown(self) -> dict[str, str]:
        """Every draft as people read it (the review and the settings summary)."""
        shown: dict[str, str] = {}
        for name in _all_fields():
            spec = field_of(name)
            if spec is None:
                continue
            raw: Any = self.selections.get(name, [])
            if spec.kind is not Kind.MULTIPLE_CHOICE:
                raw = self.values.get(name, "") or None
                if spec.kind is Kind.YES_NO and raw is not None:
                    raw = raw == "yes"
            shown[name] = spec.display(raw)
        return shown

    def _editable(self) -> Sequence[str]:
        """The fields a draft may set now (the wizard: the open step's; settings: all)."""
        return _all_fields()

    def _draft(self, name: object, value: object) -> None:
        """Keep a typed or chosen value as the draft of a single-valued field."""
        spec = field_of(name)
        if spec is None or spec.name not in self._editable():
            return
        if spec.kind is Kind.MULTIPLE_CHOICE:
            return
        if spec.kind in (Kind.TEXT, Kind.LONG_TEXT):
            text = clean_text(
                value, max_chars=spec.max_chars, multiline=spec.kind is Kind.LONG_TEXT, strip=False
            )
            if isinstance(text, TextRefused):
                self.errors = {**self.errors, spec.name: text.message}
                return
            self.values[spec.name] = text[: spec.max_chars * 2]
        elif spec.kind is Kind.YES_NO:
            if value not in ("yes", "no"):
                return
            self.values[spec.name] = str(value)
        elif isinstance(value, str) and value in spec.options:
            self.values[spec.name] = value
        else:
            return
        self.errors.pop(spec.name, None)

    def _toggle(self, name: object, option: object) -> None:
        """Select or unselect one option of a multiple choice."""
        spec = field_of(name)
        if spec is None or spec.name not in self._editable():
            return
        if spec.kind is not Kind.MULTIPLE_CHOICE or not isinstance(option, str):
            return
        if option not in spec.options:
            return
        chosen = list(self.selections.get(spec.name, []))
        if option in chosen:
            chosen.remove(option)
        elif spec.max_choices and len(chosen) >= spec.max_choices:
            self.errors = {
                **self.errors,
                spec.name: f"You can pick at most {spec.max_choices} {spec.label.lower()}.",
            }
            return
        else:
            chosen.append(option)
        self.selections[spec.name] = chosen
        self.errors.pop(spec.name, None)

    def _fill(self, answers: Answers, avatar_url: str | None) -> None:
        values: dict[str, str] = {}
        selections: dict[str, list[str]] = {}
        for name in _all_fields():
            spec = field_of(name)
            value = answers.get(name)
            if spec is None:
                continue
            if spec.kind is Kind.MULTIPLE_CHOICE:
                selections[name] = list(value or [])
            elif spec.kind is Kind.YES_NO:
                values[name] = "" if value is None else ("yes" if value else "no")
            else:
                values[name] = value or ""
        self.values, self.selections = values, selections
        self.avatar_url = avatar_url or ""
        self.errors = {}
        self.loaded = True

    def _submitted(self, step: str) -> dict[str, Any]:
        """The drafts of one step's fields, as the validators take them."""
        submitted: dict[str, Any] = {}
        for name in fields_of(step):
            spec = field_of(name)
            if spec is not None and spec.kind is Kind.MULTIPLE_CHOICE:
                submitted[name] = list(self.selections.get(name, []))
            else:
                submitted[name] = self.values.get(name, "")
        return submitted

    async def _open(self, step: str | None = None) -> Events:
        """The saved answers into the drafts (a page's ``on_load``, after the gate).

        Args:
            step: The wizard step the page opens: its ``opened`` event is recorded in the
                same transaction (``None``: a page that is no step, settings).
        """
        session_state, session = await session_of(self)
        if session is None:  # not reached: the loaders require a session
            return None
        try:
            if step is None:
                answers = await asyncio.to_thread(users.load_answers, session.user.id)
            else:
                opened = await asyncio.to_thread(users.open_step, session.user.id, step)
                answers = opened.answers
        except users.UserGone:
            await session_state._forget()
            return rx.redirect(routes.LOGIN, replace=True)
        self._fill(answers, session.user.avatar_url)
        return None

    async def _save(
        self, step: str, *, editing: bool, skip: bool = False
    ) -> tuple[SessionState, bool]:
        """Validate and store one step's draft; re-mint the token if its claims changed."""
        session_state = await self.get_state(SessionState)
        try:
            session = (await session_of(self))[1]
        except SessionUnavailable:
            self.errors = {"form": SAVE_FAILED}
            return session_state, False
        if session is None:
            return session_state, False
        try:
            user = await asyncio.to_thread(
                users.save_step,
                session.user.id,
                step,
                {} if skip else self._submitted(step),
                editing=editing,
                skip=skip,
            )
        except StepInputError as problem:
            self.errors = problem.errors
            return session_state, False
        except users.StepNotOpen:
            return session_state, False
        except users.UserGone:
            await session_state._forget()
            return session_state, False
        except SQLAlchemyError:
            log.exception("saving step %s for user %s failed", step, session.user.id)
            self.errors = {"form": SAVE_FAILED}
            return session_state, False
        self.errors = {}
        if "theme" in fields_of(step):
            session_state.theme = self.values.get("theme") or "system"
        if user.onboarding_step != session.claims.onboarding_step:
            session_state._remint_from(session, user)
        else:
            session_state._show(user)
        return session_state, True


class OnboardingState(AnswersForm, rx.State):
    """The wizard pages ``/onboarding/<step>``."""

    current_step: str = ""
    #: The step this tab opened (after its loader checked it): what submit saves.
    _open_step: str = ""

    @rx.var
    def step_number(self) -> int:
        """1-based position of the open step."""
        step = parse_step(self.current_step)
        return step_index(step) + 1 if step in wizard_steps() else 0

    @rx.var
    def step_title(self) -> str:
        """Heading of the open step."""
        return title_of(self.current_step) if self.current_step else ""

    @rx.var
    def step_blurb(self) -> str:
        """One line under the heading."""
        return blurb_of(self.current_step) if self.current_step else ""

    @rx.var
    def step_optional(self) -> bool:
        """Whether the open step may be skipped."""
        spec = spec_of(self.current_step)
        return bool(spec and spec.optional)

    def _editable(self) -> Sequence[str]:
        return fields_of(self._open_step)

    @requires(access.ONBOARDING)
    async def open_step(self) -> Events:
        """``on_load`` of every wizard page: the page's step if it is open, its answers."""
        session = (await session_of(self))[1]
        if session is None:  # not reached: the rule requires a session
            return None
        target = access.decide(
            self.router.url.path,
            session.user.onboarding_step,
            verified=session.user.email_verified,
        )
        if target is not None:
            self.current_step = self._open_step = ""
            return rx.redirect(target, replace=True)
        self.current_step = self._open_step = self.router.url.path.rstrip("/").rsplit("/", 1)[-1]
        return await self._open(self._open_step)

    @requires(access.OPEN_STEP)
    def set_field(self, name: str, value: str) -> None:
        """Draft one field of the open step (text, a choice, yes/no)."""
        self._draft(name, value)

    @requires(access.OPEN_STEP)
    def toggle_choice(self, name: str, option: str) -> None:
        """Select or unselect one option of a multiple-choice field of the open step."""
        self._toggle(name, option)

    @requires(access.OPEN_STEP)
    async def submit(self) -> AsyncIterator[Events]:
        """Save the open step and go to the next one (no arguments: the tab knows its step)."""
        async for events in self._advance(skip=False):
            yield events

    @requires(access.OPEN_STEP)
    async def skip(self) -> AsyncIterator[Events]:
        """Skip the open step, if it is optional (remembered as skipped)."""
        async for events in self._advance(skip=True):
            yield events

    async def _advance(self, *, skip: bool) -> AsyncIterator[Events]:
        """Save (or skip) the open step: the busy flag reaches the browser first."""
        step = self._open_step
        if self.saving or spec_of(step) is None:
            return
        self.saving = True
        yield None
        try:
            session_state, saved = await self._save(step, editing=False, skip=skip)
        finally:
            self.saving = False
        if not session_state.signed_in:
            yield rx.redirect(routes.login_with_next(routes.onboarding(step)), replace=True)
        elif saved:
            reached = parse_step(session_state.reached_step)
            following = next_step(step)
            if reached and step_index(reached) > step_index(following):
                following = reached  # a returning user skips what is already answered
            # The next page's loader opens it one round trip later; its answers typed before
            # then must not be dropped (the step is open: the save just reached it).
            self.current_step = self._open_step = following
            yield rx.redirect(routes.onboarding(following))
        elif self.errors.get("form"):
            yield rx.toast.error(self.errors["form"])
        elif not self.errors:
            # Not open (another tab moved on, or not optional): back to where the user is.
            yield rx.redirect(session_state._home(), replace=True)

    @requires(access.ONBOARDING)
    def go_back(self) -> Events:
        """Open the previous step (drafts on this page are kept until reload)."""
        before = previous_step(self.current_step) if self.current_step else None
        if before is None:
            return None
        self.current_step = self._open_step = before  # an earlier step is always open
        return rx.redirect(routes.onboarding(before))

    @requires(access.ONBOARDING)
    async def finish_onboarding(self) -> AsyncIterator[Events]:
        """Complete onboarding and re-mint the session token from the updated row.

        Takes no arguments: who is finishing comes from the verified token, what the new
        token says comes from the database.
        """
        if self.saving:
            return
        # Only the button shows that it is busy: the browser has little to redraw while
        # the server finishes (on one machine, the two share the cores).
        self.saving = True
        yield None
        try:
            yield await self._finish()
        finally:
            if self.saving:  # not finished (a success cleared it already)
                self.saving = False

    async def _finish(self) -> Events:
        """Complete onboarding; on success one update: token, explore's first page, redirect.

        The delta carries the new token, this page's flags and explore's first page of
        results: no message after the redirect makes the browser redraw the page it is
        leaving while explore renders, and explore needs no round trip of its own.
        """
        try:
            session_state, session = await session_of(self)
        except SessionUnavailable:
            return rx.toast.error(SAVE_FAILED)
        if session is None:  # not reached: the rule requires a session
            return None
        try:
            result = await asyncio.to_thread(users.complete_onboarding, session.user.id)
        except users.StepsMissing as missing:
            names = ", ".join(title_of(s).lower() for s in missing.steps)
            return [
                rx.toast.error(f"Almost there: please complete {names} first."),
                rx.redirect(routes.onboarding(missing.steps[0]), replace=True),
            ]
        except users.UserGone:
            await session_state._forget()
            return rx.redirect(routes.LOGIN, replace=True)
        except SQLAlchemyError:
            log.exception("finishing onboarding for user %s failed", session.user.id)
            return rx.toast.error(SAVE_FAILED)
        session_state._remint_from(session, result.user)
        if result.transitioned:
            audit("finish", user_id=session.user.id, flow_version=result.user.flow_version)
        # Explore's first page (and its welcome) travels with the token and the redirect.
        interests = list(result.answers.get("interests"))
        await (await self.get_state(ExploreState))._prefill(session.user.id, interests)
        # This page's content stays as it is until explore replaces it: redrawing the page
        # being left would delay explore (explore's loader empties it, `_close_wizard`).
        self.saving = False
        return rx.redirect(routes.EXPLORE, replace=True)
