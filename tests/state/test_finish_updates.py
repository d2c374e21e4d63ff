"""What Finish sends: the busy flag, then the new token with explore's first page and the
redirect, then nothing.

Every update after the redirect would make the browser redraw the page it leaves while it
renders explore, and so would a change to what the review page shows (only the busy flag
changes back). Reflex sends the dirty vars of each yield as one update,
so the test steps through the handler the way the event processor does and looks at what
each yield leaves dirty.
"""

from __future__ import annotations

import pytest
from sqlalchemy.exc import OperationalError

from onboard_app.services import catalogue
from onboard_app.services.catalogue_seed import seed_catalogue
from onboard_app.settings import Settings
from onboard_app.state.explore import ExploreState
from onboard_app.state.onboarding import OnboardingState
from onboard_app.state.session import SessionState, admit
from tests.state.harness import Client, redirects, toasts
from tests.state.wizard import fill_profile, reach_review

pytestmark = pytest.mark.asyncio


async def _updates(tab: Client) -> list[tuple[list, set[str]]]:
    """Each yield of finish_onboarding: its events and the wizard vars it left dirty."""
    assert await admit(tab.root, OnboardingState, "finish_onboarding") is None
    wizard = tab.state(OnboardingState)
    wizard.dirty_vars.clear()
    steps = []
    async for events in OnboardingState.finish_onboarding.fn(wizard):
        steps.append((events if isinstance(events, list) else [events], set(wizard.dirty_vars)))
        wizard.dirty_vars.clear()
    steps.append(([], set(wizard.dirty_vars)))  # what the handler's end leaves to send
    return steps


async def test_a_finish_ends_with_the_redirect_and_nothing_after_it(
    client: Client, signed_up
) -> None:
    await signed_up(client)
    await reach_review(client)
    busy, done, after = await _updates(client)
    assert busy == ([None], {"saving"})
    events, dirty = done
    assert redirects(events) == ["/explore"]
    # No toast either: explore says onboarding is done on the page itself.
    assert len(events) == 1 and toasts(events) == []
    assert dirty == {"saving"}
    assert client.state(SessionState).reached_step == "completed"
    wizard = client.state(OnboardingState)
    assert wizard.saving is False and wizard.loaded is True
    assert after == ([], set())
    # Explore's loader, once the browser shows explore, closes the wizard: a wizard page
    # opened later shows nothing on its way back to explore.
    assert await client.open("/explore", ExploreState.load) == []
    assert wizard.loaded is False
    assert redirects(await client.open("/onboarding/review", OnboardingState.open_step)) == [
        "/explore"
    ]
    assert wizard.loaded is False


async def test_a_refused_finish_clears_its_busy_flag_and_shows_the_review_again(
    client: Client, signed_up
) -> None:
    await signed_up(client)
    await fill_profile(client)
    *_, (events, _), after = await _updates(client)
    assert redirects(events) == ["/onboarding/interests"]
    assert after == ([], {"saving"})
    wizard = client.state(OnboardingState)
    assert wizard.saving is False and wizard.loaded is True


async def _finished(app_db: Settings, client: Client, signed_up) -> ExploreState:
    """A new user with the catalogue in place, through Finish: the tab's explore state."""
    seed_catalogue(app_db.database_url)
    await signed_up(client)
    await reach_review(client)
    await _updates(client)
    return client.state(ExploreState)


async def test_explores_first_page_comes_with_the_finish_and_its_loader_fetches_nothing(
    app_db: Settings, client: Client, signed_up
) -> None:
    assert not client.state(ExploreState).loaded
    explore = await _finished(app_db, client, signed_up)
    first = list(explore.cards)
    assert explore.loaded and first and explore.total > 0 and explore.page == 1
    assert explore.interests and all(card.reason for card in first[:1])
    assert explore.welcome
    explore.dirty_vars.clear()
    assert await client.open("/explore", ExploreState.load) == []
    # Nothing fetched, nothing to send (only its own backend flag changed).
    assert explore.dirty_vars == {"_prefilled_for"}
    assert explore.welcome
    # The next visit loads again (the answers may have changed in between), without the
    # welcome: it is said once.
    explore.cards = []
    assert await client.open("/explore", ExploreState.load) == []
    assert [card.slug for card in explore.cards] == [card.slug for card in first]
    assert not explore.welcome


async def test_a_prefilled_page_is_skipped_only_for_its_own_user_while_it_is_shown(
    app_db: Settings, client: Client, signed_up
) -> None:
    explore = await _finished(app_db, client, signed_up)
    first = [card.slug for card in explore.cards]
    own = explore._prefilled_for
    assert own
    # Prefilled for someone else (a tab signed in again), or no longer shown: fetched.
    for prefilled_for, loaded in ((own + 1, True), (own, False)):
        explore._prefilled_for, explore.loaded, explore.cards = prefilled_for, loaded, []
        assert await client.open("/explore", ExploreState.load) == []
        assert [card.slug for card in explore.cards] == first and explore.loaded
        assert explore._prefilled_for == 0


async def test_a_finish_whose_first_page_failed_still_welcomes_and_explore_loads_it(
    app_db: Settings, client: Client, signed_up, monkeypatch: pytest.MonkeyPatch
) -> None:
    seed_catalogue(app_db.database_url)
    await signed_up(client)
    await reach_review(client)
    working = catalogue.explore

    def unreachable(*_args: object, **_kwargs: object) -> None:
        raise OperationalError("SELECT", {}, ConnectionError("database down"))

    monkeypatch.setattr(catalogue, "explore", unreachable)
    *_, (events, _), _after = await _updates(client)
    assert redirects(events) == ["/explore"]  # finished all the same: the token says so
    explore = client.state(ExploreState)
    assert explore.failed and not explore.loaded and explore.welcome
    monkeypatch.setattr(catalogue, "explore", working)
    # The visit Finish opened: the page is fetched now, and still says welcome.
    assert await client.open("/explore", ExploreState.load) == []
    assert explore.loaded and explore.cards and explore.welcome and not explore.failed
    assert client.state(OnboardingState).loaded is False
