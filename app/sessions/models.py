"""Sessions (one login each) and every refresh token they were given."""

import uuid
from datetime import datetime

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from app.core.models import UTCDateTime, belongs_to, utcnow, uuid7


class AuthSession(SQLModel, table=True):
    """One login (one device): owns a chain of refresh tokens and its access tokens."""

    __tablename__ = "auth_session"

    id: uuid.UUID = Field(default_factory=uuid7, primary_key=True)
    account_id: uuid.UUID = belongs_to("account.id", index=True)
    # The client the session was opened through: its refresh tokens work for that
    # client only (RFC 6749 §10.4), and deleting the client ends the session.
    client_id: str = belongs_to("oauth_client.client_id", index=True)
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
    session_id: uuid.UUID = belongs_to("auth_session.id", index=True)
    created_at: datetime = Field(
        default_factory=utcnow, sa_column=sa.Column(UTCDateTime(), nullable=False)
    )
    used_at: datetime | None = Field(default=None, sa_column=sa.Column(UTCDateTime()))
