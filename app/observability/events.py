"""Security events reach the metrics and the log once they are durable.

`audit.record` (and the few protocol steps that write no audit row, such as a
refresh) call `note`, which only remembers the event in the database session;
when that session commits, each event is counted and logged, and when it rolls
back they are dropped. So a sign-in that failed to commit is never counted. An
entry committed by itself (`audit.record(..., alone=True)`) is emitted at once.
"""

import uuid
from dataclasses import dataclass

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from app.observability import logs, metrics

_PENDING = "gatehouse.pending_events"


@dataclass(frozen=True, slots=True)
class Event:
    action: str
    actor: uuid.UUID | None
    ip: str | None
    by: str | None


def note(
    db: AsyncSession,
    action: str,
    *,
    actor: uuid.UUID | None = None,
    ip: str | None = None,
    by: str | None = None,
) -> None:
    db.info.setdefault(_PENDING, []).append(Event(action, actor, ip, by))


def after_write(
    db: AsyncSession,
    action: str,
    *,
    committed: bool,
    actor: uuid.UUID | None = None,
    ip: str | None = None,
    by: str | None = None,
) -> None:
    """`emit` now when the write is durable already (committed by itself, see
    `core.db.write_alone`), else `note` it for the session's commit."""
    if committed:
        emit(action, actor=actor, ip=ip, by=by)
    else:
        note(db, action, actor=actor, ip=ip, by=by)


def emit(
    action: str, *, actor: uuid.UUID | None = None, ip: str | None = None, by: str | None = None
) -> None:
    """Count and log an event whose write is durable already (committed by itself)."""
    metrics.count_event(action, by)
    logs.security_event(action, str(actor) if actor else None, ip)


@event.listens_for(Session, "after_commit")
def _committed(session: Session) -> None:
    pending: list[Event] | None = session.info.pop(_PENDING, None)
    for item in pending or ():
        emit(item.action, actor=item.actor, ip=item.ip, by=item.by)


@event.listens_for(Session, "after_rollback")
def _rolled_back(session: Session) -> None:
    session.info.pop(_PENDING, None)
