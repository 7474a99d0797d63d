"""Attempt counters shared by every instance."""

from datetime import datetime

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from app.core.models import UTCDateTime


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
