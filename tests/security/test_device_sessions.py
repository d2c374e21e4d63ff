"""Sessions per device, attacked: other users' session ids, ended sessions, old tokens.

A person can end only their own sessions: an id of someone else's session (read from a
token, guessed, or made up) ends nothing, changes nothing and is answered exactly as an id
that does not exist. A session that was signed out is refused at its token's next event, in
this worker (whose memory had it) and in another process. Tokens minted before sessions
existed (no ``sid``) are adopted once, and never come back once ended.
"""

from __future__ import annotations

from typing import Any

import jwt

from onboard_app.services.sessions import Authenticated, authenticate
from onboard_app.services.tokens import Rejection, TokenRejected, mint_session_token
from onboard_app.services.users import get_user
from onboard_app.settings import Settings
from onboard_app.state.auth import LoginState
from onboard_app.state.devices import DevicesState
from onboard_app.state.explore import ExploreState
from onboard_app.state.session import SessionState
from tests.security.conftest import PASSWORD, Person, completed_person, new_tab, snapshot
from tests.security.test_session_tokens import authenticate_in_another_process
from tests.state.harness import Client, redirects, toasts


def sid_of(token: str) -> str:
    return jwt.decode(token, options={"verify_signature": False})["sid"]


async def second_browser(person: Person) -> Client:
    tab = new_tab()
    tab.navigate("/login")
    await tab.call(LoginState.log_in, {"email": person.email, "password": PASSWORD})
    assert tab.state(SessionState).signed_in
    return tab


def visible(tab: Client) -> dict[tuple[str, str], Any]:
    """What this tab's browser can see of its sessions and its own session."""
    return {
        (cls.__name__, name): getattr(tab.state(cls), name)
        for cls in (DevicesState, SessionState)
        for name in cls.base_vars
    }


async def test_another_users_session_id_ends_nothing_and_tells_nothing(
    app_db: Settings,
) -> None:
    mallory, victim = await completed_person(), await completed_person()
    victims_laptop = await second_browser(victim)
    victim_sessions = [sid_of(victim.token), sid_of(victims_laptop.state(SessionState).token)]
    tab = mallory.tab
    tab.navigate("/settings")
    await tab.call(DevicesState.load)

    async def answer_to(session_id: str) -> tuple[list[Any], dict[Any, Any], Any]:
        events = await tab.call(DevicesState.sign_out_device, session_id)
        return events, visible(tab), snapshot(app_db)

    nobody = await answer_to("0" * 32)  # an id that belongs to nobody
    assert toasts(nobody[0]) == [] and redirects(nobody[0]) == []
    for target in victim_sessions:
        # The same answer, the same page, and nothing written.
        assert await answer_to(target) == nobody
    # Nothing of the victim's shows in Mallory's list, and both of their browsers go on.
    assert all(row.id not in victim_sessions for row in tab.state(DevicesState).devices)
    for token in (victim.token, victims_laptop.state(SessionState).token):
        assert isinstance(authenticate(token), Authenticated)
    victim.tab.navigate("/explore")
    assert await victim.tab.call(ExploreState.load) == []


async def test_everywhere_else_never_reaches_another_user(app_db: Settings) -> None:
    mallory, victim = await completed_person(), await completed_person()
    victim_version = get_user(victim.id).token_version  # type: ignore[union-attr]
    await mallory.tab.call(DevicesState.sign_out_everywhere_else)
    assert isinstance(authenticate(victim.token), Authenticated)
    assert get_user(victim.id).token_version == victim_version  # type: ignore[union-attr]


async def test_a_signed_out_session_is_refused_at_its_next_event_everywhere(
    app_db: Settings,
) -> None:
    person = await completed_person()
    laptop = await second_browser(person)
    stolen = laptop.state(SessionState).token  # a copy, as a thief would keep it
    # Accepted here and by another process before it is signed out.
    laptop.navigate("/explore")
    assert await laptop.call(ExploreState.load) == []
    assert authenticate_in_another_process(stolen, app_db) == f"user {person.id}"

    person.tab.navigate("/settings")
    await person.tab.call(DevicesState.load)
    events = await person.tab.call(DevicesState.sign_out_device, sid_of(stolen))
    assert toasts(events)

    laptop.navigate("/explore")
    assert redirects(await laptop.call(ExploreState.search, "python")) == ["/login?next=/explore"]
    assert laptop.state(SessionState).token == "" and laptop.state(ExploreState).cards == []
    assert authenticate(stolen) == TokenRejected(Rejection.REVOKED)
    assert authenticate_in_another_process(stolen, app_db) == "revoked"
    # Put back into a browser's storage, the copy opens nothing.
    thief = new_tab()
    thief.state(SessionState).token = stolen
    thief.navigate("/explore")
    assert redirects(await thief.call(ExploreState.load)) == ["/login?next=/explore"]


async def test_a_token_from_before_sessions_is_adopted_then_ended_for_good(
    app_db: Settings,
) -> None:
    person = await completed_person()
    user = get_user(person.id)
    assert user is not None
    old = mint_session_token(user, app_db)  # no sid: minted as before this change
    assert "sid" not in jwt.decode(old, options={"verify_signature": False})
    old_browser = new_tab()
    old_browser.state(SessionState).token = old
    old_browser.navigate("/explore")
    assert await old_browser.call(ExploreState.load) == []  # signed in, no crash
    assert old_browser.state(ExploreState).loaded

    person.tab.navigate("/settings")
    await person.tab.call(DevicesState.load)
    listed = person.tab.state(DevicesState).devices
    assert len(listed) == 2 and [row.current for row in listed] == [True, False]
    before = snapshot(app_db)
    await person.tab.call(DevicesState.sign_out_device, listed[1].id)
    assert snapshot(app_db) != before

    for tab in (old_browser, new_tab()):
        tab.state(SessionState).token = old
        tab.navigate("/explore")
        assert redirects(await tab.call(ExploreState.load)) == ["/login?next=/explore"]
    assert authenticate(old) == TokenRejected(Rejection.REVOKED)
    await person.tab.call(DevicesState.load)
    assert len(person.tab.state(DevicesState).devices) == 1  # it did not come back


async def test_a_token_from_before_sessions_dies_with_everywhere_else(app_db: Settings) -> None:
    person = await completed_person()
    user = get_user(person.id)
    assert user is not None
    old = mint_session_token(user, app_db)  # a browser not used since the upgrade
    await person.tab.call(DevicesState.sign_out_everywhere_else)
    before = snapshot(app_db)
    tab = new_tab()
    tab.state(SessionState).token = old
    tab.navigate("/explore")
    assert redirects(await tab.call(ExploreState.load)) == ["/login?next=/explore"]
    assert snapshot(app_db) == before  # no session row made for it
