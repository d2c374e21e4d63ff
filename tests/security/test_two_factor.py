"""Attacks on the second factor: crafted code steps, other tabs, replays, brute force, logs.

A code step finishes only the pending sign-in that this connection's own password step
made, before it expires; everything else gets nothing (no session, no redirect, no code
used up). Codes are throttled per account whichever browser or address they come from.
"""

from __future__ import annotations

import logging

import pytest

from onboard_app.models import TwoFactor
from onboard_app.services import two_factor
from onboard_app.services.db import session_scope
from onboard_app.services.users import get_user_by_email
from onboard_app.settings import Settings
from onboard_app.state.auth import LoginState
from onboard_app.state.session import SessionState
from onboard_app.state.settings import SettingsState
from onboard_app.state.two_factor import (
    SIGN_IN_AGAIN,
    TOO_MANY_TRIES,
    TRIES_PER_SIGN_IN,
    TwoFactorSettingsState,
    TwoFactorSignInState,
)
from tests.security.conftest import completed_person, new_tab, snapshot
from tests.state.harness import Client, redirects
from tests.state.two_factor import (
    Clock,
    clock_fixture,  # noqa: F401 (the clock fixture)
    enrol,
    enrolled_person,
    password_step,
    signed_in,
    waits_for_code,
)

pytestmark = pytest.mark.asyncio


def last_step(user_id: int) -> int | None:
    with session_scope() as session:
        row = session.get(TwoFactor, user_id)
        assert row is not None
        return row.last_step


def user_id_of(email: str) -> int:
    user = get_user_by_email(email)
    assert user is not None and user.id is not None
    return user.id


async def gets_nothing(tab: Client, code: str, app_db: Settings) -> None:
    """A code step that must achieve nothing: no session, no redirect, nothing written."""
    before = snapshot(app_db)
    events = await tab.call(TwoFactorSignInState.submit_code, {"code": code})
    assert redirects(events) == [] and not signed_in(tab)
    assert tab.state(SessionState).token == ""
    assert snapshot(app_db) == before


async def test_a_code_with_no_pending_sign_in_gets_nothing(app_db: Settings, clock: Clock) -> None:
    email, secret, codes = await enrolled_person(clock)
    step = last_step(user_id_of(email))
    clock.tick()
    for code in (clock.code(secret), codes[0]):
        await gets_nothing(new_tab(), code, app_db)
    # Nothing was used up: the owner's next sign-in takes that very code.
    assert last_step(user_id_of(email)) == step
    owner = new_tab()
    await password_step(owner, email)
    assert redirects(
        await owner.call(TwoFactorSignInState.submit_code, {"code": clock.code(secret)})
    ) == ["/explore"]


async def test_another_tabs_pending_sign_in_is_not_this_tabs(
    app_db: Settings, clock: Clock
) -> None:
    email, secret, _ = await enrolled_person(clock)
    victim = new_tab()
    await password_step(victim, email)
    assert waits_for_code(victim)
    clock.tick()
    attacker = new_tab()  # another browser: its own state, nothing pending
    await gets_nothing(attacker, clock.code(secret), app_db)
    # A second tab of the same browser is another client token, so another state tree.
    await gets_nothing(Client(ip=victim.ip), clock.code(secret), app_db)
    events = await victim.call(TwoFactorSignInState.submit_code, {"code": clock.code(secret)})
    assert redirects(events) == ["/explore"] and signed_in(victim)


async def test_a_reconnect_with_the_same_client_token_loses_the_pending_sign_in(
    app_db: Settings, clock: Clock
) -> None:
    email, secret, _ = await enrolled_person(clock)
    tab = new_tab()
    await password_step(tab, email)
    tab.reconnect()  # a leaked client token used from another websocket
    clock.tick()
    await gets_nothing(tab, clock.code(secret), app_db)
    assert not tab.state(TwoFactorSignInState).code_needed


async def test_a_pending_sign_in_expires(app_db: Settings, clock: Clock) -> None:
    email, secret, _ = await enrolled_person(clock)
    tab = new_tab()
    await password_step(tab, email)
    pending = tab.state(TwoFactorSignInState)._pending
    assert pending is not None
    pending["expires"] -= 301
    clock.tick()
    await gets_nothing(tab, clock.code(secret), app_db)
    assert tab.state(LoginState).form_error == SIGN_IN_AGAIN
    assert not tab.state(TwoFactorSignInState).code_needed


async def test_a_code_used_in_one_sign_in_is_refused_in_another(
    app_db: Settings, clock: Clock
) -> None:
    email, secret, _ = await enrolled_person(clock)
    first, second = new_tab(), new_tab()
    await password_step(first, email)
    await password_step(second, email)
    clock.tick()
    code = clock.code(secret)
    assert redirects(await first.call(TwoFactorSignInState.submit_code, {"code": code})) == [
        "/explore"
    ]
    await second.call(TwoFactorSignInState.submit_code, {"code": code})
    assert not signed_in(second) and waits_for_code(second)
    assert "works once" in second.state(TwoFactorSignInState).field_errors["code"]


async def test_guessing_codes_is_throttled_per_account(app_db: Settings, clock: Clock) -> None:
    email, secret, codes = await enrolled_person(clock)
    tab = new_tab()
    await password_step(tab, email)
    wrong = clock.code(secret, 7)
    for _ in range(TRIES_PER_SIGN_IN):
        await tab.call(TwoFactorSignInState.submit_code, {"code": wrong})
        assert not signed_in(tab)
    # This sign-in is used up: the password is asked again.
    assert not tab.state(TwoFactorSignInState).code_needed
    assert tab.state(LoginState).form_error == TOO_MANY_TRIES
    # The account's count is full: a new sign-in from another address gets no check at
    # all, not even for the right code or a recovery code.
    clock.tick()
    other = new_tab()
    await password_step(other, email)
    for code in (clock.code(secret), codes[0]):
        before = snapshot(app_db)
        await other.call(TwoFactorSignInState.submit_code, {"code": code})
        assert not signed_in(other)
        assert "Too many wrong codes" in other.state(TwoFactorSignInState).form_error
        assert snapshot(app_db) == before
    assert two_factor.status(user_id_of(email)).recovery_codes_left == 10


async def test_settings_steps_cannot_be_skipped_by_crafted_calls(
    app_db: Settings, clock: Clock
) -> None:
    person = await completed_person()
    tab = person.tab
    await tab.open("/settings", SettingsState.load)
    await tab.call(TwoFactorSettingsState.load)
    state = tab.state(TwoFactorSettingsState)
    # No password step: no secret is made or shown, nothing is confirmed or turned off.
    await tab.call(TwoFactorSettingsState.check_password, {"current_password": "x"})
    await tab.call(TwoFactorSettingsState.confirm, {"code": "123456"})
    await tab.call(TwoFactorSettingsState.disable, {"current_password": "x", "code": "123456"})
    await tab.call(TwoFactorSettingsState.start_disable)  # not on: nothing to turn off
    assert (state.stage, state.qr_code, state.secret_text) == ("", "", "")
    with session_scope() as session:
        assert session.get(TwoFactor, person.id) is None
    # Wrong-typed forms are empty answers, never a crash.
    await tab.call(TwoFactorSettingsState.start)
    for junk in ("python", None, 7, ["a"], {"current_password": ["x"]}):
        await tab.call(TwoFactorSettingsState.check_password, junk)
        assert state.stage == "password"
        assert state.field_errors == {"current_password": "Enter your current password."}
    # Once on, starting again is refused: the secret cannot be replaced without turning off.
    await tab.call(TwoFactorSettingsState.cancel)
    await enrol(tab, clock)
    await tab.call(TwoFactorSettingsState.start)
    assert state.stage == ""
    await tab.call(TwoFactorSettingsState.check_password, {"current_password": "x"})
    assert state.secret_text == "" and two_factor.is_enrolled(person.id)
    with session_scope() as session:
        row = session.get(TwoFactor, person.id)
        assert row is not None and row.confirmed_at is not None


async def test_no_secret_or_code_reaches_the_logs(
    app_db: Settings, clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.DEBUG):
        email, secret, codes = await enrolled_person(clock)
        tab = new_tab()
        await password_step(tab, email)
        await tab.call(TwoFactorSignInState.submit_code, {"code": "000000"})
        await tab.call(TwoFactorSignInState.submit_code, {"code": codes[1]})
    assert signed_in(tab)
    text = caplog.text
    assert secret not in text and secret.lower() not in text
    assert not any(code in text or code.replace("-", "") in text for code in codes)
    assert "event=two_factor_enabled" in text and "second_factor=recovery_code" in text
