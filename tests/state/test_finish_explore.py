"""Finish hands explore its first page with the new token (one update, nothing after it)."""

from __future__ import annotations

import pytest
from sqlalchemy.exc import OperationalError

from onboard_app.services import catalogue
from onboard_app.services.catalogue_seed import seed_catalogue
from onboard_app.settings import Settings
from onboard_app.state.explore import ExploreState
from onboard_app.state.onboarding import OnboardingState
from tests.state.harness import Client, redirects, toasts
from tests.state.wizard import fill_profile, reach_review

pytestmark = pytest.mark.asyncio


@pytest.fixture(autouse=True)
def shipped_catalogue(app_db: Settings) -> None:
    """The shipped catalogue in the test database (explore has something to rank)."""
    seed_catalogue(app_db.database_url)


async def test_finish_fills_explores_first_page_as_its_load_would(
    client: Client, signed_up
) -> None:
    await signed_up(client)
    await reach_review(client)
    events = await client.call(OnboardingState.finish_onboarding)
    assert redirects(events) == ["/explore"]
    explore = client.state(ExploreState)
    filled = (list(explore.cards), explore.total, explore.page, explore.interests)
    assert explore.loaded and explore.cards and explore.page == 1
    assert explore.interests == ["python", "rust", "security"]
    wizard = client.state(OnboardingState)
    assert wizard.saving is False and wizard.loaded is False
    # Explore's own load, which still runs when the page opens, finds the same page.
    assert await client.open("/explore", ExploreState.load) == []
    assert (explore.cards, explore.total, explore.page, explore.interests) == filled


async def test_a_refused_finish_gives_explore_nothing(client: Client, signed_up) -> None:
    await signed_up(client)
    await fill_profile(client)
    events = await client.call(OnboardingState.finish_onboarding)
    assert redirects(events) == ["/onboarding/interests"]
    explore = client.state(ExploreState)
    assert explore.cards == [] and explore.loaded is False and explore.interests == []


async def test_finish_succeeds_when_the_catalogue_does_not_answer(
    client: Client, signed_up, monkeypatch: pytest.MonkeyPatch
) -> None:
    await signed_up(client)
    await reach_review(client)

    def down(*_args: object, **_kwargs: object) -> None:
        raise OperationalError("SELECT", {}, Exception("catalogue unavailable"))

    with monkeypatch.context() as patch:
        patch.setattr(catalogue, "explore", down)
        events = await client.call(OnboardingState.finish_onboarding)
    assert redirects(events) == ["/explore"]
    assert [t for t in toasts(events) if "Welcome to Onboard" in t] == toasts(events) != []
    explore = client.state(ExploreState)
    assert explore.loaded is False
    # Explore's own load tries again once the page opens.
    assert await client.open("/explore", ExploreState.load) == []
    assert explore.loaded and explore.cards
