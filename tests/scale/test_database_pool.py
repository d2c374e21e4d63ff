"""The PostgreSQL pool: a connection is pinged only after it sat idle; a dead one is replaced.

Against the machine's PostgreSQL, in a throwaway database whose connections the test has
the server drop (``pg_terminate_backend``, as a restart or an idle timeout would).
"""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pytest
import sqlalchemy as sa

from onboard_app.services import db
from tests.scale.infra import PG_ADMIN_DSN, throwaway_postgres


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A throwaway PostgreSQL database."""
    with throwaway_postgres() as url:
        yield url


@pytest.fixture
def pings(pg_url: str, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Every ping the pool of ``pg_url`` makes, counted."""
    dialect = db.get_engine(pg_url).dialect
    seen: list[int] = []
    ping = dialect.do_ping

    def counted(dbapi_connection: object) -> bool:
        seen.append(1)
        return ping(dbapi_connection)

    monkeypatch.setattr(dialect, "do_ping", counted)
    return seen


def select_one(url: str) -> object:
    """One read, as the per-event session check makes it."""
    with db.get_read_engine(url).connect() as connection:
        return connection.execute(sa.text("SELECT 1")).scalar()


def drop_connections(url: str) -> None:
    """The server ends every connection to the database (a restart would)."""
    with psycopg.connect(PG_ADMIN_DSN, autocommit=True) as admin:
        admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE datname = %s AND pid <> pg_backend_pid()",
            (sa.make_url(url).database,),
        )


def test_connections_in_use_are_not_pinged(pg_url: str, pings: list[int]) -> None:
    for _ in range(20):
        assert select_one(pg_url) == 1
        with db.session_scope(pg_url) as session:
            session.execute(sa.text("SELECT 1"))
    assert pings == []


def test_an_idle_connection_the_server_dropped_is_replaced_before_it_is_used(
    pg_url: str, pings: list[int], monkeypatch: pytest.MonkeyPatch
) -> None:
    assert select_one(pg_url) == 1
    drop_connections(pg_url)
    monkeypatch.setattr(db, "IDLE_PING_SECONDS", 0.0)  # as if it had idled 10 s
    assert select_one(pg_url) == 1
    assert pings == [1]  # the dropped one, found dead and replaced by a new one
    with db.session_scope(pg_url) as session:
        assert session.execute(sa.text("SELECT 2")).scalar() == 2


def test_a_connection_dropped_between_two_uses_fails_one_statement_then_the_pool_is_new(
    pg_url: str, pings: list[int]
) -> None:
    assert select_one(pg_url) == 1
    with db.session_scope(pg_url) as session:  # a second pooled connection
        session.execute(sa.text("SELECT 1"))
    drop_connections(pg_url)
    with pytest.raises(sa.exc.OperationalError) as failed:
        select_one(pg_url)
    assert failed.value.connection_invalidated
    # SQLAlchemy replaced every connection as old: the next read and write work.
    assert select_one(pg_url) == 1
    with db.session_scope(pg_url) as session:
        assert session.execute(sa.text("SELECT 2")).scalar() == 2
    assert pings == []
