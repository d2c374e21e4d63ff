"""Declared access: every handler has a rule, and a refused call gets nothing and writes nothing.

The registry walked here is Reflex's own (``RegistrationContext.event_handlers``): exactly
the names an incoming websocket event is dispatched by. Calls go through the gate the
middleware runs (``tests/state/harness.py``), with every page path of the app and
nonsense ones as the router path the client claims.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from reflex.state import BaseState, State
from reflex_base.registry import RegistrationContext

import onboard_app.state.account
import onboard_app.state.account_recovery
import onboard_app.state.admin
import onboard_app.state.auth
import onboard_app.state.dev_mail
import onboard_app.state.devices
import onboard_app.state.explore
import onboard_app.state.oauth
import onboard_app.state.onboarding
import onboard_app.state.passkeys
import onboard_app.state.settings
import onboard_app.state.two_factor  # noqa: F401
from onboard_app import routes
from onboard_app.services import access
from onboard_app.services.catalogue_seed import seed_catalogue
from onboard_app.services.onboarding import Step, parse_step
from onboard_app.settings import Settings
from onboard_app.state.explore import ExploreState
from onboard_app.state.onboarding import OnboardingState
from onboard_app.state.session import REFLEX_HANDLERS, SessionState, app_states, declared_rule
from tests.security.conftest import completed_person, new_tab, reach_review, sign_up, snapshot
from tests.state.harness import Client, redirects, toasts

README = Path(__file__).resolve().parents[2] / "README.md"
PATHS = [
    routes.HOME,
    routes.LOGIN,
    routes.SIGNUP,
    *routes.onboarding_pages(),
    routes.EXPLORE,
    routes.SETTINGS,
    routes.VERIFY_EMAIL,
    routes.FORGOT_PASSWORD,
    routes.RESET_PASSWORD,
    routes.CONFIRM_EMAIL,
    routes.ACCOUNT_DELETED,
    routes.DEV_MAILBOX,
    routes.ADMIN_ONBOARDING,
    *(routes.oauth_callback(p) for p in routes.PROVIDERS),
    "/404",
    "/onboarding/completed",
    "/admin",
    "/explore/../onboarding/profile",
    "",
]


def registered() -> list[tuple[type[BaseState], str]]:
    """Every handler Reflex would dispatch an event to, with the state that owns it."""
    return [
        (entry.states[0], full_name.rpartition(".")[2])
        for full_name, entry in RegistrationContext.get().event_handlers.items()
    ]


def test_every_app_handler_declares_a_rule() -> None:
    missing = [
        f"{cls.__name__}.{name}"
        for cls, name in registered()
        if cls.__module__.startswith("onboard_app.") and name != "setvar"
        if declared_rule(cls, name) is None
    ]
    assert missing == []
    # The walk saw the app: every app state's own handlers are in the registry.
    names = {(cls, name) for cls, name in registered()}
    for cls in app_states():
        for name in cls.event_handlers:
            assert (cls, name) in names, (cls.__name__, name)


def test_generic_and_unknown_reflex_handlers_are_refused() -> None:
    for cls, name in registered():
        rule = declared_rule(cls, name)
        if name == "setvar":
            assert rule is None, cls.__name__  # the generic setter never runs
        elif not cls.__module__.startswith("onboard_app."):
            assert (rule is not None) == (name in REFLEX_HANDLERS), (cls.__name__, name)


def test_the_readme_lists_every_handler_with_its_rule() -> None:
    text = README.read_text(encoding="utf-8")
    for cls, name in registered():
        rule = declared_rule(cls, name)
        if cls.__module__.startswith("onboard_app.") and rule is not None:
            row = f"| `{cls.__name__}.{name}` | {rule.name} |"
            assert row in text, row


async def person_at(who: str) -> Client:
    if who == "anonymous":
        return new_tab()
    if who == "completed":
        return (await completed_person()).tab
    person = await sign_up()
    if who == "review":
        await reach_review(person.tab)
    return person.tab


def reached_of(tab: Client) -> Step | None:
    session = tab.state(SessionState)
    return parse_step(session.reached_step) if session.signed_in else None


def visible_vars(tab: Client) -> dict[tuple[str, str], Any]:
    """Every var the browser can see, in every app state except the session's identity."""
    seen: dict[tuple[str, str], Any] = {}
    for cls in app_states():
        if cls is SessionState:
            continue
        state = tab.state(cls)
        for name in cls.base_vars:
            value = getattr(state, name)
            seen[(cls.__name__, name)] = getattr(value, "__wrapped__", value)
    return seen


def argument_for(cls: type[BaseState], name: str) -> tuple[Any, ...]:
    import inspect

    params = [p for p in inspect.signature(cls.event_handlers[name].fn).parameters if p != "self"]
    if not params:
        return ()
    if name in ("log_in", "sign_up"):
        return ({"email": "x@example.com", "password": "correct horse battery staple"},)
    if name in ("set_field", "toggle_choice"):
        return ("interests", "python")
    return ("python",) * len(params)


@pytest.mark.parametrize("who", ["anonymous", "profile", "review", "completed"])
async def test_refused_calls_get_nothing_and_write_nothing(app_db: Settings, who: str) -> None:
    tab = await person_at(who)
    reached = reached_of(tab)
    refused = 0
    for cls in app_states():
        for name, handler in cls.event_handlers.items():
            rule = declared_rule(cls, name)
            open_step = parse_step(getattr(tab.state(cls), "_open_step", None))
            if rule is not None and access.permits(rule, reached, open_step):
                continue
            for path in PATHS:
                tab.navigate(path)
                before_vars, before_rows = visible_vars(tab), snapshot(app_db)
                events = await tab.call(handler, *argument_for(cls, name))
                refused += 1
                where = f"{cls.__name__}.{name} as {who} on {path!r}"
                # Only a redirect (and at most a notice): no data, no other event.
                assert len(events) == len(redirects(events)) + len(toasts(events)), where
                assert all(not t or "expired" in t for t in toasts(events)), where
                assert visible_vars(tab) == before_vars, where
                assert snapshot(app_db) == before_rows, where
                if rule is not None and not rule.closed:
                    step = rule.step or (open_step if rule.open_step else None)
                    expected = access.refused_target(
                        reached, routes.onboarding(step) if step else path
                    )
                    assert redirects(events) == [expected], where
    assert refused > 0


async def test_an_onboarding_user_gets_no_explore_results_whatever_path_it_claims(
    app_db: Settings,
) -> None:
    tab = (await sign_up()).tab
    await reach_review(tab)
    for path in PATHS:
        tab.navigate(path)
        for handler, args in (
            (ExploreState.load, ()),
            (ExploreState.search, ("python",)),
            (ExploreState.next_page, ()),
            (ExploreState.toggle_chip, ("python",)),
        ):
            events = await tab.call(handler, *args)
            assert redirects(events) == ["/onboarding/review"], (path, handler)
            explore = tab.state(ExploreState)
            assert explore.cards == [] and explore.total == 0 and not explore.loaded


# --- connections ----------------------------------------------------------------------------


async def test_another_connection_with_the_same_client_token_starts_from_nothing(
    app_db: Settings,
) -> None:
    seed_catalogue(app_db.database_url)
    person = await completed_person()
    tab = person.tab
    tab.navigate("/explore")
    await tab.call(ExploreState.load)
    assert tab.state(ExploreState).cards and tab.state(SessionState).user_email
    token = person.token

    # Same client token, another websocket, and it sends no JWT: it gets nobody's data.
    tab.reconnect()
    tab.navigate("/explore")
    events = await tab.call(ExploreState.search, "python")
    assert redirects(events) == ["/login?next=/explore"]
    assert tab.state(SessionState).token == ""
    assert tab.state(SessionState).user_email == ""
    assert tab.state(ExploreState).cards == [] and tab.state(ExploreState).total == 0
    assert tab.state(OnboardingState).values.get("display_name", "") == ""

    # The owner's browser, reconnecting with its stored token, is signed in again.
    tab.reconnect()
    tab.state(SessionState)._connection = tab.sid  # its hydrate brought the token ...
    tab.state(SessionState).token = token  # ... from its own storage
    assert await tab.call(ExploreState.load) == []
    assert tab.state(ExploreState).cards


async def test_hydrate_resets_every_visible_var_but_keeps_backend_ones(app_db: Settings) -> None:
    from onboard_app.state.oauth import OAuthState
    from onboard_app.state.session import admit

    seed_catalogue(app_db.database_url)
    person = await completed_person()
    tab = person.tab
    tab.navigate("/explore")
    await tab.call(ExploreState.load)
    assert tab.state(ExploreState).cards
    tab.state(OAuthState)._pending = {"state": "kept"}
    tab.reconnect()
    assert await admit(tab.root, State, "hydrate_and_load") is None
    defaults = {
        key: value for key, value in visible_vars(new_tab()).items() if not isinstance(value, float)
    }
    assert {k: v for k, v in visible_vars(tab).items() if k in defaults} == defaults
    session = tab.state(SessionState)
    assert (session.signed_in, session.user_email, session.reached_step) == (False, "", "")
    assert tab.state(OAuthState)._pending == {"state": "kept"}


def tab_states(tab: Client) -> list[BaseState]:
    """Every state instance of a tab's tree."""
    found: list[BaseState] = []
    pending: list[BaseState] = [tab.root]
    while pending:
        found.append(state := pending.pop())
        pending.extend(state.substates.values())
    return found


def touched_states(tab: Client) -> set[str]:
    """The states of a tab Reflex would save now (it writes the touched ones only)."""
    return {type(state).__name__ for state in tab_states(tab) if state._was_touched}


async def test_a_new_tabs_connect_leaves_the_states_it_never_used_unsaved(
    app_db: Settings,
) -> None:
    from onboard_app.state.session import admit

    tab = new_tab()
    for state in tab_states(tab):
        state._was_touched = False  # as loaded from Redis, or new
    assert await admit(tab.root, State, "hydrate_and_load") is None
    assert touched_states(tab) == {"SessionState"}  # its connection, nothing else
    assert visible_vars(tab) == visible_vars(new_tab())

    # A tab whose states hold data: the reset touches (and so saves) exactly those.
    seed_catalogue(app_db.database_url)
    person = await completed_person()
    person.tab.navigate("/explore")
    await person.tab.call(ExploreState.load)
    person.tab.reconnect()
    assert await admit(person.tab.root, State, "hydrate_and_load") is None
    assert {"ExploreState", "OnboardingState"} <= touched_states(person.tab)
    assert person.tab.state(ExploreState).cards == []


async def test_logout_clears_every_state(app_db: Settings) -> None:
    seed_catalogue(app_db.database_url)
    person = await completed_person()
    tab = person.tab
    tab.navigate("/explore")
    await tab.call(ExploreState.load)
    assert tab.state(ExploreState).cards
    await tab.call(SessionState.log_out)
    assert visible_vars(tab) == visible_vars(new_tab())
    assert tab.state(SessionState).signed_in is False
