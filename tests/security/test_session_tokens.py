"""Token cases at the session layer: replay, deleted user, logout, key rotation, lifetime.

``tests/unit/test_tokens.py`` covers every token case that needs no database; this module
covers the ones that do (``sessions.authenticate``) and what a visitor then sees.
"""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
import time

import jwt

from onboard_app.models import User
from onboard_app.services.sessions import Authenticated, authenticate
from onboard_app.services.tokens import (
    Rejection,
    SessionClaims,
    TokenRejected,
    mint_session_token,
    verify_session_token,
)
from onboard_app.services.users import delete_user, get_user
from onboard_app.settings import Settings, SigningKey, override_settings
from onboard_app.state.auth import LoginState
from onboard_app.state.explore import ExploreState
from onboard_app.state.onboarding import OnboardingState
from onboard_app.state.session import SessionState
from tests.conftest import make_settings
from tests.security.conftest import (
    PASSWORD,
    ROOT,
    fill_profile,
    new_tab,
    reach_review,
    sign_up,
    snapshot,
)
from tests.state.harness import redirects, toasts


def claims(token: str) -> dict:
    return jwt.decode(token, options={"verify_signature": False})


def user_row(user_id: int) -> User:
    user = get_user(user_id)
    assert user is not None
    return user


# --- replay of a pre-onboarding token --------------------------------------------------------


async def test_pre_onboarding_token_replayed_on_a_wizard_page_heals_and_changes_nothing(
    app_db: Settings,
) -> None:
    person = await sign_up()
    stale = person.token  # onb=profile, minted at signup
    tab = person.tab
    await reach_review(tab)
    assert redirects(await tab.call(OnboardingState.finish_onboarding)) == ["/explore"]
    done_at = user_row(person.id).onboarding_completed_at
    before = snapshot(app_db)

    replay = new_tab()
    replay.state(SessionState).token = stale
    events = await replay.open("/onboarding/profile", OnboardingState.open_step)
    # Not trapped in the wizard, not signed out: sent to explore with a healed token.
    assert redirects(events) == ["/explore"]
    session = replay.state(SessionState)
    assert session.signed_in and session.reached_step == "completed"
    healed = claims(session.token)
    old = claims(stale)
    assert healed["onb"] == "completed"
    assert (healed["sub"], healed["auth_time"], healed["ver"]) == (
        old["sub"],
        old["auth_time"],
        old["ver"],
    )
    assert healed["jti"] != old["jti"]
    assert jwt.get_unverified_header(session.token)["kid"] == app_db.current_key.kid
    # The replay moved nothing backwards.
    assert snapshot(app_db) == before
    assert user_row(person.id).onboarding_completed_at == done_at
    # And the healed token opens explore directly.
    assert await replay.open("/explore", ExploreState.load) == []
    assert replay.state(ExploreState).loaded


# --- deleted user ---------------------------------------------------------------------------


async def test_token_of_a_deleted_user_signs_out_and_writes_nothing(app_db: Settings) -> None:
    person = await sign_up()
    await fill_profile(person.tab)
    token = person.token
    delete_user(person.id)
    before = snapshot(app_db)

    tab = person.tab
    tab.navigate("/onboarding/interests")
    assert redirects(await tab.call(SessionState.guard)) == ["/login?next=/onboarding/interests"]
    assert tab.state(SessionState).token == ""
    assert tab.state(SessionState).signed_in is False

    # Restored by hand, the token still opens nothing and writes nothing.
    other = new_tab()
    other.state(SessionState).token = token
    other.navigate("/onboarding/profile")
    await other.call(OnboardingState.set_field, "display_name", "Ghost")
    await other.call(OnboardingState.set_field, "role", "developer")
    events = await other.call(OnboardingState.submit)
    assert redirects(events) == ["/login?next=/onboarding/profile"]
    other.navigate("/onboarding/review")  # Finish is pressed on the review page
    assert redirects(await other.call(OnboardingState.finish_onboarding)) == [
        "/login?next=/onboarding/review"
    ]
    assert snapshot(app_db) == before


# --- logout ---------------------------------------------------------------------------------


def authenticate_in_another_process(token: str, settings: Settings) -> str:
    """What a second worker (its own process, engine and settings) says about a token."""
    key = settings.current_key
    env = {k: v for k, v in os.environ.items() if not k.startswith("ONBOARD_")}
    env.update(
        {
            "ONBOARD_ENV": "production",
            "ONBOARD_SMTP_URL": "smtp://127.0.0.1:9",  # required in production; nothing is sent
            "ONBOARD_SIGNING_KEY": f"{key.kid}:{key.secret.hex()}",
            "ONBOARD_DATABASE_URL": settings.database_url,
        }
    )
    script = (
        "import sys; from onboard_app.services.sessions import authenticate; "
        "r = authenticate(sys.stdin.read()); "
        "print(getattr(getattr(r, 'reason', None), 'value', None) or f'user {r.user.id}')"
    )
    done = subprocess.run(
        [sys.executable, "-c", script],
        input=token,
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        timeout=60,
        check=True,
    )
    return done.stdout.strip().splitlines()[-1]


async def test_token_after_logout_dies_in_the_same_browser_another_browser_and_worker(
    app_db: Settings,
) -> None:
    person = await sign_up()
    old = person.token
    other_browser = new_tab()
    other_browser.state(SessionState).token = old
    other_browser.navigate("/onboarding/profile")
    assert await other_browser.call(SessionState.guard) == []
    assert authenticate_in_another_process(old, app_db) == f"user {person.id}"
    version = user_row(person.id).token_version

    events = await person.tab.call(SessionState.log_out)
    assert redirects(events) == ["/login"]
    assert any("logged out" in t for t in toasts(events))
    assert person.tab.state(SessionState).token == ""
    assert user_row(person.id).token_version == version + 1

    # Same browser: the old token put back into storage.
    person.tab.state(SessionState).token = old
    person.tab.navigate("/onboarding/profile")
    assert redirects(await person.tab.call(SessionState.guard)) == [
        "/login?next=/onboarding/profile"
    ]
    assert person.tab.state(SessionState).token == ""
    # Another browser that still holds a copy.
    assert redirects(await other_browser.call(SessionState.guard)) == [
        "/login?next=/onboarding/profile"
    ]
    assert other_browser.state(SessionState).signed_in is False
    # Another worker: the revocation lives in the shared database, not in a process.
    assert authenticate_in_another_process(old, app_db) == "revoked"

    # Logging in again works, and does not bring the old token back.
    again = new_tab()
    again.navigate("/login")
    await again.call(LoginState.log_in, {"email": person.email, "password": PASSWORD})
    assert again.state(SessionState).signed_in
    assert authenticate(old) == TokenRejected(Rejection.REVOKED)


async def test_log_out_with_a_dead_token_revokes_nothing_more(app_db: Settings) -> None:
    person = await sign_up()
    old = person.token
    await person.tab.call(SessionState.log_out)
    await sign_up(new_tab())
    fresh_tab = new_tab()
    fresh_tab.navigate("/login")
    await fresh_tab.call(LoginState.log_in, {"email": person.email, "password": PASSWORD})
    fresh = fresh_tab.state(SessionState).token
    version = user_row(person.id).token_version
    # A thief replaying the dead token's logout cannot end the owner's new session.
    thief = new_tab()
    thief.state(SessionState).token = old
    events = await thief.call(SessionState.log_out)
    assert redirects(events) == ["/login"] and toasts(events) == []
    assert user_row(person.id).token_version == version
    assert isinstance(authenticate(fresh), Authenticated)


# --- key rotation (session layer) -----------------------------------------------------------


async def test_old_kid_accepted_until_not_after_then_rejected(app_db: Settings) -> None:
    person = await sign_up()
    t0 = int(time.time())
    old = SigningKey("kid1", secrets.token_bytes(32))
    new = SigningKey("kid2", secrets.token_bytes(32))
    before = make_settings(database_url=app_db.database_url, signing_keys=(old,))
    token = mint_session_token(user_row(person.id), before, now=t0)
    not_after = t0 + 300
    after = make_settings(
        database_url=app_db.database_url,
        signing_keys=(new, SigningKey("kid1", old.secret, not_after)),
    )

    within = authenticate(token, after, now=t0 + 100)
    assert isinstance(within, Authenticated)
    assert within.claims.kid == "kid1" and within.reminted is False
    at_limit = authenticate(token, after, now=not_after)
    assert isinstance(at_limit, Authenticated)
    assert authenticate(token, after, now=not_after + 1) == TokenRejected(Rejection.INVALID)
    # A key removed from the keyring kills its tokens at once.
    dropped = make_settings(database_url=app_db.database_url, signing_keys=(new,))
    assert authenticate(token, dropped, now=t0 + 100) == TokenRejected(Rejection.INVALID)
    # New sessions are signed with the new key.
    fresh = mint_session_token(user_row(person.id), after, now=t0)
    assert jwt.get_unverified_header(fresh)["kid"] == "kid2"
    assert isinstance(authenticate(fresh, after, now=not_after + 1), Authenticated)


async def test_activity_during_the_grace_period_moves_a_session_to_the_new_key(
    app_db: Settings,
) -> None:
    person = await sign_up()
    t0 = int(time.time())
    old = SigningKey("kid1", secrets.token_bytes(32))
    new = SigningKey("kid2", secrets.token_bytes(32))
    token = mint_session_token(
        user_row(person.id),
        make_settings(database_url=app_db.database_url, signing_keys=(old,)),
        now=t0,
    )
    not_after = t0 + 2 * app_db.token_refresh_after
    after = make_settings(
        database_url=app_db.database_url,
        signing_keys=(new, SigningKey("kid1", old.secret, not_after)),
    )
    # Activity after the refresh age re-mints from the row, signed with the newest key.
    active = authenticate(token, after, now=t0 + app_db.token_refresh_after + 1)
    assert isinstance(active, Authenticated) and active.reminted
    assert jwt.get_unverified_header(active.token)["kid"] == "kid2"
    assert claims(active.token)["auth_time"] == t0
    # The successor outlives the retired key; the original does not.
    later = not_after + 10
    assert isinstance(authenticate(active.token, after, now=later), Authenticated)
    assert authenticate(token, after, now=later) == TokenRejected(Rejection.INVALID)


# --- absolute session lifetime --------------------------------------------------------------


async def test_sliding_refresh_never_extends_the_absolute_lifetime(app_db: Settings) -> None:
    person = await sign_up()
    settings = make_settings(
        database_url=app_db.database_url,
        token_ttl=600,
        token_refresh_after=60,
        session_max_age=3600,
        leeway=10,
    )
    t0 = int(time.time()) - 10_000  # a login long ago, replayed step by step
    token = mint_session_token(user_row(person.id), settings, auth_time=t0, now=t0)
    now = t0
    remints = 0
    # A user active every 500 s: the token slides ...
    while now + 500 <= t0 + settings.session_max_age:
        now += 500
        result = authenticate(token, settings, now=now)
        assert isinstance(result, Authenticated), now - t0
        verified = verify_session_token(result.token, settings, now=now)
        assert isinstance(verified, SessionClaims)
        assert verified.expires_at <= t0 + settings.session_max_age
        assert verified.auth_time == t0
        remints += result.reminted
        token = result.token
    assert remints >= 5
    # ... but never past auth_time + session_max_age (plus the clock leeway).
    end = t0 + settings.session_max_age + settings.leeway + 1
    assert isinstance(authenticate(token, settings, now=end), TokenRejected)
    assert authenticate(token, settings, now=end).reason in (
        Rejection.EXPIRED,
        Rejection.SESSION_EXPIRED,
    )


async def test_a_session_past_its_lifetime_sends_the_user_to_log_in(app_db: Settings) -> None:
    person = await sign_up()
    await fill_profile(person.tab)
    short = make_settings(database_url=app_db.database_url, session_max_age=600, token_ttl=600)
    now = int(time.time())
    # The session began just over 600 s ago: its token's exp (capped at the session end)
    # is still within the clock leeway, so only the absolute lifetime refuses it.
    old_login = now - 600 - 5
    token = mint_session_token(user_row(person.id), short, auth_time=old_login, now=now - 100)
    assert verify_session_token(token, short, now=now) == TokenRejected(Rejection.SESSION_EXPIRED)
    before = snapshot(app_db)
    override_settings(short)
    try:
        tab = new_tab()
        tab.state(SessionState).token = token
        events = await tab.open("/onboarding/interests", OnboardingState.open_step)
        assert redirects(events) == ["/login?next=/onboarding/interests"]
        assert tab.state(SessionState).token == ""
        assert tab.state(SessionState).signed_in is False
        assert tab.state(OnboardingState).loaded is False
        # The stale session cannot write either.
        tab.state(SessionState).token = token
        await tab.call(OnboardingState.toggle_choice, "interests", "go")
        await tab.call(OnboardingState.submit)
        assert snapshot(app_db) == before
    finally:
        override_settings(app_db)
