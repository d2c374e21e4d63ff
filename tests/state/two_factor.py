"""Two-factor steps through the real handlers: enrol in settings, log in with a code."""

from __future__ import annotations

import time

import pytest

from onboard_app.services import two_factor
from onboard_app.services.throttle import make_throttle
from onboard_app.services.two_factor import code_at, time_step
from onboard_app.settings import get_settings
from onboard_app.state.auth import LoginState
from onboard_app.state.session import SessionState
from onboard_app.state.settings import SettingsState
from onboard_app.state.two_factor import TwoFactorSettingsState, TwoFactorSignInState
from tests.security.conftest import completed_person
from tests.state.harness import Client

PASSWORD = "correct horse battery staple"


class Clock:
    """The two-factor service's clock, frozen at a real time and moved by hand."""

    def __init__(self) -> None:
        self.now = time.time()

    def time(self) -> float:
        return self.now

    def code(self, secret: str, steps_ahead: int = 0) -> str:
        """The code an app set up with ``secret`` shows now (or that many steps later)."""
        return code_at(secret, time_step(self.now) + steps_ahead)

    def tick(self, seconds: float = 30) -> None:
        self.now += seconds


def frozen_clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    """A frozen clock for the codes (for a test's ``clock`` fixture), and fresh counters.

    The counters live in the process (no Redis in these tests) and are keyed by user id,
    which every fresh test database hands out again from 1.
    """
    frozen = Clock()
    monkeypatch.setattr(two_factor, "time", frozen)
    make_throttle(get_settings()).counters.storage.reset()
    return frozen


@pytest.fixture(name="clock")
def clock_fixture(monkeypatch: pytest.MonkeyPatch) -> Clock:
    """The ``clock`` fixture of the two-factor tests: :func:`frozen_clock`.

    A test module imports it (``clock_fixture``) and asks for ``clock``.
    """
    return frozen_clock(monkeypatch)


async def enrol(tab: Client, clock: Clock) -> tuple[str, list[str]]:
    """Turn two-factor on in the settings of a completed user's tab.

    Returns:
        The secret (as the page shows it, without spaces) and the recovery codes.
    """
    await tab.open("/settings", SettingsState.load)
    await tab.call(TwoFactorSettingsState.load)
    await tab.call(TwoFactorSettingsState.start)
    await tab.call(TwoFactorSettingsState.check_password, {"current_password": PASSWORD})
    settings = tab.state(TwoFactorSettingsState)
    assert settings.stage == "scan", settings.form_error or settings.field_errors
    secret = settings.secret_text.replace(" ", "")
    await tab.call(TwoFactorSettingsState.confirm, {"code": clock.code(secret)})
    codes = list(settings.recovery_codes)
    assert settings.stage == "codes" and len(codes) == 10
    await tab.call(TwoFactorSettingsState.set_codes_saved, True)
    await tab.call(TwoFactorSettingsState.finish)
    assert settings.stage == "" and settings.enrolled
    return secret, codes


async def enrolled_person(clock: Clock) -> tuple[str, str, list[str]]:
    """A completed user with two-factor on, logged out: email, secret, recovery codes."""
    person = await completed_person()
    secret, codes = await enrol(person.tab, clock)
    await person.tab.call(SessionState.log_out)
    return person.email, secret, codes


async def password_step(tab: Client, email: str, password: str = PASSWORD) -> list:
    """The login form, on ``/login``: the events of the password step."""
    tab.navigate("/login")
    await tab.call(LoginState.reset_form)
    return await tab.call(LoginState.log_in, {"email": email, "password": password})


def waits_for_code(tab: Client) -> bool:
    """Whether the tab shows the code step, with no session yet."""
    return tab.state(TwoFactorSignInState).code_needed and not signed_in(tab)


def signed_in(tab: Client) -> bool:
    """Whether the tab holds a session."""
    session = tab.state(SessionState)
    return bool(session.signed_in and session.token)
