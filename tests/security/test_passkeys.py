"""Passkeys under attack: replayed challenges, other tabs' challenges, wrong origins, other users.

Every response is signed for real by a software authenticator (tests/fakes/authenticator.py),
so each refusal is the server's check, not a broken signature.
"""

from __future__ import annotations

import logging

import pytest
import sqlalchemy as sa

from onboard_app.services import passkeys
from onboard_app.services.db import get_engine
from onboard_app.settings import Settings
from onboard_app.state.passkeys import PasskeyLoginState, PasskeySettingsState
from onboard_app.state.session import SessionState
from tests.fakes.authenticator import SoftAuthenticator
from tests.security.conftest import completed_person, new_tab
from tests.state.harness import redirects
from tests.state.passkeys import ORIGIN, add_passkey, begin_registration, ceremony_of

pytestmark = pytest.mark.asyncio


def passkey_rows(settings: Settings) -> list[tuple[object, ...]]:
    with get_engine(settings.database_url).connect() as connection:
        return [
            tuple(row)
            for row in connection.execute(
                sa.text("SELECT id, user_id, name, sign_count FROM passkeys ORDER BY id")
            )
        ]


async def enrolled() -> tuple[SoftAuthenticator, int]:
    person = await completed_person()
    device = SoftAuthenticator()
    await add_passkey(person.tab, device)
    return device, person.id


async def test_a_used_challenge_signs_nobody_in_again(app_db: Settings) -> None:
    device, _ = await enrolled()
    tab = new_tab()
    tab.navigate("/login")
    started = ceremony_of(await tab.call(PasskeyLoginState.start_sign_in))
    assert started is not None
    response = device.get(started[1], ORIGIN)
    assert redirects(await tab.call(PasskeyLoginState.finish_sign_in, {"credential": response}))
    await tab.call(SessionState.log_out)
    # The same answer again, to the same tab: its challenge is gone.
    events = await tab.call(PasskeyLoginState.finish_sign_in, {"credential": response})
    assert redirects(events) == []
    assert tab.state(PasskeyLoginState).error == passkeys.TRY_AGAIN
    assert not tab.state(SessionState).signed_in


async def test_an_answer_to_another_tabs_challenge_is_refused(
    app_db: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    device, _ = await enrolled()
    victim, attacker = new_tab(), new_tab()
    for tab in (victim, attacker):
        tab.navigate("/login")
    attacker_options = ceremony_of(await attacker.call(PasskeyLoginState.start_sign_in))
    await victim.call(PasskeyLoginState.start_sign_in)
    assert attacker_options is not None
    # An answer made for the attacker's challenge, sent from the victim's tab (or phished
    # from the victim and sent to a tab that asked for something else): no match.
    response = device.get(attacker_options[1], ORIGIN)
    with caplog.at_level(logging.INFO, logger="onboard.audit"):
        events = await victim.call(PasskeyLoginState.finish_sign_in, {"credential": response})
    assert redirects(events) == [] and not victim.state(SessionState).signed_in
    assert "reason=passkey_challenge method=passkey" in caplog.text


@pytest.mark.parametrize(
    "origin", ["https://onboard.example.evil", "http://localhost:3001", "http://127.0.0.1:3000"]
)
async def test_a_signed_answer_from_another_origin_is_refused(
    app_db: Settings, caplog: pytest.LogCaptureFixture, origin: str
) -> None:
    device, _ = await enrolled()
    tab = new_tab()
    tab.navigate("/login")
    started = ceremony_of(await tab.call(PasskeyLoginState.start_sign_in))
    assert started is not None
    before = passkey_rows(app_db)
    with caplog.at_level(logging.INFO, logger="onboard.audit"):
        events = await tab.call(
            PasskeyLoginState.finish_sign_in, {"credential": device.get(started[1], origin)}
        )
    assert redirects(events) == [] and not tab.state(SessionState).signed_in
    assert tab.state(PasskeyLoginState).error == passkeys.NOT_ACCEPTED
    assert "reason=passkey_origin" in caplog.text
    assert passkey_rows(app_db) == before  # the counter did not move


async def test_a_registration_from_another_origin_is_not_kept(app_db: Settings) -> None:
    person = await completed_person()
    tab = person.tab
    options = await begin_registration(tab)
    response = SoftAuthenticator().create(options, "https://onboard.example.evil")
    await tab.call(PasskeySettingsState.finish_add, {"credential": response})
    assert tab.state(PasskeySettingsState).error == passkeys.NOT_ACCEPTED
    assert passkey_rows(app_db) == []


async def test_a_registration_answers_once_and_only_after_the_password(app_db: Settings) -> None:
    person = await completed_person()
    tab = person.tab
    tab.navigate("/settings")
    # Crafted: straight to the second half, with no challenge and no password.
    device = SoftAuthenticator()
    forged = device.create(
        {
            "rp": {"id": "localhost"},
            "user": {"id": "AAAA"},
            "challenge": "AAAA",
        },
        ORIGIN,
    )
    await tab.call(PasskeySettingsState.finish_add, {"credential": forged})
    assert passkey_rows(app_db) == []
    # The honest way, then its answer sent a second time.
    options = await begin_registration(tab)
    response = device.create(options, ORIGIN)
    await tab.call(PasskeySettingsState.finish_add, {"credential": response})
    await tab.call(PasskeySettingsState.finish_add, {"credential": response})
    assert len(passkey_rows(app_db)) == 1
    assert tab.state(PasskeySettingsState).error == passkeys.TRY_AGAIN


async def test_a_registration_started_by_one_user_is_not_finished_by_another(
    app_db: Settings,
) -> None:
    first = await completed_person()
    tab = first.tab
    options = await begin_registration(tab)
    # The tab signs out and someone else signs in there before the browser answers.
    second = await completed_person()
    tab.state(SessionState).token = second.token
    response = SoftAuthenticator().create(options, ORIGIN)
    await tab.call(PasskeySettingsState.finish_add, {"credential": response})
    assert passkey_rows(app_db) == []


async def test_another_users_passkey_cannot_be_renamed_or_removed(app_db: Settings) -> None:
    _, owner_id = await enrolled()
    [(passkey_id, user_id, name, _count)] = passkey_rows(app_db)
    assert user_id == owner_id
    intruder = await completed_person()
    tab = intruder.tab
    tab.navigate("/settings")
    await tab.call(PasskeySettingsState.load)
    # Not in the intruder's list: the dialogs do not open.
    await tab.call(PasskeySettingsState.start_rename, passkey_id)
    await tab.call(PasskeySettingsState.start_remove, passkey_id)
    state = tab.state(PasskeySettingsState)
    assert (state.renaming_id, state.removing_id) == (0, 0)
    # Even with the ids forced into the state, the service touches only the caller's rows.
    state.renaming_id = state.removing_id = passkey_id
    await tab.call(PasskeySettingsState.rename, {"name": "Mine now"})
    await tab.call(PasskeySettingsState.remove)
    assert [row[:3] for row in passkey_rows(app_db)] == [(passkey_id, owner_id, name)]
    for crafted in ("1", None, True, -1, 2**40, {"id": passkey_id}):
        await tab.call(PasskeySettingsState.start_rename, crafted)
        await tab.call(PasskeySettingsState.start_remove, crafted)
    assert (tab.state(PasskeySettingsState).renaming_id, state.removing_id) == (0, 0)


async def test_a_removed_passkey_signs_nobody_in(app_db: Settings) -> None:
    person = await completed_person()
    device = SoftAuthenticator()
    await add_passkey(person.tab, device)
    [row] = person.tab.state(PasskeySettingsState).rows
    await person.tab.call(PasskeySettingsState.start_remove, row.id)
    await person.tab.call(PasskeySettingsState.remove)
    tab = new_tab()
    tab.navigate("/login")
    started = ceremony_of(await tab.call(PasskeyLoginState.start_sign_in))
    assert started is not None
    events = await tab.call(
        PasskeyLoginState.finish_sign_in, {"credential": device.get(started[1], ORIGIN)}
    )
    assert redirects(events) == [] and not tab.state(SessionState).signed_in
    assert tab.state(PasskeyLoginState).error == passkeys.UNKNOWN_PASSKEY
