"""Alembic environment for plain ``alembic`` commands.

``reflex db ...`` and the app's own start-up (``onboard_app.services.db.upgrade_to_head``)
run the same scripts without this file; it is here so ``alembic upgrade head`` works too,
against ``ONBOARD_DATABASE_URL``.
"""

from sqlmodel import SQLModel

import onboard_app.models  # noqa: F401  (registers the tables on SQLModel.metadata)
from alembic import context
from onboard_app.services.db import get_engine

target_metadata = SQLModel.metadata


def run_migrations_offline() -> None:
    """Emit SQL without a connection."""
    context.configure(
        url=str(get_engine().url), target_metadata=target_metadata, literal_binds=True
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    """Run against the configured database."""
    with get_engine().connect() as connection:
        context.configure(
            connection=connection, target_metadata=target_metadata, render_as_batch=True
        )
        with context.begin_transaction():
            context.run_migrations()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
