"""Sessions per device: one row per sign-in, named by the token's ``sid``, ended one by one.

The core of issue 13 item 4, without Reflex: the row a sign-in writes, the one read per
check, "last seen" written at most once per interval, logout / sign out / everywhere else,
tokens minted before sessions existed, pruning, and the migration.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace

import jwt
import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlmodel import SQLModel, select

from onboard_app.models import DeviceSession, User
from onboard_app.services import db, sessions
from onboard_app.services.db import get_engine, session_scope
from onboard_app.services.sessions import (
    LAST_SEEN_INTERVAL,
    Authenticated,
    Client,
    authenticate,
    authenticate_off_loop,
    end_device_session,
    end_other_sessions,
    end_session,
    signed_in_devices,
    start_session,
)
from onboard_app.services.tokens import (
    Rejection,
    SessionClaims,
    TokenRejected,
    legacy_session_id,
    mint_session_token,
    verify_session_token,
)
from onboard_app.services.users import (
    create_local_user,
    delete_user,
    get_user,
    prune_device_sessions,
    revoke_sessions,
)
from onboard_app.settings import Settings
from tests.unit.test_email_links import all_at_once, migrate
from tests.unit.test_email_links import any_db as any_db  # a fixture, on SQLite and PostgreSQL

pytestmark = pytest.mark.usefixtures("app_db")

HASH = "$argon2id$v=19$m=24576,t=2,p=1$c2FsdHNhbHQ$ZmFrZWhhc2hmYWtlaGFzaA"
CHROME_LINUX = Client(
    "203.0.113.7",
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Safari/537.36",
)
SAFARI_IPHONE = Client(
    "198.51.100.20",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1",
)
MIGRATION = "e19324301014"  # alembic/versions/e19324301014_device_sessions.py


def new_user(email: str = "ada@example.com") -> User:
    user = create_local_user(email, HASH)
    assert user.id is not None
    return user


def claims_of(token: str, settings: Settings) -> SessionClaims:
    claims = verify_session_token(token, settings)
    assert isinstance(claims, SessionClaims)
    return claims


def rows(settings: Settings) -> list[dict[str, object]]:
    """Every session row, oldest sign-in first; times as Unix seconds."""
    with session_scope(settings.database_url) as session:
        found = session.exec(select(DeviceSession)).all()
        listed = [row.model_dump() for row in found]
    for row in listed:
        for name in ("created_at", "last_seen_at", "expires_at"):
            row[name] = row[name].timestamp()
    return sorted(listed, key=lambda row: (row["created_at"], row["id"]))


def version_of(user_id: int) -> int:
    user = get_user(user_id)
    assert user is not None
    return user.token_version


@contextmanager
def statements(settings: Settings, parameters: list[object] | None = None) -> Iterator[list[str]]:
    """The SQL statements run on the app's database inside the block (and their parameters)."""
    seen: list[str] = []
    engine = get_engine(settings.database_url)

    def note(_conn, _cursor, statement, values, *_args) -> None:  # type: ignore[no-untyped-def]
        seen.append(statement)
        if parameters is not None:
            parameters.append(values)

    sa.event.listen(engine, "before_cursor_execute", note)
    try:
        yield seen
    finally:
        sa.event.remove(engine, "before_cursor_execute", note)


# --- a sign-in is a row -----------------------------------------------------------------------


def test_a_sign_in_records_the_device_and_the_token_names_it(app_db: Settings) -> None:
    user = new_user()
    now = int(time.time())
    token = start_session(user, app_db, now=now, client=CHROME_LINUX)
    [row] = rows(app_db)
    assert claims_of(token, app_db).sid == row["id"]
    assert (row["browser"], row["system"], row["device"], row["form_factor"]) == (
        "Chrome",
        "Linux",
        "",
        "desktop",
    )
    assert row["client_address"] == "203.0.113.7"
    assert row["user_id"] == user.id and row["token_version"] == 1
    assert row["created_at"] == row["last_seen_at"] == now
    # The latest a token of this session can be valid: the token lifetime past its last
    # activity, plus the interval "last seen" may lag behind it.
    assert claims_of(token, app_db).expires_at == now + app_db.token_ttl
    assert row["expires_at"] == now + app_db.token_ttl + LAST_SEEN_INTERVAL


def test_a_session_never_outlives_the_session_lifetime(app_db: Settings) -> None:
    short = replace(app_db, session_max_age=app_db.token_ttl // 2)
    now = int(time.time())
    token = start_session(new_user(), short, now=now)
    [row] = rows(app_db)
    assert row["expires_at"] == now + short.session_max_age
    assert claims_of(token, short).expires_at == row["expires_at"]


def test_each_sign_in_is_its_own_session(app_db: Settings) -> None:
    user = new_user()
    laptop = start_session(user, app_db, now=int(time.time()) - 60, client=CHROME_LINUX)
    phone = start_session(user, app_db, client=SAFARI_IPHONE)
    assert claims_of(laptop, app_db).sid != claims_of(phone, app_db).sid
    for token in (laptop, phone):
        assert isinstance(authenticate(token, app_db), Authenticated)
    assert [r["browser"] for r in rows(app_db)] == ["Chrome", "Safari"]


def test_the_check_is_one_read_by_primary_keys(app_db: Settings) -> None:
    token = start_session(new_user(), app_db, client=CHROME_LINUX)
    values: list[object] = []
    with statements(app_db, values) as seen:
        for _ in range(3):
            assert isinstance(authenticate(token, app_db), Authenticated)
    assert len(seen) == 3 and all(s.lstrip().upper().startswith("SELECT") for s in seen)
    with get_engine(app_db.database_url).connect() as connection:
        plan = connection.exec_driver_sql("EXPLAIN QUERY PLAN " + seen[0], values[0]).all()
    details = [str(step[-1]) for step in plan]
    # users, onboarding_answers and device_sessions: each a search by its primary key.
    assert len(details) == 3, details
    # (SQLite searches a text primary key through its own index, sqlite_autoindex_...)
    by_key = ("PRIMARY KEY", "sqlite_autoindex_device_sessions_1 (id=?)")
    assert all(d.startswith("SEARCH") and any(k in d for k in by_key) for d in details), details


def test_a_session_of_another_user_is_no_session(app_db: Settings) -> None:
    ada, bob = new_user(), new_user("bob@example.com")
    bobs = claims_of(start_session(bob, app_db), app_db).sid
    # A token of Ada's that names Bob's session (only a holder of the key could mint it).
    crossed = mint_session_token(ada, app_db, session_id=bobs)
    assert authenticate(crossed, app_db) == TokenRejected(Rejection.REVOKED)


# --- last seen: at most once per interval -----------------------------------------------------


def test_last_seen_is_written_at_most_once_per_interval(app_db: Settings) -> None:
    now = int(time.time())
    token = start_session(new_user(), app_db, now=now, client=CHROME_LINUX)
    moved = Client("192.0.2.99", CHROME_LINUX.user_agent)
    with statements(app_db) as seen:
        for later in (now + 5, now + 60, now + LAST_SEEN_INTERVAL - 1):
            assert isinstance(authenticate(token, app_db, now=later, client=moved), Authenticated)
    assert not [s for s in seen if s.lstrip().upper().startswith("UPDATE")]
    [before] = rows(app_db)
    assert before["last_seen_at"] == before["created_at"]

    due = now + LAST_SEEN_INTERVAL
    with statements(app_db) as seen:
        for later in (due, due + 1, due + 30):
            result = authenticate(token, app_db, now=later, client=moved)
            assert isinstance(result, Authenticated)
    assert len([s for s in seen if s.lstrip().upper().startswith("UPDATE")]) == 1
    [after] = rows(app_db)
    assert after["client_address"] == "192.0.2.99"
    assert after["last_seen_at"] == due
    assert after["expires_at"] == due + app_db.token_ttl + LAST_SEEN_INTERVAL


async def test_the_event_loop_check_writes_last_seen_off_the_loop(app_db: Settings) -> None:
    token = start_session(new_user(), app_db, now=int(time.time()) - LAST_SEEN_INTERVAL)
    [before] = rows(app_db)
    result = await authenticate_off_loop(token, app_db, client=SAFARI_IPHONE)
    assert isinstance(result, Authenticated)
    [after] = rows(app_db)
    assert after["last_seen_at"] > before["last_seen_at"]
    assert after["client_address"] == SAFARI_IPHONE.address
    # The device is what signed in, not whatever a later event's header says.
    assert after["browser"] == before["browser"]


# --- ending sessions ---------------------------------------------------------------------------


def test_sign_out_of_another_session_ends_it_at_once(app_db: Settings) -> None:
    user = new_user()
    laptop = start_session(user, app_db, client=CHROME_LINUX)
    phone = start_session(user, app_db, client=SAFARI_IPHONE)
    for token in (laptop, phone):  # both remembered by this worker
        assert isinstance(authenticate(token, app_db), Authenticated)
    here = authenticate(laptop, app_db)
    assert isinstance(here, Authenticated)
    assert end_device_session(here, claims_of(phone, app_db).sid) is True
    assert authenticate(phone, app_db) == TokenRejected(Rejection.REVOKED)
    stays = authenticate(laptop, app_db)
    assert isinstance(stays, Authenticated) and stays.reminted  # carried to the new version
    assert claims_of(stays.token, app_db).token_version == version_of(user.id)  # type: ignore[arg-type]
    assert [r["id"] for r in rows(app_db)] == [claims_of(laptop, app_db).sid]


def test_sign_out_never_reaches_another_user_or_the_own_session(app_db: Settings) -> None:
    ada, bob = new_user(), new_user("bob@example.com")
    adas = start_session(ada, app_db)
    bobs = start_session(bob, app_db)
    here = authenticate(adas, app_db)
    assert isinstance(here, Authenticated)
    before = (rows(app_db), version_of(ada.id), version_of(bob.id))  # type: ignore[arg-type]
    for crafted in (
        claims_of(bobs, app_db).sid,  # another user's session
        here.session_id,  # the caller's own (that is "Log out")
        "0" * 32,  # nobody's
        "../" * 10,
        "A" * 32,
        "f" * 65,
        None,
        32,
        ["x"],
    ):
        assert end_device_session(here, crafted) is False
    assert (rows(app_db), version_of(ada.id), version_of(bob.id)) == before  # type: ignore[arg-type]
    assert isinstance(authenticate(bobs, app_db), Authenticated)


def test_end_other_sessions_keeps_the_one_named(app_db: Settings) -> None:
    user = new_user()
    tokens = [start_session(user, app_db) for _ in range(3)]
    keep = claims_of(tokens[0], app_db).session_id
    assert end_other_sessions(user.id, keep=keep) == 2  # type: ignore[arg-type]
    assert [authenticate(t, app_db) for t in tokens[1:]] == [TokenRejected(Rejection.REVOKED)] * 2
    kept = authenticate(tokens[0], app_db)
    assert isinstance(kept, Authenticated) and kept.reminted
    assert claims_of(kept.token, app_db).session_id == keep
    # keep=None: every session (a reset link's browser signs in afresh afterwards).
    assert end_other_sessions(user.id, keep=None) == 1  # type: ignore[arg-type]
    assert authenticate(kept.token, app_db) == TokenRejected(Rejection.REVOKED)
    assert rows(app_db) == []


def test_revoke_sessions_ends_every_session(app_db: Settings) -> None:
    user = new_user()
    tokens = [start_session(user, app_db) for _ in range(2)]
    revoke_sessions(user.id)  # type: ignore[arg-type]
    assert [authenticate(t, app_db) for t in tokens] == [TokenRejected(Rejection.REVOKED)] * 2
    assert rows(app_db) == []


def test_deleting_the_user_deletes_their_sessions(app_db: Settings) -> None:
    user, other = new_user(), new_user("other@example.com")
    start_session(user, app_db)
    kept = start_session(other, app_db)
    delete_user(user.id)  # type: ignore[arg-type]
    assert [r["user_id"] for r in rows(app_db)] == [other.id]
    assert isinstance(authenticate(kept, app_db), Authenticated)


def test_a_session_past_its_end_is_refused(app_db: Settings) -> None:
    now = int(time.time())
    token = start_session(new_user(), app_db, now=now)
    # Ended as the row says, even though the token itself would still pass (clock skew
    # between workers, a row edited by hand).
    with get_engine(app_db.database_url).begin() as connection:
        connection.execute(sa.text("UPDATE device_sessions SET expires_at = '2000-01-01'"))
    assert authenticate(token, app_db, now=now + 1) == TokenRejected(Rejection.EXPIRED)


# --- tokens minted before sessions existed ---------------------------------------------------


def legacy_token(user: User, settings: Settings, **kwargs: object) -> str:
    """A token as the app minted it before this change: no ``sid``."""
    token = mint_session_token(user, settings, **kwargs)  # type: ignore[arg-type]
    assert "sid" not in jwt.decode(token, options={"verify_signature": False})
    return token


def test_an_old_token_is_adopted_into_a_session_once(app_db: Settings) -> None:
    user = new_user()
    old = legacy_token(user, app_db, auth_time=int(time.time()) - 3600)
    first = authenticate(old, app_db, client=SAFARI_IPHONE)
    assert isinstance(first, Authenticated)
    again = authenticate(old, app_db, client=CHROME_LINUX)  # another tab, a replay
    assert isinstance(again, Authenticated)
    [row] = rows(app_db)
    jti = claims_of(old, app_db).jti
    assert row["id"] == legacy_session_id(jti) == first.session_id
    assert (row["browser"], row["client_address"]) == ("Safari", SAFARI_IPHONE.address)
    # Its sign-in time is the old token's, and its re-mint names the adopted session.
    assert row["created_at"] < row["last_seen_at"]
    fresh = sessions.remint(first.user, first.claims, app_db)
    assert claims_of(fresh, app_db).sid == row["id"]


def test_an_old_token_signed_out_never_comes_back(app_db: Settings) -> None:
    user = new_user()
    old = legacy_token(user, app_db)
    laptop = start_session(user, app_db)
    adopted = authenticate(old, app_db)
    here = authenticate(laptop, app_db)
    assert isinstance(adopted, Authenticated) and isinstance(here, Authenticated)
    assert end_device_session(here, adopted.session_id) is True
    for _ in range(2):
        assert authenticate(old, app_db) == TokenRejected(Rejection.REVOKED)
    assert [r["id"] for r in rows(app_db)] == [here.session_id]


def test_an_old_token_never_seen_dies_with_everywhere_else(app_db: Settings) -> None:
    user = new_user()
    old = legacy_token(user, app_db)  # on a device that was not used since the upgrade
    laptop = start_session(user, app_db)
    here = authenticate(laptop, app_db)
    assert isinstance(here, Authenticated)
    end_other_sessions(user.id, keep=here.session_id)  # type: ignore[arg-type]
    assert authenticate(old, app_db) == TokenRejected(Rejection.REVOKED)
    assert [r["id"] for r in rows(app_db)] == [here.session_id]


def test_an_old_token_is_refused_after_logout_of_another_session(app_db: Settings) -> None:
    user = new_user()
    old = legacy_token(user, app_db)
    assert end_session(start_session(user, app_db), app_db) is True  # any ending moves ver
    assert authenticate(old, app_db) == TokenRejected(Rejection.REVOKED)
    assert rows(app_db) == []


def test_an_old_token_of_a_deleted_user_adopts_nothing(app_db: Settings) -> None:
    user = new_user()
    old = legacy_token(user, app_db)
    delete_user(user.id)  # type: ignore[arg-type]
    assert authenticate(old, app_db) == TokenRejected(Rejection.REVOKED)
    assert rows(app_db) == []


async def test_an_old_token_is_adopted_by_the_event_loop_check(app_db: Settings) -> None:
    old = legacy_token(new_user(), app_db)
    result = await authenticate_off_loop(old, app_db, client=CHROME_LINUX)
    assert isinstance(result, Authenticated) and not result.reminted
    assert [r["browser"] for r in rows(app_db)] == ["Chrome"]


# --- the list and pruning ---------------------------------------------------------------------


def test_the_list_shows_live_sessions_this_one_first(app_db: Settings) -> None:
    user, other = new_user(), new_user("other@example.com")
    now = int(time.time())
    phone = start_session(user, app_db, now=now - 120, client=SAFARI_IPHONE)
    laptop = start_session(user, app_db, now=now - 60, client=CHROME_LINUX)
    start_session(other, app_db)
    start_session(user, app_db, now=now - app_db.session_max_age - 1)  # long over
    here = authenticate(phone, app_db)
    assert isinstance(here, Authenticated)
    listed = signed_in_devices(here, now=now)
    assert [(d.browser, d.current) for d in listed] == [("Safari", True), ("Chrome", False)]
    assert listed[1].id == claims_of(laptop, app_db).sid
    assert listed[1].client_address == CHROME_LINUX.address
    assert listed[1].last_seen_at == pytest.approx(now - 60)


def test_a_sign_in_prunes_that_users_expired_sessions(app_db: Settings) -> None:
    user, other = new_user(), new_user("other@example.com")
    long_ago = int(time.time()) - app_db.session_max_age - 10
    start_session(user, app_db, now=long_ago)
    start_session(other, app_db, now=long_ago)
    start_session(user, app_db)
    assert sorted(r["user_id"] for r in rows(app_db)) == sorted([user.id, other.id])


def test_prune_deletes_every_expired_session_and_only_those(app_db: Settings) -> None:
    user, other = new_user(), new_user("other@example.com")
    live = start_session(other, app_db)
    long_ago = int(time.time()) - app_db.session_max_age - 10
    start_session(user, app_db, now=long_ago)
    start_session(other, app_db, now=long_ago)  # prunes nothing: nothing had expired then
    assert prune_device_sessions(sessions._at(time.time())) == 2
    assert [r["id"] for r in rows(app_db)] == [claims_of(live, app_db).sid]
    assert prune_device_sessions(sessions._at(time.time())) == 0


def test_the_prune_sessions_command(app_db: Settings, capsys: pytest.CaptureFixture[str]) -> None:
    from onboard_app import cli

    user = new_user()
    start_session(user, app_db, now=int(time.time()) - app_db.session_max_age - 10)
    live = start_session(new_user("other@example.com"), app_db)
    assert cli.main(["prune-sessions"]) == 0
    assert "deleted 1 expired session(s)" in capsys.readouterr().out
    assert [r["id"] for r in rows(app_db)] == [claims_of(live, app_db).sid]


# --- the migration ----------------------------------------------------------------------------


def test_the_migration_matches_the_model(db_url: str) -> None:
    with get_engine(db_url).connect() as connection:
        diffs = compare_metadata(MigrationContext.configure(connection), SQLModel.metadata)
    assert [d for d in diffs if "device_sessions" in repr(d)] == []


def test_the_migration_goes_down_and_up(db_url: str) -> None:
    revision = db._alembic()[1].get_revision(MIGRATION)
    assert revision is not None and revision.down_revision == "d6d33befc5d2"
    migrate(db_url, revision.down_revision)
    assert "device_sessions" not in sa.inspect(get_engine(db_url)).get_table_names()
    migrate(db_url, "head")
    assert "device_sessions" in sa.inspect(get_engine(db_url)).get_table_names()


# --- on PostgreSQL too, and at once ----------------------------------------------------------


def test_the_life_of_sessions_on_each_database(any_db: Settings) -> None:
    user = new_user()
    laptop = start_session(user, any_db, client=CHROME_LINUX)
    phone = start_session(user, any_db, client=SAFARI_IPHONE)
    old = legacy_token(user, any_db)
    here = authenticate(laptop, any_db)
    assert isinstance(here, Authenticated)
    assert isinstance(authenticate(old, any_db, client=CHROME_LINUX), Authenticated)
    assert len(rows(any_db)) == 3
    assert [d.current for d in signed_in_devices(here)] == [True, False, False]
    assert end_device_session(here, claims_of(phone, any_db).sid) is True
    assert authenticate(phone, any_db) == TokenRejected(Rejection.REVOKED)
    assert end_other_sessions(user.id, keep=here.session_id) == 1  # type: ignore[arg-type]
    assert authenticate(old, any_db) == TokenRejected(Rejection.REVOKED)
    stays = authenticate(laptop, any_db, now=int(time.time()) + LAST_SEEN_INTERVAL)
    assert isinstance(stays, Authenticated) and stays.reminted
    assert [r["id"] for r in rows(any_db)] == [here.session_id]
    assert prune_device_sessions(sessions._at(time.time() + 10 * 86400)) == 1


def test_an_old_token_checked_by_many_at_once_is_one_session(any_db: Settings) -> None:
    old = legacy_token(new_user(), any_db)
    results = all_at_once([lambda: authenticate(old, any_db) for _ in range(6)])
    assert all(isinstance(r, Authenticated) for r in results)
    assert len(rows(any_db)) == 1


def test_sign_ins_while_everywhere_else_runs_are_ended_or_kept_never_half(
    any_db: Settings,
) -> None:
    user = new_user()
    here = authenticate(start_session(user, any_db), any_db)
    assert isinstance(here, Authenticated)
    ending = [lambda: end_other_sessions(user.id, keep=here.session_id)] * 2  # type: ignore[arg-type]
    signing_in = [lambda: start_session(user, any_db)] * 4
    results = all_at_once([*ending, *signing_in])
    tokens = [r for r in results if isinstance(r, str)]
    assert len(tokens) == 4
    # Each new session either was ended (refused) or came after and is fully valid; every
    # row left is one the check accepts (none is stuck at an older version).
    live = {r["id"] for r in rows(any_db)}
    for token in tokens:
        result = authenticate(token, any_db)
        assert isinstance(result, Authenticated) == (claims_of(token, any_db).sid in live)
    assert isinstance(authenticate(here.token, any_db), Authenticated)
    version = version_of(user.id)  # type: ignore[arg-type]
    assert {r["token_version"] for r in rows(any_db)} == {version}
