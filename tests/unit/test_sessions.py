"""Sessions: authenticate (revocation, healing re-mint, sliding refresh), start and end."""

from __future__ import annotations

import time
from dataclasses import replace

import pytest

from onboard_app.models import User
from onboard_app.services import onboarding, sessions
from onboard_app.services.onboarding import COMPLETED, REVIEW, Field, Kind, StepSpec
from onboard_app.services.sessions import (
    Authenticated,
    SessionUser,
    authenticate,
    authenticate_off_loop,
    behind_the_flow,
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
    load_answers,
    revoke_sessions,
    save_step,
)
from onboard_app.settings import Settings
from tests.unit.flow_steps import GOOD_WORKPLACE, NEWSLETTER, WORKPLACE

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
    assert claims.onboarding_step == "profile"
    assert claims.flow_version == 0  # completed no flow yet


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
    assert result.user.onboarding_step == "profile"
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
    session_id = verified(start_session(user, app_db), app_db).sid  # a live session
    user.token_version = 5  # a token claiming a version the database never had
    forged = mint_session_token(user, app_db, session_id=session_id)
    assert authenticate(forged, app_db) == TokenRejected(Rejection.REVOKED)


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
    save_step(user.id, "profile", PROFILE)

    result = authenticate(token, app_db)
    assert isinstance(result, Authenticated)
    assert result.reminted is True
    assert result.token != token
    assert result.user.onboarding_step == "interests"
    new = verified(result.token, app_db)
    assert new.onboarding_step == "interests"
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
    save_step(user.id, "profile", PROFILE)
    save_step(user.id, "interests", INTERESTS)
    save_step(user.id, "preferences", PREFERENCES)
    assert complete_onboarding(user.id).transitioned

    result = authenticate(stale, app_db)
    assert isinstance(result, Authenticated)
    assert result.reminted is True
    assert result.user.onboarding_step == COMPLETED
    assert result.user.flow_version == 1
    healed = verified(result.token, app_db)
    assert (healed.onboarding_step, healed.flow_version) == (COMPLETED, 1)


def test_completed_token_after_db_says_otherwise_is_downgraded(app_db: Settings) -> None:
    """A token never grants more than the row: onb=completed for a profile user is re-minted."""
    user = new_user()
    user.onboarding_step = "completed"  # in memory only: a token claiming more than the DB
    token = mint_session_token(user, app_db)
    result = authenticate(token, app_db)
    assert isinstance(result, Authenticated)
    assert result.user.onboarding_step == "profile"
    assert verified(result.token, app_db).onboarding_step == "profile"


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


def test_end_session_ends_this_session_only(app_db: Settings) -> None:
    user = new_user()
    other = new_user("other@example.com")
    first = start_session(user, app_db)
    second = start_session(user, app_db)  # another browser
    bystander = start_session(other, app_db)
    assert end_session(first, app_db) is True
    assert authenticate(first, app_db) == TokenRejected(Rejection.REVOKED)
    # The other browser stays signed in; its token is re-minted at the new version.
    kept = authenticate(second, app_db)
    assert isinstance(kept, Authenticated) and kept.reminted
    assert verified(kept.token, app_db).sid == verified(second, app_db).sid
    assert isinstance(authenticate(bystander, app_db), Authenticated)
    # logging out twice with the dead token does nothing more
    assert end_session(first, app_db) is False


def test_end_session_with_garbage_changes_nothing(app_db: Settings) -> None:
    user = new_user()
    assert user.id is not None
    for junk in (None, "", "a.b.c", 5, {"sub": str(user.id)}):
        assert end_session(junk, app_db) is False
    assert fresh(user.id).token_version == 1


# --- flow versions: a completed user is taken through required steps added since ------------


def completed(email: str = "ada@example.com") -> User:
    user = new_user(email)
    assert user.id is not None
    save_step(user.id, "profile", PROFILE)
    save_step(user.id, "interests", INTERESTS)
    save_step(user.id, "preferences", PREFERENCES)
    assert complete_onboarding(user.id).transitioned
    return fresh(user.id)


@pytest.fixture
def reopen_calls(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The users ``authenticate`` asked to reopen (the real function still runs)."""
    calls: list[int] = []
    real = sessions.reopen_for_new_steps

    def spy(user_id: int, url: str | None = None) -> bool:
        calls.append(user_id)
        return real(user_id, url)

    monkeypatch.setattr(sessions, "reopen_for_new_steps", spy)
    return calls


def session_user(step: str, flow_version: int) -> SessionUser:
    return SessionUser(1, None, "Ada", None, step, 1, flow_version)


def test_behind_the_flow(monkeypatch: pytest.MonkeyPatch) -> None:
    assert not behind_the_flow(session_user(COMPLETED, 1))
    monkeypatch.setattr(onboarding, "STEPS", (*onboarding.STEPS, WORKPLACE))
    assert behind_the_flow(session_user(COMPLETED, 1))
    assert behind_the_flow(session_user(COMPLETED, 0))
    assert not behind_the_flow(session_user(COMPLETED, 2))
    # still in the wizard: the new step is simply one more step of it
    assert not behind_the_flow(session_user("interests", 0))
    assert not behind_the_flow(session_user("workplace", 1))
    assert not behind_the_flow(session_user(REVIEW, 1))
    # a newer version that adds only an optional step asks nothing of anyone
    monkeypatch.setattr(onboarding, "STEPS", (*onboarding.STEPS[:3], replace(NEWSLETTER, since=2)))
    assert not behind_the_flow(session_user(COMPLETED, 1))


def test_a_v1_user_is_taken_through_the_new_step_only_and_the_token_follows(
    app_db: Settings, monkeypatch: pytest.MonkeyPatch, reopen_calls: list[int]
) -> None:
    user = completed()
    assert user.id is not None
    now = real_now()
    token = start_session(user, app_db, now=now - 60)
    first = verified(token, app_db)
    assert (first.onboarding_step, first.flow_version) == (COMPLETED, 1)
    answers = load_answers(user.id).values
    assert isinstance(authenticate(token, app_db), Authenticated)  # version 1: nothing to do
    assert reopen_calls == []

    monkeypatch.setattr(onboarding, "STEPS", (*onboarding.STEPS, WORKPLACE))
    result = authenticate(token, app_db)
    assert isinstance(result, Authenticated)
    assert reopen_calls == [user.id]
    assert result.reminted is True
    assert (result.user.onboarding_step, result.user.flow_version) == ("workplace", 1)
    moved = verified(result.token, app_db)
    assert (moved.onboarding_step, moved.flow_version) == ("workplace", 1)
    assert moved.auth_time == first.auth_time  # not a new login
    assert moved.token_version == first.token_version
    assert {k: v for k, v in load_answers(user.id).values.items() if k in answers} == answers

    # in the wizard now: presenting the moved token again neither reopens nor re-mints
    again = authenticate(result.token, app_db)
    assert isinstance(again, Authenticated) and again.reminted is False
    # the old completed token is healed to the same place (never back to explore)
    old = authenticate(token, app_db)
    assert isinstance(old, Authenticated)
    assert verified(old.token, app_db).onboarding_step == "workplace"
    assert reopen_calls == [user.id]

    save_step(user.id, "workplace", GOOD_WORKPLACE)
    assert complete_onboarding(user.id).transitioned
    done = authenticate(result.token, app_db)
    assert isinstance(done, Authenticated)
    assert done.reminted is True
    assert (done.user.onboarding_step, done.user.flow_version) == (COMPLETED, 2)
    final = verified(done.token, app_db)
    assert (final.onboarding_step, final.flow_version) == (COMPLETED, 2)
    assert final.auth_time == first.auth_time

    # no loop: a second check of the final token does nothing
    last = authenticate(done.token, app_db)
    assert isinstance(last, Authenticated)
    assert last.reminted is False and last.token == done.token
    assert reopen_calls == [user.id]
    assert fresh(user.id).onboarding_step == COMPLETED


async def test_authenticate_off_loop_takes_a_v1_user_to_the_new_step(
    app_db: Settings, monkeypatch: pytest.MonkeyPatch, reopen_calls: list[int]
) -> None:
    user = completed()
    assert user.id is not None
    token = start_session(user, app_db)
    assert isinstance(await authenticate_off_loop(token, app_db), Authenticated)
    monkeypatch.setattr(onboarding, "STEPS", (*onboarding.STEPS, WORKPLACE))
    result = await authenticate_off_loop(token, app_db)
    assert isinstance(result, Authenticated)
    assert result.reminted is True
    assert verified(result.token, app_db).onboarding_step == "workplace"
    assert reopen_calls == [user.id]
    save_step(user.id, "workplace", GOOD_WORKPLACE)
    assert complete_onboarding(user.id).transitioned
    done = await authenticate_off_loop(result.token, app_db)
    assert isinstance(done, Authenticated)
    final = verified(done.token, app_db)
    assert (final.onboarding_step, final.flow_version) == (COMPLETED, 2)
    last = await authenticate_off_loop(done.token, app_db)
    assert isinstance(last, Authenticated) and last.reminted is False
    assert reopen_calls == [user.id]


def test_users_who_never_finished_are_not_reopened(
    app_db: Settings, flow_v2: StepSpec, reopen_calls: list[int]
) -> None:
    user = new_user()
    assert user.id is not None
    save_step(user.id, "profile", PROFILE)
    result = authenticate(start_session(fresh(user.id), app_db), app_db)
    assert isinstance(result, Authenticated)
    assert result.user.onboarding_step == "interests"
    assert reopen_calls == []


#: Version 2 moves the theme question into a step of its own: everyone answered it already.
APPEARANCE = StepSpec(
    "appearance",
    "Appearance",
    "How Onboard looks.",
    (Field("theme", "Theme", Kind.SINGLE_CHOICE, options=onboarding.THEMES),),
    since=2,
)


def test_a_new_required_step_already_answered_updates_the_token_once(
    app_db: Settings, monkeypatch: pytest.MonkeyPatch, reopen_calls: list[int]
) -> None:
    """Nothing to ask: the user stays completed, the token says version 2, and that is that.

    The bump is announced like every session change, so no worker keeps serving the
    remembered row (version 1) and the check does not write again on every event.
    """
    user = completed()
    assert user.id is not None
    token = start_session(user, app_db)
    assert isinstance(authenticate(token, app_db), Authenticated)  # the row is remembered
    spec = (
        *onboarding.STEPS[:2],
        replace(onboarding.STEPS[2], fields=onboarding.STEPS[2].fields[:2]),
    )
    monkeypatch.setattr(onboarding, "STEPS", (*spec, APPEARANCE))
    result = authenticate(token, app_db)
    assert isinstance(result, Authenticated)
    assert fresh(user.id).flow_version == 2
    assert (result.user.onboarding_step, result.user.flow_version) == (COMPLETED, 2)
    assert result.reminted is True
    assert verified(result.token, app_db).flow_version == 2
    for _ in range(3):
        again = authenticate(result.token, app_db)
        assert isinstance(again, Authenticated) and again.reminted is False
    assert reopen_calls == [user.id]  # asked once, not on every check


def test_a_token_minted_before_flow_versions_is_re_minted_not_rejected(app_db: Settings) -> None:
    """Upgrading to flow versions logs nobody out: the first check re-mints from the row."""
    import jwt as pyjwt

    user = completed()
    assert user.id is not None
    token = start_session(user, app_db)
    key = app_db.current_key
    payload = pyjwt.decode(token, options={"verify_signature": False})
    del payload["fv"]  # what every token of the previous release looks like
    old = pyjwt.encode(
        payload,
        key.secret,
        algorithm="HS256",
        headers={"typ": "onboard-session+jwt", "kid": key.kid},
    )
    result = authenticate(old, app_db)
    assert isinstance(result, Authenticated) and result.reminted is True
    assert verified(result.token, app_db).flow_version == fresh(user.id).flow_version == 1


# --- a verified email -----------------------------------------------------------------------


def test_the_session_knows_whether_the_account_needs_its_email_confirmed(
    app_db: Settings,
) -> None:
    from onboard_app.services.account_mail import verification
    from onboard_app.services.accounts import needs_verification
    from onboard_app.services.recovery import confirm_with_token
    from onboard_app.services.users import create_external_user
    from tests.fakes.inbox import Letter

    local = new_user()
    provider = create_external_user(
        email="octo@example.com", display_name="Octo", avatar_url=None, github_id=99
    )
    anonymous = create_external_user(
        email=None, display_name="", avatar_url=None, oidc_issuer="https://i", oidc_subject="s"
    )
    seen = {}
    for user in (local, provider, anonymous):
        assert user.id is not None
        loaded = load_session_user(user.id)
        assert loaded is not None
        assert loaded.email_verified is (not needs_verification(fresh(user.id)))
        seen[user.id] = loaded.email_verified
    assert list(seen.values()) == [False, True, True]
    assert local.id is not None
    token = start_session(local, app_db)
    mail = verification(local.id, "ada@example.com")
    confirm_with_token(Letter(mail.to, mail.subject, mail.text, mail.html).token)
    # The change reaches the session (the remembered row was evicted); that session ended.
    confirmed = load_session_user(local.id)
    assert confirmed is not None and confirmed.email_verified is True
    assert authenticate(token, app_db) == TokenRejected(Rejection.REVOKED)
