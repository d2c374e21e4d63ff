"""Steps added to the flow through the spec alone (``STEPS``), and good answers to each step.

The fixtures that put these steps in the flow are in ``conftest.py`` next to this module.
"""

from __future__ import annotations

from onboard_app.services.onboarding import Field, Kind, StepSpec

#: What a good answer to each step of the shipped spec looks like (the wizard's form data).
GOOD: dict[str, dict[str, object]] = {
    "profile": {"display_name": "Ada", "role": "developer", "bio": ""},
    "interests": {"interests": ["python", "rust", "go"]},
    "preferences": {"experience_level": "advanced", "email_digest": False, "theme": "dark"},
}


def _no_acme(value: object) -> str | None:
    return "Acme is not hiring." if value == "Acme" else None


#: A required step of flow version 2 whose fields have no column (stored as JSON).
WORKPLACE = StepSpec(
    "workplace",
    "Your workplace",
    "Where you build things.",
    (
        Field("company", "Company", Kind.TEXT, max_chars=40, check=_no_acme),
        Field(
            "team_size",
            "Team size",
            Kind.SINGLE_CHOICE,
            options={"solo": "Just me", "small": "2 to 10", "large": "More"},
            missing="How big is your team?",
        ),
        Field("remote", "Remote", Kind.YES_NO, options={"yes": "Remote", "no": "Office"}),
        Field(
            "stack",
            "Stack",
            Kind.MULTIPLE_CHOICE,
            options={"py": "Python", "ts": "TypeScript", "go": "Go", "rs": "Rust"},
            min_choices=2,
            max_choices=3,
        ),
        Field("notes", "Notes", Kind.LONG_TEXT, required=False, max_chars=100),
    ),
    since=2,
)
GOOD_WORKPLACE: dict[str, object] = {
    "company": "Initech",
    "team_size": "small",
    "remote": "yes",
    "stack": ["go", "py"],
    "notes": "line one\nline two",
}
#: How GOOD_WORKPLACE is stored (clean values).
CLEAN_WORKPLACE: dict[str, object] = {
    "company": "Initech",
    "team_size": "small",
    "remote": True,
    "stack": ["py", "go"],
    "notes": "line one\nline two",
}

#: An optional step of flow version 1 (may be skipped), stored as JSON.
NEWSLETTER = StepSpec(
    "newsletter",
    "Newsletter",
    "What we may send you.",
    (
        Field("frequency", "Frequency", Kind.SINGLE_CHOICE, options={"weekly": "Weekly"}),
        Field("topics_wanted", "Topics", Kind.LONG_TEXT, required=False),
    ),
    optional=True,
)
