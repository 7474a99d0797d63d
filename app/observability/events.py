"""Security events reach the metrics and the log once they are durable.

`audit.record` (and the few protocol steps that write no audit row, such as a
refresh) call `note`, which only remembers the event in the database session;
when that session commits, each event is counted and logged, and when it rolls
back they are dropped. So a sign-in that failed to commit is never counted.
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


@event.listens_for(Session, "after_commit")
def _committed(session: Session) -> None:
    pending: list[Event] | None = session.info.pop(_PENDING, None)
    for item in pending or ():
        metrics.count_event(item.action, item.by)
        logs.security_event(item.action, str(item.actor) if item.actor else None, item.ip)


@event.listens_for(Session, "after_rollback")
def _rolled_back(session: Session) -> None:
    session.info.pop(_PENDING, None)
