"""The wizard's hot events ask the database for no more than they need (issue 17).

Each test pins what one event costs, the gate's session check included, on SQLite and on
a throwaway PostgreSQL database: SQL statements, transactions, commits and thread hops
(:data:`PINNED`). A statement added back (a re-read, a SELECT before an UPDATE, a second
commit) fails the test; so does a cut, until the pinned number is lowered.
"""

from __future__ import annotations

import pytest
from sqlalchemy.exc import OperationalError

from onboard_app import routes
from onboard_app.services import events, users
from onboard_app.services.catalogue_seed import seed_catalogue
from onboard_app.settings import Settings
from onboard_app.state.auth import SignupState, VerifyEmailState
from onboard_app.state.explore import ExploreState
from onboard_app.state.onboarding import OnboardingState
from onboard_app.state.session import SessionState
from tests.security.conftest import fill_profile, new_tab, sign_up, snapshot
from tests.state.conftest import PASSWORD, unique_email
from tests.state.harness import Client, redirects
from tests.state.mail import last_mail
from tests.state.statements import Cost, DatabaseWork, database_work
from tests.state.wizard import reach_review
from tests.unit import test_email_links

pytestmark = pytest.mark.asyncio

#: Settings on a migrated SQLite file, then on a throwaway PostgreSQL database.
any_db = test_email_links.any_db

#: Per event and database: (statements, transactions, commits, thread hops). On PostgreSQL
#: a one-statement read (the session check, explore's answers) runs in autocommit, no
#: transaction; on SQLite each is one.
PINNED: dict[str, dict[str, Cost]] = {
    "submit_code": {"sqlite": Cost(8, 4, 4, 3), "postgresql": Cost(8, 4, 4, 3)},
    "open_step": {"sqlite": Cost(5, 2, 1, 2), "postgresql": Cost(5, 1, 1, 2)},
    "open_step again": {"sqlite": Cost(4, 2, 1, 2), "postgresql": Cost(4, 1, 1, 2)},
    "submit": {"sqlite": Cost(7, 2, 1, 2), "postgresql": Cost(7, 1, 1, 2)},
    "finish_onboarding": {"sqlite": Cost(8, 3, 1, 3), "postgresql": Cost(8, 2, 1, 3)},
    "explore load": {"sqlite": Cost(3, 3, 0, 2), "postgresql": Cost(3, 1, 0, 2)},
}


def assert_cost(work: DatabaseWork, settings: Settings, event: str) -> None:
    database = "sqlite" if settings.database_url.startswith("sqlite") else "postgresql"
    pinned = PINNED[event][database]
    assert work.cost() == pinned, f"{event} on {database}: {work.cost()}\n{work.listing()}"


async def verify_email_screen(tab: Client) -> str:
    """Sign a new account up; the tab waits on the code screen. The mailed code."""
    email = unique_email()
    tab.navigate(routes.SIGNUP)
    events = await tab.call(SignupState.sign_up, {"email": email, "password": PASSWORD})
    assert redirects(events) == [routes.VERIFY_EMAIL]
    tab.navigate(routes.VERIFY_EMAIL)
    return last_mail(email, "verify_email").code


async def signed_up_tab() -> Client:
    tab = new_tab()
    code = await verify_email_screen(tab)
    assert redirects(await tab.call(VerifyEmailState.submit_code, {"otp": code})) == [
        "/onboarding/profile"
    ]
    return tab


async def test_submit_code(any_db: Settings) -> None:
    tab = new_tab()
    code = await verify_email_screen(tab)
    with database_work(any_db.database_url) as work:
        events = await tab.call(VerifyEmailState.submit_code, {"otp": code})
    assert redirects(events) == ["/onboarding/profile"]
    assert tab.state(SessionState).signed_in
    assert_cost(work, any_db, "submit_code")


async def test_wizard_page_load(any_db: Settings) -> None:
    """The first opening of a step: its event, its progress, a count; then the answers."""
    tab = await signed_up_tab()
    tab.navigate("/onboarding/profile")
    with database_work(any_db.database_url) as work:
        assert await tab.call(OnboardingState.open_step) == []
    assert tab.state(OnboardingState).loaded
    assert_cost(work, any_db, "open_step")


async def test_wizard_page_load_again(any_db: Settings) -> None:
    """A step opened before: its event adds to no count."""
    tab = await signed_up_tab()
    await tab.open("/onboarding/profile", OnboardingState.open_step)
    with database_work(any_db.database_url) as work:
        assert await tab.call(OnboardingState.open_step) == []
    assert_cost(work, any_db, "open_step again")


async def test_submit(any_db: Settings) -> None:
    tab = await signed_up_tab()
    await tab.open("/onboarding/profile", OnboardingState.open_step)
    await tab.call(OnboardingState.set_field, "display_name", "Grace Hopper")
    await tab.call(OnboardingState.set_field, "role", "developer")
    with database_work(any_db.database_url) as work:
        events = await tab.call(OnboardingState.submit)
    assert redirects(events) == ["/onboarding/interests"]
    assert_cost(work, any_db, "submit")


async def finished_tab(settings: Settings) -> tuple[Client, DatabaseWork]:
    """A new user through every step; the cost of their Finish."""
    seed_catalogue(settings.database_url)
    tab = await signed_up_tab()
    await reach_review(tab)
    with database_work(settings.database_url) as work:
        await tab.call(OnboardingState.finish_onboarding)
    assert tab.state(SessionState).reached_step == "completed"
    assert tab.state(ExploreState).cards  # explore's first page came with Finish
    return tab, work


async def test_finish_onboarding(any_db: Settings) -> None:
    work = (await finished_tab(any_db))[1]
    assert_cost(work, any_db, "finish_onboarding")


async def test_explore_page_load(any_db: Settings) -> None:
    """Explore opened again (not the page Finish sent): the interests and a page of items."""
    tab = (await finished_tab(any_db))[0]
    await tab.open("/explore", ExploreState.load)
    with database_work(any_db.database_url) as work:
        assert await tab.open("/explore", ExploreState.load) == []
    assert tab.state(ExploreState).cards
    assert_cost(work, any_db, "explore load")


# --- what the one transaction of a wizard page load keeps -------------------------------------


async def test_a_page_whose_opened_event_cannot_be_written_still_shows_the_answers(
    app_db: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    person = await sign_up()
    assert redirects(await fill_profile(person.tab)) == ["/onboarding/interests"]
    before = snapshot(app_db)

    def broken_counts(*_args: object) -> None:
        raise OperationalError("INSERT", {}, Exception("disk I/O error"))

    monkeypatch.setattr(events, "add_counts", broken_counts)
    person.tab.state(OnboardingState).values = {}
    # Its first opening: the event adds to the counts, whose write fails.
    assert await person.tab.open("/onboarding/interests", OnboardingState.open_step) == []
    assert person.tab.state(OnboardingState).values["display_name"] == "Grace Hopper"
    assert snapshot(app_db) == before  # nothing of the event, nothing half-written
    monkeypatch.undo()
    assert await person.tab.open("/onboarding/interests", OnboardingState.open_step) == []
    opened = [row[2:4] for row in snapshot(app_db)[2] if row not in before[2]]
    assert opened == [("opened", "interests")]


async def test_a_user_deleted_after_the_gate_opening_a_step_is_signed_out(
    app_db: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    person = await sign_up()
    user_id = person.id
    open_step = users.open_step

    def deleted_meanwhile(uid: int, step: str, url: str | None = None) -> users.OpenedStep:
        users.delete_user(uid)
        return open_step(uid, step, url)

    monkeypatch.setattr(users, "open_step", deleted_meanwhile)
    found = await person.tab.open("/onboarding/profile", OnboardingState.open_step)
    assert redirects(found) == [routes.LOGIN]
    session = person.tab.state(SessionState)
    assert not session.signed_in and not session.token
    assert users.get_user(user_id) is None
    assert [row for row in snapshot(app_db)[2] if row[1] == user_id] == []
