"""One-time email links and codes: hashing, expiry, reuse, purpose, user, tampering, races."""

from __future__ import annotations

import hashlib
import re
import threading
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any, TypeVar

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.environment import EnvironmentContext
from alembic.runtime.migration import MigrationContext
from sqlmodel import SQLModel

from onboard_app.models import EmailLink, utcnow
from onboard_app.services import db, email_links, users
from onboard_app.services.db import get_engine, session_scope, upgrade_to_head
from onboard_app.services.email_links import (
    MAX_CODE_ATTEMPTS,
    TTL,
    LinkPurpose,
    Redeemed,
    Refusal,
    issue,
    redeem_code,
    redeem_token,
)
from onboard_app.settings import Settings, SigningKey, override_settings
from tests.conftest import KEY, make_settings
from tests.scale.infra import throwaway_postgres

T = TypeVar("T")
VERIFY, RESET, CHANGE = (
    LinkPurpose.VERIFY_EMAIL,
    LinkPurpose.RESET_PASSWORD,
    LinkPurpose.CHANGE_EMAIL,
)


@pytest.fixture(params=["sqlite", "postgresql"])
def any_db(request: pytest.FixtureRequest, db_url: str) -> Iterator[Settings]:
    """Settings on a migrated SQLite file, then on a throwaway PostgreSQL database."""
    if request.param == "sqlite":
        settings = make_settings(database_url=db_url)
        override_settings(settings)
        yield settings
    else:
        with throwaway_postgres() as url:
            upgrade_to_head(url)
            settings = make_settings(database_url=url)
            override_settings(settings)
            yield settings
    override_settings(None)


_emails = iter(range(10**6))


def new_user(prefix: str = "user") -> int:
    email = users.normalise_email(f"{prefix}{next(_emails)}@example.com")
    assert email is not None
    user = users.create_local_user(email, "not-a-real-hash")
    assert user.id is not None
    return user.id


def rows() -> list[dict[str, Any]]:
    with session_scope() as session:
        return [dict(row._mapping) for row in session.execute(sa.select(EmailLink.__table__))]


def other_code(code: str) -> str:
    return f"{(int(code) + 1) % 10**6:06d}"


def tamper(token: str) -> str:
    return ("A" if token[0] != "A" else "B") + token[1:]


def all_at_once(actions: list[Callable[[], T]]) -> list[T]:
    """Run each action in its own thread, all released together; their results."""
    barrier = threading.Barrier(len(actions))
    results: list[T] = []
    lock = threading.Lock()

    def run(action: Callable[[], T]) -> None:
        barrier.wait()
        result = action()
        with lock:
            results.append(result)

    threads = [threading.Thread(target=run, args=(action,)) for action in actions]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


# --- what is issued and stored --------------------------------------------------------------


def test_issue_gives_a_random_token_and_a_six_digit_code_and_stores_only_hashes(
    app_db: Settings,
) -> None:
    user_id = new_user()
    token, code = issue(user_id, VERIFY)
    assert re.fullmatch(r"[A-Za-z0-9_-]{43}", token)  # 32 random bytes, URL-safe
    assert re.fullmatch(r"[0-9]{6}", code)
    (row,) = rows()
    assert row["token_hash"] == hashlib.sha256(token.encode()).hexdigest()
    stored = " ".join(str(value) for value in row.values())
    assert token not in stored and code not in stored.replace(row["code_hash"], "")
    assert row["code_key_id"] == KEY.kid and row["used_at"] is None
    assert row["expires_at"] - row["created_at"] == TTL[VERIFY] == timedelta(hours=24)
    assert TTL[RESET] == timedelta(minutes=30)
    assert "token" not in repr(issue(user_id, VERIFY)).replace("token=...", "")
    assert token not in repr(issue(user_id, VERIFY))


def test_tokens_and_codes_differ_between_links(app_db: Settings) -> None:
    issued = [issue(new_user(), VERIFY) for _ in range(20)]
    assert len({link.token for link in issued}) == 20
    assert len({link.code for link in issued}) > 15


# --- one time -------------------------------------------------------------------------------


@pytest.mark.usefixtures("any_db")
def test_a_token_redeems_once() -> None:
    user_id = new_user()
    token, _code = issue(user_id, VERIFY)
    assert redeem_token(token, VERIFY) == Redeemed(user_id, VERIFY)
    assert redeem_token(token, VERIFY) is Refusal.USED


@pytest.mark.usefixtures("any_db")
def test_a_code_redeems_once_and_the_link_with_it() -> None:
    user_id = new_user()
    token, code = issue(user_id, VERIFY)
    assert redeem_code(code, VERIFY, user_id=user_id) == Redeemed(user_id, VERIFY)
    assert redeem_code(code, VERIFY, user_id=user_id) is Refusal.USED
    assert redeem_token(token, VERIFY) is Refusal.USED


def test_a_used_token_also_ends_the_code(app_db: Settings) -> None:
    user_id = new_user()
    token, code = issue(user_id, RESET)
    assert isinstance(redeem_token(token, RESET), Redeemed)
    assert redeem_code(code, RESET, user_id=user_id) is Refusal.USED


@pytest.mark.parametrize("typed", ["{0} {1}", "{0}-{1}", " {0}{1} ", "{0}\u00a0{1}"])
def test_codes_may_be_typed_with_spaces_or_a_dash(app_db: Settings, typed: str) -> None:
    user_id = new_user()
    _token, code = issue(user_id, VERIFY)
    assert isinstance(
        redeem_code(typed.format(code[:3], code[3:]), VERIFY, user_id=user_id), Redeemed
    )


# --- expiry (injected clock) ----------------------------------------------------------------


@pytest.mark.parametrize("purpose", list(LinkPurpose))
def test_links_expire_after_their_purposes_ttl(app_db: Settings, purpose: LinkPurpose) -> None:
    user_id = new_user()
    start = utcnow()
    new_email = "new@example.com" if purpose is CHANGE else None
    token, code = issue(user_id, purpose, new_email=new_email, now=start)
    deadline = start + TTL[purpose]
    assert redeem_token(token, purpose, now=deadline) is Refusal.EXPIRED
    assert redeem_code(code, purpose, user_id=user_id, now=deadline) is Refusal.EXPIRED
    assert redeem_token(token, purpose, now=deadline - timedelta(seconds=1)) == Redeemed(
        user_id, purpose, new_email
    )


def test_a_code_expires_with_its_link(app_db: Settings) -> None:
    user_id = new_user()
    start = utcnow()
    _token, code = issue(user_id, RESET, now=start)
    late = start + timedelta(minutes=31)
    assert redeem_code(code, RESET, user_id=user_id, now=late) is Refusal.EXPIRED
    on_time = start + timedelta(minutes=29)
    assert isinstance(redeem_code(code, RESET, user_id=user_id, now=on_time), Redeemed)


def test_a_custom_ttl(app_db: Settings) -> None:
    user_id = new_user()
    start = utcnow()
    token, _code = issue(user_id, VERIFY, ttl=timedelta(minutes=5), now=start)
    assert redeem_token(token, VERIFY, now=start + timedelta(minutes=5)) is Refusal.EXPIRED


def test_prune_removes_expired_and_used_links_only(app_db: Settings) -> None:
    start = utcnow()
    used, expired, live = new_user(), new_user(), new_user()
    token, _ = issue(used, VERIFY, now=start)
    redeem_token(token, VERIFY, now=start)
    issue(expired, RESET, now=start)
    issue(live, VERIFY, now=start)
    assert email_links.prune(now=start + timedelta(hours=1)) == 2
    assert [row["user_id"] for row in rows()] == [live]


# --- purpose and user -----------------------------------------------------------------------


def test_a_link_does_not_redeem_for_another_purpose(app_db: Settings) -> None:
    user_id = new_user()
    token, code = issue(user_id, VERIFY)
    assert redeem_token(token, RESET) is Refusal.INVALID
    assert redeem_code(code, RESET, user_id=user_id) is Refusal.INVALID
    assert isinstance(redeem_token(token, VERIFY), Redeemed)  # not consumed by the refusals


def test_a_link_does_not_redeem_for_another_user(app_db: Settings) -> None:
    owner, other = new_user(), new_user()
    token, code = issue(owner, CHANGE, new_email="owner.new@example.com")
    assert redeem_token(token, CHANGE, user_id=other) is Refusal.INVALID
    assert redeem_code(code, CHANGE, user_id=other) is Refusal.INVALID
    assert redeem_token(token, CHANGE, user_id=owner) == Redeemed(
        owner, CHANGE, "owner.new@example.com"
    )


def test_a_code_is_bound_to_its_user(app_db: Settings) -> None:
    first, second = new_user(), new_user()
    _t1, code1 = issue(first, VERIFY)
    _t2, code2 = issue(second, VERIFY)
    while code2 == code1:
        _t2, code2 = issue(second, VERIFY)
    assert redeem_code(code1, VERIFY, user_id=second) is Refusal.INVALID
    assert isinstance(redeem_code(code2, VERIFY, user_id=second), Redeemed)


def test_moving_a_row_to_another_user_in_the_database_kills_its_code(app_db: Settings) -> None:
    victim, attacker = new_user(), new_user()
    _token, code = issue(attacker, RESET)
    with session_scope() as session:
        session.execute(sa.update(EmailLink).values(user_id=victim))
    assert redeem_code(code, RESET, user_id=victim) is Refusal.INVALID


def test_redeem_code_by_email(app_db: Settings) -> None:
    user_id = new_user("Mixed.Case")
    user = users.get_user(user_id)
    assert user is not None and user.email is not None
    _token, code = issue(user_id, VERIFY)
    assert redeem_code(other_code(code), VERIFY, email=user.email.upper()) is Refusal.INVALID
    assert redeem_code(code, VERIFY, email=f"  {user.email.upper()} ") == Redeemed(user_id, VERIFY)


def test_by_email_every_refusal_looks_the_same(app_db: Settings) -> None:
    """Used, expired or unknown: a stranger typing codes learns nothing about the address."""
    used, expired = new_user(), new_user()
    start = utcnow()
    _t, used_code = issue(used, VERIFY, now=start)
    redeem_code(used_code, VERIFY, user_id=used, now=start)
    _t, expired_code = issue(expired, VERIFY, now=start)
    later = start + timedelta(days=2)
    answers = {
        redeem_code(used_code, VERIFY, email=users.get_user(used).email, now=start),  # type: ignore[union-attr]
        redeem_code(expired_code, VERIFY, email=users.get_user(expired).email, now=later),  # type: ignore[union-attr]
        redeem_code("123456", VERIFY, email="nobody@example.com"),
        redeem_code("123456", VERIFY, email="not an email"),
    }
    assert answers == {Refusal.INVALID}
    # With the user id the screen holds, the owner is told what happened.
    assert redeem_code(used_code, VERIFY, user_id=used) is Refusal.USED


def test_redeem_code_needs_exactly_one_owner(app_db: Settings) -> None:
    with pytest.raises(ValueError):
        redeem_code("123456", VERIFY)
    with pytest.raises(ValueError):
        redeem_code("123456", VERIFY, user_id=1, email="a@example.com")


def test_new_email_only_for_an_email_change(app_db: Settings) -> None:
    user_id = new_user()
    with pytest.raises(ValueError):
        issue(user_id, CHANGE)
    with pytest.raises(ValueError):
        issue(user_id, VERIFY, new_email="x@example.com")
    assert rows() == []


# --- replaced links -------------------------------------------------------------------------


def test_a_new_link_replaces_the_previous_one(app_db: Settings) -> None:
    user_id = new_user()
    old_token, old_code = issue(user_id, RESET)
    new_token, new_code = issue(user_id, RESET)
    while new_code == old_code:
        new_token, new_code = issue(user_id, RESET)
    assert redeem_token(old_token, RESET) is Refusal.INVALID
    assert redeem_code(old_code, RESET, user_id=user_id) is Refusal.INVALID
    assert len(rows()) == 1
    assert isinstance(redeem_token(new_token, RESET), Redeemed)


def test_a_new_link_for_one_purpose_leaves_the_others(app_db: Settings) -> None:
    user_id = new_user()
    verify_token, _ = issue(user_id, VERIFY)
    issue(user_id, RESET)
    assert isinstance(redeem_token(verify_token, VERIFY), Redeemed)


def test_revoke(app_db: Settings) -> None:
    user_id = new_user()
    verify_token, _ = issue(user_id, VERIFY)
    reset_token, _ = issue(user_id, RESET)
    assert email_links.revoke(user_id, RESET) == 1
    assert redeem_token(reset_token, RESET) is Refusal.INVALID
    assert email_links.revoke(user_id) == 1
    assert redeem_token(verify_token, VERIFY) is Refusal.INVALID


def test_deleting_the_user_deletes_their_links(app_db: Settings) -> None:
    user_id, other = new_user(), new_user()
    token, _ = issue(user_id, VERIFY)
    issue(user_id, RESET)
    issue(other, RESET)
    users.delete_user(user_id)
    assert [row["user_id"] for row in rows()] == [other]
    assert redeem_token(token, VERIFY) is Refusal.INVALID


# --- tampering and junk ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "change",
    [
        tamper,
        lambda token: token[:-1],
        lambda token: token + "A",
        lambda token: token.upper(),
        lambda token: token + "\n",
        lambda token: token[:20] + "%2F" + token[20:],
    ],
    ids=["one-char", "shorter", "longer", "case", "newline", "encoded"],
)
def test_a_tampered_token_is_invalid_and_leaves_the_real_one(
    app_db: Settings, change: Callable[[str], str]
) -> None:
    user_id = new_user()
    token, _ = issue(user_id, VERIFY)
    assert redeem_token(change(token), VERIFY) is Refusal.INVALID
    assert isinstance(redeem_token(token, VERIFY), Redeemed)


@pytest.mark.parametrize(
    "junk", [None, 42, ["token"], {"t": 1}, "", "short", "x" * 10_000, "\ud800" * 43, "é" * 43]
)
def test_junk_tokens_are_invalid(app_db: Settings, junk: object) -> None:
    issue(new_user(), VERIFY)
    assert redeem_token(junk, VERIFY) is Refusal.INVALID


@pytest.mark.parametrize(
    "junk",
    [
        None,
        123456,
        "",
        "12345",
        "1234567",
        "12345a",
        "\uff11\uff12\uff13\uff14\uff15\uff16",
        "x" * 10_000,
        "12 34 56 78",
    ],
)
def test_junk_codes_are_invalid_and_cost_no_attempt(app_db: Settings, junk: object) -> None:
    user_id = new_user()
    _token, code = issue(user_id, VERIFY)
    assert redeem_code(junk, VERIFY, user_id=user_id) is Refusal.INVALID
    assert rows()[0]["code_attempts"] == 0
    assert isinstance(redeem_code(code, VERIFY, user_id=user_id), Redeemed)


def test_a_code_made_with_a_removed_key_is_dead_and_a_retired_key_still_works(
    app_db: Settings,
) -> None:
    user_id = new_user()
    _token, code = issue(user_id, VERIFY)
    rotated = SigningKey("test-2", b"r" * 32)
    override_settings(make_settings(database_url=app_db.database_url, signing_keys=(rotated, KEY)))
    assert isinstance(redeem_code(code, VERIFY, user_id=user_id), Redeemed)
    token, code = issue(user_id, VERIFY)
    override_settings(make_settings(database_url=app_db.database_url, signing_keys=(KEY,)))
    assert redeem_code(code, VERIFY, user_id=user_id) is Refusal.INVALID
    assert isinstance(redeem_token(token, VERIFY), Redeemed)  # the link does not need the key


# --- brute force on the code ----------------------------------------------------------------


def test_wrong_codes_are_limited_per_link(app_db: Settings) -> None:
    user_id = new_user()
    token, code = issue(user_id, VERIFY)
    wrong = other_code(code)
    for _ in range(MAX_CODE_ATTEMPTS):
        assert redeem_code(wrong, VERIFY, user_id=user_id) is Refusal.INVALID
    assert redeem_code(code, VERIFY, user_id=user_id) is Refusal.TOO_MANY_ATTEMPTS
    assert isinstance(redeem_token(token, VERIFY), Redeemed)  # the link still works


def test_the_right_code_within_the_limit_works(app_db: Settings) -> None:
    user_id = new_user()
    _token, code = issue(user_id, VERIFY)
    for _ in range(MAX_CODE_ATTEMPTS - 1):
        redeem_code(other_code(code), VERIFY, user_id=user_id)
    assert isinstance(redeem_code(code, VERIFY, user_id=user_id), Redeemed)


def test_a_new_link_starts_a_new_count(app_db: Settings) -> None:
    user_id = new_user()
    _token, code = issue(user_id, VERIFY)
    for _ in range(MAX_CODE_ATTEMPTS):
        redeem_code(other_code(code), VERIFY, user_id=user_id)
    _token, code = issue(user_id, VERIFY)
    assert isinstance(redeem_code(code, VERIFY, user_id=user_id), Redeemed)


@pytest.mark.usefixtures("any_db")
def test_parallel_wrong_codes_cannot_overrun_the_limit() -> None:
    user_id = new_user()
    _token, code = issue(user_id, RESET)
    wrong = [f"{(int(code) + n) % 10**6:06d}" for n in range(1, 17)]
    guesses = iter(wrong)
    lock = threading.Lock()

    def guess() -> Redeemed | Refusal:
        with lock:
            value = next(guesses)
        return redeem_code(value, RESET, user_id=user_id)

    answers = all_at_once([guess] * len(wrong))
    assert answers.count(Refusal.INVALID) == MAX_CODE_ATTEMPTS
    assert answers.count(Refusal.TOO_MANY_ATTEMPTS) == len(wrong) - MAX_CODE_ATTEMPTS
    assert rows()[0]["code_attempts"] == MAX_CODE_ATTEMPTS
    assert redeem_code(code, RESET, user_id=user_id) is Refusal.TOO_MANY_ATTEMPTS


# --- concurrent redeems: one winner ---------------------------------------------------------


@pytest.mark.usefixtures("any_db")
def test_concurrent_token_redeems_have_one_winner() -> None:
    user_id = new_user()
    token, _ = issue(user_id, VERIFY)
    answers = all_at_once([lambda: redeem_token(token, VERIFY)] * 8)
    assert answers.count(Redeemed(user_id, VERIFY)) == 1
    assert answers.count(Refusal.USED) == 7


@pytest.mark.usefixtures("any_db")
def test_concurrent_code_redeems_have_one_winner() -> None:
    user_id = new_user()
    _token, code = issue(user_id, VERIFY)
    answers = all_at_once([lambda: redeem_code(code, VERIFY, user_id=user_id)] * 4)
    assert answers.count(Redeemed(user_id, VERIFY)) == 1
    assert answers.count(Refusal.USED) == 3


@pytest.mark.usefixtures("any_db")
def test_a_token_and_its_code_at_once_have_one_winner() -> None:
    user_id = new_user()
    token, code = issue(user_id, RESET)
    by_token: Callable[[], Redeemed | Refusal] = lambda: redeem_token(token, RESET)  # noqa: E731
    by_code: Callable[[], Redeemed | Refusal] = lambda: redeem_code(code, RESET, user_id=user_id)  # noqa: E731
    answers = all_at_once([by_token, by_code] * 3)
    assert answers.count(Redeemed(user_id, RESET)) == 1
    assert answers.count(Refusal.USED) == 5


# --- schema ---------------------------------------------------------------------------------

MIGRATION = "6377b5644072"  # alembic/versions/6377b5644072_email_links.py


def migrate(url: str, destination: str) -> None:
    """Move a database to ``destination`` (up or down), as the app's own upgrade does."""
    config, script = db._alembic()

    def steps(rev, _context):  # type: ignore[no-untyped-def]
        if destination == "head":
            return script._upgrade_revs(destination, rev)
        return script._downgrade_revs(destination, rev)

    with get_engine(url).connect() as connection:
        with EnvironmentContext(config, script, fn=steps) as env:
            env.configure(connection=connection, render_as_batch=True)
            with env.begin_transaction():
                env.run_migrations()
        connection.commit()


def test_the_migration_matches_the_model(db_url: str) -> None:
    with get_engine(db_url).connect() as connection:
        context = MigrationContext.configure(connection)
        diffs = compare_metadata(context, SQLModel.metadata)
    assert [diff for diff in diffs if "email_links" in repr(diff)] == []


def test_the_migration_goes_down_and_up(db_url: str) -> None:
    revision = db._alembic()[1].get_revision(MIGRATION)
    assert revision is not None and isinstance(revision.down_revision, str)
    migrate(db_url, revision.down_revision)
    assert "email_links" not in sa.inspect(get_engine(db_url)).get_table_names()
    migrate(db_url, "head")
    assert "email_links" in sa.inspect(get_engine(db_url)).get_table_names()
