"""Crafted events: what a modified client can send over the websocket, and what it gets.

Reflex dispatches an event by its full name through ``RegistrationContext.event_handlers``
(``reflex_base/event/processor/event_processor.py``: an unknown name is a ``KeyError``,
logged, and nothing runs). So the attack surface is exactly the registered handlers of our
states, called with any JSON arguments, plus ``update_vars_internal`` writing client
storage vars. This module enumerates that surface programmatically and attacks all of it.
"""

from __future__ import annotations

import contextlib
import inspect
import json
from collections.abc import Iterator
from typing import Any

import pytest
from reflex.state import BaseState, State, UpdateVarsInternalState
from reflex_base.registry import RegistrationContext

# Every state module the app registers (onboard_app.py imports the same ones).
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
from onboard_app.services.onboarding import MAX_NAME, ROLES, steps
from onboard_app.services.users import get_user_by_email, load_answers
from onboard_app.settings import Settings
from onboard_app.state.onboarding import OnboardingState
from onboard_app.state.session import SessionState
from onboard_app.state.settings import SettingsState
from tests.security.conftest import (
    completed_person,
    fill_profile,
    new_tab,
    reach_review,
    rows_of,
    sign_up,
    snapshot,
)
from tests.state.harness import Client, redirects

MEGABYTE = "A" * (1 << 20)
HOSTILE: list[Any] = [
    None,
    0,
    -1,
    2**63,
    10**100,
    1.5,
    float("nan"),
    float("inf"),
    True,
    False,
    "",
    MEGABYTE,
    "\x00",
    "profile\x00",
    "\u202egnp.exe \U0001f600 \u0663 \ufeff Ωmega",
    "\ud800",  # a lone UTF-16 surrogate: no encoder (argon2, SQLite, JSON) accepts it
    "Ada \udfff Lovelace",
    {"email": "a\ud800@example.com", "password": "correct horse \udc00 battery"},
    "' OR 1=1 --",
    "'; DROP TABLE users; --",
    '"); DELETE FROM onboarding_answers; --',
    "%_%\\",
    "<script>alert(1)</script>",
    "../../etc/passwd",
    "completed",
    [],
    ["python", "rust", 3, None],
    ["python"] * 10_000,
    [[[[[[[[[["deep"]]]]]]]]]],
    {},
    {"email": None, "password": ["x"]},
    {"email": MEGABYTE, "password": MEGABYTE},
    {"__class__": "x", "sub": "1", "onb": "completed", "user_id": 1},
]


def app_states() -> list[type[BaseState]]:
    """Every State class of the app, found in Reflex's own state tree."""

    def walk(cls: type[BaseState]) -> Iterator[type[BaseState]]:
        yield cls
        for sub in cls.get_substates():
            yield from walk(sub)

    return [cls for cls in walk(State) if cls.__module__.startswith("onboard_app.")]


def public_handlers() -> list[tuple[type[BaseState], str]]:
    """Every registered handler of the app's states except Reflex's generic ``setvar``."""
    return [
        (cls, name)
        for cls in app_states()
        for name in sorted(cls.event_handlers)
        if name != "setvar"
    ]


def parameters(cls: type[BaseState], name: str) -> list[str]:
    fn = cls.event_handlers[name].fn
    return [p for p in inspect.signature(fn).parameters if p != "self"]


def private_methods(cls: type[BaseState]) -> list[str]:
    names = set()
    for klass in cls.__mro__:
        if not klass.__module__.startswith("onboard_app."):
            continue
        for name, value in vars(klass).items():
            if name.startswith("_") and not name.startswith("__") and callable(value):
                names.add(name)
    return sorted(names)


# --- the surface ----------------------------------------------------------------------------


def test_the_attack_surface_is_what_we_think() -> None:
    """If a handler is added, this list (and the fuzzing below) must be looked at again."""
    surface = {(cls.__name__, name) for cls, name in public_handlers()}
    assert surface == {
        ("AccountState", "load"),
        ("AdminState", "clear_filters"),
        ("AdminState", "export_funnel"),
        ("AdminState", "export_stuck"),
        ("AdminState", "load"),
        ("AdminState", "next_page"),
        ("AdminState", "previous_page"),
        ("AdminState", "set_method"),
        ("AdminState", "set_signed_up_from"),
        ("AdminState", "set_signed_up_to"),
        ("AdminState", "set_stuck_days"),
        ("AdminState", "set_version"),
        ("AdminState", "sort_stuck"),
        ("AuthFormState", "reset_form"),
        ("AuthFormState", "toggle_password"),
        ("ConfirmEmailState", "open_link"),
        ("DeleteAccountState", "delete_account"),
        ("DeleteAccountState", "finish_reauthentication"),
        ("DevMailboxState", "clear"),
        ("DevMailboxState", "load"),
        ("DevMailboxState", "open_mail"),
        ("DevicesState", "load"),
        ("DevicesState", "sign_out_device"),
        ("DevicesState", "sign_out_everywhere_else"),
        ("EmailChangeState", "cancel_change"),
        ("EmailChangeState", "confirm_code"),
        ("EmailChangeState", "request_change"),
        ("ExploreState", "clear_filters"),
        ("ExploreState", "load"),
        ("ExploreState", "next_page"),
        ("ExploreState", "previous_page"),
        ("ExploreState", "search"),
        ("ExploreState", "toggle_chip"),
        ("ForgotPasswordState", "request_reset"),
        ("ForgotPasswordState", "reset_form"),
        ("LoginState", "log_in"),
        ("OAuthState", "complete_login"),
        ("OAuthState", "start_login"),
        ("OnboardingState", "finish_onboarding"),
        ("OnboardingState", "go_back"),
        ("OnboardingState", "open_step"),
        ("OnboardingState", "set_field"),
        ("OnboardingState", "skip"),
        ("OnboardingState", "submit"),
        ("OnboardingState", "toggle_choice"),
        ("PasswordChangeState", "change_password"),
        ("PasswordChangeState", "rate_password"),
        ("ResetPasswordState", "open_link"),
        ("ResetPasswordState", "rate_password"),
        ("ResetPasswordState", "reset_password"),
        ("SessionState", "guard"),
        ("SessionState", "log_out"),
        ("SettingsState", "load"),
        ("SettingsState", "save_section"),
        ("SettingsState", "set_field"),
        ("SettingsState", "toggle_choice"),
        ("SignupState", "rate_password"),
        ("SignupState", "set_email"),
        ("SignupState", "sign_up"),
        ("VerifyEmailState", "open_page"),
        ("VerifyEmailState", "send_again"),
        ("VerifyEmailState", "submit_code"),
        ("PasskeyLoginState", "finish_sign_in"),
        ("PasskeyLoginState", "start_sign_in"),
        ("PasskeySettingsState", "begin_add"),
        ("PasskeySettingsState", "close_dialog"),
        ("PasskeySettingsState", "confirm_password"),
        ("PasskeySettingsState", "finish_add"),
        ("PasskeySettingsState", "load"),
        ("PasskeySettingsState", "remove"),
        ("PasskeySettingsState", "rename"),
        ("PasskeySettingsState", "start_remove"),
        ("PasskeySettingsState", "start_rename"),
        ("TwoFactorSettingsState", "cancel"),
        ("TwoFactorSettingsState", "check_password"),
        ("TwoFactorSettingsState", "confirm"),
        ("TwoFactorSettingsState", "disable"),
        ("TwoFactorSettingsState", "finish"),
        ("TwoFactorSettingsState", "load"),
        ("TwoFactorSettingsState", "set_codes_saved"),
        ("TwoFactorSettingsState", "start"),
        ("TwoFactorSettingsState", "start_disable"),
        ("TwoFactorSignInState", "cancel"),
        ("TwoFactorSignInState", "submit_code"),
        ("TwoFactorSignInState", "toggle_recovery_code"),
    }


def test_no_handler_takes_identity_or_claims_as_an_argument() -> None:
    forbidden = {"user", "user_id", "uid", "sub", "step", "claims", "token", "onb", "id"}
    for cls, name in public_handlers():
        assert not forbidden & set(parameters(cls, name)), f"{cls.__name__}.{name}"


@pytest.mark.parametrize("cls", app_states(), ids=lambda c: c.__name__)
def test_private_looking_methods_cannot_be_called_by_name(cls: type[BaseState]) -> None:
    registered = RegistrationContext.get().event_handlers
    privates = private_methods(cls)
    for name in privates:
        assert name not in cls.event_handlers, name
        full_name = f"{cls.get_full_name()}.{name}"
        # Exactly the lookup the event processor does for an incoming event.
        with pytest.raises(KeyError):
            registered[full_name]
        # Nor through setvar, which only calls attributes named set_<var>.
        assert not hasattr(cls, f"set_{name}")
    # Control: the public handlers of the class are found by the same lookup.
    for name in cls.event_handlers:
        assert f"{cls.get_full_name()}.{name}" in registered


def test_the_methods_that_grant_a_session_are_private() -> None:
    must_be_private = {
        SessionState: {"_adopt", "_forget", "_verify", "_remint_from", "_show"},
        OnboardingState: {"_save", "_advance", "_fill", "_submitted", "_draft", "_toggle"},
    }
    for cls, names in must_be_private.items():
        assert names <= set(private_methods(cls)), cls
        assert not names & set(cls.event_handlers)


# --- setvar and client storage --------------------------------------------------------------


async def test_setvar_reaches_only_the_validating_setters(app_db: Settings) -> None:
    person = await sign_up()
    await fill_profile(person.tab, name="Ada")
    tab = person.tab
    session = tab.state(SessionState)
    token, before = session.token, snapshot(app_db)
    targets = [
        "token",
        "signed_in",
        "reached_step",
        "user_email",
        "current_step",
        "errors",
        "loaded",
        "_pending",
        "router",
        "interests",
        "display_name",
        "role",
        "theme",
    ]
    for cls in app_states():
        for var_name in targets:
            for value in (None, True, "completed", "admin", ["python"] * 50, {"x": 1}, MEGABYTE):
                # No setter of that name: Reflex reports an error and nothing is set.
                with contextlib.suppress(AttributeError, TypeError):
                    await tab.call(cls.event_handlers["setvar"], var_name, value)
    assert session.token == token
    assert session.reached_step == "interests"
    form = tab.state(OnboardingState)
    # Whatever arrived went through the explicit setters: capped text, known choices only.
    assert (
        isinstance(form.values["display_name"], str)
        and len(form.values["display_name"]) <= 2 * MAX_NAME
    )
    assert form.values["role"] == "developer" and form.values["theme"] == ""
    assert form.selections["interests"] == []
    assert snapshot(app_db) == before


async def test_client_storage_updates_reach_only_the_token(app_db: Settings) -> None:
    """``update_vars_internal`` is how storage (and a tampering client) sets vars."""
    person = await sign_up()
    tab = person.tab
    prefix = SessionState.get_full_name()
    await tab.call(
        UpdateVarsInternalState.update_vars_internal,
        {
            f"{prefix}.signed_in": True,
            f"{prefix}.reached_step": "completed",
            f"{OnboardingState.get_full_name()}.current_step": "review",
            f"{prefix}.token": "forged.token.value",
        },
    )
    session = tab.state(SessionState)
    assert session.token == "forged.token.value"  # storage is the client's to write ...
    assert session.reached_step == "profile"  # ... nothing else is
    assert tab.state(OnboardingState).current_step != "review"
    # and the forged value authenticates nobody.
    tab.navigate("/explore")
    assert redirects(await tab.call(SessionState.guard)) == ["/login?next=/explore"]
    assert session.signed_in is False and session.token == ""


async def test_storage_swapped_to_another_users_token_mid_session(app_db: Settings) -> None:
    alice = await sign_up()
    bob = await completed_person()
    await fill_profile(alice.tab, name="Alice")
    tab = alice.tab
    await tab.open("/onboarding/interests", OnboardingState.open_step)
    await tab.call(OnboardingState.toggle_choice, "interests", "go")
    alice_rows, bob_rows = rows_of(app_db, alice.id), rows_of(app_db, bob.id)
    alice_token = alice.token

    # Mid-session the storage var now holds Bob's (genuine) token.
    await tab.call(
        UpdateVarsInternalState.update_vars_internal,
        {f"{SessionState.get_full_name()}.token": bob.token},
    )
    # The next handler acts as whoever the token verifies as, never as the tab "was":
    events = await tab.call(OnboardingState.submit)
    assert redirects(events) == ["/explore"]  # Bob has finished onboarding
    session = tab.state(SessionState)
    assert session.user_email == bob.email and session.reached_step == "completed"
    assert rows_of(app_db, alice.id) == alice_rows
    assert rows_of(app_db, bob.id) == bob_rows  # a wizard step is refused for Bob too
    # Alice's own token, held elsewhere, is untouched by the swap.
    other = new_tab()
    other.state(SessionState).token = alice_token
    other.navigate("/onboarding/interests")
    assert await other.call(SessionState.guard) == []


async def test_storage_swapped_to_a_forged_token_mid_session_writes_nothing(
    app_db: Settings,
) -> None:
    alice = await sign_up()
    victim = await completed_person()
    tab = alice.tab
    await tab.open("/onboarding/profile", OnboardingState.open_step)
    await tab.call(OnboardingState.set_field, "display_name", "Mallory")
    await tab.call(OnboardingState.set_field, "role", "developer")
    header, _, signature = alice.token.split(".")
    _, payload, _ = victim.token.split(".")
    before = snapshot(app_db)
    for forged in (
        f"{header}.{payload}.{signature}",  # the victim's claims under Alice's signature
        victim.token[:-3] + "AAA",
        victim.token + "x",
    ):
        tab.state(SessionState).token = forged
        events = await tab.call(OnboardingState.submit)
        assert redirects(events) == ["/login?next=/onboarding/profile"]
        assert tab.state(SessionState).signed_in is False
    assert snapshot(app_db) == before


# --- every handler, hostile arguments -------------------------------------------------------


def kind(value: Any) -> str:
    """The JSON-level kind of a var's value (Reflex wraps lists/dicts in proxies)."""
    value = getattr(value, "__wrapped__", value)
    for name, types in (("bool", bool), ("int", int), ("str", str), ("list", list), ("dict", dict)):
        if isinstance(value, types):
            if name == "list":
                return "list[" + ",".join(sorted({kind(v) for v in value})) + "]"
            return name
    return type(value).__name__


def var_kinds(tab: Client) -> dict[tuple[str, str], str]:
    return {
        (cls.__name__, name): kind(getattr(tab.state(cls), name))
        for cls in app_states()
        for name in cls.base_vars
    }


FIELD_NAMES = [f.name for spec in steps() for f in spec.fields]


def arguments(params: list[str]) -> list[tuple[Any, ...]]:
    """Every hostile value in every argument; for (name, value) handlers, also every field
    name with every hostile value."""
    if not params:
        return [()]
    lists = [(v,) * len(params) for v in HOSTILE]
    if len(params) == 2:
        lists += [(name, v) for name in FIELD_NAMES for v in HOSTILE]
    return lists


async def fuzz(tab: Client) -> tuple[int, list[str]]:
    """Call every public handler with every hostile value; count calls, collect escapes."""
    escaped, calls = [], 0
    for cls, name in public_handlers():
        handler = cls.event_handlers[name]
        params = parameters(cls, name)
        argument_lists = arguments(params)
        for args in argument_lists:
            calls += 1
            try:
                await tab.call(handler, *args)
            except Exception as exc:
                escaped.append(f"{cls.__name__}.{name}{repr(args)[:60]}: {exc!r}"[:200])
    return calls, escaped


@pytest.mark.parametrize("who", ["anonymous", "onboarding", "completed"])
async def test_every_handler_survives_hostile_arguments(app_db: Settings, who: str) -> None:
    victim = await completed_person()
    victim_rows = rows_of(app_db, victim.id)
    victim_token = victim.token
    if who == "anonymous":
        tab, attacker = new_tab(), None
    else:
        attacker = await (sign_up() if who == "onboarding" else completed_person())
        tab = attacker.tab
    expected_kinds = var_kinds(tab)
    before = snapshot(app_db)

    calls, escaped = await fuzz(tab)

    assert escaped == []
    # Every var still encodes as UTF-8 (a lone surrogate in one would break the tab's delta
    # and every reconnect of it).
    for cls in app_states():
        for name in cls.base_vars:
            value = getattr(tab.state(cls), name)
            text = json.dumps(
                getattr(value, "__wrapped__", value), ensure_ascii=False, default=vars
            )
            text.encode("utf-8", "strict")  # raises on a lone surrogate
    assert calls == sum(len(arguments(parameters(c, n))) for c, n in public_handlers())
    # The victim's account, answers and session are exactly as they were.
    assert rows_of(app_db, victim.id) == victim_rows
    victim.tab.navigate("/explore")
    assert await victim.tab.call(SessionState.guard) == []
    assert victim.tab.state(SessionState).token == victim_token
    if attacker is None:
        assert snapshot(app_db) == before  # an anonymous caller changed nothing at all
    # No hostile value ended up in a var of the wrong type (lists keep their item kinds).
    after = var_kinds(tab)
    assert {k: v for k, v in after.items() if not v.startswith("list")} == {
        k: v for k, v in expected_kinds.items() if not v.startswith("list")
    }
    assert all(
        v in ("list[]", "list[str]", "list[Card]", "list[DeviceRow]")
        for k, v in after.items()
        if v.startswith("list")
    ), after


async def test_hostile_drafts_never_reach_the_database(app_db: Settings) -> None:
    person = await sign_up()
    tab = person.tab
    await tab.open("/onboarding/profile", OnboardingState.open_step)
    for value in HOSTILE:
        for name in ("display_name", "role", "bio"):
            await tab.call(OnboardingState.set_field, name, value)
        await tab.call(OnboardingState.submit)
    user = get_user_by_email(person.email)
    assert user is not None
    answers = load_answers(user.id)
    if user.onboarding_step == "profile":
        assert answers.get("role") is None and user.display_name == ""
    else:
        # A hostile *string* is valid text: stored as typed, within the limits.
        assert len(user.display_name) <= 80 and len(answers.get("bio")) <= 500
        assert "\x00" not in user.display_name + answers.get("bio")
        assert answers.get("role") in ROLES


# --- step events after completion -----------------------------------------------------------


async def test_no_wizard_or_settings_event_moves_a_completed_user_back(app_db: Settings) -> None:
    person = await completed_person()
    tab = person.tab
    version = get_user_by_email(person.email).token_version  # type: ignore[union-attr]
    before = snapshot(app_db)
    for step in ("profile", "interests", "preferences", "review"):
        # Whatever step page the client claims to open, and whatever it submits:
        tab.navigate(f"/onboarding/{step}")
        for handler in (
            OnboardingState.open_step,
            OnboardingState.submit,
            OnboardingState.skip,
            OnboardingState.finish_onboarding,
        ):
            events = await tab.call(handler)
            assert redirects(events) == ["/explore"], (step, handler)
    assert snapshot(app_db) == before
    # The settings page may edit answers, but never the reached step or the token version.
    await tab.open("/settings", SettingsState.load)
    await tab.call(SettingsState.set_field, "display_name", "Renamed")
    await tab.call(SettingsState.save_section, "profile")
    user = get_user_by_email(person.email)
    assert user is not None
    assert user.display_name == "Renamed" and user.onboarding_step == "completed"
    assert user.token_version == version


async def test_wizard_events_of_an_onboarding_user_cannot_use_settings_saves(
    app_db: Settings,
) -> None:
    person = await sign_up()
    await reach_review(person.tab)
    before = snapshot(app_db)
    tab = person.tab
    for step in ("profile", "interests", "preferences"):
        events = await tab.call(SettingsState.save_section, step)
        assert redirects(events) == ["/onboarding/review"], step
    assert snapshot(app_db) == before
