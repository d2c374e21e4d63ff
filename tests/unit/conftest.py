"""Fixtures of the unit tests: flows with steps added through the spec alone."""

from __future__ import annotations

import pytest

from onboard_app.services import onboarding
from onboard_app.services.onboarding import StepSpec
from tests.unit.flow_steps import NEWSLETTER, WORKPLACE


@pytest.fixture
def flow_v2(monkeypatch: pytest.MonkeyPatch) -> StepSpec:
    """Flow version 2: the shipped steps, then the required WORKPLACE step."""
    monkeypatch.setattr(onboarding, "STEPS", (*onboarding.STEPS, WORKPLACE))
    return WORKPLACE


@pytest.fixture
def with_optional_step(monkeypatch: pytest.MonkeyPatch) -> StepSpec:
    """The shipped steps, then the optional NEWSLETTER step (same flow version)."""
    monkeypatch.setattr(onboarding, "STEPS", (*onboarding.STEPS, NEWSLETTER))
    return NEWSLETTER
