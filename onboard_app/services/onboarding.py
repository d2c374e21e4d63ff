"""The onboarding step machine: the ordered steps, what each requires, who may open what.

Table-driven and pure: no database, no Reflex. The wizard pages, the guard and the
``finish`` transition all ask this module, so the rules live in one place.

Words used throughout: a user's *reached step* (``User.onboarding_step``) is the first step
whose answers are not saved yet; every step before it may be reopened, none after it.
When every step is saved and the user presses Finish, the reached step becomes
``completed``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Final

from onboard_app.services.text import clean_text
from onboard_app.services.topics import MAX_INTERESTS, MIN_INTERESTS, TOPICS


class Step(StrEnum):
    """Onboarding steps, in order, followed by the terminal ``COMPLETED``."""

    PROFILE = "profile"
    INTERESTS = "interests"
    PREFERENCES = "preferences"
    REVIEW = "review"
    COMPLETED = "completed"


WIZARD_STEPS: Final[tuple[Step, ...]] = (
    Step.PROFILE,
    Step.INTERESTS,
    Step.PREFERENCES,
    Step.REVIEW,
)

ROLES: Final[dict[str, str]] = {
    "developer": "Software developer",
    "designer": "Designer",
    "data": "Data scientist / analyst",
    "product": "Product manager",
    "devops": "DevOps / SRE",
    "student": "Student",
    "other": "Something else",
}
EXPERIENCE_LEVELS: Final[dict[str, str]] = {
    "beginner": "Beginner",
    "intermediate": "Intermediate",
    "advanced": "Advanced",
}
THEMES: Final[dict[str, str]] = {"system": "Match my system", "light": "Light", "dark": "Dark"}

MAX_NAME: Final = 80
MAX_BIO: Final = 500


@dataclass
class Answers:
    """Everything the wizard collects; ``None`` / empty means "not answered yet"."""

    display_name: str = ""
    role: str | None = None
    bio: str = ""
    interests: list[str] = field(default_factory=list)
    experience_level: str | None = None
    email_digest: bool | None = None
    theme: str | None = None


#: A validator takes the raw submitted fields and returns (clean values, errors by field).
Validator = Callable[[Mapping[str, Any]], tuple[dict[str, Any], dict[str, str]]]


class StepInputError(ValueError):
    """Submitted answers for a step do not pass its validation."""

    def __init__(self, errors: dict[str, str]) -> None:
        """Keep the per-field messages.

        Args:
            errors: Field name -> message shown under that field.
        """
        super().__init__("; ".join(f"{k}: {v}" for k, v in errors.items()))
        self.errors = errors


def _is_option(value: object, options: Mapping[str, str]) -> bool:
    """Whether a submitted value is one of the offered options (any type may arrive)."""
    return isinstance(value, str) and value in options


def _text(value: Any, *, max_len: int, multiline: bool = False) -> str | None:
    """Normalise free text; ``None`` if it is not text or holds characters we refuse."""
    cleaned = clean_text(value, max_chars=max_len, multiline=multiline)
    return cleaned if isinstance(cleaned, str) else None


def validate_profile(data: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, str]]:
    """Validate the profile step (display name, role, optional bio).

    Args:
        data: Submitted fields.

    Returns:
        Clean values and errors by field.
    """
    errors: dict[str, str] = {}
    name = _text(data.get("display_name", ""), max_len=MAX_NAME)
    if name is None:
        errors["display_name"] = "Use letters, numbers and punctuation only."
    elif not name:
        errors["display_name"] = "Tell us what to call you."
    elif len(name) > MAX_NAME:
        errors["display_name"] = f"Keep it under {MAX_NAME} characters."
    role = data.get("role")
    if not _is_option(role, ROLES):
        errors["role"] = "Pick the role that fits you best."
    bio = _text(data.get("bio", "") or "", max_len=MAX_BIO, multiline=True)
    if bio is None:
        errors["bio"] = "The bio contains characters we cannot store."
    elif len(bio) > MAX_BIO:
        errors["bio"] = f"Keep the bio under {MAX_BIO} characters ({len(bio)} now)."
    return {"display_name": name, "role": role, "bio": bio}, errors


def validate_interests(data: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, str]]:
    """Validate the interests step (3 to 10 known topics).

    Args:
        data: Submitted fields; ``interests`` is a list of topic slugs.

    Returns:
        Clean values (topics in the catalogue's order) and errors; a repeated or unknown
        topic is refused, as no honest form sends one.
    """
    raw = data.get("interests")
    if not isinstance(raw, list | tuple) or len(raw) > len(TOPICS) * 2:
        return {"interests": []}, {"interests": "Pick topics from the list."}
    chosen = {item for item in raw if isinstance(item, str)}
    if chosen - TOPICS.keys() or len(chosen) != len(raw):
        return {"interests": []}, {"interests": "Pick topics from the list."}
    interests = [slug for slug in TOPICS if slug in chosen]
    if len(interests) < MIN_INTERESTS:
        missing = MIN_INTERESTS - len(interests)
        noun = "topic" if missing == 1 else "topics"
        return {"interests": interests}, {
            "interests": f"Pick at least {MIN_INTERESTS} topics ({missing} more {noun})."
        }
    if len(interests) > MAX_INTERESTS:
        return {"interests": interests}, {
            "interests": f"Pick at most {MAX_INTERESTS} topics ({len(interests)} selected)."
        }
    return {"interests": interests}, {}


def validate_preferences(data: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, str]]:
    """Validate the preferences step (experience level, email digest, theme).

    Args:
        data: Submitted fields; ``email_digest`` may be a bool or "yes"/"no".

    Returns:
        Clean values and errors by field.
    """
    errors: dict[str, str] = {}
    level = data.get("experience_level")
    if not _is_option(level, EXPERIENCE_LEVELS):
        errors["experience_level"] = "Pick your experience level."
    digest = data.get("email_digest")
    if isinstance(digest, str) and digest in ("yes", "no"):
        digest = digest == "yes"
    if not isinstance(digest, bool):
        errors["email_digest"] = "Choose whether you want the weekly digest."
        digest = None
    theme = data.get("theme")
    if not _is_option(theme, THEMES):
        errors["theme"] = "Pick a theme."
    return {"experience_level": level, "email_digest": digest, "theme": theme}, errors


def _no_input(_data: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, str]]:
    return {}, {}


@dataclass(frozen=True)
class StepSpec:
    """One row of the step table.

    Attributes:
        step: The step.
        title: Heading shown in the wizard.
        blurb: One line under the heading.
        validate: Turns submitted fields into clean values and errors.
        is_answered: Whether stored answers satisfy the step.
    """

    step: Step
    title: str
    blurb: str
    validate: Validator
    is_answered: Callable[[Answers], bool]


STEP_TABLE: Final[dict[Step, StepSpec]] = {
    Step.PROFILE: StepSpec(
        Step.PROFILE,
        "Your profile",
        "How you appear to others, and what you do.",
        validate_profile,
        lambda a: not validate_profile(vars(a))[1],
    ),
    Step.INTERESTS: StepSpec(
        Step.INTERESTS,
        "Your interests",
        f"Pick {MIN_INTERESTS} to {MAX_INTERESTS} topics: explore ranks them first.",
        validate_interests,
        lambda a: not validate_interests({"interests": a.interests})[1],
    ),
    Step.PREFERENCES: StepSpec(
        Step.PREFERENCES,
        "Preferences",
        "Tune what you see and hear from us.",
        validate_preferences,
        lambda a: not validate_preferences(vars(a))[1],
    ),
    Step.REVIEW: StepSpec(
        Step.REVIEW,
        "Review",
        "Check your answers, then finish to open Onboard.",
        _no_input,
        lambda a: True,
    ),
}


def parse_step(value: object) -> Step | None:
    """The step a string names, or ``None`` for anything else."""
    if isinstance(value, str):
        try:
            return Step(value)
        except ValueError:
            return None
    return None


def step_index(step: Step) -> int:
    """Position of a step (``COMPLETED`` is after every wizard step)."""
    return len(WIZARD_STEPS) if step is Step.COMPLETED else WIZARD_STEPS.index(step)


def is_completed(reached: Step) -> bool:
    """Whether onboarding is finished."""
    return reached is Step.COMPLETED


def can_open(step: Step, reached: Step) -> bool:
    """Whether a user whose reached step is ``reached`` may open wizard ``step``.

    Args:
        step: The wizard step requested.
        reached: The user's reached step.

    Returns:
        True for the reached step and every step before it, while onboarding is unfinished.
    """
    if reached is Step.COMPLETED or step is Step.COMPLETED:
        return False
    return step_index(step) <= step_index(reached)


def next_step(step: Step) -> Step:
    """The step after ``step`` (``COMPLETED`` after review)."""
    index = step_index(step)
    return WIZARD_STEPS[index + 1] if index + 1 < len(WIZARD_STEPS) else Step.COMPLETED


def previous_step(step: Step) -> Step | None:
    """The step before ``step``, or ``None`` for the first."""
    index = step_index(step)
    return WIZARD_STEPS[index - 1] if index > 0 else None


def reached_after_save(step: Step, reached: Step) -> Step:
    """The reached step once ``step`` is saved: never moves backwards, never completes.

    Args:
        step: The step just saved.
        reached: The reached step before saving.

    Returns:
        The new reached step (review at most: only Finish completes).
    """
    candidate = next_step(step)
    if candidate is Step.COMPLETED:
        candidate = Step.REVIEW
    return candidate if step_index(candidate) > step_index(reached) else reached


def unanswered_steps(answers: Answers) -> list[Step]:
    """The wizard steps whose stored answers are missing or no longer valid.

    Args:
        answers: The stored answers.

    Returns:
        Steps in order; empty when Finish may complete onboarding.
    """
    return [step for step in WIZARD_STEPS if not STEP_TABLE[step].is_answered(answers)]
