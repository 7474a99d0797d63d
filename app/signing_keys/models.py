"""Token signing keys, shared by every instance."""

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from app.core.models import UTCDateTime, utcnow


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
