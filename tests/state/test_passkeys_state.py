"""Passkeys through the real handlers: add in settings, sign in on the login page, rename, remove.

The browser is a software authenticator (tests/fakes/authenticator.py) answering the options
the handlers send, as the page script would hand them back.
"""

from __future__ import annotations

import logging
import time

import pytest
import sqlalchemy as sa

from onboard_app.services import passkeys
from onboard_app.services.db import get_engine
from onboard_app.services.tokens import verify_session_token
from onboard_app.settings import Settings
from onboard_app.state import passkeys as passkeys_state
from onboard_app.state.passkeys import (
    ADDED,
    BROWSER_ERRORS,
    ENTER_PASSWORD,
    SOMETHING_WRONG,
    WRONG_PASSWORD,
    PasskeyLoginState,
    PasskeySettingsState,
)
from onboard_app.state.session import SessionState
from tests.fakes.authenticator import SoftAuthenticator
from tests.security.conftest import completed_person, new_tab, sign_up
from tests.state.harness import redirects, toasts
from tests.state.mail import last_mail
from tests.state.passkeys import PASSWORD, add_passkey, ceremony_of, sign_in_with
from tests.state.two_factor import enrol, frozen_clock, signed_in, waits_for_code

pytestmark = pytest.mark.asyncio


async def test_add_a_passkey_sign_out_and_sign_in_with_it(
    app_db: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    person = await completed_person()
    tab, device = person.tab, SoftAuthenticator()
    tab.navigate("/settings")
    await tab.call(PasskeySettingsState.load)
    assert tab.state(PasskeySettingsState).rows == []

    # "Add a passkey" asks for the password first; the right one starts the ceremony.
    assert await tab.call(PasskeySettingsState.begin_add) == []
    assert tab.state(PasskeySettingsState).confirming
    events = await tab.call(PasskeySettingsState.confirm_password, {"password": PASSWORD})
    started = ceremony_of(events)
    assert started is not None and started[0] == "create"
    assert started[1]["user"]["name"] == person.email
    settings = tab.state(PasskeySettingsState)
    assert not settings.confirming and settings.busy
    with caplog.at_level(logging.INFO, logger="onboard.audit"):
        events = await tab.call(
            PasskeySettingsState.finish_add,
            {"credential": device.create(started[1], "http://localhost:3000")},
        )
    assert any(ADDED.split(".")[0] in t for t in toasts(events))
    [row] = tab.state(PasskeySettingsState).rows
    assert (row.last_used, tab.state(PasskeySettingsState).busy) == ("", False)
    assert f"audit event=passkey_added user={person.id}" in caplog.text
    assert last_mail(person.email, "security_notice").subject == (
        "A passkey was added to your account"
    )

    await tab.call(SessionState.log_out)
    assert tab.state(PasskeySettingsState).rows == []  # cleared with every user var

    # Another browser: "Sign in with a passkey" goes where a login goes, via one session start.
    other = new_tab()
    with caplog.at_level(logging.INFO, logger="onboard.audit"):
        events = await sign_in_with(other, device)
    assert redirects(events) == ["/explore"]
    session = other.state(SessionState)
    assert session.signed_in and session.user_email == person.email
    claims = verify_session_token(session.token, app_db)
    assert getattr(claims, "user_id", None) == person.id
    assert f"audit event=signin user={person.id} method=passkey" in caplog.text
    other.navigate("/settings")
    await other.call(PasskeySettingsState.load)
    [used] = other.state(PasskeySettingsState).rows
    assert used.last_used == used.added


async def test_a_passkey_sign_in_keeps_next_and_the_wizard_gate(app_db: Settings) -> None:
    person = await completed_person()
    device = SoftAuthenticator()
    await add_passkey(person.tab, device)
    tab = new_tab()
    tab.navigate("/login", {"next": "/settings"})
    started = ceremony_of(await tab.call(PasskeyLoginState.start_sign_in))
    assert started is not None
    events = await tab.call(
        PasskeyLoginState.finish_sign_in,
        {"credential": device.get(started[1], "http://localhost:3000")},
    )
    assert redirects(events) == ["/settings"]


async def test_a_wrong_password_starts_no_ceremony(
    app_db: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    person = await completed_person()
    tab = person.tab
    tab.navigate("/settings")
    await tab.call(PasskeySettingsState.begin_add)
    assert (
        ceremony_of(await tab.call(PasskeySettingsState.confirm_password, {"password": ""})) is None
    )
    assert tab.state(PasskeySettingsState).password_error == ENTER_PASSWORD
    with caplog.at_level(logging.INFO, logger="onboard.audit"):
        events = await tab.call(
            PasskeySettingsState.confirm_password, {"password": "not it at all"}
        )
    assert ceremony_of(events) is None
    state = tab.state(PasskeySettingsState)
    assert (state.password_error, state.confirming) == (WRONG_PASSWORD, True)
    assert f"audit event=reauth_failed user={person.id} reason=wrong_password" in caplog.text
    # Counted like logins: a stolen session cannot guess the password for long.
    for _ in range(5):
        await tab.call(PasskeySettingsState.confirm_password, {"password": "not it at all"})
    events = await tab.call(PasskeySettingsState.confirm_password, {"password": PASSWORD})
    assert ceremony_of(events) is None
    assert "Too many failed attempts" in tab.state(PasskeySettingsState).password_error


async def test_the_password_proof_lasts_a_while_for_this_sign_in_only(
    app_db: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    person = await completed_person()
    tab, device = person.tab, SoftAuthenticator()
    await add_passkey(tab, device)
    # Shortly after: no second password prompt.
    assert ceremony_of(await tab.call(PasskeySettingsState.begin_add)) is not None
    # A second click while the browser works on it starts nothing more.
    assert await tab.call(PasskeySettingsState.begin_add) == []
    await tab.call(PasskeySettingsState.finish_add, {"error": "NotAllowedError"})
    # Later: asked again.
    later = time.time() + passkeys_state.REAUTH_TTL + 1
    monkeypatch.setattr(passkeys_state.time, "time", lambda: later)
    assert ceremony_of(await tab.call(PasskeySettingsState.begin_add)) is None
    assert tab.state(PasskeySettingsState).confirming


async def test_an_account_without_a_password_needs_a_recent_sign_in(
    app_db: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    person = await completed_person()
    with get_engine(app_db.database_url).begin() as connection:  # as a GitHub account has
        connection.execute(
            sa.text("UPDATE users SET password_hash = NULL WHERE id = :id"), {"id": person.id}
        )
    tab = person.tab
    tab.navigate("/settings")
    # Signed in moments ago: the sign-in is the proof, the ceremony starts at once.
    assert ceremony_of(await tab.call(PasskeySettingsState.begin_add)) is not None
    await tab.call(PasskeySettingsState.load)  # the page reloaded meanwhile
    later = time.time() + passkeys_state.RECENT_SIGN_IN + passkeys_state.REAUTH_TTL + 1
    monkeypatch.setattr(passkeys_state.time, "time", lambda: later)
    assert ceremony_of(await tab.call(PasskeySettingsState.begin_add)) is None
    state = tab.state(PasskeySettingsState)
    assert state.confirming and not state.has_password
    # No password to type: a crafted confirmation gets nothing.
    events = await tab.call(PasskeySettingsState.confirm_password, {"password": PASSWORD})
    assert ceremony_of(events) is None


async def test_rename_and_remove(app_db: Settings, caplog: pytest.LogCaptureFixture) -> None:
    person = await completed_person()
    tab, device = person.tab, SoftAuthenticator()
    await add_passkey(tab, device)
    [row] = tab.state(PasskeySettingsState).rows
    await tab.call(PasskeySettingsState.start_rename, row.id)
    assert tab.state(PasskeySettingsState).renaming_name == row.name
    await tab.call(PasskeySettingsState.rename, {"name": "  "})
    assert tab.state(PasskeySettingsState).rename_error == passkeys.ENTER_NAME
    await tab.call(PasskeySettingsState.rename, {"name": "x" * 65})
    assert tab.state(PasskeySettingsState).rename_error == passkeys.NAME_TOO_LONG
    events = await tab.call(PasskeySettingsState.rename, {"name": "Work laptop"})
    assert toasts(events) and tab.state(PasskeySettingsState).renaming_id == 0
    assert [r.name for r in tab.state(PasskeySettingsState).rows] == ["Work laptop"]

    await tab.call(PasskeySettingsState.start_remove, row.id)
    assert tab.state(PasskeySettingsState).removing_name == "Work laptop"
    with caplog.at_level(logging.INFO, logger="onboard.audit"):
        await tab.call(PasskeySettingsState.remove)
    assert tab.state(PasskeySettingsState).rows == []
    assert f"audit event=passkey_removed user={person.id}" in caplog.text
    assert last_mail(person.email, "security_notice").subject == (
        "A passkey was removed from your account"
    )
    stranger = new_tab()
    assert redirects(await sign_in_with(stranger, device)) == []
    assert stranger.state(PasskeyLoginState).error == passkeys.UNKNOWN_PASSKEY


@pytest.mark.parametrize(
    ("result", "message"),
    [
        ({"error": "NotAllowedError"}, BROWSER_ERRORS["NotAllowedError"]),
        ({"error": "SecurityError"}, BROWSER_ERRORS["SecurityError"]),
        ({"error": "<img src=x>"}, SOMETHING_WRONG),
        ({"error": 5}, SOMETHING_WRONG),
        ("text", SOMETHING_WRONG),
        (None, SOMETHING_WRONG),
        ({"credential": "x"}, SOMETHING_WRONG),
        ({"credential": {"id": "x"}}, passkeys.UNKNOWN_PASSKEY),
        ({"credential": {"id": 7}}, passkeys.NOT_ACCEPTED),
    ],
)
async def test_what_the_browser_says_becomes_a_message(
    app_db: Settings, result: object, message: str
) -> None:
    tab = new_tab()
    tab.navigate("/login")
    await tab.call(PasskeyLoginState.start_sign_in)
    assert tab.state(PasskeyLoginState).busy
    events = await tab.call(PasskeyLoginState.finish_sign_in, result)
    state = tab.state(PasskeyLoginState)
    assert (state.error, state.busy, redirects(events)) == (message, False, [])
    assert not tab.state(SessionState).signed_in


async def test_a_cancelled_registration_keeps_nothing(app_db: Settings) -> None:
    person = await completed_person()
    tab = person.tab
    tab.navigate("/settings")
    await tab.call(PasskeySettingsState.begin_add)
    await tab.call(PasskeySettingsState.confirm_password, {"password": PASSWORD})
    await tab.call(PasskeySettingsState.finish_add, {"error": "InvalidStateError"})
    state = tab.state(PasskeySettingsState)
    assert (state.error, state.busy, state.rows) == (BROWSER_ERRORS["InvalidStateError"], False, [])


async def test_an_unfinished_user_cannot_add_a_passkey(app_db: Settings) -> None:
    person = await sign_up()
    tab = person.tab
    tab.navigate("/settings")
    assert redirects(await tab.call(PasskeySettingsState.begin_add)) == ["/onboarding/profile"]
    assert (
        ceremony_of(await tab.call(PasskeySettingsState.confirm_password, {"password": PASSWORD}))
        is None
    )


async def test_with_two_factor_on_a_verified_passkey_is_both_factors(
    app_db: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = frozen_clock(monkeypatch)
    person = await completed_person()
    device = SoftAuthenticator()
    await enrol(person.tab, clock)
    await add_passkey(person.tab, device)
    await person.tab.call(SessionState.log_out)

    # The device checked the user (fingerprint, face, PIN): no code is asked after it.
    tab = new_tab()
    assert redirects(await sign_in_with(tab, device)) == ["/explore"]
    assert signed_in(tab) and not waits_for_code(tab)

    # Used without that check, the passkey is one factor: the code is asked, as after a password.
    other = new_tab()
    other.navigate("/login")
    started = ceremony_of(await other.call(PasskeyLoginState.start_sign_in))
    assert started is not None
    unverified = device.get(started[1], "http://localhost:3000", verified=False)
    await other.call(PasskeyLoginState.finish_sign_in, {"credential": unverified})
    assert waits_for_code(other)
