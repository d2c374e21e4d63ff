"""The "team" step of flow version 2: one spec entry, shared by the state and browser tests."""

from onboard_app.services.onboarding import Field, Kind, StepSpec

TEAM = StepSpec(
    "team",
    "Your team",
    "Who you build with.",
    (
        Field("team_name", "Team name", Kind.TEXT, max_chars=40, missing="Name your team."),
        Field(
            "team_size",
            "Team size",
            Kind.SINGLE_CHOICE,
            options={"solo": "Just me", "small": "2–10", "large": "More than 10"},
        ),
        Field("hiring", "Hiring?", Kind.YES_NO, required=False),
    ),
    since=2,
)
