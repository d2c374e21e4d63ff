"""Onboarding events: written by the server with the change they describe, and their summaries."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy.exc import OperationalError
from sqlmodel import SQLModel

from onboard_app.services import db, events
from onboard_app.services.db import get_engine
from onboard_app.services.onboarding import COMPLETED, REVIEW, StepInputError, StepSpec
from onboard_app.services.users import (
    StepNotOpen,
    complete_onboarding,
    create_external_user,
    create_local_user,
    delete_user,
    get_user,
    record_step_opened,
    save_step,
)
from onboard_app.settings import Settings, override_settings
from tests.conftest import make_settings
from tests.unit.flow_steps import GOOD
from tests.unit.test_email_links import migrate

pytestmark = pytest.mark.usefixtures("app_db")

HASH = "$argon2id$v=19$m=24576,t=2,p=1$c2FsdHNhbHQ$ZmFrZWhhc2hmYWtlaGFzaA"
MIGRATION = "d6d33befc5d2"
TABLES = ("onboarding_events", "onboarding_progress", "onboarding_counts")


def rows(settings: Settings, sql: str, **params: Any) -> list[tuple[Any, ...]]:
    with get_engine(settings.database_url).connect() as connection:
        return [tuple(r) for r in connection.execute(sa.text(sql), params)]


def log_of(settings: Settings, user_id: int) -> list[tuple[Any, ...]]:
    return rows(
        settings,
        "SELECT kind, step, flow_version, method FROM onboarding_events "
        "WHERE user_id = :id ORDER BY id",
        id=user_id,
    )


def counts(settings: Settings, period: str = events.DAY) -> dict[tuple[str, str, int], int]:
    return {
        (measure, step, bucket): users
        for measure, step, bucket, users in rows(
            settings,
            "SELECT measure, step, bucket, users FROM onboarding_counts WHERE period = :p",
            p=period,
        )
    }


def local_user(email: str = "ada@example.com") -> int:
    user = create_local_user(email, HASH)
    assert user.id is not None
    return user.id


def finish_every_step(user_id: int) -> None:
    for step, answers in GOOD.items():
        record_step_opened(user_id, step)
        save_step(user_id, step, answers)
    record_step_opened(user_id, REVIEW)
    assert complete_onboarding(user_id).transitioned


def test_each_wizard_action_writes_one_event_taken_from_the_server(app_db: Settings) -> None:
    user_id = local_user()
    finish_every_step(user_id)
    assert log_of(app_db, user_id) == [
        ("opened", "profile", 1, "password"),
        ("saved", "profile", 1, "password"),
        ("opened", "interests", 1, "password"),
        ("saved", "interests", 1, "password"),
        ("opened", "preferences", 1, "password"),
        ("saved", "preferences", 1, "password"),
        ("opened", "review", 1, "password"),
        ("finished", "review", 1, "password"),
    ]
    times = [r[0] for r in rows(app_db, "SELECT at FROM onboarding_events ORDER BY id")]
    assert times == sorted(times)


def test_a_skipped_optional_step_is_a_skipped_event(
    app_db: Settings, with_optional_step: StepSpec
) -> None:
    user_id = local_user()
    for step, answers in GOOD.items():
        save_step(user_id, step, answers)
    save_step(user_id, with_optional_step.key, {}, skip=True)
    assert log_of(app_db, user_id)[-1] == ("skipped", with_optional_step.key, 1, "password")
    assert counts(app_db)[(events.DONE, with_optional_step.key, 0)] == 1


def test_the_sign_in_method_is_read_from_the_row(app_db: Settings) -> None:
    github = create_external_user(email=None, display_name="Octo", avatar_url=None, github_id=7)
    oidc = create_external_user(
        email=None,
        display_name="Idp",
        avatar_url=None,
        oidc_issuer="https://id.example.com",
        oidc_subject="abc",
    )
    for user in (github, oidc):
        assert user.id is not None
        record_step_opened(user.id, "profile")
    assert [r[3] for r in log_of(app_db, github.id)] == ["github"]  # type: ignore[arg-type]
    assert [r[3] for r in log_of(app_db, oidc.id)] == ["oidc"]  # type: ignore[arg-type]


def test_a_refused_save_writes_no_event(app_db: Settings) -> None:
    user_id = local_user()
    with pytest.raises(StepInputError):
        save_step(user_id, "profile", {"display_name": "", "role": "nope"})
    with pytest.raises(StepNotOpen):
        save_step(user_id, "preferences", GOOD["preferences"])
    assert all(rows(app_db, f"SELECT * FROM {t}") == [] for t in TABLES)


def test_a_settings_edit_is_no_onboarding_event(app_db: Settings) -> None:
    user_id = local_user()
    finish_every_step(user_id)
    before = log_of(app_db, user_id)
    save_step(user_id, "profile", {**GOOD["profile"], "display_name": "Grace"}, editing=True)
    assert log_of(app_db, user_id) == before


def broken_counts(*_args: object, **_kwargs: object) -> None:
    raise OperationalError("INSERT INTO onboarding_counts", {}, Exception("disk I/O error"))


def test_the_event_is_written_in_the_transaction_of_the_save(
    app_db: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    user_id = local_user()
    monkeypatch.setattr(events, "add_counts", broken_counts)
    with pytest.raises(OperationalError):
        save_step(user_id, "profile", GOOD["profile"])
    user = get_user(user_id)
    assert user is not None and user.onboarding_step == "profile" and user.display_name == ""
    assert all(rows(app_db, f"SELECT * FROM {t}") == [] for t in TABLES)


def test_the_finished_event_is_written_in_the_transaction_of_finish(
    app_db: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    user_id = local_user()
    for step, answers in GOOD.items():
        save_step(user_id, step, answers)
    before = rows(app_db, "SELECT * FROM onboarding_events")
    monkeypatch.setattr(events, "add_counts", broken_counts)
    with pytest.raises(OperationalError):
        complete_onboarding(user_id)
    user = get_user(user_id)
    assert user is not None and user.onboarding_step == REVIEW
    assert rows(app_db, "SELECT * FROM onboarding_events") == before
    monkeypatch.undo()
    assert complete_onboarding(user_id).transitioned
    assert not complete_onboarding(user_id).transitioned  # a second Finish: no second event
    assert [r[0] for r in log_of(app_db, user_id)].count("finished") == 1


def test_opening_a_step_that_is_not_open_records_nothing(app_db: Settings) -> None:
    user_id = local_user()
    assert not record_step_opened(user_id, "preferences")
    assert not record_step_opened(user_id, "nonsense")
    assert not record_step_opened(10_000, "profile")
    finish_every_step(user_id)
    assert not record_step_opened(user_id, "profile")  # completed: the wizard is closed
    assert [r[0] for r in log_of(app_db, user_id)].count("opened") == 4


def test_an_opened_event_that_cannot_be_written_never_stops_the_wizard(
    app_db: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    user_id = local_user()
    monkeypatch.setattr(events, "add_counts", broken_counts)
    assert record_step_opened(user_id, "profile") is False
    assert rows(app_db, "SELECT * FROM onboarding_events") == []


def test_each_person_counts_once_per_step_and_is_timed_from_the_first_opening(
    app_db: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = [datetime(2026, 3, 31, 23, 0, tzinfo=UTC)]
    monkeypatch.setattr(events, "utcnow", lambda: clock[0])
    user_id = local_user()
    for minutes in (0, 1, 5):  # reloads
        clock[0] = datetime(2026, 3, 31, 23, minutes, tzinfo=UTC)
        record_step_opened(user_id, "profile")
    clock[0] = datetime(2026, 3, 31, 23, 10, tzinfo=UTC)
    save_step(user_id, "profile", GOOD["profile"])
    clock[0] = datetime(2026, 3, 31, 23, 20, tzinfo=UTC)
    save_step(user_id, "profile", GOOD["profile"])  # back to it and saved again
    ten_minutes = events.time_bucket(600)
    for period in (events.DAY, events.MONTH):
        assert counts(app_db, period) == {
            (events.REACHED, "profile", 0): 1,
            (events.DONE, "profile", 0): 1,
            (events.TIME, "profile", ten_minutes): 1,
        }
    user = get_user(user_id)
    assert user is not None
    signed_up = events.day_of(user.created_at)
    days = {r[0] for r in rows(app_db, "SELECT cohort_day FROM onboarding_counts")}
    assert {date.fromisoformat(str(d)) for d in days} == {signed_up, signed_up.replace(day=1)}


def test_progress_says_where_each_person_is_and_since_when(
    app_db: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    start = datetime(2026, 5, 1, 9, tzinfo=UTC)
    clock = [start]
    monkeypatch.setattr(events, "utcnow", lambda: clock[0])
    user_id = local_user()
    record_step_opened(user_id, "profile")
    clock[0] = start + timedelta(hours=1)
    record_step_opened(user_id, "profile")
    progress = "SELECT step, since FROM onboarding_progress WHERE user_id = :id"
    assert [(s, events.utc(t)) for s, t in map(_parsed, rows(app_db, progress, id=user_id))] == [
        ("profile", start)
    ]
    clock[0] = start + timedelta(days=2)
    save_step(user_id, "profile", GOOD["profile"])
    assert [(s, events.utc(t)) for s, t in map(_parsed, rows(app_db, progress, id=user_id))] == [
        ("interests", start + timedelta(days=2))
    ]


def _parsed(row: tuple[Any, ...]) -> tuple[str, datetime]:
    step, since = row
    return step, since if isinstance(since, datetime) else datetime.fromisoformat(since)


def test_deleting_an_account_deletes_its_events_and_progress(app_db: Settings) -> None:
    keep, gone = local_user("keep@example.com"), local_user("gone@example.com")
    finish_every_step(keep)
    finish_every_step(gone)
    delete_user(gone)
    assert rows(app_db, "SELECT DISTINCT user_id FROM onboarding_events") == [(keep,)]
    assert rows(app_db, "SELECT user_id FROM onboarding_progress") == [(keep,)]
    # The totals name nobody and stay.
    assert counts(app_db)[(events.REACHED, "profile", 0)] == 2
    assert "user_id" not in {c["name"] for c in sa.inspect(get_engine()).get_columns(TABLES[2])}


def test_the_foreign_keys_cascade_when_a_user_row_goes(app_db: Settings) -> None:
    user_id = local_user()
    finish_every_step(user_id)
    with get_engine(app_db.database_url).begin() as connection:
        connection.execute(
            sa.text("DELETE FROM onboarding_answers WHERE user_id = :id"), {"id": user_id}
        )
        connection.execute(sa.text("DELETE FROM users WHERE id = :id"), {"id": user_id})
    assert rows(app_db, "SELECT * FROM onboarding_events") == []
    assert rows(app_db, "SELECT * FROM onboarding_progress") == []


def test_prune_deletes_only_events_older_than_the_retention(
    app_db: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    override_settings(make_settings(database_url=app_db.database_url, events_retention_days=30))
    monkeypatch.setattr(events, "PRUNE_BATCH", 2)  # several batches
    user_id = local_user()
    finish_every_step(user_id)
    now = datetime.now(UTC)
    with get_engine(app_db.database_url).begin() as connection:
        ids = [r[0] for r in connection.execute(sa.text("SELECT id FROM onboarding_events"))]
        for index, event_id in enumerate(ids[:5]):
            old = now - timedelta(days=31 + index)
            connection.execute(
                sa.text("UPDATE onboarding_events SET at = :at WHERE id = :id"),
                {"at": old.replace(tzinfo=None).isoformat(sep=" "), "id": event_id},
            )
    totals = counts(app_db)
    assert events.prune_events(now=now) == 5
    assert [r[0] for r in rows(app_db, "SELECT id FROM onboarding_events ORDER BY id")] == ids[5:]
    assert counts(app_db) == totals
    assert events.prune_events(now=now) == 0


def test_time_buckets_are_ordered_and_their_middle_lies_inside() -> None:
    previous = -1
    for seconds in [0, 0.5, 1, 1.1, 2, 3, 59, 60, 61, 3600, 86_400, 10**7, 10**8]:
        bucket = events.time_bucket(seconds)
        assert bucket >= previous
        previous = bucket
        middle = events.bucket_seconds(bucket)
        assert events.time_bucket(middle) == bucket
        if seconds >= 1:
            assert abs(middle - seconds) / seconds < 0.2


def test_the_migration_matches_the_models(db_url: str) -> None:
    with get_engine(db_url).connect() as connection:
        diffs = compare_metadata(MigrationContext.configure(connection), SQLModel.metadata)
    mine = [d for d in diffs if any(t in repr(d) for t in (*TABLES, "'role'"))]
    assert mine == []


def test_the_migration_goes_down_and_up(db_url: str) -> None:
    revision = db._alembic()[1].get_revision(MIGRATION)
    assert revision is not None and isinstance(revision.down_revision, str)
    migrate(db_url, revision.down_revision)
    assert not set(TABLES) & set(sa.inspect(get_engine(db_url)).get_table_names())
    assert "role" not in {c["name"] for c in sa.inspect(get_engine(db_url)).get_columns("users")}
    migrate(db_url, "head")
    assert set(TABLES) <= set(sa.inspect(get_engine(db_url)).get_table_names())


def test_the_migration_gives_existing_users_their_progress(db_url: str) -> None:
    revision = db._alembic()[1].get_revision(MIGRATION)
    assert revision is not None and isinstance(revision.down_revision, str)
    migrate(db_url, revision.down_revision)
    engine = get_engine(db_url)
    with engine.begin() as connection:
        for email, step, github in (
            ("a@example.com", "interests", None),
            ("b@x.com", COMPLETED, 5),
        ):
            connection.execute(
                sa.text(
                    "INSERT INTO users (email, password_hash, github_id, display_name, "
                    "onboarding_step, onboarding_completed_at, flow_version, token_version, "
                    "created_at, updated_at) VALUES (:e, :h, :g, '', :s, :c, :v, 1, "
                    "'2026-01-02 03:04:05', '2026-02-03 04:05:06')"
                ),
                {
                    "e": email,
                    "h": None if github else HASH,
                    "g": github,
                    "s": step,
                    "c": "2026-02-01 00:00:00" if step == COMPLETED else None,
                    "v": 1 if step == COMPLETED else 0,
                },
            )
    migrate(db_url, "head")
    with engine.connect() as connection:
        found = connection.execute(
            sa.text(
                "SELECT u.email, p.step, p.since, p.method, p.flow_version, u.role FROM "
                "onboarding_progress p JOIN users u ON u.id = p.user_id ORDER BY u.email"
            )
        ).all()
    assert [tuple(r) for r in found] == [
        ("a@example.com", "interests", "2026-02-03 04:05:06", "password", 1, "member"),
        ("b@x.com", COMPLETED, "2026-02-01 00:00:00", "github", 1, "member"),
    ]
