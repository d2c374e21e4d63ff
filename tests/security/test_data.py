"""Data cases: SQL metacharacters stored literally, oversized fields, reload mid-wizard."""

from __future__ import annotations

import sqlalchemy as sa

from onboard_app.services.catalogue_seed import seed_catalogue
from onboard_app.services.db import get_engine
from onboard_app.services.onboarding import MAX_BIO, MAX_NAME
from onboard_app.services.topics import MAX_INTERESTS, TOPICS
from onboard_app.services.users import get_user_by_email, load_answers
from onboard_app.settings import Settings
from onboard_app.state.explore import ExploreState
from onboard_app.state.onboarding import OnboardingState
from onboard_app.state.session import SessionState
from onboard_app.state.settings import SettingsState
from tests.security.conftest import (
    completed_person,
    fill_interests,
    fill_preferences,
    fill_profile,
    new_tab,
    sign_up,
    snapshot,
)
from tests.state.harness import redirects, toasts

NASTY_NAME = "Robert'); DROP TABLE users;-- \\ % _ \" `x` $1 ?"
NASTY_BIO = "line 1; DELETE FROM onboarding_answers WHERE 1=1;\n-- ' OR ''='\n%%_\\x00 /* */ ;"


def count(table: str, settings: Settings) -> int:
    with get_engine(settings.database_url).connect() as connection:
        return int(connection.execute(sa.text(f"SELECT count(*) FROM {table}")).scalar_one())


async def test_sql_metacharacters_are_stored_and_shown_literally(app_db: Settings) -> None:
    bystander = await completed_person()
    person = await sign_up()
    users_before = count("users", app_db)
    events = await fill_profile(person.tab, name=NASTY_NAME, bio=NASTY_BIO)
    assert redirects(events) == ["/onboarding/interests"]
    user = get_user_by_email(person.email)
    assert user is not None
    assert user.display_name == " ".join(NASTY_NAME.split())
    assert load_answers(user.id).get("bio") == NASTY_BIO.strip()
    assert count("users", app_db) == users_before
    assert count("onboarding_answers", app_db) == users_before
    assert get_user_by_email(bystander.email) is not None
    # Read back exactly as typed (a reload, another device).
    other = new_tab()
    other.state(SessionState).token = person.token
    await other.open("/onboarding/profile", OnboardingState.open_step)
    assert other.state(OnboardingState).values["display_name"] == " ".join(NASTY_NAME.split())
    assert other.state(OnboardingState).values["bio"] == NASTY_BIO.strip()


async def test_settings_edit_stores_metacharacters_literally(app_db: Settings) -> None:
    person = await completed_person()
    tab = person.tab
    await tab.open("/settings", SettingsState.load)
    await tab.call(SettingsState.set_field, "display_name", NASTY_NAME)
    events = await tab.call(SettingsState.save_section, "profile")
    assert toasts(events) and "saved" in toasts(events)[0]
    user = get_user_by_email(person.email)
    assert user is not None and user.display_name == " ".join(NASTY_NAME.split())


async def test_search_text_is_literal_not_sql_or_a_pattern(app_db: Settings) -> None:
    seed_catalogue(app_db.database_url)
    person = await completed_person()
    tab = person.tab
    await tab.open("/explore", ExploreState.load)
    explore = tab.state(ExploreState)
    everything = explore.total
    assert everything > 0
    for query in ("' OR 1=1 --", "%", "_", "%%", "\\", "' UNION SELECT email FROM users --"):
        events = await tab.call(ExploreState.search, query)
        assert redirects(events) == [] and toasts(events) == [], query
        assert explore.failed is False
        assert explore.total < everything, query  # a wildcard would match everything
        assert all(person.email not in card.description for card in explore.cards)
    await tab.call(ExploreState.search, "x" * 1_000_000)
    assert explore.failed is False and len(explore.query) <= 200


async def test_oversized_fields_are_refused_with_a_message_and_not_stored(
    app_db: Settings,
) -> None:
    person = await sign_up()
    tab = person.tab
    await tab.open("/onboarding/profile", OnboardingState.open_step)
    before = snapshot(app_db)
    form = tab.state(OnboardingState)

    await tab.call(OnboardingState.set_field, "display_name", "n" * (MAX_NAME + 1))
    await tab.call(OnboardingState.set_field, "role", "developer")
    await tab.call(OnboardingState.set_field, "bio", "b" * (MAX_BIO + 1))
    events = await tab.call(OnboardingState.submit)
    assert redirects(events) == []
    assert form.errors == {
        "display_name": f"Keep it under {MAX_NAME} characters ({MAX_NAME + 1} now).",
        "bio": f"Keep it under {MAX_BIO} characters ({MAX_BIO + 1} now).",
    }
    # Megabytes are cut at the door (the draft), and still refused.
    await tab.call(OnboardingState.set_field, "bio", "b" * 5_000_000)
    assert len(form.values["bio"]) <= 2 * MAX_BIO
    await tab.call(OnboardingState.submit)
    assert "bio" in form.errors
    assert snapshot(app_db) == before
    assert get_user_by_email(person.email).onboarding_step == "profile"  # type: ignore[union-attr]


async def test_more_topics_than_allowed_cannot_be_picked_or_saved(app_db: Settings) -> None:
    person = await sign_up()
    await fill_profile(person.tab)
    tab = person.tab
    await tab.open("/onboarding/interests", OnboardingState.open_step)
    for topic in list(TOPICS)[: MAX_INTERESTS + 3]:
        await tab.call(OnboardingState.toggle_choice, "interests", topic)
    form = tab.state(OnboardingState)
    assert len(form.selections["interests"]) == MAX_INTERESTS
    assert form.errors["interests"] == f"You can pick at most {MAX_INTERESTS} topics."


async def test_reload_mid_wizard_loses_nothing_saved(app_db: Settings) -> None:
    person = await sign_up()
    await fill_profile(person.tab, name="Katherine Johnson", bio="Orbital mechanics.")
    await fill_interests(person.tab, ("go", "security", "databases"))
    await fill_preferences(person.tab)
    token = person.token

    # A reload is a new state tree with the same stored token.
    reloaded = new_tab()
    reloaded.state(SessionState).token = token
    assert redirects(await reloaded.open("/", SessionState.guard)) == ["/onboarding/review"]
    await reloaded.open("/onboarding/review", OnboardingState.open_step)
    form = reloaded.state(OnboardingState)
    assert (form.values["display_name"], form.values["role"], form.values["bio"]) == (
        "Katherine Johnson",
        "developer",
        "Orbital mechanics.",
    )
    assert set(form.selections["interests"]) == {"go", "security", "databases"}
    assert (form.values["experience_level"], form.values["email_digest"], form.values["theme"]) == (
        "advanced",
        "yes",
        "dark",
    )
    assert form.shown["interests"] and form.shown["role"] == "Software developer"
    # And Finish from the reloaded tab works.
    assert redirects(await reloaded.call(OnboardingState.finish_onboarding)) == ["/explore"]
