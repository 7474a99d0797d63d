"""metrics:read: the built-in scope that lets Prometheus scrape GET /metrics,
held by the admin role (which carries every built-in permission scope)

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01 12:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SCOPE = "metrics:read"
DESCRIPTION = "Scrape GET /metrics (Prometheus)"

scope_table = sa.table("scope", sa.column("name"), sa.column("description"), sa.column("builtin"))
role_scope_table = sa.table("role_scope", sa.column("role_name"), sa.column("scope_name"))


def upgrade() -> None:
    bind = op.get_bind()
    exists = bind.execute(sa.select(scope_table.c.name).where(scope_table.c.name == SCOPE)).first()
    if exists:
        # An admin had made a custom scope of that name: it becomes the built-in
        # one, keeping the roles that carry it.
        op.execute(
            scope_table.update()
            .where(scope_table.c.name == SCOPE)
            .values(description=DESCRIPTION, builtin=True)
        )
    else:
        op.bulk_insert(scope_table, [{"name": SCOPE, "description": DESCRIPTION, "builtin": True}])
    held = bind.execute(
        sa.select(role_scope_table.c.role_name).where(
            role_scope_table.c.role_name == "admin", role_scope_table.c.scope_name == SCOPE
        )
    ).first()
    if not held:
        op.bulk_insert(role_scope_table, [{"role_name": "admin", "scope_name": SCOPE}])


def downgrade() -> None:
    op.execute(role_scope_table.delete().where(role_scope_table.c.scope_name == SCOPE))
    op.execute(scope_table.delete().where(scope_table.c.name == SCOPE))
