"""initial schema

Revision ID: 0001
Revises:
Create Date: 2026-11-23 21:28:20.054705
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


BUILTIN_SCOPES = {
    "me:read": "Read own account and own sessions",
    "me:write": "Change own password and email, end own sessions",
    "accounts:read": "List and read any account",
    "accounts:write": "Create, enable, disable and delete accounts",
    "roles:read": "List roles and the scope catalogue",
    "roles:write": "Create, change and delete roles and custom scopes; assign roles",
    "audit:read": "Read the audit log",
}
BUILTIN_ROLES = {
    "user": ("Every signed-up account", ["me:read", "me:write"]),
    "admin": ("Administers accounts, roles and scopes", list(BUILTIN_SCOPES)),
}


def upgrade() -> None:
    op.create_table(
        "account",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("username", sa.String(length=64), nullable=False),
        sa.Column("username_key", sa.String(length=64), nullable=False),
        sa.Column("email", sa.String(length=254), nullable=True),
        sa.Column("email_key", sa.String(length=254), nullable=True),
        sa.Column("password_hash", sa.String(length=255), nullable=False),
        sa.Column("is_active", sa.Boolean(), nullable=False),
        sa.Column("authz_version", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_account")),
        sa.UniqueConstraint("email_key", name=op.f("uq_account_email_key")),
        sa.UniqueConstraint("username_key", name=op.f("uq_account_username_key")),
    )
    with op.batch_alter_table("account", schema=None) as batch_op:
        batch_op.create_index(
            "ix_account_username_key_pattern",
            ["username_key"],
            unique=False,
            postgresql_ops={"username_key": "text_pattern_ops"},
        )

    op.create_table(
        "audit_event",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor_id", sa.Uuid(), nullable=True),
        sa.Column("action", sa.String(length=64), nullable=False),
        sa.Column("target", sa.String(length=255), nullable=True),
        sa.Column("ip", sa.String(length=64), nullable=True),
        sa.Column("detail", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_event")),
    )
    with op.batch_alter_table("audit_event", schema=None) as batch_op:
        batch_op.create_index(
            "ix_audit_event_action_id", ["action", "id"], unique=False
        )
        batch_op.create_index(
            "ix_audit_event_actor_id_id", ["actor_id", "id"], unique=False
        )

    op.create_table(
        "login_throttle",
        sa.Column("key", sa.String(length=160), nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("window_started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("locked_until", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_login_throttle")),
    )
    with op.batch_alter_table("login_throttle", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_login_throttle_locked_until"), ["locked_until"], unique=False
        )

    op.create_table(
        "role",
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("description", sa.String(length=255), nullable=False),
        sa.Column("builtin", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_role")),
    )
    op.create_table(
        "scope",
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("description", sa.String(length=255), nullable=False),
        sa.Column("builtin", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_scope")),
    )
    op.create_table(
        "signing_key",
        sa.Column("kid", sa.String(length=64), nullable=False),
        sa.Column("alg", sa.String(length=16), nullable=False),
        sa.Column("private_key", sa.Text(), nullable=False),
        sa.Column("public_jwk", sa.JSON(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("retire_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("kid", name=op.f("pk_signing_key")),
    )
    op.create_table(
        "account_role",
        sa.Column("account_id", sa.Uuid(), nullable=False),
        sa.Column("role_name", sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["account.id"],
            name=op.f("fk_account_role_account_id_account"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["role_name"],
            ["role.name"],
            name=op.f("fk_account_role_role_name_role"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "account_id", "role_name", name=op.f("pk_account_role")
        ),
    )
    with op.batch_alter_table("account_role", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_account_role_role_name"), ["role_name"], unique=False
        )

    op.create_table(
        "auth_session",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("account_id", sa.Uuid(), nullable=False),
        sa.Column("scope", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_used_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("end_reason", sa.String(length=32), nullable=True),
        sa.Column("user_agent", sa.String(length=255), nullable=True),
        sa.Column("ip", sa.String(length=64), nullable=True),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["account.id"],
            name=op.f("fk_auth_session_account_id_account"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_auth_session")),
    )
    with op.batch_alter_table("auth_session", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_auth_session_account_id"), ["account_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_auth_session_expires_at"), ["expires_at"], unique=False
        )

    op.create_table(
        "role_scope",
        sa.Column("role_name", sa.String(length=64), nullable=False),
        sa.Column("scope_name", sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(
            ["role_name"],
            ["role.name"],
            name=op.f("fk_role_scope_role_name_role"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["scope_name"],
            ["scope.name"],
            name=op.f("fk_role_scope_scope_name_scope"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("role_name", "scope_name", name=op.f("pk_role_scope")),
    )
    with op.batch_alter_table("role_scope", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_role_scope_scope_name"), ["scope_name"], unique=False
        )

    op.create_table(
        "refresh_token",
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("session_id", sa.Uuid(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("used_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["session_id"],
            ["auth_session.id"],
            name=op.f("fk_refresh_token_session_id_auth_session"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("token_hash", name=op.f("pk_refresh_token")),
    )
    with op.batch_alter_table("refresh_token", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_refresh_token_session_id"), ["session_id"], unique=False
        )

    scope_table = sa.table(
        "scope", sa.column("name"), sa.column("description"), sa.column("builtin")
    )
    role_table = sa.table(
        "role", sa.column("name"), sa.column("description"), sa.column("builtin")
    )
    role_scope_table = sa.table(
        "role_scope", sa.column("role_name"), sa.column("scope_name")
    )
    op.bulk_insert(
        scope_table,
        [
            {"name": n, "description": d, "builtin": True}
            for n, d in BUILTIN_SCOPES.items()
        ],
    )
    op.bulk_insert(
        role_table,
        [
            {"name": n, "description": d, "builtin": True}
            for n, (d, _) in BUILTIN_ROLES.items()
        ],
    )
    op.bulk_insert(
        role_scope_table,
        [
            {"role_name": role, "scope_name": scope}
            for role, (_, scopes) in BUILTIN_ROLES.items()
            for scope in scopes
        ],
    )


def downgrade() -> None:
    with op.batch_alter_table("refresh_token", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_refresh_token_session_id"))

    op.drop_table("refresh_token")
    with op.batch_alter_table("role_scope", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_role_scope_scope_name"))

    op.drop_table("role_scope")
    with op.batch_alter_table("auth_session", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_auth_session_expires_at"))
        batch_op.drop_index(batch_op.f("ix_auth_session_account_id"))

    op.drop_table("auth_session")
    with op.batch_alter_table("account_role", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_account_role_role_name"))

    op.drop_table("account_role")
    op.drop_table("signing_key")
    op.drop_table("scope")
    op.drop_table("role")
    with op.batch_alter_table("login_throttle", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_login_throttle_locked_until"))

    op.drop_table("login_throttle")
    with op.batch_alter_table("audit_event", schema=None) as batch_op:
        batch_op.drop_index("ix_audit_event_actor_id_id")
        batch_op.drop_index("ix_audit_event_action_id")

    op.drop_table("audit_event")
    with op.batch_alter_table("account", schema=None) as batch_op:
        batch_op.drop_index(
            "ix_account_username_key_pattern",
            postgresql_ops={"username_key": "text_pattern_ops"},
        )

    op.drop_table("account")
