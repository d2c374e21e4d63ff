"""sessions per device: device_sessions

Revision ID: e19324301014
Revises: d6d33befc5d2
Create Date: 2026-12-02 09:00:00

"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa
import sqlmodel

# revision identifiers, used by Alembic.
revision: str = 'e19324301014'
down_revision: Union[str, Sequence[str], None] = 'd6d33befc5d2'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    """Upgrade schema."""
    # Tokens minted before this table have no sid claim: the session check adopts each one
    # into a row the first time it is presented (services/sessions.py), so nobody is
    # signed out by the upgrade.
    op.create_table(
        'device_sessions',
        sa.Column('id', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column('user_id', sa.Integer(), nullable=False),
        sa.Column('token_version', sa.Integer(), nullable=False),
        sa.Column('created_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column('last_seen_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column('expires_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column('client_address', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column('browser', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
        sa.Column('system', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
        sa.Column('device', sqlmodel.sql.sqltypes.AutoString(length=60), nullable=False),
        sa.Column('form_factor', sqlmodel.sql.sqltypes.AutoString(length=10), nullable=False),
        sa.ForeignKeyConstraint(['user_id'], ['users.id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_index('ix_device_sessions_user_id', 'device_sessions', ['user_id'])
    op.create_index('ix_device_sessions_expires_at', 'device_sessions', ['expires_at'])


def downgrade() -> None:
    """Downgrade schema."""
    op.drop_index('ix_device_sessions_expires_at', table_name='device_sessions')
    op.drop_index('ix_device_sessions_user_id', table_name='device_sessions')
    op.drop_table('device_sessions')
