"""Attempt throttling shared by every instance: counters live in the database.

Each key (an account, a client address) has confirmed `failures` and `pending`
attempts, those whose password is still being hashed. An attempt first
*reserves* a place with one atomic upsert, granted only while
`failures + pending < max`: N parallel guesses cannot all slip past the gate
while the first hashes run, so exactly `max` of them are judged. When the
password has been checked the attempt is *settled*: a failure is confirmed,
and the failure that reaches `max` locks the key for the lockout time. A
success (or a shed attempt) only gives its place back, so a burst of correct
logins never locks anyone out.

Every endpoint that checks a password (the token endpoint, the password change)
counts against the same two keys: the account (`GATEHOUSE_LOGIN_MAX_FAILURES`)
and the client address, across accounts (`GATEHOUSE_LOGIN_MAX_FAILURES_PER_ADDRESS`,
higher, so that one office behind a NAT does not lock itself out).
"""

import asyncio
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Table, and_, case, delete, literal, null, or_, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from app.audit import service as audit
from app.core.config import Settings
from app.core.db import release_connection, released_after
from app.core.errors import TooManyRequests
from app.core.models import UTCDateTime, utcnow
from app.core.network import RequestOrigin
from app.crypto.passwords import HasherBusy, HasherClaim
from app.throttle.models import LoginThrottle

TABLE: Table = LoginThrottle.__table__  # type: ignore[attr-defined]  # SQLModel leaves it untyped
T = TABLE.c


@dataclass(frozen=True, slots=True)
class Limit:
    max_attempts: int
    window_seconds: int
    lockout_seconds: int


@dataclass(frozen=True, slots=True)
class Verdict:
    allowed: bool
    retry_after: float
    locked: bool = False


def _at(moment: datetime) -> object:
    return literal(moment, UTCDateTime())


async def reserve(session: AsyncSession, key: str, limit: Limit) -> Verdict:
    """Take a place for one attempt, or learn how long to wait."""
    now = utcnow()
    claim = secrets.token_hex(8)
    locked = and_(T.locked_until.is_not(None), T.locked_until > now)
    fresh = or_(
        T.window_started_at <= now - timedelta(seconds=limit.window_seconds),
        and_(T.locked_until.is_not(None), T.locked_until <= now),
    )
    full = T.failures + T.pending >= limit.max_attempts
    dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    insert = dialect.insert(TABLE)
    statement = (
        insert.values(
            key=key, failures=0, pending=1, window_started_at=now, locked_until=None, claim=claim
        )
        .on_conflict_do_update(
            index_elements=[T.key],
            set_={
                "failures": case((locked, T.failures), (fresh, 0), else_=T.failures),
                "pending": case(
                    (locked, T.pending), (fresh, 1), (full, T.pending), else_=T.pending + 1
                ),
                "window_started_at": case(
                    (locked, T.window_started_at), (fresh, _at(now)), else_=T.window_started_at
                ),
                "locked_until": case((locked, T.locked_until), else_=null()),
                # Only a statement that granted the place writes its own claim, so
                # reading it back says whether this attempt got one.
                "claim": case(
                    (locked, T.claim), (fresh, claim), (full, T.claim), else_=literal(claim)
                ),
            },
        )
        .returning(T.claim, T.locked_until)
    )
    granted, locked_until = (await session.execute(statement)).one()
    if granted == claim:
        return Verdict(allowed=True, retry_after=0.0)
    if locked_until is not None and locked_until > now:
        return Verdict(allowed=False, retry_after=(locked_until - now).total_seconds(), locked=True)
    # Every place is taken by attempts still being judged: they end within a second.
    return Verdict(allowed=False, retry_after=1.0)


async def settle(
    session: AsyncSession, key: str, limit: Limit, *, failed: bool, forgive: bool = False
) -> bool:
    """Give the reserved place back, confirming a failure when `failed`; with
    `forgive`, earlier failures are cleared too. True when this failure locked
    the key (exactly one caller sees that, for the audit log)."""
    now = utcnow()
    confirmed = T.failures + 1
    failures = confirmed if failed else (0 if forgive else T.failures)
    statement = (
        update(LoginThrottle)
        .where(T.key == key)
        .values(
            pending=case((T.pending > 0, T.pending - 1), else_=0),
            failures=failures,
            locked_until=case(
                (
                    and_(T.locked_until.is_(None), confirmed >= limit.max_attempts),
                    _at(now + timedelta(seconds=limit.lockout_seconds)),
                ),
                else_=T.locked_until,
            )
            if failed
            else T.locked_until,
        )
        .returning(T.failures)
        .execution_options(synchronize_session=False)
    )
    row = (await session.execute(statement)).first()
    return bool(failed and row is not None and row[0] == limit.max_attempts)


async def purge_stale(session: AsyncSession, *, older_than_seconds: int) -> None:
    cutoff = utcnow() - timedelta(seconds=older_than_seconds)
    await session.execute(
        delete(LoginThrottle)
        .where(T.window_started_at < cutoff, or_(T.locked_until.is_(None), T.locked_until < cutoff))
        .execution_options(synchronize_session=False)
    )


@dataclass(frozen=True, slots=True)
class Counted:
    """A throttle key an attempt counts against, its limit, and how the audit log
    names it."""

    key: str
    target: str | None
    by: str
    limit: Limit


def _limit(settings: Settings, max_attempts: int) -> Limit:
    return Limit(
        max_attempts=max_attempts,
        window_seconds=settings.login_window_seconds,
        lockout_seconds=settings.login_lockout_seconds,
    )


def account_key(settings: Settings, username_key: str, *, target: str) -> Counted:
    """The account's counter, by its username key: an unknown name is counted too,
    exactly like an existing one."""
    return Counted(
        f"account:{username_key}", target, "account", _limit(settings, settings.login_max_failures)
    )


def address_key(settings: Settings, origin: RequestOrigin) -> Counted:
    return Counted(
        f"ip:{origin.ip}",
        origin.ip,
        "address",
        _limit(settings, settings.login_max_failures_per_address),
    )


async def verify_password(
    db: AsyncSession,
    *,
    hashing: HasherClaim,
    slots: asyncio.Semaphore,
    keys: list[Counted],
    password_hash: str | None,
    password: str,
    active: bool,
    origin: RequestOrigin,
) -> bool:
    """Check a password under the throttle: reserve a place on every key (429 when
    one is locked or full), hash with no connection held, then settle: a failure
    counts (the one that locks a key is audited), a success forgives the first
    key (the account) and gives the others their place back.

    The attempt succeeds only when the password matches and the account is
    `active`: a disabled account's right password is counted as a failure, or
    it would clear the account's count and so tell a guesser that it was right.

    A flood of logins from one address all write one throttle row; each write
    runs in its own short transaction, and at most `slots` of them wait for that
    row at once, so waiting logins cannot take the connections that every
    protected request needs."""
    if hashing.saturated:
        raise HasherBusy  # shed before any database work
    # Never wait for a slot while holding a connection: slot holders may be
    # waiting for that very connection (SQLite has only one).
    await release_connection(db)
    async with slots:
        async with released_after(db):
            refused = None
            for i, counted in enumerate(keys):
                verdict = await reserve(db, counted.key, counted.limit)
                if not verdict.allowed:
                    for reserved in keys[:i]:
                        await settle(db, reserved.key, reserved.limit, failed=False)
                    refused = verdict
                    break
        if refused is not None:
            raise TooManyRequests(
                "Too many failed attempts; try again later"
                if refused.locked
                else "Too many attempts in progress; retry shortly",
                retry_after=refused.retry_after,
            )
    ok: bool | None
    try:
        ok = await hashing.verify(password_hash, password) and active
    except HasherBusy:
        ok = None  # shed without judging the password: the attempt does not count
    async with slots, released_after(db):
        for i, counted in enumerate(keys):
            locked = await settle(
                db, counted.key, counted.limit, failed=ok is False, forgive=bool(ok) and i == 0
            )
            if locked:
                await audit.record(
                    db,
                    action="auth.lockout",
                    target=counted.target,
                    ip=origin.ip,
                    detail={"by": counted.by},
                )
    if ok is None:
        raise HasherBusy
    return ok


async def count_signup(db: AsyncSession, *, settings: Settings, origin: RequestOrigin) -> None:
    """Every signup attempt counts against the address, successful or not (429
    past `signup_max_per_hour`)."""
    limit = Limit(
        max_attempts=settings.signup_max_per_hour, window_seconds=3600, lockout_seconds=3600
    )
    key = f"signup:{origin.ip}"
    async with released_after(db):
        verdict = await reserve(db, key, limit)
        if verdict.allowed:
            await settle(db, key, limit, failed=True)
    if not verdict.allowed:
        raise TooManyRequests("Too many signups from this address", retry_after=verdict.retry_after)
