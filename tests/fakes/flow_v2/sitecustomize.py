"""Version 2 of the flow, as a developer would ship it: one more entry in ``STEPS``.

Put this folder first on ``PYTHONPATH`` of an app process (Python imports
``sitecustomize`` at start-up) and that app runs the flow with the team step added; nothing
else of the app changes. Used by ``tests/e2e/test_flow_versions.py``.
"""

from onboard_app.services import onboarding
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
    ),
    since=2,
)

onboarding.STEPS = (*onboarding.STEPS, TEAM)
