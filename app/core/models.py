"""Shared column types, id generation and the metadata naming convention."""

import os
import time
import uuid
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Dialect
from sqlmodel import Field, SQLModel

SQLModel.metadata.naming_convention = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def belongs_to(target: str, *, primary_key: bool = False, index: bool = False) -> Any:
    """A column naming the row (`table.column`) this one belongs to and goes with
    (ON DELETE CASCADE): deleting an account takes its sessions, tokens and role
    links; deleting a client, its sessions."""
    return Field(sa_column=_reference(target, "CASCADE", primary_key=primary_key, index=index))


def refers_to(target: str) -> Any:
    """An optional, indexed link to a row that may go first (ON DELETE SET NULL):
    an authorization code outlives the browser session that signed it in."""
    return Field(default=None, sa_column=_reference(target, "SET NULL", index=True))


def _reference(
    target: str, ondelete: str, *, primary_key: bool = False, index: bool
) -> sa.Column[Any]:
    # The type is the target's: a UUID for an `id`, a 64-character name otherwise.
    type_: sa.types.TypeEngine[Any] = sa.Uuid() if target.endswith(".id") else sa.String(64)
    return sa.Column(
        type_,
        sa.ForeignKey(target, ondelete=ondelete),
        primary_key=primary_key,
        nullable=ondelete != "CASCADE" and not primary_key,
        index=index,
    )


def utcnow() -> datetime:
    return datetime.now(UTC)


def uuid7() -> uuid.UUID:
    """A time-ordered UUID (RFC 9562 version 7): ids sort by creation, so keyset
    pagination over them is stable and index-friendly."""
    ms = time.time_ns() // 1_000_000
    rand = int.from_bytes(os.urandom(10), "big")
    value = (ms & ((1 << 48) - 1)) << 80
    value |= 0x7 << 76
    value |= ((rand >> 62) & 0xFFF) << 64
    value |= 0b10 << 62
    value |= rand & ((1 << 62) - 1)
    return uuid.UUID(int=value)


class UTCDateTime(sa.TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on both databases (SQLite keeps no offset)."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        moment: datetime = value
        return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
