"""The users repository against a fresh migrated SQLite database (the ``app_db`` fixture)."""

from __future__ import annotations

import json
import threading
import unicodedata
from dataclasses import replace
from typing import Any

import pytest
import sqlalchemy as sa

from onboard_app.services.db import get_engine
from onboard_app.services.onboarding import COMPLETED, REVIEW, Answers, StepInputError, StepSpec
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
    reopen_for_new_steps,
    revoke_sessions,
    save_step,
)
from onboard_app.settings import Settings
from tests.unit.flow_steps import CLEAN_WORKPLACE, GOOD_WORKPLACE, NEWSLETTER, WORKPLACE

pytestmark = pytest.mark.usefixtures("app_db")

HASH = "$argon2id$v=19$m=24576,t=2,p=1$c2FsdHNhbHQ$ZmFrZWhhc2hmYWtlaGFzaA"  # never verified here

PROFILE = {"display_name": "Ada Lovelace", "role": "developer", "bio": "Engines."}
INTERESTS = {"interests": ["python", "rust", "security"]}
PREFERENCES = {"experience_level": "advanced", "email_digest": True, "theme": "dark"}


#: A new user's answers: every field of the spec, empty.
EMPTY: dict[str, Any] = {
    "display_name": "",
    "role": None,
    "bio": "",
    "interests": [],
    "experience_level": None,
    "email_digest": None,
    "theme": None,
}


def new_user(email: str = "ada@example.com") -> int:
    user = create_local_user(email, HASH)
    assert user.id is not None
    return user.id


def at_review(email: str = "ada@example.com") -> int:
    uid = new_user(email)
    save_step(uid, "profile", PROFILE)
    save_step(uid, "interests", INTERESTS)
    save_step(uid, "preferences", PREFERENCES)
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
    assert stored.flow_version == 0
    assert load_answers(user.id) == Answers(EMPTY)
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
    user = save_step(uid, "profile", PROFILE)
    assert user.onboarding_step == "interests"
    assert user.display_name == "Ada Lovelace"
    assert save_step(uid, "interests", INTERESTS).onboarding_step == "preferences"
    assert save_step(uid, "preferences", PREFERENCES).onboarding_step == "review"
    answers = load_answers(uid)
    assert answers == Answers({**PROFILE, **INTERESTS, **PREFERENCES})
    assert answers.get("email_digest") is True


def test_saving_review_is_refused_and_writes_nothing(app_db: Settings) -> None:
    """The review asks nothing: only Finish moves on from it (it used to save as a no-op)."""
    uid = at_review()
    before = snapshot(app_db)
    with pytest.raises(StepNotOpen) as info:
        save_step(uid, REVIEW, {})
    assert info.value.reached == REVIEW
    assert snapshot(app_db) == before


@pytest.mark.parametrize("step", [COMPLETED, "bogus", "", "PROFILE"])
def test_saving_a_step_the_spec_does_not_have_is_refused(app_db: Settings, step: str) -> None:
    uid = new_user()
    before = snapshot(app_db)
    with pytest.raises(StepNotOpen) as info:
        save_step(uid, step, PROFILE)
    assert info.value.reached == "profile"
    assert snapshot(app_db) == before


def test_save_earlier_step_never_moves_backwards() -> None:
    uid = at_review()
    user = save_step(uid, "profile", {**PROFILE, "display_name": "Countess"})
    assert user.onboarding_step == "review"
    assert load_answers(uid).get("display_name") == "Countess"
    assert save_step(uid, "interests", INTERESTS).onboarding_step == "review"


@pytest.mark.parametrize(
    ("step", "data"),
    [("interests", INTERESTS), ("preferences", PREFERENCES), (REVIEW, {})],
)
def test_save_step_beyond_reached_is_refused_and_writes_nothing(
    app_db: Settings, step: str, data: dict[str, Any]
) -> None:
    uid = new_user()
    before = snapshot(app_db)
    with pytest.raises(StepNotOpen) as info:
        save_step(uid, step, data)
    assert info.value.reached == "profile"
    assert snapshot(app_db) == before


def test_save_step_two_ahead_refused(app_db: Settings) -> None:
    uid = new_user()
    save_step(uid, "profile", PROFILE)
    before = snapshot(app_db)
    with pytest.raises(StepNotOpen) as info:
        save_step(uid, "preferences", PREFERENCES)
    assert info.value.reached == "interests"
    assert snapshot(app_db) == before


@pytest.mark.parametrize(
    ("step", "data", "field"),
    [
        ("profile", {**PROFILE, "display_name": ""}, "display_name"),
        ("profile", {**PROFILE, "role": "admin"}, "role"),
        ("profile", {**PROFILE, "bio": "b" * 501}, "bio"),
        ("profile", {**PROFILE, "display_name": "x" * 10_000}, "display_name"),
        ("interests", {"interests": ["python"]}, "interests"),
        ("interests", {"interests": "python,rust,go"}, "interests"),
        ("preferences", {**PREFERENCES, "theme": "neon"}, "theme"),
    ],
)
def test_invalid_input_raises_and_writes_nothing(
    app_db: Settings, step: str, data: dict[str, Any], field: str
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
        save_step(uid, "profile", {"display_name": "A", "role": None})
    assert snapshot(app_db) == before
    assert step_of(uid) == "profile"


@pytest.mark.parametrize(
    ("step", "data"),
    [
        ("profile", {**PROFILE, "role": ["developer"]}),
        ("preferences", {**PREFERENCES, "theme": {"dark": 1}}),
    ],
)
def test_wrong_typed_choice_is_a_step_input_error(
    app_db: Settings, step: str, data: dict[str, Any]
) -> None:
    uid = at_review()
    before = snapshot(app_db)
    with pytest.raises(StepInputError):
        save_step(uid, step, data)
    assert snapshot(app_db) == before


def test_save_step_unknown_user() -> None:
    with pytest.raises(UserGone):
        save_step(999, "profile", PROFILE)


def test_sql_metacharacters_stored_literally(app_db: Settings) -> None:
    uid = new_user()
    name = "Robert'); DROP TABLE users;--"
    bio = "50% off_ \\ \"quoted\" ' OR '1'='1 /* */ ; DELETE FROM onboarding_answers;"
    save_step(uid, "profile", {"display_name": name, "role": "other", "bio": bio})
    answers = load_answers(uid)
    assert answers.get("display_name") == name
    assert answers.get("bio") == bio
    assert get_user_by_email("ada@example.com") is not None
    with get_engine(app_db.database_url).connect() as connection:
        assert connection.execute(sa.text("SELECT count(*) FROM users")).scalar() == 1


def test_editing_only_after_completion(app_db: Settings) -> None:
    uid = at_review()
    before = snapshot(app_db)
    with pytest.raises(StepNotOpen):
        save_step(uid, "profile", PROFILE, editing=True)
    assert snapshot(app_db) == before
    complete_onboarding(uid)
    before = snapshot(app_db)
    with pytest.raises(StepNotOpen) as info:
        save_step(uid, "profile", PROFILE)  # wizard save after completion
    assert info.value.reached == COMPLETED
    assert snapshot(app_db) == before
    user = save_step(uid, "interests", {"interests": ["go", "web", "cloud"]}, editing=True)
    assert user.onboarding_step == "completed"
    assert load_answers(uid).get("interests") == ["go", "web", "cloud"]


# --- complete_onboarding --------------------------------------------------------------------


def test_complete_with_unanswered_steps(app_db: Settings) -> None:
    uid = new_user()
    before = snapshot(app_db)
    with pytest.raises(StepsMissing) as info:
        complete_onboarding(uid)
    assert info.value.steps == ["profile", "interests", "preferences"]
    assert snapshot(app_db) == before

    save_step(uid, "profile", PROFILE)
    save_step(uid, "interests", INTERESTS)
    with pytest.raises(StepsMissing) as info:
        complete_onboarding(uid)
    assert info.value.steps == ["preferences"]
    assert step_of(uid) == "preferences"


def test_complete_exactly_one_transition() -> None:
    uid = at_review()
    first = complete_onboarding(uid)
    second = complete_onboarding(uid)
    assert first.transitioned is True
    assert second.transitioned is False
    assert first.user.onboarding_step == second.user.onboarding_step == "completed"
    assert first.user.onboarding_completed_at is not None
    assert first.user.flow_version == second.user.flow_version == 1
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


# --- optional steps: skipped and remembered ------------------------------------------------


def stored_answers_row(settings: Settings, uid: int) -> tuple[Any, Any]:
    """The raw JSON columns of a user's answers row (data, skipped)."""
    with get_engine(settings.database_url).connect() as connection:
        row = connection.execute(
            sa.text("SELECT data, skipped FROM onboarding_answers WHERE user_id = :u"), {"u": uid}
        ).one()
    return tuple(json.loads(v) if isinstance(v, str) else v for v in row)


def test_a_required_step_cannot_be_skipped(app_db: Settings) -> None:
    uid = new_user()
    before = snapshot(app_db)
    for step in ("profile", REVIEW):
        with pytest.raises(StepNotOpen) as info:
            save_step(uid, step, {}, skip=True)
        assert info.value.reached == "profile"
    assert snapshot(app_db) == before


def test_an_optional_step_is_skipped_and_counts_as_answered(
    app_db: Settings, with_optional_step: StepSpec
) -> None:
    uid = at_review()  # reached the optional step, not the review
    assert step_of(uid) == with_optional_step.key
    with pytest.raises(StepsMissing) as missing:
        complete_onboarding(uid)
    assert missing.value.steps == ["newsletter"]
    user = save_step(uid, "newsletter", {"frequency": "never"}, skip=True)  # content ignored
    assert user.onboarding_step == REVIEW
    assert stored_answers_row(app_db, uid) == ({}, ["newsletter"])
    answers = load_answers(uid)
    assert answers.skipped == frozenset({"newsletter"})
    assert answers.get("frequency") is None
    assert complete_onboarding(uid).transitioned


def test_a_skipped_step_answered_later_is_no_longer_skipped(
    app_db: Settings, with_optional_step: StepSpec
) -> None:
    uid = at_review()
    save_step(uid, "newsletter", {}, skip=True)
    user = save_step(uid, "newsletter", {"frequency": "weekly", "topics_wanted": "Rust\nGo"})
    assert user.onboarding_step == REVIEW
    assert stored_answers_row(app_db, uid) == (
        {"frequency": "weekly", "topics_wanted": "Rust\nGo"},
        [],
    )
    assert load_answers(uid).skipped == frozenset()


def test_an_optional_step_is_still_validated_when_answered(
    app_db: Settings, with_optional_step: StepSpec
) -> None:
    uid = at_review()
    before = snapshot(app_db)
    with pytest.raises(StepInputError) as info:
        save_step(uid, "newsletter", {"frequency": "daily"})
    assert info.value.errors == {"frequency": "Choose frequency from the list."}
    assert snapshot(app_db) == before


def test_skipping_is_refused_beyond_the_reached_step_and_after_completion(
    app_db: Settings, with_optional_step: StepSpec
) -> None:
    uid = new_user()
    before = snapshot(app_db)
    with pytest.raises(StepNotOpen):
        save_step(uid, "newsletter", {}, skip=True)
    assert snapshot(app_db) == before
    done = at_review("done@example.com")
    save_step(done, "newsletter", {"frequency": "weekly"})
    complete_onboarding(done)
    before = snapshot(app_db)
    for editing in (True, False):
        with pytest.raises(StepNotOpen) as info:
            save_step(done, "newsletter", {}, skip=True, editing=editing)
        assert info.value.reached == COMPLETED
    assert snapshot(app_db) == before


# --- a step added through the spec alone ---------------------------------------------------


def test_answers_of_fields_without_a_column_are_stored_as_json_and_load_back(
    app_db: Settings, flow_v2: StepSpec
) -> None:
    uid = at_review()
    assert step_of(uid) == "workplace"
    user = save_step(uid, "workplace", GOOD_WORKPLACE)
    assert user.onboarding_step == REVIEW
    assert stored_answers_row(app_db, uid) == (CLEAN_WORKPLACE, [])
    answers = load_answers(uid)
    assert answers == Answers({**PROFILE, **INTERESTS, **PREFERENCES, **CLEAN_WORKPLACE})
    assert answers.get("remote") is True
    # the columns of the shipped steps are untouched by JSON answers
    with get_engine(app_db.database_url).connect() as connection:
        theme = connection.execute(
            sa.text("SELECT theme FROM onboarding_answers WHERE user_id = :u"), {"u": uid}
        ).scalar()
    assert theme == "dark"


def test_a_step_added_through_the_spec_is_validated_before_anything_is_written(
    app_db: Settings, flow_v2: StepSpec
) -> None:
    uid = at_review()
    before = snapshot(app_db)
    with pytest.raises(StepInputError) as info:
        save_step(uid, "workplace", {**GOOD_WORKPLACE, "company": "Acme", "stack": ["py"] * 2})
    assert info.value.errors == {
        "company": "Acme is not hiring.",
        "stack": "Pick stack from the list.",
    }
    assert snapshot(app_db) == before


def test_finish_requires_a_step_added_through_the_spec(app_db: Settings, flow_v2: StepSpec) -> None:
    uid = at_review()
    before = snapshot(app_db)
    with pytest.raises(StepsMissing) as info:
        complete_onboarding(uid)
    assert info.value.steps == ["workplace"]
    assert snapshot(app_db) == before
    save_step(uid, "workplace", GOOD_WORKPLACE)
    result = complete_onboarding(uid)
    assert result.transitioned
    assert result.user.flow_version == 2


def test_a_json_answer_is_editable_after_completion_and_keeps_the_others(
    app_db: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    from onboard_app.services import onboarding

    monkeypatch.setattr(onboarding, "STEPS", (*onboarding.STEPS, NEWSLETTER, WORKPLACE))
    uid = at_review()
    save_step(uid, "newsletter", {"frequency": "weekly", "topics_wanted": "Go"})
    save_step(uid, "workplace", GOOD_WORKPLACE)
    complete_onboarding(uid)
    changed = {**GOOD_WORKPLACE, "company": "Globex", "stack": ["rs", "ts"]}
    user = save_step(uid, "workplace", changed, editing=True)
    assert user.onboarding_step == COMPLETED
    data, skipped = stored_answers_row(app_db, uid)
    assert data == {
        "frequency": "weekly",
        "topics_wanted": "Go",
        **CLEAN_WORKPLACE,
        "company": "Globex",
        "stack": ["ts", "rs"],
    }
    assert skipped == []


# --- flow versions: reopening for required steps added since --------------------------------


def completed_v1(email: str = "ada@example.com") -> int:
    uid = at_review(email)
    assert complete_onboarding(uid).transitioned
    user = get_user(uid)
    assert user is not None and user.flow_version == 1
    return uid


def test_reopen_sends_a_v1_user_to_the_new_step_keeping_every_answer(
    app_db: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    from onboard_app.services import onboarding

    uid = completed_v1()
    other = completed_v1("other@example.com")
    before = load_answers(uid)
    monkeypatch.setattr(onboarding, "STEPS", (*onboarding.STEPS, WORKPLACE))
    assert reopen_for_new_steps(uid) is True
    user = get_user(uid)
    assert user is not None
    assert (user.onboarding_step, user.flow_version) == ("workplace", 1)
    assert user.onboarding_completed_at is not None
    assert load_answers(uid).values == {
        **before.values,
        **{f.name: f.empty for f in WORKPLACE.fields},
    }
    # no loop: the user is in the wizard now, a second call does nothing
    assert reopen_for_new_steps(uid) is False
    assert step_of(uid) == "workplace"
    assert step_of(other) == COMPLETED  # only that user moved
    # the earlier steps may be reopened (never the ones after it), the new one saved, then Finish
    save_step(uid, "profile", {**PROFILE, "display_name": "Countess"})
    assert step_of(uid) == "workplace"
    with pytest.raises(StepsMissing) as info:
        complete_onboarding(uid)
    assert info.value.steps == ["workplace"]
    assert save_step(uid, "workplace", GOOD_WORKPLACE).onboarding_step == REVIEW
    result = complete_onboarding(uid)
    assert result.transitioned
    assert (result.user.onboarding_step, result.user.flow_version) == (COMPLETED, 2)
    assert reopen_for_new_steps(uid) is False
    assert step_of(uid) == COMPLETED


def test_reopen_keeps_users_out_of_the_wizard_when_nothing_required_was_added(
    app_db: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    from onboard_app.services import onboarding

    uid = completed_v1()
    unfinished = new_user("new@example.com")
    # version 2 adds an optional step only
    monkeypatch.setattr(onboarding, "STEPS", (*onboarding.STEPS, replace(NEWSLETTER, since=2)))
    before = snapshot(app_db)
    assert reopen_for_new_steps(unfinished) is False
    assert reopen_for_new_steps(999) is False
    assert snapshot(app_db) == before
    assert reopen_for_new_steps(uid) is False
    user = get_user(uid)
    assert user is not None
    # nothing to ask: recorded as up to date with the current flow, still completed
    assert (user.onboarding_step, user.flow_version) == (COMPLETED, 2)


def test_reopen_leaves_unfinished_users_in_the_wizard_where_they_are(
    app_db: Settings, flow_v2: StepSpec
) -> None:
    uid = new_user()
    save_step(uid, "profile", PROFILE)
    before = snapshot(app_db)
    assert reopen_for_new_steps(uid) is False
    assert snapshot(app_db) == before


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
    assert load_answers(user.id).get("interests") == []
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
