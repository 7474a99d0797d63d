"""Remembered consents: an account allowed a client some scopes."""

import uuid
from datetime import datetime

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from app.core.models import UTCDateTime, utcnow


class Consent(SQLModel, table=True):
    """One row per account and client; `scope` is every scope allowed so far
    (a later request for more asks again, and the row grows)."""

    __tablename__ = "consent"

    account_id: uuid.UUID = Field(
        sa_column=sa.Column(
            sa.Uuid, sa.ForeignKey("account.id", ondelete="CASCADE"), primary_key=True
        )
    )
    client_id: str = Field(
        sa_column=sa.Column(
            sa.String(64),
            sa.ForeignKey("oauth_client.client_id", ondelete="CASCADE"),
            primary_key=True,
            index=True,
        )
    )
    scope: str = Field(sa_column=sa.Column(sa.Text, nullable=False))
    granted_at: datetime = Field(
        default_factory=utcnow, sa_column=sa.Column(UTCDateTime(), nullable=False)
    )
    updated_at: datetime = Field(
        default_factory=utcnow, sa_column=sa.Column(UTCDateTime(), nullable=False)
    )
