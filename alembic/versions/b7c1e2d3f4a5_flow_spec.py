"""flow spec: completed flow version, answers of fields without a column, skipped steps

Revision ID: b7c1e2d3f4a5
Revises: 6377b5644072
Create Date: 2026-12-01 09:20:00

"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa

# revision identifiers, used by Alembic.
revision: str = 'b7c1e2d3f4a5'
down_revision: Union[str, Sequence[str], None] = '6377b5644072'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    """Upgrade schema."""
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.add_column(
            sa.Column('flow_version', sa.Integer(), nullable=False, server_default='0')
        )
    with op.batch_alter_table('onboarding_answers', schema=None) as batch_op:
        batch_op.add_column(sa.Column('data', sa.JSON(), nullable=False, server_default='{}'))
        batch_op.add_column(sa.Column('skipped', sa.JSON(), nullable=False, server_default='[]'))
    # Everyone who completed onboarding before versions existed completed version 1.
    op.execute("UPDATE users SET flow_version = 1 WHERE onboarding_step = 'completed'")


def downgrade() -> None:
    """Downgrade schema."""
    with op.batch_alter_table('onboarding_answers', schema=None) as batch_op:
        batch_op.drop_column('skipped')
        batch_op.drop_column('data')
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.drop_column('flow_version')
