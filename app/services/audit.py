"""The audit log: append-only rows written in the transaction they describe."""

import uuid
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from app.core.errors import Invalid
from app.core.pagination import decode_cursor, encode_cursor
from app.models import AuditEvent
from app.schemas import AuditPublic, Page

# Keys that must never reach the log, however a caller builds `detail`.
_SECRET_KEYS = frozenset(
    {"password", "new_password", "current_password", "token", "refresh_token", "access_token"}
)


async def record(
    session: AsyncSession,
    *,
    action: str,
    actor: uuid.UUID | None = None,
    target: str | None = None,
    ip: str | None = None,
    detail: dict[str, Any] | None = None,
) -> None:
    clean = {k: v for k, v in (detail or {}).items() if k not in _SECRET_KEYS}
    session.add(AuditEvent(action=action, actor_id=actor, target=target, ip=ip, detail=clean))
    await session.flush()


async def list_events(
    session: AsyncSession,
    *,
    limit: int,
    cursor: str | None,
    actor: uuid.UUID | None,
    action: str | None,
) -> Page[AuditPublic]:
    query = select(AuditEvent).order_by(col(AuditEvent.id).desc()).limit(limit + 1)
    if cursor:
        try:
            before = int(decode_cursor(cursor))
        except ValueError:
            raise Invalid("Invalid cursor", field="cursor") from None
        if not 0 < before < 2**63:  # beyond a BIGINT the databases fail, not compare
            raise Invalid("Invalid cursor", field="cursor")
        query = query.where(col(AuditEvent.id) < before)
    if actor is not None:
        query = query.where(col(AuditEvent.actor_id) == actor)
    if action:
        query = query.where(col(AuditEvent.action) == action)
    rows = list((await session.scalars(query)).all())
    more = len(rows) > limit
    rows = rows[:limit]
    items = [
        AuditPublic(
            id=r.id or 0,
            time=r.time,
            actor=r.actor_id,
            action=r.action,
            target=r.target,
            ip=r.ip,
            detail=r.detail,
        )
        for r in rows
    ]
    next_cursor = encode_cursor(str(rows[-1].id)) if more and rows else None
    return Page[AuditPublic](items=items, next_cursor=next_cursor)
