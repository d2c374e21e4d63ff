"""email verification: users.email_verified_at

Revision ID: 47ef2bb8b11e
Revises: b7c1e2d3f4a5
Create Date: 2026-12-01 10:05:00

"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa
import sqlmodel

# revision identifiers, used by Alembic.
revision: str = '47ef2bb8b11e'
down_revision: Union[str, Sequence[str], None] = 'b7c1e2d3f4a5'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    """Upgrade schema."""
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.add_column(
            sa.Column('email_verified_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True)
        )
    # A provider account's address was kept only when the provider said it is verified
    # (services/oauth.py). Password accounts made before this change stay unverified: they
    # are asked to confirm their address at their next sign-in, and keep everything else.
    op.execute(
        "UPDATE users SET email_verified_at = created_at "
        "WHERE password_hash IS NULL AND email IS NOT NULL"
    )


def downgrade() -> None:
    """Downgrade schema."""
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.drop_column('email_verified_at')
