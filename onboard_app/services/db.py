"""Database engine and schema: one engine per URL, migrations applied through alembic.

The migration scripts live in ``alembic/versions`` (where ``reflex db makemigrations`` writes
them); :func:`upgrade_to_head` applies them to any URL without Reflex, so the app start,
``make run`` and every test use the same path to the current schema.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from alembic.config import Config
from alembic.runtime.environment import EnvironmentContext
from alembic.script import ScriptDirectory
from sqlmodel import Session

from onboard_app.settings import PROJECT_ROOT, get_settings

ALEMBIC_INI = PROJECT_ROOT / "alembic.ini"
ALEMBIC_DIR = PROJECT_ROOT / "alembic"

_engines: dict[str, sa.Engine] = {}
_read_engines: dict[str, sa.Engine] = {}
_lock = threading.Lock()


def _on_sqlite_connect(dbapi_connection, _record) -> None:  # type: ignore[no-untyped-def]
    cursor = dbapi_connection.cursor()
    # WAL lets readers run beside the single writer; busy_timeout waits for a lock
    # instead of failing at once; foreign keys are off by default in SQLite.
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=5000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def get_engine(url: str | None = None) -> sa.Engine:
    """The shared engine for a database URL (the configured one by default).

    Args:
        url: SQLAlchemy URL; ``None`` for the settings' database.

    Returns:
        A pooled engine, created once per URL and process.
    """
    url = url or get_settings().database_url
    engine = _engines.get(url)
    if engine is not None:
        return engine
    with _lock:
        engine = _engines.get(url)
        if engine is None:
            if url.startswith("sqlite"):
                engine = sa.create_engine(url, connect_args={"check_same_thread": False})
                sa.event.listen(engine, "connect", _on_sqlite_connect)
            else:
                engine = sa.create_engine(url, pool_size=10, max_overflow=20, pool_use_lifo=True)
                _ping_when_idle(engine)
            _engines[url] = engine
    return engine


#: A pooled connection unused for this long is pinged before it is handed out.
IDLE_PING_SECONDS = 10.0


def _ping_when_idle(engine: sa.Engine) -> None:
    """Ping a pooled connection on checkout only when it sat unused for a while.

    ``pool_pre_ping`` pings on every checkout: a database round trip per transaction, the
    per-event session check's included, although a connection the pool handed out a moment
    ago just worked. A connection idle for ``IDLE_PING_SECONDS`` or more (the server may
    have restarted, or dropped it) is pinged, and replaced if the ping fails. The pool
    hands out the most recently used connection first (LIFO), so under load the same few
    stay in use and the spare ones idle. A connection that breaks between two uses fails
    its statement, and SQLAlchemy then replaces every connection of the pool that is as
    old (a database restart costs each worker at most the event that met it first).
    """

    def checkin(_dbapi_connection: Any, record: Any) -> None:
        record.info["checked_in"] = time.monotonic()

    def checkout(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        returned = record.info.get("checked_in")
        if returned is None or time.monotonic() - returned < IDLE_PING_SECONDS:
            return
        try:
            engine.dialect.do_ping(dbapi_connection)
        except engine.dialect.loaded_dbapi.Error as exc:
            raise sa.exc.DisconnectionError from exc  # the pool takes a new connection

    sa.event.listen(engine, "checkin", checkin)
    sa.event.listen(engine, "checkout", checkout)


def get_read_engine(url: str | None = None) -> sa.Engine:
    """The engine for one-statement reads (the session check on every event).

    A single SELECT is atomic on its own, so on PostgreSQL it runs in autocommit: no
    BEGIN before it and no ROLLBACK when the pool takes the connection back, two round
    trips saved per read. It shares the pool of :func:`get_engine`. SQLite keeps the
    plain engine: pysqlite pays more to switch modes than the local transaction costs.

    Args:
        url: SQLAlchemy URL; ``None`` for the settings' database.

    Returns:
        The engine to read with.
    """
    url = url or get_settings().database_url
    engine = _read_engines.get(url)
    if engine is None:
        base = get_engine(url)
        if base.url.get_backend_name() == "sqlite":
            engine = base
        else:
            engine = base.execution_options(isolation_level="AUTOCOMMIT")
        _read_engines[url] = engine
    return engine


def _forget_inherited_connections() -> None:
    """In a forked child: drop the parent's pooled connections without closing them.

    The app migrates (and so connects) at import, before the server forks its workers. A
    pooled connection inherited by two workers is one socket used by two processes:
    PostgreSQL sees interleaved protocol messages ("unexpected result EMPTY_QUERY from
    command 'BEGIN'") and SQLite forbids carrying a connection across fork. Each child
    starts with empty pools instead; ``close=False`` leaves the parent's sockets alone.
    """
    global _lock
    _lock = threading.Lock()
    for engine in _engines.values():
        engine.dispose(close=False)


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_inherited_connections)


def dispose_engine(url: str) -> None:
    """Close and forget the engine of a URL (tests that drop their database).

    Args:
        url: The SQLAlchemy URL.
    """
    with _lock:
        engine = _engines.pop(url, None)
        _read_engines.pop(url, None)
    if engine is not None:
        engine.dispose()


@contextmanager
def session_scope(url: str | None = None) -> Iterator[Session]:
    """A session that commits on success and rolls back on any error.

    Args:
        url: SQLAlchemy URL; ``None`` for the settings' database.

    Yields:
        An open SQLModel session.
    """
    with Session(get_engine(url), expire_on_commit=False) as session:
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise


def _alembic() -> tuple[Config, ScriptDirectory]:
    config = Config(str(ALEMBIC_INI))
    config.set_main_option("script_location", str(ALEMBIC_DIR))
    return config, ScriptDirectory.from_config(config)


def upgrade_to_head(url: str | None = None) -> None:
    """Bring a database to the newest migration (idempotent).

    Args:
        url: SQLAlchemy URL; ``None`` for the settings' database.
    """
    engine = get_engine(url)
    if engine.url.get_backend_name() == "sqlite" and engine.url.database:
        Path(engine.url.database).parent.mkdir(parents=True, exist_ok=True)
    config, script = _alembic()

    def run_upgrade(rev, _context):  # type: ignore[no-untyped-def]
        return script._upgrade_revs("head", rev)

    with engine.connect() as connection:
        with EnvironmentContext(config, script, fn=run_upgrade) as env:
            env.configure(connection=connection, render_as_batch=True)
            with env.begin_transaction():
                env.run_migrations()
        connection.commit()


def current_revision(url: str | None = None) -> str | None:
    """The migration revision a database is at, or ``None`` if it has none."""
    from alembic.runtime.migration import MigrationContext

    with get_engine(url).connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def head_revision() -> str | None:
    """The newest migration revision shipped with the code."""
    return _alembic()[1].get_current_head()
