"""The account table: a login identity."""

import uuid
from datetime import datetime

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from app.core.models import UTCDateTime, utcnow, uuid7


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
