"""Two-factor authentication through the handlers: enrol in settings, sign in, reset, turn off."""

from __future__ import annotations

import logging

import pytest

from onboard_app.services import two_factor
from onboard_app.services.throttle import make_throttle
from onboard_app.services.users import get_user_by_email
from onboard_app.settings import Settings, get_settings
from onboard_app.state.account_recovery import ForgotPasswordState, ResetPasswordState
from onboard_app.state.auth import LoginState
from onboard_app.state.session import SessionState
from onboard_app.state.settings import SettingsState
from onboard_app.state.two_factor import (
    SAVE_CODES_FIRST,
    TwoFactorSettingsState,
    TwoFactorSignInState,
    hold_for_second_factor,
)
from tests.security.conftest import completed_person, new_tab
from tests.state.harness import redirects, toasts
from tests.state.mail import last_mail
from tests.state.two_factor import (
    PASSWORD,
    Clock,
    clock_fixture,  # noqa: F401 (the clock fixture)
    enrol,
    enrolled_person,
    password_step,
    signed_in,
    waits_for_code,
)

pytestmark = pytest.mark.asyncio


async def test_enrolment_asks_the_password_then_a_code_and_shows_the_codes_once(
    app_db: Settings, clock: Clock
) -> None:
    person = await completed_person()
    tab = person.tab
    await tab.open("/settings", SettingsState.load)
    await tab.call(TwoFactorSettingsState.load)
    state = tab.state(TwoFactorSettingsState)
    assert (state.loaded, state.has_password, state.enrolled, state.stage) == (
        True,
        True,
        False,
        "",
    )
    await tab.call(TwoFactorSettingsState.start)
    assert state.stage == "password" and state.qr_code == state.secret_text == ""
    await tab.call(TwoFactorSettingsState.check_password, {"current_password": "not it at all"})
    assert state.stage == "password" and state.qr_code == ""  # nothing shown without it
    assert state.field_errors == {"current_password": "This is not your current password."}
    await tab.call(TwoFactorSettingsState.check_password, {"current_password": PASSWORD})
    assert state.stage == "scan" and state.qr_code.startswith("data:image/svg+xml")
    secret = state.secret_text.replace(" ", "")
    assert len(secret) == 32 and state.secret_text.count(" ") == 7
    assert not two_factor.is_enrolled(person.id)
    await tab.call(TwoFactorSettingsState.confirm, {"code": clock.code(secret, 5)})
    assert state.stage == "scan" and "not valid" in state.field_errors["code"]
    await tab.call(TwoFactorSettingsState.confirm, {"code": clock.code(secret)})
    assert state.stage == "codes" and len(state.recovery_codes) == 10
    assert two_factor.is_enrolled(person.id)
    # The codes stay until the user says they are saved, then they are gone for good.
    await tab.call(TwoFactorSettingsState.finish)
    assert state.form_error == SAVE_CODES_FIRST and len(state.recovery_codes) == 10
    await tab.call(TwoFactorSettingsState.set_codes_saved, "yes")  # not a bool: not ticked
    assert state.codes_saved is False
    await tab.call(TwoFactorSettingsState.set_codes_saved, True)
    events = await tab.call(TwoFactorSettingsState.finish)
    assert any("is on" in t for t in toasts(events))
    assert (state.stage, state.recovery_codes, state.enrolled, state.recovery_codes_left) == (
        "",
        [],
        True,
        10,
    )
    await tab.call(TwoFactorSettingsState.load)
    assert state.recovery_codes == [] and state.secret_text == "" and state.qr_code == ""


async def test_a_cancelled_setup_leaves_two_factor_off(app_db: Settings, clock: Clock) -> None:
    person = await completed_person()
    tab = person.tab
    await tab.open("/settings", SettingsState.load)
    await tab.call(TwoFactorSettingsState.load)
    await tab.call(TwoFactorSettingsState.start)
    await tab.call(TwoFactorSettingsState.check_password, {"current_password": PASSWORD})
    secret = tab.state(TwoFactorSettingsState).secret_text.replace(" ", "")
    await tab.call(TwoFactorSettingsState.cancel)
    assert tab.state(TwoFactorSettingsState).stage == ""
    assert tab.state(TwoFactorSettingsState).secret_text == ""
    # The abandoned secret confirms nothing, and login still needs no code.
    with pytest.raises(two_factor.EnrolmentRefused):
        two_factor.confirm_enrolment(
            person.id, clock.code(secret), "203.0.113.9", make_throttle(get_settings())
        )
    await person.tab.call(SessionState.log_out)
    tab = new_tab()
    assert redirects(await password_step(tab, person.email)) == ["/explore"] and signed_in(tab)


async def test_sign_in_waits_for_the_code_after_the_password(
    app_db: Settings, clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    email, secret, _ = await enrolled_person(clock)
    tab = new_tab()
    events = await password_step(tab, email)
    # The password was right, but there is no session: the login page asks for the code.
    assert redirects(events) == ["/login"] and waits_for_code(tab)
    assert tab.state(SessionState).token == ""
    assert tab.state(TwoFactorSignInState)._pending is not None
    await tab.call(TwoFactorSignInState.submit_code, {"code": ""})
    assert tab.state(TwoFactorSignInState).field_errors == {"code": two_factor.ENTER_CODE}
    clock.tick()
    with caplog.at_level(logging.INFO, logger="onboard.audit"):
        events = await tab.call(TwoFactorSignInState.submit_code, {"code": clock.code(secret)})
    assert redirects(events) == ["/explore"] and signed_in(tab)
    assert tab.state(SessionState).user_email == email
    assert not tab.state(TwoFactorSignInState).code_needed
    assert tab.state(TwoFactorSignInState)._pending is None
    assert "event=signin" in caplog.text and "second_factor=totp" in caplog.text
    assert clock.code(secret) not in caplog.text


async def test_the_next_page_survives_the_code_step(app_db: Settings, clock: Clock) -> None:
    email, secret, _ = await enrolled_person(clock)
    tab = new_tab()
    tab.navigate("/login", {"next": "/settings"})
    events = await tab.call(LoginState.log_in, {"email": email, "password": PASSWORD})
    assert redirects(events) == ["/login?next=/settings"]
    clock.tick()
    events = await tab.call(TwoFactorSignInState.submit_code, {"code": clock.code(secret)})
    assert redirects(events) == ["/settings"]


async def test_a_recovery_code_signs_in_once(app_db: Settings, clock: Clock) -> None:
    email, _, codes = await enrolled_person(clock)
    for attempt in range(2):
        tab = new_tab()
        await password_step(tab, email)
        await tab.call(TwoFactorSignInState.toggle_recovery_code)
        assert tab.state(TwoFactorSignInState).use_recovery_code
        events = await tab.call(TwoFactorSignInState.submit_code, {"code": codes[4].upper()})
        if attempt == 0:
            assert redirects(events) == ["/explore"] and signed_in(tab)
            assert any("9 left" in t for t in toasts(events))
            await tab.call(SessionState.log_out)
        else:
            assert redirects(events) == [] and waits_for_code(tab)
            error = tab.state(TwoFactorSignInState).field_errors["code"]
            assert error == two_factor.WRONG_RECOVERY_CODE


async def test_a_wrong_password_never_reaches_the_code_step(app_db: Settings, clock: Clock) -> None:
    email, _, _ = await enrolled_person(clock)
    tab = new_tab()
    events = await password_step(tab, email, "wrong password here")
    assert redirects(events) == [] and not tab.state(TwoFactorSignInState).code_needed
    assert tab.state(LoginState).form_error == "Email or password is incorrect."


async def test_cancel_returns_to_the_password_form(app_db: Settings, clock: Clock) -> None:
    email, secret, _ = await enrolled_person(clock)
    tab = new_tab()
    await password_step(tab, email)
    await tab.call(TwoFactorSignInState.cancel)
    state = tab.state(TwoFactorSignInState)
    assert not state.code_needed and state._pending is None
    clock.tick()
    assert (
        redirects(await tab.call(TwoFactorSignInState.submit_code, {"code": clock.code(secret)}))
        == []
    )
    assert not signed_in(tab)


async def test_a_password_reset_signs_in_only_after_the_code(
    app_db: Settings, clock: Clock
) -> None:
    email, secret, _ = await enrolled_person(clock)
    tab = new_tab()
    tab.navigate("/forgot-password")
    await tab.call(ForgotPasswordState.request_reset, {"email": email})
    link = last_mail(email, "password_reset").link
    path, _, fragment = link.partition("://")[2].partition("/")[2].partition("#")
    tab.navigate(f"/{path}#{fragment}")
    await tab.call(ResetPasswordState.open_link)
    new_password = "lantern oboe glacier paddle"
    events = await tab.call(ResetPasswordState.reset_password, {"password": new_password})
    # The password is changed, but the tab is not signed in: the code comes first.
    assert redirects(events) == ["/login"] and waits_for_code(tab)
    tab.navigate("/login")
    clock.tick()
    events = await tab.call(TwoFactorSignInState.submit_code, {"code": clock.code(secret)})
    assert redirects(events) == ["/explore"] and signed_in(tab)
    # And a login with the new password asks for the code too.
    other = new_tab()
    await password_step(other, email, new_password)
    assert waits_for_code(other)


async def test_turning_off_needs_the_password_and_a_code(
    app_db: Settings, clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    person = await completed_person()
    _, codes = await enrol(person.tab, clock)
    tab = person.tab
    await tab.call(TwoFactorSettingsState.start_disable)
    state = tab.state(TwoFactorSettingsState)
    assert state.stage == "disable"
    with caplog.at_level(logging.INFO, logger="onboard.audit"):
        await tab.call(TwoFactorSettingsState.disable, {"current_password": PASSWORD, "code": "1"})
        assert state.enrolled and "not valid" in state.field_errors["code"]
        await tab.call(
            TwoFactorSettingsState.disable,
            {"current_password": "nope nope nope", "code": codes[0]},
        )
        assert state.enrolled and "current_password" in state.field_errors
    assert last_mail(person.email, "security_notice").subject == (
        "Two-factor authentication was turned on"
    )
    # Each refusal is audited as the account forms' are.
    assert f"audit event=reauth_failed user={person.id} reason=wrong_code" in caplog.text
    assert f"audit event=reauth_failed user={person.id} reason=wrong_password" in caplog.text
    events = await tab.call(
        TwoFactorSettingsState.disable, {"current_password": PASSWORD, "code": codes[0]}
    )
    assert any("is off" in t for t in toasts(events))
    assert (state.enrolled, state.stage) == (False, "")
    assert not two_factor.is_enrolled(person.id)
    notice = last_mail(person.email, "security_notice")
    assert notice.subject == "Two-factor authentication was turned off"
    await tab.call(SessionState.log_out)
    login = new_tab()
    assert redirects(await password_step(login, person.email)) == ["/explore"]
    assert signed_in(login)


async def test_a_passkey_is_not_asked_for_a_code(app_db: Settings, clock: Clock) -> None:
    email, _, _ = await enrolled_person(clock)
    user = get_user_by_email(email)
    assert user is not None
    tab = new_tab()
    assert await hold_for_second_factor(tab.state(LoginState), user, "passkey") is None
    held = await hold_for_second_factor(tab.state(LoginState), user, "email_link")
    assert held is not None and waits_for_code(tab)
