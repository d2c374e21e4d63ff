"""Version 2 of the flow, as a developer would ship it: one more entry in ``STEPS``.

Put this folder first on ``PYTHONPATH`` of an app process (Python imports
``sitecustomize`` at start-up) and that app runs the flow with the team step added; nothing
else of the app changes. Used by ``tests/e2e/test_flow_versions.py``.
"""

from team_step import TEAM

from onboard_app.services import onboarding

onboarding.STEPS = (*onboarding.STEPS, TEAM)
