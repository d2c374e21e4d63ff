"""The users repository against a fresh migrated SQLite database (the ``app_db`` fixture)."""

from __future__ import annotations

import threading
import unicodedata
from typing import Any

import pytest
import sqlalchemy as sa

from onboard_app.services import users
from onboard_app.services.db import get_engine
from onboard_app.services.onboarding import Step, StepInputError
from onboard_app.services.users import (
    EmailTaken,
    StepNotOpen,
    StepsMissing,
    UserGone,
    complete_onboarding,
    create_external_user,
    create_local_user,
    delete_user,
    find_user_by_identity,
    get_user,
    get_user_by_email,
    load_answers,
    normalise_email,
    revoke_sessions,
    save_step,
)
from onboard_app.settings import Settings

pytestmark = pytest.mark.usefixtures("app_db")

HASH = "$argon2id$v=19$m=24576,t=2,p=1$c2FsdHNhbHQ$ZmFrZWhhc2hmYWtlaGFzaA"  # never verified here

PROFILE = {"display_name": "Ada Lovelace", "role": "developer", "bio": "Engines."}
INTERESTS = {"interests": ["python", "rust", "security"]}
PREFERENCES = {"experience_level": "advanced", "email_digest": True, "theme": "dark"}


def new_user(email: str = "ada@example.com") -> int:
    user = create_local_user(email, HASH)
    assert user.id is not None
    return user.id


def at_review(email: str = "ada@example.com") -> int:
    uid = new_user(email)
    save_step(uid, Step.PROFILE, PROFILE)
    save_step(uid, Step.INTERESTS, INTERESTS)
    save_step(uid, Step.PREFERENCES, PREFERENCES)
    return uid


def snapshot(settings: Settings) -> list[Any]:
    """Every row of the user tables, to compare before/after a refused write."""
    with get_engine(settings.database_url).connect() as connection:
        return [
            list(connection.execute(sa.text(f"SELECT * FROM {table} ORDER BY 1")).all())
            for table in ("users", "onboarding_answers")
        ]


def step_of(uid: int) -> str:
    user = get_user(uid)
    assert user is not None
    return user.onboarding_step


# --- normalise_email ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("ada@example.com", "ada@example.com"),
        ("  Ada@Example.COM \n", "ada@example.com"),
        ("ADA.LOVELACE+tag@EXAMPLE.co.uk", "ada.lovelace+tag@example.co.uk"),
        ("J\u00f6rg@b\u00fccher.example", "j\u00f6rg@b\u00fccher.example"),
        (
            unicodedata.normalize("NFD", "J\u00f6rg@b\u00fccher.example"),
            "j\u00f6rg@b\u00fccher.example",
        ),
        ("o'brien@example.com", "o'brien@example.com"),
    ],
)
def test_normalise_email_accepts(raw: str, expected: str) -> None:
    assert normalise_email(raw) == expected


@pytest.mark.parametrize(
    "raw",
    [
        "",
        "   ",
        "ada",
        "ada.example.com",
        "@example.com",
        "ada@",
        "ada@example",
        "ada@example.c",
        "ada@@example.com",
        "ada@exa@mple.com",
        "ada lovelace@example.com",
        "ada@exam ple.com",
        "a" * 65 + "@example.com",
        "ada@" + "d" * 250 + ".com",
        "a" * 600 + "@example.com",
        "ada\x00@example.com",
        "ada\x07@example.com",
        "ada\u200b@example.com",  # zero-width space (Cf)
        "ada\u202e@example.com",  # right-to-left override (Cf)
        "ada\u2028@example.com",
        "ada\r\n@example.com",
        None,
        123,
        b"ada@example.com",
        ["ada@example.com"],
        {"email": "ada@example.com"},
    ],
    ids=lambda v: repr(v)[:30],
)
def test_normalise_email_refuses(raw: object) -> None:
    assert normalise_email(raw) is None


def test_normalise_email_length_limit() -> None:
    local = "a" * 64
    domain = "d" * (254 - 64 - 1 - 4) + ".com"
    assert normalise_email(f"{local}@{domain}") == f"{local}@{domain}"
    assert normalise_email(f"{local}@d{domain}") is None


# --- accounts -------------------------------------------------------------------------------


def test_create_local_user_defaults() -> None:
    user = create_local_user("ada@example.com", HASH)
    assert user.id is not None
    stored = get_user(user.id)
    assert stored is not None
    assert stored.email == "ada@example.com"
    assert stored.password_hash == HASH
    assert stored.onboarding_step == "profile"
    assert stored.token_version == 1
    assert stored.onboarding_completed_at is None
    assert load_answers(user.id) == users.Answers()
    assert get_user_by_email("ada@example.com") == stored


def test_duplicate_email_is_email_taken_case_insensitively(app_db: Settings) -> None:
    first = normalise_email("Bob@Example.com")
    second = normalise_email("  bob@EXAMPLE.COM")
    assert first is not None and second is not None
    create_local_user(first, HASH)
    before = snapshot(app_db)
    with pytest.raises(EmailTaken):
        create_local_user(second, HASH)
    assert snapshot(app_db) == before  # no orphan answers row, nothing half-written


def test_get_user_unknown() -> None:
    assert get_user(999) is None
    assert get_user_by_email("nobody@example.com") is None
    with pytest.raises(UserGone):
        load_answers(999)


# --- save_step ------------------------------------------------------------------------------


def test_save_step_happy_path_advances() -> None:
    uid = new_user()
    user = save_step(uid, Step.PROFILE, PROFILE)
    assert user.onboarding_step == "interests"
    assert user.display_name == "Ada Lovelace"
    assert save_step(uid, Step.INTERESTS, INTERESTS).onboarding_step == "preferences"
    assert save_step(uid, Step.PREFERENCES, PREFERENCES).onboarding_step == "review"
    # saving review (no input) neither completes nor moves anything
    assert save_step(uid, Step.REVIEW, {}).onboarding_step == "review"
    answers = load_answers(uid)
    assert answers.display_name == "Ada Lovelace"
    assert answers.role == "developer"
    assert answers.bio == "Engines."
    assert answers.interests == ["python", "rust", "security"]
    assert answers.experience_level == "advanced"
    assert answers.email_digest is True
    assert answers.theme == "dark"


def test_save_earlier_step_never_moves_backwards() -> None:
    uid = at_review()
    user = save_step(uid, Step.PROFILE, {**PROFILE, "display_name": "Countess"})
    assert user.onboarding_step == "review"
    assert load_answers(uid).display_name == "Countess"
    assert save_step(uid, Step.INTERESTS, INTERESTS).onboarding_step == "review"


@pytest.mark.parametrize(
    ("step", "data"),
    [(Step.INTERESTS, INTERESTS), (Step.PREFERENCES, PREFERENCES), (Step.REVIEW, {})],
)
def test_save_step_beyond_reached_is_refused_and_writes_nothing(
    app_db: Settings, step: Step, data: dict[str, Any]
) -> None:
    uid = new_user()
    before = snapshot(app_db)
    with pytest.raises(StepNotOpen) as info:
        save_step(uid, step, data)
    assert info.value.reached is Step.PROFILE
    assert snapshot(app_db) == before


def test_save_step_two_ahead_refused(app_db: Settings) -> None:
    uid = new_user()
    save_step(uid, Step.PROFILE, PROFILE)
    before = snapshot(app_db)
    with pytest.raises(StepNotOpen) as info:
        save_step(uid, Step.PREFERENCES, PREFERENCES)
    assert info.value.reached is Step.INTERESTS
    assert snapshot(app_db) == before


@pytest.mark.parametrize(
    ("step", "data", "field"),
    [
        (Step.PROFILE, {**PROFILE, "display_name": ""}, "display_name"),
        (Step.PROFILE, {**PROFILE, "role": "admin"}, "role"),
        (Step.PROFILE, {**PROFILE, "bio": "b" * 501}, "bio"),
        (Step.PROFILE, {**PROFILE, "display_name": "x" * 10_000}, "display_name"),
        (Step.INTERESTS, {"interests": ["python"]}, "interests"),
        (Step.INTERESTS, {"interests": "python,rust,go"}, "interests"),
        (Step.PREFERENCES, {**PREFERENCES, "theme": "neon"}, "theme"),
    ],
)
def test_invalid_input_raises_and_writes_nothing(
    app_db: Settings, step: Step, data: dict[str, Any], field: str
) -> None:
    uid = at_review()
    before = snapshot(app_db)
    with pytest.raises(StepInputError) as info:
        save_step(uid, step, data)
    assert field in info.value.errors
    assert snapshot(app_db) == before


def test_invalid_input_on_a_fresh_user_writes_nothing(app_db: Settings) -> None:
    uid = new_user()
    before = snapshot(app_db)
    with pytest.raises(StepInputError):
        save_step(uid, Step.PROFILE, {"display_name": "A", "role": None})
    assert snapshot(app_db) == before
    assert step_of(uid) == "profile"


@pytest.mark.parametrize(
    ("step", "data"),
    [
        (Step.PROFILE, {**PROFILE, "role": ["developer"]}),
        (Step.PREFERENCES, {**PREFERENCES, "theme": {"dark": 1}}),
    ],
)
def test_wrong_typed_choice_is_a_step_input_error(
    app_db: Settings, step: Step, data: dict[str, Any]
) -> None:
    uid = at_review()
    before = snapshot(app_db)
    with pytest.raises(StepInputError):
        save_step(uid, step, data)
    assert snapshot(app_db) == before


def test_save_step_unknown_user() -> None:
    with pytest.raises(UserGone):
        save_step(999, Step.PROFILE, PROFILE)


def test_sql_metacharacters_stored_literally(app_db: Settings) -> None:
    uid = new_user()
    name = "Robert'); DROP TABLE users;--"
    bio = "50% off_ \\ \"quoted\" ' OR '1'='1 /* */ ; DELETE FROM onboarding_answers;"
    save_step(uid, Step.PROFILE, {"display_name": name, "role": "other", "bio": bio})
    answers = load_answers(uid)
    assert answers.display_name == name
    assert answers.bio == bio
    assert get_user_by_email("ada@example.com") is not None
    with get_engine(app_db.database_url).connect() as connection:
        assert connection.execute(sa.text("SELECT count(*) FROM users")).scalar() == 1


def test_editing_only_after_completion(app_db: Settings) -> None:
    uid = at_review()
    before = snapshot(app_db)
    with pytest.raises(StepNotOpen):
        save_step(uid, Step.PROFILE, PROFILE, editing=True)
    assert snapshot(app_db) == before
    complete_onboarding(uid)
    before = snapshot(app_db)
    with pytest.raises(StepNotOpen) as info:
        save_step(uid, Step.PROFILE, PROFILE)  # wizard save after completion
    assert info.value.reached is Step.COMPLETED
    assert snapshot(app_db) == before
    user = save_step(uid, Step.INTERESTS, {"interests": ["go", "web", "cloud"]}, editing=True)
    assert user.onboarding_step == "completed"
    assert load_answers(uid).interests == ["go", "web", "cloud"]


# --- complete_onboarding --------------------------------------------------------------------


def test_complete_with_unanswered_steps(app_db: Settings) -> None:
    uid = new_user()
    before = snapshot(app_db)
    with pytest.raises(StepsMissing) as info:
        complete_onboarding(uid)
    assert info.value.steps == [Step.PROFILE, Step.INTERESTS, Step.PREFERENCES]
    assert snapshot(app_db) == before

    save_step(uid, Step.PROFILE, PROFILE)
    save_step(uid, Step.INTERESTS, INTERESTS)
    with pytest.raises(StepsMissing) as info:
        complete_onboarding(uid)
    assert info.value.steps == [Step.PREFERENCES]
    assert step_of(uid) == "preferences"


def test_complete_exactly_one_transition() -> None:
    uid = at_review()
    first = complete_onboarding(uid)
    second = complete_onboarding(uid)
    assert first.transitioned is True
    assert second.transitioned is False
    assert first.user.onboarding_step == second.user.onboarding_step == "completed"
    assert first.user.onboarding_completed_at is not None
    assert second.user.onboarding_completed_at == first.user.onboarding_completed_at
    assert step_of(uid) == "completed"


def test_complete_unknown_user() -> None:
    with pytest.raises(UserGone):
        complete_onboarding(999)


def test_concurrent_complete_transitions_exactly_once() -> None:
    uid = at_review()
    threads_count = 8
    barrier = threading.Barrier(threads_count)
    results: list[bool] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def finish() -> None:
        barrier.wait()
        try:
            outcome = complete_onboarding(uid)
        except BaseException as exc:  # every failure is reported
            with lock:
                errors.append(exc)
            return
        with lock:
            results.append(outcome.transitioned)

    threads = [threading.Thread(target=finish) for _ in range(threads_count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert errors == []
    assert len(results) == threads_count
    assert results.count(True) == 1
    assert step_of(uid) == "completed"


# --- revocation and deletion ----------------------------------------------------------------


def test_revoke_sessions_bumps_version() -> None:
    uid = new_user()
    other = new_user("other@example.com")
    revoke_sessions(uid)
    revoke_sessions(uid)
    user, untouched = get_user(uid), get_user(other)
    assert user is not None and untouched is not None
    assert user.token_version == 3
    assert untouched.token_version == 1


def test_delete_user(app_db: Settings) -> None:
    uid = at_review()
    keep = new_user("keep@example.com")
    delete_user(uid)
    assert get_user(uid) is None
    assert get_user(keep) is not None
    with get_engine(app_db.database_url).connect() as connection:
        rows = connection.execute(sa.text("SELECT user_id FROM onboarding_answers")).all()
    assert [row[0] for row in rows] == [keep]
    with pytest.raises(UserGone):
        load_answers(uid)


# --- external identities --------------------------------------------------------------------


def test_github_user_created_and_found() -> None:
    user = create_external_user(
        email="octo@example.com",
        display_name="The Octocat " * 10,
        avatar_url="https://avatars.example/1",
        github_id=583231,
    )
    assert user.id is not None
    assert user.password_hash is None
    assert len(user.display_name) == 80
    found = find_user_by_identity(github_id=583231)
    assert found is not None and found.id == user.id
    assert find_user_by_identity(github_id=583232) is None
    assert load_answers(user.id).interests == []
    assert user.onboarding_step == "profile"


def test_github_user_without_email() -> None:
    a = create_external_user(email=None, display_name="a", avatar_url=None, github_id=1)
    b = create_external_user(email=None, display_name="b", avatar_url=None, github_id=2)
    assert a.id != b.id


def test_duplicate_github_id_refused(app_db: Settings) -> None:
    create_external_user(email=None, display_name="a", avatar_url=None, github_id=7)
    before = snapshot(app_db)
    with pytest.raises(EmailTaken):
        create_external_user(email=None, display_name="b", avatar_url=None, github_id=7)
    assert snapshot(app_db) == before


def test_oidc_user_created_and_found() -> None:
    user = create_external_user(
        email="ada@idp.example",
        display_name="Ada",
        avatar_url=None,
        oidc_issuer="https://idp.example",
        oidc_subject="abc-123",
    )
    found = find_user_by_identity(oidc_issuer="https://idp.example", oidc_subject="abc-123")
    assert found is not None and found.id == user.id
    assert (
        find_user_by_identity(oidc_issuer="https://other.example", oidc_subject="abc-123") is None
    )
    assert find_user_by_identity(oidc_issuer="https://idp.example", oidc_subject="abc-124") is None
    assert find_user_by_identity(github_id=0) is None


def test_find_by_identity_without_identity_finds_nobody() -> None:
    new_user("local@example.com")
    assert find_user_by_identity() is None
    assert find_user_by_identity(oidc_issuer=None, oidc_subject=None) is None


@pytest.mark.parametrize("kind", ["github", "oidc"])
def test_external_identity_with_a_local_accounts_email_is_not_linked(
    app_db: Settings, kind: str
) -> None:
    uid = new_user("ada@example.com")
    before = snapshot(app_db)
    identity: dict[str, Any] = (
        {"github_id": 99} if kind == "github" else {"oidc_issuer": "https://i", "oidc_subject": "s"}
    )
    with pytest.raises(EmailTaken):
        create_external_user(
            email="ada@example.com", display_name="Ada", avatar_url=None, **identity
        )
    assert snapshot(app_db) == before
    local = get_user(uid)
    assert local is not None
    assert local.github_id is None and local.oidc_subject is None
    assert find_user_by_identity(**identity) is None
