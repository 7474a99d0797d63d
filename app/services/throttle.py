"""Attempt throttling shared by every instance: counters live in the database.

An attempt is counted *before* the password is checked, in one atomic upsert,
so N parallel guesses cannot all slip past the gate while the first hashes are
still running: exactly `max_attempts` get through per window. A successful
login then gives its attempt back.
"""

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import and_, case, delete, literal, null, or_, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from app.models import LoginThrottle
from app.models.base import UTCDateTime, utcnow

T = LoginThrottle.__table__.c  # type: ignore[attr-defined]


def _at(moment: datetime) -> object:
    return literal(moment, UTCDateTime())


@dataclass(frozen=True, slots=True)
class Verdict:
    allowed: bool
    retry_after: float
    just_locked: bool


async def hit(
    session: AsyncSession,
    key: str,
    *,
    max_attempts: int,
    window_seconds: int,
    lockout_seconds: int,
    now: datetime | None = None,
) -> Verdict:
    """Count one attempt against `key`; refuse it while the key is locked."""
    now = now or utcnow()
    window_start = now - timedelta(seconds=window_seconds)
    lock_until = now + timedelta(seconds=lockout_seconds)
    locked = and_(T.locked_until.is_not(None), T.locked_until > now)
    fresh = or_(
        T.window_started_at <= window_start,
        and_(T.locked_until.is_not(None), T.locked_until <= now),
    )
    dialect = postgresql if session.bind.dialect.name == "postgresql" else sqlite  # type: ignore[union-attr]
    insert = dialect.insert(LoginThrottle.__table__)  # type: ignore[attr-defined]
    statement = (
        insert.values(key=key, failures=1, window_started_at=now, locked_until=None)
        .on_conflict_do_update(
            index_elements=[T.key],
            set_={
                # Attempts refused while locked still count, and the attempt that
                # locks sets exactly max_attempts + 1: only that one statement sees
                # this value, so exactly one caller learns it `just_locked`.
                "failures": case(
                    (locked, T.failures + 1),
                    (fresh, 1),
                    (T.failures + 1 > max_attempts, max_attempts + 1),
                    else_=T.failures + 1,
                ),
                "window_started_at": case(
                    (locked, T.window_started_at), (fresh, _at(now)), else_=T.window_started_at
                ),
                "locked_until": case(
                    (locked, T.locked_until),
                    (fresh, null()),
                    (T.failures + 1 > max_attempts, _at(lock_until)),
                    else_=null(),
                ),
            },
        )
        .returning(T.failures, T.locked_until)
    )
    failures, locked_until = (await session.execute(statement)).one()
    if locked_until is not None and locked_until > now:
        return Verdict(
            allowed=False,
            retry_after=(locked_until - now).total_seconds(),
            just_locked=failures == max_attempts + 1,
        )
    return Verdict(allowed=True, retry_after=0.0, just_locked=False)


async def give_back(session: AsyncSession, key: str) -> None:
    """Undo one counted attempt (a success, or an attempt refused elsewhere)."""
    await session.execute(
        update(LoginThrottle)
        .where(T.key == key, T.failures > 0, T.locked_until.is_(None))
        .values(failures=T.failures - 1)
        .execution_options(synchronize_session=False)
    )


async def reset(session: AsyncSession, key: str) -> None:
    await session.execute(
        delete(LoginThrottle)
        .where(T.key == key, T.locked_until.is_(None))
        .execution_options(synchronize_session=False)
    )


async def purge_stale(session: AsyncSession, *, older_than_seconds: int) -> None:
    cutoff = utcnow() - timedelta(seconds=older_than_seconds)
    await session.execute(
        delete(LoginThrottle)
        .where(T.window_started_at < cutoff, or_(T.locked_until.is_(None), T.locked_until < cutoff))
        .execution_options(synchronize_session=False)
    )
