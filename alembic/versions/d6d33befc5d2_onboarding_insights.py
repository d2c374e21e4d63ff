"""onboarding insights: events, progress, daily and monthly counts; users.role

Revision ID: d6d33befc5d2
Revises: 47ef2bb8b11e
Create Date: 2026-12-01 11:00:00

"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa
import sqlmodel

# revision identifiers, used by Alembic.
revision: str = 'd6d33befc5d2'
down_revision: Union[str, Sequence[str], None] = '47ef2bb8b11e'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None

_UNFINISHED = sa.text("step <> 'completed'")


def upgrade() -> None:
    """Upgrade schema."""
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                'role',
                sqlmodel.sql.sqltypes.AutoString(length=20),
                nullable=False,
                server_default='member',
            )
        )
    op.create_table(
        'onboarding_events',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('user_id', sa.Integer(), nullable=False),
        sa.Column('kind', sqlmodel.sql.sqltypes.AutoString(length=10), nullable=False),
        sa.Column('step', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
        sa.Column('flow_version', sa.Integer(), nullable=False),
        sa.Column('method', sqlmodel.sql.sqltypes.AutoString(length=10), nullable=False),
        sa.Column('at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(['user_id'], ['users.id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_index('ix_onboarding_events_user_id', 'onboarding_events', ['user_id'])
    op.create_index('ix_onboarding_events_at', 'onboarding_events', ['at'])
    op.create_table(
        'onboarding_progress',
        sa.Column('user_id', sa.Integer(), nullable=False),
        sa.Column('step', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
        sa.Column('since', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column('flow_version', sa.Integer(), nullable=False),
        sa.Column('method', sqlmodel.sql.sqltypes.AutoString(length=10), nullable=False),
        sa.Column('signed_up_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column('journey', sa.JSON(), nullable=False, server_default='{}'),
        sa.ForeignKeyConstraint(['user_id'], ['users.id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('user_id'),
    )
    op.create_index(
        'ix_onboarding_progress_stuck',
        'onboarding_progress',
        ['since', 'signed_up_at', 'method', 'flow_version', 'step'],
        sqlite_where=_UNFINISHED,
        postgresql_where=_UNFINISHED,
    )
    op.create_index(
        'ix_onboarding_progress_signed_up',
        'onboarding_progress',
        ['signed_up_at', 'since', 'method', 'flow_version', 'step'],
        sqlite_where=_UNFINISHED,
        postgresql_where=_UNFINISHED,
    )
    op.create_table(
        'onboarding_counts',
        sa.Column('measure', sqlmodel.sql.sqltypes.AutoString(length=10), nullable=False),
        sa.Column('period', sqlmodel.sql.sqltypes.AutoString(length=5), nullable=False),
        sa.Column('cohort_day', sa.Date(), nullable=False),
        sa.Column('method', sqlmodel.sql.sqltypes.AutoString(length=10), nullable=False),
        sa.Column('flow_version', sa.Integer(), nullable=False),
        sa.Column('step', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
        sa.Column('bucket', sa.Integer(), nullable=False),
        sa.Column('users', sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint(
            'measure', 'period', 'cohort_day', 'method', 'flow_version', 'step', 'bucket'
        ),
    )
    # Users who signed up before events existed: where they are now, since their last
    # change (their history before this release is unknown, so no counts).
    op.execute(
        "INSERT INTO onboarding_progress "
        "(user_id, step, since, flow_version, method, signed_up_at) "
        "SELECT id, onboarding_step, "
        "CASE WHEN onboarding_step = 'completed' "
        "THEN COALESCE(onboarding_completed_at, updated_at) ELSE updated_at END, "
        "CASE WHEN flow_version > 0 THEN flow_version ELSE 1 END, "
        "CASE WHEN password_hash IS NOT NULL THEN 'password' "
        "WHEN github_id IS NOT NULL THEN 'github' "
        "WHEN oidc_subject IS NOT NULL THEN 'oidc' ELSE 'password' END, "
        "created_at FROM users"
    )


def downgrade() -> None:
    """Downgrade schema."""
    op.drop_table('onboarding_counts')
    op.drop_index('ix_onboarding_progress_signed_up', table_name='onboarding_progress')
    op.drop_index('ix_onboarding_progress_stuck', table_name='onboarding_progress')
    op.drop_table('onboarding_progress')
    op.drop_index('ix_onboarding_events_at', table_name='onboarding_events')
    op.drop_index('ix_onboarding_events_user_id', table_name='onboarding_events')
    op.drop_table('onboarding_events')
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.drop_column('role')
