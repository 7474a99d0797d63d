"""SQLModel tables. A table is never a response body: see `app.schemas`."""

import uuid
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from app.models.base import UTCDateTime, utcnow, uuid7

__all__ = [
    "Account",
    "AccountRole",
    "AuditEvent",
    "AuthSession",
    "LoginThrottle",
    "RefreshToken",
    "Role",
    "RoleScope",
    "Scope",
    "SigningKey",
    "SQLModel",
]


class Account(SQLModel, table=True):
    __tablename__ = "account"
    __table_args__ = (
        sa.Index(
            "ix_account_username_key_pattern",
            "username_key",
            postgresql_ops={"username_key": "text_pattern_ops"},
        ),
    )

    id: uuid.UUID = Field(default_factory=uuid7, primary_key=True)
    username: str = Field(sa_column=sa.Column(sa.String(64), nullable=False))
    # NFKC + case fold of the username: the unique key that makes `bob`, `Bob`
    # and `ｂｏｂ` one account.
    username_key: str = Field(sa_column=sa.Column(sa.String(64), nullable=False, unique=True))
    email: str | None = Field(default=None, sa_column=sa.Column(sa.String(254), nullable=True))
    email_key: str | None = Field(
        default=None, sa_column=sa.Column(sa.String(254), nullable=True, unique=True)
    )
    password_hash: str = Field(sa_column=sa.Column(sa.String(255), nullable=False))
    is_active: bool = Field(default=True, sa_column=sa.Column(sa.Boolean, nullable=False))
    # Bumped whenever what the account may do changes (roles, a role's scopes,
    # disabling); access tokens carry it and are refused once it moves.
    authz_version: int = Field(default=1, sa_column=sa.Column(sa.Integer, nullable=False))
    created_at: datetime = Field(
        default_factory=utcnow, sa_column=sa.Column(UTCDateTime(), nullable=False)
    )
    updated_at: datetime = Field(
        default_factory=utcnow, sa_column=sa.Column(UTCDateTime(), nullable=False)
    )


class Scope(SQLModel, table=True):
    __tablename__ = "scope"

    name: str = Field(sa_column=sa.Column(sa.String(64), primary_key=True))
    description: str = Field(default="", sa_column=sa.Column(sa.String(255), nullable=False))
    builtin: bool = Field(default=False, sa_column=sa.Column(sa.Boolean, nullable=False))


class Role(SQLModel, table=True):
    __tablename__ = "role"

    name: str = Field(sa_column=sa.Column(sa.String(64), primary_key=True))
    description: str = Field(default="", sa_column=sa.Column(sa.String(255), nullable=False))
    builtin: bool = Field(default=False, sa_column=sa.Column(sa.Boolean, nullable=False))


class RoleScope(SQLModel, table=True):
    __tablename__ = "role_scope"

    role_name: str = Field(
        sa_column=sa.Column(
            sa.String(64), sa.ForeignKey("role.name", ondelete="CASCADE"), primary_key=True
        )
    )
    scope_name: str = Field(
        sa_column=sa.Column(
            sa.String(64),
            sa.ForeignKey("scope.name", ondelete="CASCADE"),
            primary_key=True,
            index=True,
        )
    )


class AccountRole(SQLModel, table=True):
    __tablename__ = "account_role"

    account_id: uuid.UUID = Field(
        sa_column=sa.Column(
            sa.Uuid, sa.ForeignKey("account.id", ondelete="CASCADE"), primary_key=True
        )
    )
    role_name: str = Field(
        sa_column=sa.Column(
            sa.String(64),
            sa.ForeignKey("role.name", ondelete="CASCADE"),
            primary_key=True,
            index=True,
        )
    )


class AuthSession(SQLModel, table=True):
    """One login (one device): owns a chain of refresh tokens and its access tokens."""

    __tablename__ = "auth_session"

    id: uuid.UUID = Field(default_factory=uuid7, primary_key=True)
    account_id: uuid.UUID = Field(
        sa_column=sa.Column(
            sa.Uuid, sa.ForeignKey("account.id", ondelete="CASCADE"), nullable=False, index=True
        )
    )
    # Scopes granted at login; a refresh may narrow them, never widen.
    scope: str = Field(default="", sa_column=sa.Column(sa.Text, nullable=False))
    created_at: datetime = Field(
        default_factory=utcnow, sa_column=sa.Column(UTCDateTime(), nullable=False)
    )
    last_used_at: datetime = Field(
        default_factory=utcnow, sa_column=sa.Column(UTCDateTime(), nullable=False)
    )
    expires_at: datetime = Field(sa_column=sa.Column(UTCDateTime(), nullable=False, index=True))
    ended_at: datetime | None = Field(
        default=None, sa_column=sa.Column(UTCDateTime(), nullable=True)
    )
    end_reason: str | None = Field(default=None, sa_column=sa.Column(sa.String(32)))
    user_agent: str | None = Field(default=None, sa_column=sa.Column(sa.String(255)))
    ip: str | None = Field(default=None, sa_column=sa.Column(sa.String(64)))


class RefreshToken(SQLModel, table=True):
    """Every refresh token a session was ever given, by SHA-256, so a reused one
    is recognised (RFC 9700 §4.14.2)."""

    __tablename__ = "refresh_token"

    token_hash: str = Field(sa_column=sa.Column(sa.String(64), primary_key=True))
    session_id: uuid.UUID = Field(
        sa_column=sa.Column(
            sa.Uuid,
            sa.ForeignKey("auth_session.id", ondelete="CASCADE"),
            nullable=False,
            index=True,
        )
    )
    created_at: datetime = Field(
        default_factory=utcnow, sa_column=sa.Column(UTCDateTime(), nullable=False)
    )
    used_at: datetime | None = Field(default=None, sa_column=sa.Column(UTCDateTime()))


class AuditEvent(SQLModel, table=True):
    """Append-only. `actor_id` is no foreign key: the log outlives deleted accounts."""

    __tablename__ = "audit_event"
    __table_args__ = (
        sa.Index("ix_audit_event_actor_id_id", "actor_id", "id"),
        sa.Index("ix_audit_event_action_id", "action", "id"),
    )

    id: int | None = Field(
        default=None,
        sa_column=sa.Column(
            sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True, autoincrement=True
        ),
    )
    time: datetime = Field(
        default_factory=utcnow, sa_column=sa.Column(UTCDateTime(), nullable=False)
    )
    actor_id: uuid.UUID | None = Field(default=None, sa_column=sa.Column(sa.Uuid, nullable=True))
    action: str = Field(sa_column=sa.Column(sa.String(64), nullable=False))
    target: str | None = Field(default=None, sa_column=sa.Column(sa.String(255)))
    ip: str | None = Field(default=None, sa_column=sa.Column(sa.String(64)))
    detail: dict[str, Any] = Field(
        default_factory=dict, sa_column=sa.Column(sa.JSON, nullable=False)
    )


class LoginThrottle(SQLModel, table=True):
    """Attempt counters per account and per client address, shared by every instance."""

    __tablename__ = "login_throttle"

    key: str = Field(sa_column=sa.Column(sa.String(160), primary_key=True))
    failures: int = Field(default=0, sa_column=sa.Column(sa.Integer, nullable=False))
    # Attempts reserved and still being judged (their password is hashing).
    pending: int = Field(
        default=0, sa_column=sa.Column(sa.Integer, nullable=False, server_default="0")
    )
    # Written by the reservation that got the last place; see services.throttle.
    claim: str | None = Field(default=None, sa_column=sa.Column(sa.String(32)))
    window_started_at: datetime = Field(sa_column=sa.Column(UTCDateTime(), nullable=False))
    locked_until: datetime | None = Field(
        default=None, sa_column=sa.Column(UTCDateTime(), nullable=True, index=True)
    )


class SigningKey(SQLModel, table=True):
    """A token signing key. The private part is encrypted with a key derived from
    GATEHOUSE_SECRET_KEY; instances share the set through this table."""

    __tablename__ = "signing_key"

    kid: str = Field(sa_column=sa.Column(sa.String(64), primary_key=True))
    alg: str = Field(sa_column=sa.Column(sa.String(16), nullable=False))
    private_key: str = Field(sa_column=sa.Column(sa.Text, nullable=False))
    public_jwk: dict[str, Any] | None = Field(default=None, sa_column=sa.Column(sa.JSON))
    created_at: datetime = Field(
        default_factory=utcnow, sa_column=sa.Column(UTCDateTime(), nullable=False)
    )
    # Set when a newer key takes over signing: past it, tokens it signed have
    # all expired and the key neither verifies nor is published.
    retire_at: datetime | None = Field(default=None, sa_column=sa.Column(UTCDateTime()))
