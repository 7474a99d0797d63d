"""Personal access tokens: long-lived opaque bearer tokens an account makes for
scripts and CI."""

import uuid
from datetime import datetime

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from app.core.models import UTCDateTime, belongs_to, utcnow, uuid7


class PersonalAccessToken(SQLModel, table=True):
    __tablename__ = "personal_access_token"

    id: uuid.UUID = Field(default_factory=uuid7, primary_key=True)
    account_id: uuid.UUID = belongs_to("account.id", index=True)
    name: str = Field(sa_column=sa.Column(sa.String(100), nullable=False))
    # SHA-256 of the token: it is 256 random bits, so a fast hash is enough.
    token_hash: str = Field(sa_column=sa.Column(sa.String(64), nullable=False, unique=True))
    # What it was created with; each use gets this ∩ what the account holds then.
    scope: str = Field(sa_column=sa.Column(sa.Text, nullable=False))
    created_at: datetime = Field(
        default_factory=utcnow, sa_column=sa.Column(UTCDateTime(), nullable=False)
    )
    expires_at: datetime = Field(sa_column=sa.Column(UTCDateTime(), nullable=False, index=True))
    last_used_at: datetime | None = Field(
        default=None, sa_column=sa.Column(UTCDateTime(), nullable=True)
    )
