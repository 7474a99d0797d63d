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
    committed: bool = False,
) -> None:
    """Remember the event for the session's commit; or, when its write is durable
    already (`committed` by itself, see `core.db.write_alone`), count and log it now."""
    item = Event(action, actor, ip, by)
    if committed:
        _emit(item)
    else:
        db.info.setdefault(_PENDING, []).append(item)


def _emit(item: Event) -> None:
    metrics.count_event(item.action, item.by)
    logs.security_event(item.action, str(item.actor) if item.actor else None, item.ip)


@event.listens_for(Session, "after_commit")
def _committed(session: Session) -> None:
    for item in session.info.pop(_PENDING, None) or ():
        _emit(item)


@event.listens_for(Session, "after_rollback")
def _rolled_back(session: Session) -> None:
    session.info.pop(_PENDING, None)
