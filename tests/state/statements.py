"""What an event costs the database: its SQL statements, transactions and thread hops.

:func:`database_work` listens on the app's engine (``services/db.py``) for the block's
statements (SQLAlchemy's ``before_cursor_execute``, the same cursor events the load
bench's trace counts), the transactions begun, committed and rolled back on it, and
counts the calls to ``asyncio.to_thread`` (each a hop to a worker thread and back). A
handler called through :meth:`Client.call <tests.state.harness.Client.call>` is measured
with the gate's session check, as the bench's per-event breakdown measures it.

A connection in autocommit (the session check's read engine on PostgreSQL) sends no
``BEGIN``: what it runs is counted as statements, not as a transaction.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import sqlalchemy as sa

from onboard_app.services.db import get_engine


class Cost(NamedTuple):
    """What one event cost the database (what a test pins)."""

    statements: int
    transactions: int
    commits: int
    thread_hops: int


@dataclass
class DatabaseWork:
    """What a block asked of the database.

    Attributes:
        statements: The SQL of every statement, in order.
        transactions: Transactions begun (a connection in autocommit begins none).
        commits: Transactions committed.
        rollbacks: Transactions rolled back (a read-only one ends so on SQLite).
        thread_hops: Calls to ``asyncio.to_thread``.
    """

    statements: list[str] = field(default_factory=list)
    transactions: int = 0
    commits: int = 0
    rollbacks: int = 0
    thread_hops: int = 0

    def cost(self) -> Cost:
        """The numbers a test pins: statements, transactions, commits and thread hops."""
        return Cost(len(self.statements), self.transactions, self.commits, self.thread_hops)

    def listing(self) -> str:
        """The statements, one per line (shortened), for an assertion's message."""
        return "\n".join(" ".join(s.split())[:160] for s in self.statements)


def _autocommit(connection: sa.Connection) -> bool:
    return connection.get_execution_options().get("isolation_level") == "AUTOCOMMIT"


@contextmanager
def database_work(url: str) -> Iterator[DatabaseWork]:
    """Count the statements, transactions and thread hops of the block.

    Args:
        url: The database URL whose engine the app uses.

    Yields:
        The counts, filled in as the block runs.
    """
    work = DatabaseWork()
    engine = get_engine(url)

    def statement(_conn: Any, _cursor: Any, sql: str, *_args: Any) -> None:
        work.statements.append(sql)

    def begin(connection: sa.Connection) -> None:
        if not _autocommit(connection):
            work.transactions += 1

    def commit(connection: sa.Connection) -> None:
        if not _autocommit(connection):
            work.commits += 1

    def rollback(connection: sa.Connection) -> None:
        if not _autocommit(connection):
            work.rollbacks += 1

    to_thread = asyncio.to_thread

    async def counted_to_thread(func: Any, /, *args: Any, **kwargs: Any) -> Any:
        work.thread_hops += 1
        return await to_thread(func, *args, **kwargs)

    listeners = (
        ("before_cursor_execute", statement),
        ("begin", begin),
        ("commit", commit),
        ("rollback", rollback),
    )
    for name, listener in listeners:
        sa.event.listen(engine, name, listener)
    asyncio.to_thread = counted_to_thread  # type: ignore[assignment]
    try:
        yield work
    finally:
        asyncio.to_thread = to_thread
        for name, listener in listeners:
            sa.event.remove(engine, name, listener)
