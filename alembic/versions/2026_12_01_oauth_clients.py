"""OAuth clients, client roles, personal access tokens; sessions bound to a client;
the clients, introspection and OpenID Connect scopes

Revision ID: 0004
Revises: 0002
Create Date: 2026-12-01 09:00:00
"""

from collections.abc import Sequence
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

NEW_SCOPES = {
    "clients:read": "List and read OAuth clients",
    "clients:write": "Register, change and delete OAuth clients; rotate their secrets",
    "tokens:introspect": "Call the token introspection endpoint (resource servers)",
    "openid": "OpenID Connect: an ID token",
    "profile": "OpenID Connect: the account's username",
    "email": "OpenID Connect: the account's email address",
}
# The OpenID Connect scopes are identity requests, not permissions: no role holds them.
NEW_ADMIN_SCOPES = ["clients:read", "clients:write", "tokens:introspect"]


def upgrade() -> None:
    op.create_table(
        "oauth_client",
        sa.Column("client_id", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("type", sa.String(length=16), nullable=False),
        sa.Column("redirect_uris", sa.JSON(), nullable=False),
        sa.Column("grant_types", sa.JSON(), nullable=False),
        sa.Column("allowed_scopes", sa.JSON(), nullable=False),
        sa.Column("first_party", sa.Boolean(), nullable=False),
        sa.Column("is_active", sa.Boolean(), nullable=False),
        sa.Column("builtin", sa.Boolean(), nullable=False),
        sa.Column("authz_version", sa.Integer(), nullable=False),
        sa.Column("secret_hash", sa.String(length=64), nullable=True),
        sa.Column("previous_secret_hash", sa.String(length=64), nullable=True),
        sa.Column("previous_secret_expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("client_id", name=op.f("pk_oauth_client")),
    )
    op.create_table(
        "client_role",
        sa.Column("client_id", sa.String(length=64), nullable=False),
        sa.Column("role_name", sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(
            ["client_id"],
            ["oauth_client.client_id"],
            name=op.f("fk_client_role_client_id_oauth_client"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["role_name"],
            ["role.name"],
            name=op.f("fk_client_role_role_name_role"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("client_id", "role_name", name=op.f("pk_client_role")),
    )
    with op.batch_alter_table("client_role", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_client_role_role_name"), ["role_name"], unique=False)

    op.create_table(
        "personal_access_token",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("account_id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("scope", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_used_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["account.id"],
            name=op.f("fk_personal_access_token_account_id_account"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_personal_access_token")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_personal_access_token_token_hash")),
    )
    with op.batch_alter_table("personal_access_token", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_personal_access_token_account_id"), ["account_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_personal_access_token_expires_at"), ["expires_at"], unique=False
        )

    # The built-in public client. Its redirect URI follows GATEHOUSE_ISSUER, which
    # the database does not know: the service adds it when it reads the client.
    now = datetime.now(UTC)
    if op.get_bind().dialect.name == "sqlite":
        now = now.replace(tzinfo=None)
    client_table = sa.table(
        "oauth_client",
        sa.column("client_id", sa.String),
        sa.column("name", sa.String),
        sa.column("type", sa.String),
        sa.column("redirect_uris", sa.JSON),
        sa.column("grant_types", sa.JSON),
        sa.column("allowed_scopes", sa.JSON),
        sa.column("first_party", sa.Boolean),
        sa.column("is_active", sa.Boolean),
        sa.column("builtin", sa.Boolean),
        sa.column("authz_version", sa.Integer),
        sa.column("created_at", sa.DateTime(timezone=True)),
        sa.column("updated_at", sa.DateTime(timezone=True)),
    )
    op.bulk_insert(
        client_table,
        [
            {
                "client_id": "gatehouse",
                "name": "Gatehouse",
                "type": "public",
                "redirect_uris": [],
                "grant_types": ["password", "refresh_token", "authorization_code"],
                "allowed_scopes": [],
                "first_party": True,
                "is_active": True,
                "builtin": True,
                "authz_version": 1,
                "created_at": now,
                "updated_at": now,
            }
        ],
    )

    # Sessions so far were all opened through the built-in client.
    with op.batch_alter_table("auth_session", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "client_id", sa.String(length=64), nullable=False, server_default="gatehouse"
            )
        )
    with op.batch_alter_table("auth_session", schema=None) as batch_op:
        batch_op.alter_column("client_id", server_default=None)
        batch_op.create_index(batch_op.f("ix_auth_session_client_id"), ["client_id"], unique=False)
        batch_op.create_foreign_key(
            batch_op.f("fk_auth_session_client_id_oauth_client"),
            "oauth_client",
            ["client_id"],
            ["client_id"],
            ondelete="CASCADE",
        )

    scope_table = sa.table(
        "scope", sa.column("name"), sa.column("description"), sa.column("builtin")
    )
    role_scope_table = sa.table("role_scope", sa.column("role_name"), sa.column("scope_name"))
    op.bulk_insert(
        scope_table,
        [{"name": n, "description": d, "builtin": True} for n, d in NEW_SCOPES.items()],
    )
    op.bulk_insert(
        role_scope_table, [{"role_name": "admin", "scope_name": s} for s in NEW_ADMIN_SCOPES]
    )


def downgrade() -> None:
    names = ", ".join(f"'{name}'" for name in NEW_SCOPES)
    op.execute(f"DELETE FROM role_scope WHERE scope_name IN ({names})")  # noqa: S608
    op.execute(f"DELETE FROM scope WHERE name IN ({names})")  # noqa: S608
    with op.batch_alter_table("auth_session", schema=None) as batch_op:
        batch_op.drop_constraint(
            batch_op.f("fk_auth_session_client_id_oauth_client"), type_="foreignkey"
        )
        batch_op.drop_index(batch_op.f("ix_auth_session_client_id"))
        batch_op.drop_column("client_id")
    with op.batch_alter_table("personal_access_token", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_personal_access_token_expires_at"))
        batch_op.drop_index(batch_op.f("ix_personal_access_token_account_id"))
    op.drop_table("personal_access_token")
    with op.batch_alter_table("client_role", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_client_role_role_name"))
    op.drop_table("client_role")
    op.drop_table("oauth_client")
