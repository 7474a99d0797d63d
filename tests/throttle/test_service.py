"""The throttle's two statements, run against each real database: `reserve` (one
atomic upsert that grants a place only while failures + pending < max) and
`settle` (gives the place back, confirming a failure; the failure that reaches
max locks the key)."""

import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker, create_async_engine

from app.core.models import utcnow
from app.throttle.service import TABLE, Limit, Verdict, purge_stale, reserve, settle

LIMIT = Limit(max_attempts=3, window_seconds=60, lockout_seconds=300)
Sessions = async_sessionmaker[AsyncSession]


@pytest.fixture
async def sessions(database_url: str) -> AsyncIterator[Sessions]:
    engine = create_async_engine(database_url)
    yield async_sessionmaker(engine, expire_on_commit=False)
    await engine.dispose()


@pytest.fixture
def key() -> str:
    """A key of this test's own: the database is shared by the run."""
    return f"test:{uuid.uuid4().hex}"


async def reserve_in(sessions: Sessions, key: str, limit: Limit = LIMIT) -> Verdict:
    async with sessions() as db, db.begin():
        return await reserve(db, key, limit)


async def settle_in(
    sessions: Sessions, key: str, *, failed: bool, forgive: bool = False, limit: Limit = LIMIT
) -> bool:
    async with sessions() as db, db.begin():
        return await settle(db, key, limit, failed=failed, forgive=forgive)


async def row(sessions: Sessions, key: str) -> Any:
    async with sessions() as db:
        return (await db.execute(select(TABLE).where(TABLE.c.key == key))).one_or_none()


async def age(sessions: Sessions, key: str, **shifts: int) -> None:
    """Move the row's timestamps `seconds` into the past, as time passing would."""
    current = await row(sessions, key)
    values = {
        column: getattr(current, column) - timedelta(seconds=seconds)
        for column, seconds in shifts.items()
    }
    async with sessions() as db, db.begin():
        await db.execute(update(TABLE).where(TABLE.c.key == key).values(**values))


async def fail(sessions: Sessions, key: str, times: int) -> list[bool]:
    """`times` attempts, each reserved and settled as a confirmed failure."""
    locked = []
    for _ in range(times):
        assert (await reserve_in(sessions, key)).allowed
        locked.append(await settle_in(sessions, key, failed=True))
    return locked


# --- reserve: a place only while failures + pending < max --------------------


async def test_a_first_attempt_gets_a_place_and_creates_the_counter(
    sessions: Sessions, key: str
) -> None:
    assert await reserve_in(sessions, key) == Verdict(allowed=True, retry_after=0.0)
    counter = await row(sessions, key)
    assert (counter.failures, counter.pending, counter.locked_until) == (0, 1, None)


async def test_places_are_granted_up_to_max_and_the_next_waits_a_second(
    sessions: Sessions, key: str
) -> None:
    granted = [await reserve_in(sessions, key) for _ in range(LIMIT.max_attempts)]
    assert all(verdict.allowed for verdict in granted)

    assert await reserve_in(sessions, key) == Verdict(allowed=False, retry_after=1.0)
    assert (await row(sessions, key)).pending == LIMIT.max_attempts


async def test_confirmed_failures_and_pending_attempts_share_the_places(
    sessions: Sessions, key: str
) -> None:
    await fail(sessions, key, 1)
    assert (await reserve_in(sessions, key)).allowed
    assert (await reserve_in(sessions, key)).allowed
    # 1 failure + 2 pending = 3 = max
    assert not (await reserve_in(sessions, key)).allowed

    assert await settle_in(sessions, key, failed=False) is False
    assert (await reserve_in(sessions, key)).allowed


async def test_a_refused_reservation_changes_nothing(sessions: Sessions, key: str) -> None:
    for _ in range(LIMIT.max_attempts):
        await reserve_in(sessions, key)
    before = await row(sessions, key)

    await reserve_in(sessions, key)

    assert await row(sessions, key) == before


# --- settle: the failure that reaches max locks ------------------------------


async def test_the_failure_that_reaches_max_locks_the_key_and_says_so_once(
    sessions: Sessions, key: str
) -> None:
    started = utcnow()
    assert await fail(sessions, key, LIMIT.max_attempts) == [False, False, True]

    counter = await row(sessions, key)
    assert (counter.failures, counter.pending) == (LIMIT.max_attempts, 0)
    lockout = timedelta(seconds=LIMIT.lockout_seconds)
    assert started + lockout <= counter.locked_until <= utcnow() + lockout


async def test_a_locked_key_refuses_with_the_time_left_and_keeps_its_counters(
    sessions: Sessions, key: str
) -> None:
    await fail(sessions, key, LIMIT.max_attempts)
    before = await row(sessions, key)

    verdict = await reserve_in(sessions, key)

    assert verdict.locked and not verdict.allowed
    assert LIMIT.lockout_seconds - 5 < verdict.retry_after <= LIMIT.lockout_seconds
    assert await row(sessions, key) == before


async def test_failures_settled_after_the_lock_do_not_lock_again(
    sessions: Sessions, key: str
) -> None:
    for _ in range(LIMIT.max_attempts):
        assert (await reserve_in(sessions, key)).allowed
    results = [await settle_in(sessions, key, failed=True) for _ in range(LIMIT.max_attempts)]
    locked_until = (await row(sessions, key)).locked_until

    assert results == [False, False, True]
    # A failure settled once the key is locked (its place taken before a window
    # reset) neither reports a second lockout nor extends the lock.
    assert await settle_in(sessions, key, failed=True) is False
    assert (await row(sessions, key)).locked_until == locked_until


async def test_a_success_gives_its_place_back_without_counting(
    sessions: Sessions, key: str
) -> None:
    await fail(sessions, key, 1)
    await reserve_in(sessions, key)

    assert await settle_in(sessions, key, failed=False) is False

    counter = await row(sessions, key)
    assert (counter.failures, counter.pending, counter.locked_until) == (1, 0, None)


async def test_forgive_clears_the_failures_of_the_account_key(sessions: Sessions, key: str) -> None:
    await fail(sessions, key, LIMIT.max_attempts - 1)
    await reserve_in(sessions, key)

    assert await settle_in(sessions, key, failed=False, forgive=True) is False

    counter = await row(sessions, key)
    assert (counter.failures, counter.pending) == (0, 0)
    assert await fail(sessions, key, LIMIT.max_attempts - 1) == [False, False]


async def test_settling_a_place_whose_counter_is_gone_writes_nothing(
    sessions: Sessions, key: str
) -> None:
    assert await settle_in(sessions, key, failed=True) is False
    assert await settle_in(sessions, key, failed=False, forgive=True) is False
    assert await row(sessions, key) is None


async def test_settling_a_place_lost_to_a_fresh_window_never_goes_below_zero(
    sessions: Sessions, key: str
) -> None:
    await reserve_in(sessions, key)
    await age(sessions, key, window_started_at=LIMIT.window_seconds)
    # A new window starts while the first attempt is still being judged: its
    # place is gone, and the new attempt holds the only one.
    assert (await reserve_in(sessions, key)).allowed

    await settle_in(sessions, key, failed=True)
    await settle_in(sessions, key, failed=False)

    counter = await row(sessions, key)
    assert (counter.failures, counter.pending) == (1, 0)


# --- windows -----------------------------------------------------------------


async def test_a_window_past_its_length_starts_afresh(sessions: Sessions, key: str) -> None:
    await fail(sessions, key, LIMIT.max_attempts - 1)
    await reserve_in(sessions, key)
    await age(sessions, key, window_started_at=LIMIT.window_seconds)

    assert (await reserve_in(sessions, key)).allowed

    counter = await row(sessions, key)
    assert (counter.failures, counter.pending) == (0, 1)
    assert utcnow() - counter.window_started_at < timedelta(seconds=5)


async def test_an_expired_lock_starts_afresh(sessions: Sessions, key: str) -> None:
    await fail(sessions, key, LIMIT.max_attempts)
    await age(sessions, key, locked_until=LIMIT.lockout_seconds + 1)

    assert (await reserve_in(sessions, key)).allowed

    counter = await row(sessions, key)
    assert (counter.failures, counter.pending, counter.locked_until) == (0, 1, None)


async def test_keys_are_counted_apart(sessions: Sessions, key: str) -> None:
    await fail(sessions, key, LIMIT.max_attempts)
    assert (await reserve_in(sessions, f"{key}:other")).allowed


# --- purge -------------------------------------------------------------------


async def test_purge_removes_stale_counters_and_keeps_live_locks(
    sessions: Sessions, key: str
) -> None:
    stale, locked = f"{key}:stale", f"{key}:locked"
    await fail(sessions, stale, 1)
    await fail(sessions, locked, LIMIT.max_attempts)
    await age(sessions, stale, window_started_at=7200)
    await age(sessions, locked, window_started_at=7200)

    async with sessions() as db, db.begin():
        await purge_stale(db, older_than_seconds=3600)

    assert await row(sessions, stale) is None
    assert await row(sessions, locked) is not None
