"""throttle: pending attempts, so in-flight logins are capped without locking

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23 22:20:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("login_throttle") as batch_op:
        batch_op.add_column(
            sa.Column("pending", sa.Integer(), nullable=False, server_default="0")
        )
        batch_op.add_column(sa.Column("claim", sa.String(length=32), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("login_throttle") as batch_op:
        batch_op.drop_column("claim")
        batch_op.drop_column("pending")
