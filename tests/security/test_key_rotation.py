"""Key rotation as an operator does it (README "Rotating the signing key"), at the app level.

1. The app runs with ``ONBOARD_SIGNING_KEY=kid1:<key1>``.
2. Rotate: ``ONBOARD_SIGNING_KEY=kid2:<key2>`` and
   ``ONBOARD_OLD_SIGNING_KEYS=kid1:<key1>:<not_after>``, restart.
3. Sessions signed with kid1 keep working until ``not_after``; any activity that re-mints
   moves them to kid2; after ``not_after`` a kid1 token is a plain "log in again".

The settings are built by ``load_settings`` from exactly those variables and installed with
``override_settings`` (what a restart does); the users act through the real handlers.
"""

from __future__ import annotations

import secrets
import time
from pathlib import Path

import jwt

from onboard_app.settings import Settings, load_settings, override_settings
from onboard_app.state.auth import LoginState
from onboard_app.state.onboarding import OnboardingState
from onboard_app.state.session import SessionState
from tests.security.conftest import (
    PASSWORD,
    fill_profile,
    new_tab,
    sign_up,
)
from tests.state.harness import redirects

KEY1, KEY2 = secrets.token_urlsafe(32), secrets.token_urlsafe(32)


def restart_with(app_db: Settings, **variables: str) -> Settings:
    """What a restart with these ``ONBOARD_*`` variables gives the app."""
    env = {
        "ONBOARD_ENV": "production",
        "ONBOARD_DATABASE_URL": app_db.database_url,
        "ONBOARD_SMTP_URL": "smtp://127.0.0.1:9",  # required in production; nothing is sent
        **{f"ONBOARD_{name}": value for name, value in variables.items()},
    }
    settings = load_settings(env)
    override_settings(settings)
    return settings


def kid_of(token: str) -> str:
    return jwt.get_unverified_header(token)["kid"]


async def test_rotation_keeps_sessions_until_not_after_then_asks_to_log_in(
    app_db: Settings,
) -> None:
    try:
        restart_with(app_db, SIGNING_KEY=f"kid1:{KEY1}")
        active = await sign_up()  # keeps using the app through the rotation
        idle = await sign_up()  # opens a tab now and then
        idle_token = idle.token
        assert kid_of(active.token) == kid_of(idle_token) == "kid1"

        not_after = int(time.time()) + 3600
        rotated = restart_with(
            app_db, SIGNING_KEY=f"kid2:{KEY2}", OLD_SIGNING_KEYS=f"kid1:{KEY1}:{not_after}"
        )
        assert [k.kid for k in rotated.signing_keys] == ["kid2", "kid1"]
        # Both sessions survive the switch.
        for person in (active, idle):
            person.tab.navigate("/onboarding/profile")
            assert await person.tab.call(SessionState.guard) == []
            assert person.tab.state(SessionState).signed_in
        # Activity re-mints from the row: the active session moves to the new key.
        assert redirects(await fill_profile(active.tab)) == ["/onboarding/interests"]
        assert kid_of(active.token) == "kid2"
        # New logins are signed with the new key.
        fresh = new_tab()
        fresh.navigate("/login")
        await fresh.call(LoginState.log_in, {"email": idle.email, "password": PASSWORD})
        assert kid_of(fresh.state(SessionState).token) == "kid2"

        # The grace period ends (same variables, later clock: not_after in the past).
        restart_with(
            app_db,
            SIGNING_KEY=f"kid2:{KEY2}",
            OLD_SIGNING_KEYS=f"kid1:{KEY1}:{int(time.time()) - 1}",
        )
        stale = new_tab()
        stale.state(SessionState).token = idle_token
        events = await stale.open("/onboarding/profile", OnboardingState.open_step)
        assert redirects(events) == ["/login?next=/onboarding/profile"]
        assert stale.state(SessionState).token == ""
        # The moved session and the new login are unaffected.
        active.tab.navigate("/onboarding/interests")
        assert await active.tab.call(SessionState.guard) == []
        fresh.navigate("/onboarding/profile")
        assert await fresh.call(SessionState.guard) == []

        # Finally the old key is removed from the configuration altogether.
        restart_with(app_db, SIGNING_KEY=f"kid2:{KEY2}")
        active.tab.navigate("/onboarding/interests")
        assert await active.tab.call(SessionState.guard) == []
    finally:
        override_settings(app_db)


def test_cli_check_reports_the_keyring_during_a_rotation(tmp_path: Path) -> None:
    from tests.security.test_startup import cli_check, production_env

    env = production_env(
        tmp_path,
        f"kid2:{KEY2}",
        ONBOARD_OLD_SIGNING_KEYS=f"kid1:{KEY1}:{int(time.time()) + 3600}",
    )
    done = cli_check(env)
    assert done.returncode == 0, done.stderr
    assert "settings OK (production, 2 key(s))" in done.stdout
    # A typo in the old key is refused, not ignored (the old sessions would all die).
    env["ONBOARD_OLD_SIGNING_KEYS"] = f"kid1:{KEY1}"
    done = cli_check(env)
    assert done.returncode == 2 and "kid:key:not_after" in done.stderr
