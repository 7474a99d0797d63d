"""A browser session: one sign-in on the hosted page, named by a cookie."""

import uuid
from datetime import datetime

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from app.core.models import UTCDateTime, utcnow, uuid7


class BrowserSession(SQLModel, table=True):
    """The server-side record a browser's cookie names. The cookie holds 256
    random bits; only their SHA-256 is stored, so a database read leaks no
    usable cookie."""

    __tablename__ = "browser_session"

    id: uuid.UUID = Field(default_factory=uuid7, primary_key=True)
    token_hash: str = Field(sa_column=sa.Column(sa.String(64), nullable=False, unique=True))
    account_id: uuid.UUID = Field(
        sa_column=sa.Column(
            sa.Uuid, sa.ForeignKey("account.id", ondelete="CASCADE"), nullable=False, index=True
        )
    )
    # When the password was checked (OpenID Connect Core §2 `auth_time`).
    auth_time: datetime = Field(sa_column=sa.Column(UTCDateTime(), nullable=False))
    created_at: datetime = Field(
        default_factory=utcnow, sa_column=sa.Column(UTCDateTime(), nullable=False)
    )
    last_used_at: datetime = Field(
        default_factory=utcnow, sa_column=sa.Column(UTCDateTime(), nullable=False)
    )
    expires_at: datetime = Field(sa_column=sa.Column(UTCDateTime(), nullable=False, index=True))
    ended_at: datetime | None = Field(default=None, sa_column=sa.Column(UTCDateTime()))
    end_reason: str | None = Field(default=None, sa_column=sa.Column(sa.String(32)))
    user_agent: str | None = Field(default=None, sa_column=sa.Column(sa.String(255)))
    ip: str | None = Field(default=None, sa_column=sa.Column(sa.String(64)))
