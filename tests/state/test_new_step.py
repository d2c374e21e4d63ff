"""Adding a step is one spec entry: rendered, validated, saved, reviewed, editable, required.

The step below is added to ``STEPS`` and nothing else changes: no handler, no page, no
column (its answers go to the JSON ``data``), no migration. It arrives as flow version 2,
so people who completed version 1 are taken through it, and only it, at their next visit.
"""

from __future__ import annotations

from collections.abc import Iterator

import jwt
import pytest

from onboard_app.services import onboarding
from onboard_app.services.onboarding import Field, Kind, StepSpec
from onboard_app.services.users import get_user_by_email, load_answers
from onboard_app.settings import Settings
from onboard_app.state.onboarding import OnboardingState
from onboard_app.state.session import SessionState
from onboard_app.state.settings import SettingsState
from tests.fakes.flow_v2.team_step import TEAM
from tests.security.conftest import completed_person, sign_up
from tests.state.harness import Client, redirects, toasts
from tests.state.wizard import fill_interests, fill_preferences, fill_profile


@pytest.fixture
def team_step(monkeypatch: pytest.MonkeyPatch) -> Iterator[StepSpec]:
    """The flow with the team step after preferences (flow version 2)."""
    monkeypatch.setattr(onboarding, "STEPS", (*onboarding.STEPS, TEAM))
    yield TEAM


def claims(tab: Client) -> dict:
    return jwt.decode(tab.state(SessionState).token, options={"verify_signature": False})


async def answer_team(tab: Client, *, name: str = "Analytical Engines") -> list:
    await tab.open("/onboarding/team", OnboardingState.open_step)
    await tab.call(OnboardingState.set_field, "team_name", name)
    await tab.call(OnboardingState.set_field, "team_size", "small")
    await tab.call(OnboardingState.set_field, "hiring", "yes")
    return await tab.call(OnboardingState.submit)


def test_the_new_step_is_rendered_in_the_wizard_and_in_settings(team_step: StepSpec) -> None:
    from onboard_app.pages.onboarding import wizard_page
    from onboard_app.pages.settings import settings_page

    page = str(wizard_page("team")())
    for element_id in ("team_name", "team_size", "hiring-yes", "hiring-no", "next"):
        assert f'"{element_id}"' in page, element_id
    review = str(wizard_page("review")())
    assert '"review-team_name"' in review and '"edit-team"' in review
    assert '"team_name"' in str(settings_page()) and '"save-team"' in str(settings_page())
    assert onboarding.wizard_steps()[-2:] == ("team", "review")


async def test_a_new_user_answers_the_new_step_like_any_other(
    app_db: Settings, team_step: StepSpec
) -> None:
    person = await sign_up()
    tab = person.tab
    await fill_profile(tab)
    await fill_interests(tab)
    assert redirects(await fill_preferences(tab)) == ["/onboarding/team"]  # before the review
    assert tab.state(SessionState).reached_step == "team"

    # Finish is refused while the new step is unanswered.
    events = await tab.call(OnboardingState.finish_onboarding)
    assert redirects(events) == ["/onboarding/team"]
    assert any("your team" in t for t in toasts(events))

    # Validated like the others.
    await tab.open("/onboarding/team", OnboardingState.open_step)
    assert redirects(await tab.call(OnboardingState.submit)) == []
    assert tab.state(OnboardingState).errors["team_name"] == "Name your team."

    # Saved (in the JSON data: it has no column) and reviewed.
    assert redirects(await answer_team(tab)) == ["/onboarding/review"]
    answers = load_answers(person.id)
    assert (answers.get("team_name"), answers.get("team_size"), answers.get("hiring")) == (
        "Analytical Engines",
        "small",
        True,
    )
    await tab.open("/onboarding/review", OnboardingState.open_step)
    assert tab.state(OnboardingState).shown["team_size"] == "2–10"
    assert tab.state(OnboardingState).shown["hiring"] == "Yes"

    assert redirects(await tab.call(OnboardingState.finish_onboarding)) == ["/explore"]
    assert claims(tab)["onb"] == "completed" and claims(tab)["fv"] == 2

    # Editable in settings.
    await tab.open("/settings", SettingsState.load)
    assert tab.state(SettingsState).values["team_name"] == "Analytical Engines"
    await tab.call(SettingsState.set_field, "team_name", "Difference Engines")
    assert any("saved" in t for t in toasts(await tab.call(SettingsState.save_section, "team")))
    assert load_answers(person.id).get("team_name") == "Difference Engines"


async def test_a_user_who_finished_version_1_is_taken_through_only_the_new_step(
    app_db: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    person = await completed_person()  # finished the flow as it was: version 1
    tab = person.tab
    assert claims(tab)["fv"] == 1
    before = load_answers(person.id)
    sub = claims(tab)["sub"]

    monkeypatch.setattr(onboarding, "STEPS", (*onboarding.STEPS, TEAM))  # version 2 ships
    tab.navigate("/explore")
    events = await tab.call(SessionState.guard)
    assert redirects(events) == ["/onboarding/team"]
    assert claims(tab)["onb"] == "team" and claims(tab)["sub"] == sub  # re-minted, same user

    # Earlier steps stay open (answers kept); explore is not, until the new step is done.
    assert redirects(await tab.open("/onboarding/profile", OnboardingState.open_step)) == []
    assert tab.state(OnboardingState).values["display_name"] == before.get("display_name")
    assert redirects(await answer_team(tab)) == ["/onboarding/review"]
    assert redirects(await tab.call(OnboardingState.finish_onboarding)) == ["/explore"]

    user = get_user_by_email(person.email)
    assert user is not None and (user.onboarding_step, user.flow_version) == ("completed", 2)
    assert claims(tab)["onb"] == "completed" and claims(tab)["fv"] == 2
    after = load_answers(person.id)
    assert all(after.get(k) == v for k, v in before.values.items())  # nothing lost
    # No loop: the next visit stays on explore.
    tab.navigate("/explore")
    assert await tab.call(SessionState.guard) == []


async def test_an_optional_new_step_does_not_reopen_anyone(
    app_db: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    person = await completed_person()
    optional = StepSpec(
        "newsletter",
        "Newsletter",
        "Optional extras.",
        (Field("topics_mail", "Topic mail", Kind.YES_NO, required=False),),
        optional=True,
        since=2,
    )
    monkeypatch.setattr(onboarding, "STEPS", (*onboarding.STEPS, optional))
    person.tab.navigate("/explore")
    assert await person.tab.call(SessionState.guard) == []


async def test_an_optional_step_can_be_skipped_and_a_required_one_cannot(
    app_db: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    optional = StepSpec(
        "extras",
        "Extras",
        "Optional.",
        (Field("favourite", "Favourite topic", Kind.TEXT),),
        optional=True,
    )
    monkeypatch.setattr(onboarding, "STEPS", (*onboarding.STEPS, optional))
    person = await sign_up()
    tab = person.tab
    await tab.open("/onboarding/profile", OnboardingState.open_step)
    before = get_user_by_email(person.email)
    events = await tab.call(OnboardingState.skip)  # profile is required
    assert redirects(events) == ["/onboarding/profile"]
    assert get_user_by_email(person.email).onboarding_step == before.onboarding_step  # type: ignore[union-attr]

    await fill_profile(tab)
    await fill_interests(tab)
    assert redirects(await fill_preferences(tab)) == ["/onboarding/extras"]
    assert tab.state(SessionState).reached_step == "extras"
    await tab.open("/onboarding/extras", OnboardingState.open_step)
    assert tab.state(OnboardingState).step_optional
    assert redirects(await tab.call(OnboardingState.skip)) == ["/onboarding/review"]
    assert load_answers(person.id).skipped == frozenset({"extras"})
    assert redirects(await tab.call(OnboardingState.finish_onboarding)) == ["/explore"]
