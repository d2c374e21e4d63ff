"""The onboarding wizard: load saved answers, save a step on Next, Finish with a re-mint."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from typing import Any

import reflex as rx
from sqlalchemy.exc import SQLAlchemyError

from onboard_app import routes
from onboard_app.services import access, users
from onboard_app.services.audit import audit
from onboard_app.services.onboarding import (
    EXPERIENCE_LEVELS,
    MAX_BIO,
    MAX_NAME,
    ROLES,
    STEP_TABLE,
    THEMES,
    WIZARD_STEPS,
    Answers,
    Step,
    StepInputError,
    next_step,
    parse_step,
    previous_step,
    step_index,
)
from onboard_app.services.text import TextRefused, clean_text
from onboard_app.services.topics import MAX_INTERESTS, TOPICS
from onboard_app.state.session import (
    Events,
    SessionState,
    SessionUnavailable,
    requires,
    session_of,
)

log = logging.getLogger("onboard.onboarding")

SAVE_FAILED = "We could not save your answers just now. Nothing was lost: try again."


def _is_choice(value: object, options: dict[str, str]) -> bool:
    """Whether a (possibly crafted) argument is one of the offered options."""
    return isinstance(value, str) and value in options


class AnswersForm(rx.State):
    """Editable answers shared by the wizard and the settings page.

    The vars are a draft: the database keeps only what a submit handler validated.
    """

    display_name: str = ""
    role: str = ""
    bio: str = ""
    interests: list[str] = []
    experience_level: str = ""
    email_digest: str = ""
    theme: str = ""
    avatar_url: str = ""
    errors: dict[str, str] = {}
    saving: bool = False
    loaded: bool = False

    @rx.var
    def interest_count(self) -> int:
        """How many topics are selected."""
        return len(self.interests)

    @rx.var
    def bio_length(self) -> int:
        """Characters typed in the bio."""
        return len(self.bio)

    @rx.var
    def role_label(self) -> str:
        """The chosen role as shown to people."""
        return ROLES.get(self.role, "Not chosen")

    @rx.var
    def experience_label(self) -> str:
        """The chosen experience level as shown to people."""
        return EXPERIENCE_LEVELS.get(self.experience_level, "Not chosen")

    @rx.var
    def theme_label(self) -> str:
        """The chosen theme as shown to people."""
        return THEMES.get(self.theme, "Not chosen")

    @rx.var
    def digest_label(self) -> str:
        """The digest choice as shown to people."""
        return {"yes": "Weekly digest on", "no": "No digest"}.get(self.email_digest, "Not chosen")

    @rx.var
    def interest_labels(self) -> list[str]:
        """The chosen topics' labels."""
        return [TOPICS[slug] for slug in self.interests if slug in TOPICS]

    def _draft_text(self, field: str, value: object, limit: int, multiline: bool) -> None:
        """Keep typed text as the draft of ``field``, or say why it cannot be kept."""
        text = clean_text(value, max_chars=limit, multiline=multiline, strip=False)
        if isinstance(text, TextRefused):
            self.errors = {**self.errors, field: text.message}
            return
        setattr(self, field, text[: limit * 2])
        self.errors.pop(field, None)

    @requires(access.SIGNED_IN)
    def set_display_name(self, value: str) -> None:
        """Draft the display name."""
        self._draft_text("display_name", value, MAX_NAME, multiline=False)

    @requires(access.SIGNED_IN)
    def set_role(self, value: str) -> None:
        """Draft the role."""
        if _is_choice(value, ROLES):
            self.role = value
            self.errors.pop("role", None)

    @requires(access.SIGNED_IN)
    def set_bio(self, value: str) -> None:
        """Draft the bio."""
        self._draft_text("bio", value, MAX_BIO, multiline=True)

    @requires(access.SIGNED_IN)
    def toggle_interest(self, topic: str) -> None:
        """Select or unselect a topic."""
        if not isinstance(topic, str) or topic not in TOPICS:
            return
        if topic in self.interests:
            self.interests = [t for t in self.interests if t != topic]
        elif len(self.interests) < MAX_INTERESTS:
            self.interests = [*self.interests, topic]
        else:
            self.errors["interests"] = f"You can pick at most {MAX_INTERESTS} topics."
            return
        self.errors.pop("interests", None)

    @requires(access.SIGNED_IN)
    def set_experience_level(self, value: str) -> None:
        """Draft the experience level."""
        if _is_choice(value, EXPERIENCE_LEVELS):
            self.experience_level = value
            self.errors.pop("experience_level", None)

    @requires(access.SIGNED_IN)
    def set_email_digest(self, value: str) -> None:
        """Draft the digest choice (``yes`` / ``no``)."""
        if _is_choice(value, {"yes": "", "no": ""}):
            self.email_digest = value
            self.errors.pop("email_digest", None)

    @requires(access.SIGNED_IN)
    def set_theme(self, value: str) -> None:
        """Draft the theme."""
        if _is_choice(value, THEMES):
            self.theme = value
            self.errors.pop("theme", None)

    def _fill(self, answers: Answers, avatar_url: str | None) -> None:
        self.display_name = answers.display_name
        self.role = answers.role or ""
        self.bio = answers.bio
        self.interests = list(answers.interests)
        self.experience_level = answers.experience_level or ""
        self.email_digest = (
            "" if answers.email_digest is None else ("yes" if answers.email_digest else "no")
        )
        self.theme = answers.theme or ""
        self.avatar_url = avatar_url or ""
        self.errors = {}
        self.loaded = True

    async def _open(self) -> Events:
        """The saved answers into the drafts (a page's ``on_load``, after the gate)."""
        session_state, session = await session_of(self)
        if session is None:  # not reached: the loaders require a session
            return None
        try:
            answers = await asyncio.to_thread(users.load_answers, session.user.id)
        except users.UserGone:
            await session_state._forget()
            return rx.redirect(routes.LOGIN, replace=True)
        self._fill(answers, session.user.avatar_url)
        return None

    def _submitted(self, step: Step) -> dict[str, Any]:
        fields: dict[Step, dict[str, Any]] = {
            Step.PROFILE: {"display_name": self.display_name, "role": self.role, "bio": self.bio},
            Step.INTERESTS: {"interests": list(self.interests)},
            Step.PREFERENCES: {
                "experience_level": self.experience_level,
                "email_digest": self.email_digest,
                "theme": self.theme,
            },
        }
        return fields.get(step, {})

    async def _save(self, step: Step, *, editing: bool) -> tuple[SessionState, bool]:
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
                users.save_step, session.user.id, step, self._submitted(step), editing=editing
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
        if step is Step.PREFERENCES:
            session_state.theme = self.theme
        if user.onboarding_step != session.claims.onboarding_step:
            session_state._remint_from(session, user)
        else:
            session_state._show(user)
        return session_state, True


class OnboardingState(AnswersForm):
    """The wizard pages ``/onboarding/<step>``."""

    current_step: str = ""

    @rx.var
    def step_number(self) -> int:
        """1-based position of the open step."""
        step = parse_step(self.current_step)
        return step_index(step) + 1 if step and step is not Step.COMPLETED else 0

    @rx.var
    def step_title(self) -> str:
        """Heading of the open step."""
        step = parse_step(self.current_step)
        return STEP_TABLE[step].title if step in STEP_TABLE else ""

    @rx.var
    def step_blurb(self) -> str:
        """One line under the heading."""
        step = parse_step(self.current_step)
        return STEP_TABLE[step].blurb if step in STEP_TABLE else ""

    @requires(access.ONBOARDING)
    async def open_step(self) -> Events:
        """``on_load`` of every wizard page: the page's step if it is open, its answers."""
        session = (await session_of(self))[1]
        if session is None:  # not reached: the rule requires a session
            return None
        target = access.decide(self.router.url.path, session.user.onboarding_step)
        if target is not None:
            self.current_step = ""
            return rx.redirect(target, replace=True)
        self.current_step = self.router.url.path.rstrip("/").rsplit("/", 1)[-1]
        return await self._open()

    async def _submit(self, step: Step) -> AsyncIterator[Events]:
        """Save a step: the busy flag reaches the browser first, the redirect last."""
        if self.saving:
            return
        self.saving = True
        yield None
        try:
            session_state, saved = await self._save(step, editing=False)
        finally:
            self.saving = False
        if not session_state.signed_in:
            yield rx.redirect(routes.login_with_next(routes.onboarding(step)), replace=True)
        elif saved:
            yield rx.redirect(routes.onboarding(next_step(step)))
        elif self.errors.get("form"):
            yield rx.toast.error(self.errors["form"])
        elif not self.errors:
            # Not open (another tab moved on): back to where the user is.
            yield rx.redirect(session_state._home(), replace=True)

    @requires(access.step_open(Step.PROFILE))
    async def submit_profile(self) -> AsyncIterator[Events]:
        """Save the profile step and go to the next one."""
        async for events in self._submit(Step.PROFILE):
            yield events

    @requires(access.step_open(Step.INTERESTS))
    async def submit_interests(self) -> AsyncIterator[Events]:
        """Save the interests step and go to the next one."""
        async for events in self._submit(Step.INTERESTS):
            yield events

    @requires(access.step_open(Step.PREFERENCES))
    async def submit_preferences(self) -> AsyncIterator[Events]:
        """Save the preferences step and go to the review."""
        async for events in self._submit(Step.PREFERENCES):
            yield events

    @requires(access.ONBOARDING)
    def go_back(self) -> Events:
        """Open the previous step (drafts on this page are kept until reload)."""
        step = parse_step(self.current_step)
        before = previous_step(step) if step and step is not Step.COMPLETED else None
        return rx.redirect(routes.onboarding(before)) if before else None

    @requires(access.ONBOARDING)
    async def finish_onboarding(self) -> AsyncIterator[Events]:
        """Complete onboarding and re-mint the session token from the updated row.

        Takes no arguments: who is finishing comes from the verified token, what the new
        token says comes from the database.
        """
        if self.saving:
            return
        self.saving = True
        yield None
        try:
            yield await self._finish()
        finally:
            self.saving = False

    async def _finish(self) -> Events:
        try:
            session_state, session = await session_of(self)
        except SessionUnavailable:
            return rx.toast.error(SAVE_FAILED)
        if session is None:  # not reached: the rule requires a session
            return None
        try:
            result = await asyncio.to_thread(users.complete_onboarding, session.user.id)
        except users.StepsMissing as missing:
            first = missing.steps[0]
            names = ", ".join(STEP_TABLE[s].title.lower() for s in missing.steps)
            return [
                rx.toast.error(f"Almost there: please complete {names} first."),
                rx.redirect(routes.onboarding(first), replace=True),
            ]
        except users.UserGone:
            await session_state._forget()
            return rx.redirect(routes.LOGIN, replace=True)
        except SQLAlchemyError:
            log.exception("finishing onboarding for user %s failed", session.user.id)
            return rx.toast.error(SAVE_FAILED)
        session_state._remint_from(session, result.user)
        if result.transitioned:
            audit("finish", user_id=session.user.id)
        self.loaded = False
        return [
            rx.redirect(routes.EXPLORE, replace=True),
            rx.toast.success("You're all set. Welcome to Onboard!"),
        ]


STEP_LABELS = tuple((step.value, STEP_TABLE[step].title) for step in WIZARD_STEPS)
