"""The append-only audit log."""

import uuid
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from app.core.models import UTCDateTime, utcnow


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
