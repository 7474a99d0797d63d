"""The audit log: append-only rows written in the transaction they describe, by
the service that makes the change."""

import uuid
from typing import Any

from sqlalchemy import Table, bindparam, insert, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from app.audit.models import AuditEvent
from app.audit.schemas import AuditPublic
from app.authz.catalogue import Actor, Principal
from app.core.db import write_alone
from app.core.models import UTCDateTime, utcnow
from app.core.pagination import decode_cursor, keyset_page
from app.core.schemas import Page, public
from app.observability import events

# Keys that must never reach the log, however a caller builds `detail`.
_SECRET_KEYS = frozenset(
    {"password", "new_password", "current_password", "token", "refresh_token", "access_token"}
)


_EVENTS: Table = AuditEvent.__table__  # type: ignore[attr-defined]  # SQLModel leaves it untyped


# Built once: client credentials writes one per token.
_INSERT_EVENT = insert(_EVENTS).values(
    time=bindparam("time", type_=UTCDateTime()),
    actor_id=bindparam("actor_id", type_=_EVENTS.c.actor_id.type),
    action=bindparam("action"),
    target=bindparam("target"),
    ip=bindparam("ip"),
    detail=bindparam("detail", type_=_EVENTS.c.detail.type),
)


async def record(
    db: AsyncSession,
    *,
    action: str,
    actor: uuid.UUID | None = None,
    target: str | None = None,
    ip: str | None = None,
    detail: dict[str, Any] | None = None,
    alone: bool = False,
) -> None:
    """Append the entry in the request's transaction. `alone` is for an entry
    that is the whole change, written last (a client's token issued): it may then
    commit by itself at once (`core.db.write_alone`)."""
    clean = {k: v for k, v in (detail or {}).items() if k not in _SECRET_KEYS}
    if db.new or db.dirty or db.deleted:
        await db.flush()  # what the caller added goes in first, as before
    params = {
        "time": utcnow(),
        "actor_id": actor,
        "action": action,
        "target": target,
        "ip": ip,
        "detail": clean,
    }
    by = clean.get("by")
    by = by if isinstance(by, str) else None
    if alone:
        committed = (await write_alone(db, _INSERT_EVENT, params)).committed
    else:
        await db.execute(_INSERT_EVENT, params)
        committed = False
    events.note(db, action, actor=actor, ip=ip, by=by, committed=committed)


async def record_change(
    db: AsyncSession,
    actor: Actor[Principal],
    action: str,
    *,
    target: str,
    detail: dict[str, Any] | None = None,
) -> None:
    """A change made through the API, under the account that made it; a client
    acting through its own token has no account, so the entry names the client."""
    if actor.account_id is None:
        detail = {**(detail or {}), "actor_client": actor.principal.client_id}
    await record(
        db, action=action, actor=actor.account_id, target=target, ip=actor.ip, detail=detail
    )


def _event_id(value: str) -> int:
    event_id = int(value)
    if not 0 < event_id < 2**63:  # beyond a BIGINT the databases fail, not compare
        raise ValueError(value)
    return event_id


async def list_events(
    db: AsyncSession,
    *,
    limit: int,
    cursor: str | None,
    actor: uuid.UUID | None,
    action: str | None,
) -> Page[AuditPublic]:
    query = select(AuditEvent).order_by(col(AuditEvent.id).desc()).limit(limit + 1)
    if cursor:
        query = query.where(col(AuditEvent.id) < decode_cursor(cursor, _event_id))
    if actor is not None:
        query = query.where(col(AuditEvent.actor_id) == actor)
    if action:
        query = query.where(col(AuditEvent.action) == action)
    rows, next_cursor = keyset_page((await db.scalars(query)).all(), limit, lambda r: str(r.id))
    items = [public(AuditPublic, r, actor=r.actor_id) for r in rows]
    return Page[AuditPublic](items=items, next_cursor=next_cursor)
