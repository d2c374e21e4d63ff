"""Sessions: authenticate (revocation, healing re-mint, sliding refresh), start and end."""

from __future__ import annotations

import time

import pytest

from onboard_app.models import User
from onboard_app.services.onboarding import Step
from onboard_app.services.sessions import (
    Authenticated,
    authenticate,
    end_session,
    load_session_user,
    start_session,
)
from onboard_app.services.tokens import (
    Rejection,
    SessionClaims,
    TokenRejected,
    mint_session_token,
    verify_session_token,
)
from onboard_app.services.users import (
    complete_onboarding,
    create_local_user,
    delete_user,
    get_user,
    revoke_sessions,
    save_step,
)
from onboard_app.settings import Settings

pytestmark = pytest.mark.usefixtures("app_db")

HASH = "$argon2id$v=19$m=24576,t=2,p=1$c2FsdHNhbHQ$ZmFrZWhhc2hmYWtlaGFzaA"
PROFILE = {"display_name": "Ada", "role": "developer", "bio": ""}
INTERESTS = {"interests": ["python", "rust", "go"]}
PREFERENCES = {"experience_level": "advanced", "email_digest": False, "theme": "dark"}


def real_now() -> int:
    return int(time.time())


def new_user(email: str = "ada@example.com") -> User:
    user = create_local_user(email, HASH)
    assert user.id is not None
    return user


def fresh(user_id: int) -> User:
    user = get_user(user_id)
    assert user is not None
    return user


def verified(token: str, settings: Settings) -> SessionClaims:
    claims = verify_session_token(token, settings)
    assert isinstance(claims, SessionClaims)
    return claims


def test_start_session_sets_auth_time_now(app_db: Settings) -> None:
    user = new_user()
    now = real_now()
    token = start_session(user, app_db, now=now)
    claims = verified(token, app_db)
    assert claims.auth_time == now
    assert claims.issued_at == now
    assert claims.user_id == user.id
    assert claims.token_version == 1
    assert claims.onboarding_step is Step.PROFILE


def test_start_session_uses_process_settings(app_db: Settings) -> None:
    token = start_session(new_user())
    assert verified(token, app_db).kid == app_db.current_key.kid


def test_authenticate_fresh_token(app_db: Settings) -> None:
    user = new_user()
    token = start_session(user, app_db)
    result = authenticate(token, app_db)
    assert isinstance(result, Authenticated)
    assert result.reminted is False
    assert result.token == token
    assert result.user.id == user.id
    assert result.user.email == "ada@example.com"
    assert result.user.onboarding_step is Step.PROFILE
    assert result.claims.user_id == user.id


def test_authenticate_passes_rejections_through(app_db: Settings) -> None:
    assert authenticate(None, app_db) == TokenRejected(Rejection.MISSING)
    assert authenticate("a.b.c", app_db) == TokenRejected(Rejection.MALFORMED)
    assert isinstance(authenticate({"sub": "1"}, app_db), TokenRejected)


def test_revoked_after_revoke_sessions(app_db: Settings) -> None:
    user = new_user()
    assert user.id is not None
    token = start_session(user, app_db)
    revoke_sessions(user.id)
    assert authenticate(token, app_db) == TokenRejected(Rejection.REVOKED)
    # a token minted from the new row works again
    assert isinstance(authenticate(start_session(fresh(user.id), app_db), app_db), Authenticated)


def test_token_of_deleted_user_is_revoked(app_db: Settings) -> None:
    user = new_user()
    assert user.id is not None
    token = start_session(user, app_db)
    delete_user(user.id)
    assert authenticate(token, app_db) == TokenRejected(Rejection.REVOKED)
    assert load_session_user(user.id) is None


def test_token_with_a_future_version_is_revoked(app_db: Settings) -> None:
    user = new_user()
    user.token_version = 5  # a token claiming a version the database never had
    assert authenticate(start_session(user, app_db), app_db) == TokenRejected(Rejection.REVOKED)


def test_token_of_deleted_user_does_not_log_in_the_next_account(app_db: Settings) -> None:
    first = new_user("first@example.com")
    assert first.id is not None
    token = start_session(first, app_db)
    delete_user(first.id)
    second = new_user("second@example.com")
    result = authenticate(token, app_db)
    assert not isinstance(result, Authenticated), f"logged in as {second.email} (id {second.id})"


def test_remint_when_db_step_moved_on(app_db: Settings) -> None:
    user = new_user()
    assert user.id is not None
    token = start_session(user, app_db)
    old = verified(token, app_db)
    save_step(user.id, Step.PROFILE, PROFILE)

    result = authenticate(token, app_db)
    assert isinstance(result, Authenticated)
    assert result.reminted is True
    assert result.token != token
    assert result.user.onboarding_step is Step.INTERESTS
    new = verified(result.token, app_db)
    assert new.onboarding_step is Step.INTERESTS
    assert new.user_id == old.user_id
    assert new.auth_time == old.auth_time
    assert new.token_version == old.token_version
    assert new.jti != old.jti
    # the healed token is stable: presenting it again needs no further re-mint
    again = authenticate(result.token, app_db)
    assert isinstance(again, Authenticated)
    assert again.reminted is False


def test_pre_onboarding_token_replayed_after_completion_heals(app_db: Settings) -> None:
    user = new_user()
    assert user.id is not None
    stale = start_session(user, app_db)  # says onb=profile
    save_step(user.id, Step.PROFILE, PROFILE)
    save_step(user.id, Step.INTERESTS, INTERESTS)
    save_step(user.id, Step.PREFERENCES, PREFERENCES)
    assert complete_onboarding(user.id).transitioned

    result = authenticate(stale, app_db)
    assert isinstance(result, Authenticated)
    assert result.reminted is True
    assert result.user.onboarding_step is Step.COMPLETED
    assert verified(result.token, app_db).onboarding_step is Step.COMPLETED


def test_completed_token_after_db_says_otherwise_is_downgraded(app_db: Settings) -> None:
    """A token never grants more than the row: onb=completed for a profile user is re-minted."""
    user = new_user()
    user.onboarding_step = "completed"  # in memory only: a token claiming more than the DB
    token = mint_session_token(user, app_db)
    result = authenticate(token, app_db)
    assert isinstance(result, Authenticated)
    assert result.user.onboarding_step is Step.PROFILE
    assert verified(result.token, app_db).onboarding_step is Step.PROFILE


def test_remint_when_older_than_refresh_age(app_db: Settings) -> None:
    user = new_user()
    now = real_now()
    minted_at = now - app_db.token_refresh_after - 5
    token = mint_session_token(user, app_db, auth_time=minted_at, now=minted_at)
    result = authenticate(token, app_db, now=now)
    assert isinstance(result, Authenticated)
    assert result.reminted is True
    new = verified(result.token, app_db)
    assert new.auth_time == minted_at
    assert new.issued_at == now
    assert new.expires_at == now + app_db.token_ttl


def test_no_remint_when_younger_than_refresh_age(app_db: Settings) -> None:
    user = new_user()
    now = real_now()
    minted_at = now - app_db.token_refresh_after + 30
    token = mint_session_token(user, app_db, auth_time=minted_at, now=minted_at)
    result = authenticate(token, app_db, now=now)
    assert isinstance(result, Authenticated)
    assert result.reminted is False
    assert result.token == token


def test_remint_cannot_extend_the_absolute_lifetime(app_db: Settings) -> None:
    user = new_user()
    now = real_now()
    auth = now - app_db.session_max_age + 100
    iat = now - app_db.token_refresh_after - 5
    token = mint_session_token(user, app_db, auth_time=auth, now=iat)
    result = authenticate(token, app_db, now=now)
    assert isinstance(result, Authenticated)
    # already capped at the session end: nothing to refresh
    assert result.reminted is False
    assert verified(result.token, app_db).expires_at == auth + app_db.session_max_age


def test_end_session_revokes_every_token(app_db: Settings) -> None:
    user = new_user()
    other = new_user("other@example.com")
    first = start_session(user, app_db)
    second = start_session(user, app_db)  # another browser
    bystander = start_session(other, app_db)
    assert end_session(first, app_db) is True
    assert authenticate(first, app_db) == TokenRejected(Rejection.REVOKED)
    assert authenticate(second, app_db) == TokenRejected(Rejection.REVOKED)
    assert isinstance(authenticate(bystander, app_db), Authenticated)
    # logging out twice with the dead token does nothing more
    assert end_session(first, app_db) is False


def test_end_session_with_garbage_changes_nothing(app_db: Settings) -> None:
    user = new_user()
    assert user.id is not None
    for junk in (None, "", "a.b.c", 5, {"sub": str(user.id)}):
        assert end_session(junk, app_db) is False
    assert fresh(user.id).token_version == 1
