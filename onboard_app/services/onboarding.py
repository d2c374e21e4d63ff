"""The onboarding flow as data: one declarative step spec, and the step machine built on it.

Pure: no database, no Reflex. Validation, "is this step answered", storage, the wizard
state, the step pages, the review summary, the settings sections and the handler access
rules all read :data:`STEPS`. **Adding a step is one entry in STEPS** (plus a migration only
if its answers get their own columns; otherwise they are stored as JSON).

Words used throughout: a user's *reached step* (``User.onboarding_step``) is the first step
whose answers are not saved yet; every step before it may be reopened, none after it. The
wizard ends with :data:`REVIEW`; Finish moves the user to :data:`COMPLETED`. Each step says
in which flow version it appeared (``since``): a user who completed an older version is
taken through the required steps added since, and only those.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Final

from onboard_app.services.text import clean_text
from onboard_app.services.topics import MAX_INTERESTS, MIN_INTERESTS, TOPICS

#: A step key (``profile``...), or :data:`REVIEW` / :data:`COMPLETED`.
Step = str

REVIEW: Final = "review"
COMPLETED: Final = "completed"


class Kind(StrEnum):
    """What a field asks for; each kind has one control and one validator."""

    TEXT = "text"
    LONG_TEXT = "long_text"
    SINGLE_CHOICE = "single_choice"
    MULTIPLE_CHOICE = "multiple_choice"
    YES_NO = "yes_no"


#: A custom check of a field's clean value: the message to show, or ``None`` if fine.
Check = Callable[[Any], "str | None"]


@dataclass(frozen=True)
class Field:
    """One question of a step.

    Attributes:
        name: Storage and form name (a column of the same name is used when one exists).
        label: Shown above the control and in the review.
        kind: What it asks for.
        options: Value -> label, for the choice kinds (and the two labels of yes/no).
        required: Whether the step is answered without it.
        max_chars: Longest text accepted.
        min_choices: Fewest options of a multiple choice.
        max_choices: Most options of a multiple choice (0: no limit).
        placeholder: Placeholder of a text control.
        hint: One line under the control.
        missing: The message when a required field is left empty.
        check: A custom check of the clean value.
        control: A custom control's name (see ``components/answer_fields.py``), else the
            kind's default.
    """

    name: str
    label: str
    kind: Kind
    options: Mapping[str, str] = field(default_factory=dict)
    required: bool = True
    max_chars: int = 200
    min_choices: int = 1
    max_choices: int = 0
    placeholder: str = ""
    hint: str = ""
    missing: str = ""
    check: Check | None = None
    control: str | None = None

    @property
    def empty(self) -> Any:
        """The value of an unanswered field."""
        if self.kind is Kind.MULTIPLE_CHOICE:
            return []
        if self.kind in (Kind.TEXT, Kind.LONG_TEXT):
            return ""
        return None

    def display(self, value: Any) -> str:
        """The value as people read it (review, settings)."""
        if value is None or value in ("", []):
            return "Not answered"
        if self.kind is Kind.MULTIPLE_CHOICE:
            return ", ".join(self.options.get(v, v) for v in value)
        if self.kind is Kind.YES_NO:
            yes, no = self.yes_no_labels
            return yes if value else no
        if self.kind is Kind.SINGLE_CHOICE:
            return self.options.get(value, value)
        return str(value)

    @property
    def yes_no_labels(self) -> tuple[str, str]:
        """The labels of yes and no."""
        return self.options.get("yes", "Yes"), self.options.get("no", "No")


@dataclass(frozen=True)
class StepSpec:
    """One step of the wizard.

    Attributes:
        key: URL segment and stored step name.
        title: Heading in the wizard, the review and settings.
        blurb: One line under the heading.
        fields: Its questions, in order.
        optional: Whether it may be skipped (remembered as skipped).
        since: The flow version that added it.
    """

    key: str
    title: str
    blurb: str
    fields: tuple[Field, ...]
    optional: bool = False
    since: int = 1


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

#: The flow. Add a step here; everything else follows.
STEPS: tuple[StepSpec, ...] = (
    StepSpec(
        "profile",
        "Your profile",
        "How you appear to others, and what you do.",
        (
            Field(
                "display_name",
                "Display name",
                Kind.TEXT,
                max_chars=MAX_NAME,
                placeholder="Ada Lovelace",
                missing="Tell us what to call you.",
            ),
            Field(
                "role",
                "Role",
                Kind.SINGLE_CHOICE,
                options=ROLES,
                missing="Pick the role that fits you best.",
                control="select",
            ),
            Field(
                "bio",
                "Bio (optional)",
                Kind.LONG_TEXT,
                required=False,
                max_chars=MAX_BIO,
                placeholder="A sentence or two about you.",
                hint=f"Up to {MAX_BIO} characters.",
            ),
        ),
    ),
    StepSpec(
        "interests",
        "Your interests",
        f"Pick {MIN_INTERESTS} to {MAX_INTERESTS} topics: explore ranks them first.",
        (
            Field(
                "interests",
                "Topics",
                Kind.MULTIPLE_CHOICE,
                options=TOPICS,
                min_choices=MIN_INTERESTS,
                max_choices=MAX_INTERESTS,
                control="chips",
            ),
        ),
    ),
    StepSpec(
        "preferences",
        "Preferences",
        "Tune what you see and hear from us.",
        (
            Field(
                "experience_level",
                "Experience level",
                Kind.SINGLE_CHOICE,
                options=EXPERIENCE_LEVELS,
                missing="Pick your experience level.",
            ),
            Field(
                "email_digest",
                "Weekly email digest",
                Kind.YES_NO,
                options={"yes": "Yes, send it", "no": "No thanks"},
                missing="Choose whether you want the weekly digest.",
            ),
            Field("theme", "Theme", Kind.SINGLE_CHOICE, options=THEMES, missing="Pick a theme."),
        ),
    ),
)

REVIEW_TITLE: Final = "Review"
REVIEW_BLURB: Final = "Check your answers, then finish to open Onboard."


# --- the flow -------------------------------------------------------------------------------


def steps() -> tuple[StepSpec, ...]:
    """The steps that ask something, in order (read at call time: tests extend STEPS)."""
    return STEPS


def wizard_steps() -> tuple[Step, ...]:
    """Every wizard page's step, in order: the spec's steps, then the review."""
    return (*(spec.key for spec in steps()), REVIEW)


def flow_version() -> int:
    """The current version of the flow (the newest ``since``)."""
    return max((spec.since for spec in steps()), default=1)


def spec_of(step: object) -> StepSpec | None:
    """The spec of a step key, or ``None`` (review, completed, anything else)."""
    return next((spec for spec in steps() if spec.key == step), None)


def field_of(name: object) -> Field | None:
    """The field of that name in any step, or ``None``."""
    return next((f for spec in steps() for f in spec.fields if f.name == name), None)


def first_step() -> Step:
    """Where a new user starts."""
    return wizard_steps()[0]


def title_of(step: Step) -> str:
    """The heading of a wizard step."""
    spec = spec_of(step)
    return spec.title if spec else REVIEW_TITLE


def blurb_of(step: Step) -> str:
    """The line under a wizard step's heading."""
    spec = spec_of(step)
    return spec.blurb if spec else REVIEW_BLURB


def parse_step(value: object) -> Step | None:
    """The step a string names (a wizard step or ``completed``), or ``None``."""
    if isinstance(value, str) and (value in wizard_steps() or value == COMPLETED):
        return value
    return None


def step_index(step: Step) -> int:
    """Position of a step (``completed`` is after every wizard step)."""
    order = wizard_steps()
    return order.index(step) if step in order else len(order)


def can_open(step: Step, reached: Step) -> bool:
    """Whether a user whose reached step is ``reached`` may open wizard ``step``.

    Args:
        step: The wizard step requested.
        reached: The user's reached step.

    Returns:
        True for the reached step and every step before it, while onboarding is unfinished.
    """
    if reached == COMPLETED or step not in wizard_steps():
        return False
    return step_index(step) <= step_index(reached)


def next_step(step: Step) -> Step:
    """The step after ``step`` (``completed`` after review)."""
    order = wizard_steps()
    index = step_index(step)
    return order[index + 1] if index + 1 < len(order) else COMPLETED


def previous_step(step: Step) -> Step | None:
    """The step before ``step``, or ``None`` for the first."""
    index = step_index(step)
    return wizard_steps()[index - 1] if 0 < index < len(wizard_steps()) else None


# --- answers --------------------------------------------------------------------------------


@dataclass
class Answers:
    """What a user answered, by field name, and which optional steps they skipped."""

    values: dict[str, Any] = field(default_factory=dict)
    skipped: frozenset[str] = frozenset()

    def get(self, name: str) -> Any:
        """The stored value of a field (its empty value when unanswered)."""
        spec = field_of(name)
        default = spec.empty if spec else None
        value = self.values.get(name, default)
        return default if value is None and default is not None else value


class StepInputError(ValueError):
    """Submitted answers for a step do not pass its validation."""

    def __init__(self, errors: dict[str, str]) -> None:
        """Keep the per-field messages.

        Args:
            errors: Field name -> message shown under that field.
        """
        super().__init__("; ".join(f"{k}: {v}" for k, v in errors.items()))
        self.errors = errors


def validate_field(spec: Field, raw: Any) -> tuple[Any, str | None]:
    """Turn one submitted value into its clean stored form, or say what is wrong.

    Any JSON value may arrive (a crafted client sends anything).

    Args:
        spec: The field.
        raw: The submitted value.

    Returns:
        The clean value and ``None``, or the field's empty value and a message.
    """
    clean, problem = _by_kind(spec, raw)
    if problem is None and clean in (None, "", []) and spec.required:
        problem = spec.missing or _default_missing(spec)
    if problem is None and spec.check is not None and clean not in (None, "", []):
        problem = spec.check(clean)
    return (clean, None) if problem is None else (spec.empty if clean is None else clean, problem)


def _default_missing(spec: Field) -> str:
    if spec.kind is Kind.MULTIPLE_CHOICE:
        return f"Pick at least {max(spec.min_choices, 1)}."
    if spec.kind in (Kind.TEXT, Kind.LONG_TEXT):
        return f"Fill in {spec.label.lower()}."
    return f"Choose {spec.label.lower()}."


def _by_kind(spec: Field, raw: Any) -> tuple[Any, str | None]:
    if spec.kind in (Kind.TEXT, Kind.LONG_TEXT):
        multiline = spec.kind is Kind.LONG_TEXT
        text = clean_text(
            raw if raw is not None else "", max_chars=spec.max_chars, multiline=multiline
        )
        if not isinstance(text, str):
            return "", "Use letters, numbers and punctuation only."
        if len(text) > spec.max_chars:
            return text, f"Keep it under {spec.max_chars} characters ({len(text)} now)."
        return text, None
    if spec.kind is Kind.SINGLE_CHOICE:
        if raw in (None, ""):
            return None, None
        if isinstance(raw, str) and raw in spec.options:
            return raw, None
        return None, spec.missing or f"Choose {spec.label.lower()} from the list."
    if spec.kind is Kind.YES_NO:
        if isinstance(raw, str) and raw in ("yes", "no"):
            raw = raw == "yes"
        return (raw, None) if isinstance(raw, bool) else (None, None)
    return _choices(spec, raw)


def _choices(spec: Field, raw: Any) -> tuple[list[str], str | None]:
    """A multiple choice: known options, no repeats, in the spec's order, within limits."""
    if raw is None:
        raw = []
    if not isinstance(raw, list | tuple) or len(raw) > len(spec.options) * 2:
        return [], f"Pick {spec.label.lower()} from the list."
    chosen = {item for item in raw if isinstance(item, str)}
    if chosen - spec.options.keys() or len(chosen) != len(raw):
        return [], f"Pick {spec.label.lower()} from the list."
    picked = [value for value in spec.options if value in chosen]
    label = spec.label.lower()
    if not picked and spec.required and spec.missing:
        return picked, spec.missing
    if (picked or spec.required) and len(picked) < spec.min_choices:
        missing = spec.min_choices - len(picked)
        return picked, f"Pick at least {spec.min_choices} {label} ({missing} more)."
    if spec.max_choices and len(picked) > spec.max_choices:
        return picked, f"Pick at most {spec.max_choices} {label} ({len(picked)} selected)."
    return picked, None


def validate(step: Step, data: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, str]]:
    """Validate a step's submitted fields.

    Args:
        step: The step.
        data: Submitted values by field name (others are ignored).

    Returns:
        Clean values and errors by field (both empty for review and unknown steps).
    """
    spec = spec_of(step)
    clean: dict[str, Any] = {}
    errors: dict[str, str] = {}
    for item in spec.fields if spec else ():
        clean[item.name], problem = validate_field(item, data.get(item.name))
        if problem:
            errors[item.name] = problem
    return clean, errors


def is_answered(spec: StepSpec, answers: Answers) -> bool:
    """Whether stored answers satisfy a step (an optional step may be skipped instead)."""
    if spec.optional and spec.key in answers.skipped:
        return True
    return not validate(spec.key, {f.name: answers.get(f.name) for f in spec.fields})[1]


def unanswered_steps(answers: Answers, *, since: int = 0) -> list[Step]:
    """The steps whose answers are missing (or no longer valid), in order.

    Args:
        answers: The stored answers.
        since: Only steps added after this flow version (0: every step).

    Returns:
        Step keys; empty when Finish may complete onboarding.
    """
    return [s.key for s in steps() if s.since > since and not is_answered(s, answers)]


def new_required_steps(completed_version: int) -> list[StepSpec]:
    """Required steps added after the flow version a user completed."""
    return [s for s in steps() if s.since > completed_version and not s.optional]


def reached_after_save(reached: Step, answers: Answers) -> Step:
    """The reached step once a step is saved: the first unanswered step, never backwards.

    Args:
        reached: The reached step before saving.
        answers: The stored answers after saving.

    Returns:
        The new reached step (review at most: only Finish completes).
    """
    missing = unanswered_steps(answers)
    candidate = missing[0] if missing else REVIEW
    return candidate if step_index(candidate) > step_index(reached) else reached


def fields_of(step: Step) -> Sequence[str]:
    """The field names a draft may set while ``step`` is open."""
    spec = spec_of(step)
    return tuple(f.name for f in spec.fields) if spec else ()
