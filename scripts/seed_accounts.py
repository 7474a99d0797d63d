"""Seed N accounts fast for benchmarks: `python -m scripts.seed_accounts N [--password P]`.

Writes to GATEHOUSE_DATABASE_URL (SQLite or PostgreSQL). Accounts are named
`bench_000001`, `bench_000002`, ... continuing after the highest `bench_` name
already present, and hold the `user` role. Argon2 makes hashing each password
cost a quarter of a second on purpose, so the password is hashed ONCE with the
app's own hasher and parameters and that hash is shared by every account; rows
then go in with bulk core INSERTs, a batch per transaction. No audit events are
written: this is a load fixture, not a sign-up path. It refuses a production
configuration unless told otherwise.
"""

import argparse
import asyncio
import sys
import time
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, insert, select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from app.accounts.usernames import key as username_key
from app.authz.catalogue import USER_ROLE
from app.core.config import Settings
from app.core.db import create_engine
from app.core.models import utcnow, uuid7
from app.crypto.passwords import PasswordHasher
from app.tables import Account, AccountRole

PREFIX = "bench_"
WIDTH = 6
MAX_NUMBER = 10**WIDTH - 1
DEFAULT_PASSWORD = "gatehouse-bench-password"  # noqa: S105 - a known fixture password, on purpose
BATCH = 5_000

ACCOUNT = Account.__table__  # type: ignore[attr-defined]
ACCOUNT_ROLE = AccountRole.__table__  # type: ignore[attr-defined]


@dataclass(frozen=True, slots=True)
class SeedResult:
    first: int
    last: int
    hash_seconds: float
    insert_seconds: float

    @property
    def count(self) -> int:
        return self.last - self.first + 1


def bench_username(number: int) -> str:
    return f"{PREFIX}{number:0{WIDTH}d}"


async def password_hash(settings: Settings, password: str) -> str:
    """One hash with exactly the parameters the service itself uses."""
    hasher = PasswordHasher(
        time_cost=settings.argon2_time_cost,
        memory_kib=settings.argon2_memory_kib,
        parallelism=settings.argon2_parallelism,
        workers=1,
        queue_limit=0,
    )
    try:
        return await hasher.hash(password)
    finally:
        hasher.close()


async def _next_number(conn: AsyncConnection) -> int:
    # Names are zero-padded to a fixed width, so the greatest string in the numbered
    # range is the greatest number (and `bench_admin` and the like fall outside it).
    highest = await conn.scalar(
        select(func.max(ACCOUNT.c.username)).where(
            ACCOUNT.c.username.between(bench_username(0), bench_username(MAX_NUMBER))
        )
    )
    if highest is None:
        return 1
    try:
        return int(highest.removeprefix(PREFIX)) + 1
    except ValueError:
        return 1


def _rows(first: int, last: int, hashed: str) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    now = utcnow()
    accounts: list[dict[str, Any]] = []
    links: list[dict[str, Any]] = []
    for number in range(first, last + 1):
        account_id = uuid7()
        name = bench_username(number)
        accounts.append(
            {
                "id": account_id,
                "username": name,
                "username_key": username_key(name),
                "email": None,
                "email_key": None,
                "password_hash": hashed,
                "is_active": True,
                "authz_version": 1,
                "created_at": now,
                "updated_at": now,
            }
        )
        links.append({"account_id": account_id, "role_name": USER_ROLE})
    return accounts, links


async def seed(
    engine: AsyncEngine,
    settings: Settings,
    count: int,
    *,
    password: str = DEFAULT_PASSWORD,
    start: int | None = None,
    batch: int = BATCH,
) -> SeedResult:
    """Insert `count` accounts sharing one hash of `password`; returns what was made."""
    if count < 1:
        raise ValueError("count must be at least 1")
    began = time.perf_counter()
    hashed = await password_hash(settings, password)
    hashed_at = time.perf_counter()
    async with engine.connect() as conn:
        first = start if start is not None else await _next_number(conn)
    last = first + count - 1
    if last > MAX_NUMBER:
        raise ValueError(f"{bench_username(first)}..{last} would pass {bench_username(MAX_NUMBER)}")
    for low in range(first, last + 1, batch):
        high = min(low + batch - 1, last)
        accounts, links = _rows(low, high, hashed)
        async with engine.begin() as conn:
            await conn.execute(insert(ACCOUNT), accounts)
            await conn.execute(insert(ACCOUNT_ROLE), links)
    if engine.dialect.name == "postgresql":
        # Fresh statistics, so the planner sees the table as it now is rather than
        # waiting for autovacuum: benchmarks right after seeding measure steady state.
        async with engine.connect() as conn:
            conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
            await conn.execute(text("ANALYZE account"))
            await conn.execute(text("ANALYZE account_role"))
    return SeedResult(first, last, hashed_at - began, time.perf_counter() - hashed_at)


async def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("count", type=int, help="how many accounts to add")
    parser.add_argument("--password", default=DEFAULT_PASSWORD, help="every account's password")
    parser.add_argument("--start", type=int, help="first number (default: after the last one)")
    parser.add_argument("--batch", type=int, default=BATCH, help="rows per INSERT transaction")
    parser.add_argument(
        "--allow-production", action="store_true", help="seed even with GATEHOUSE_ENV=production"
    )
    args = parser.parse_args(argv)
    settings = Settings()
    if settings.is_production and not args.allow_production:
        print("refusing to seed a production database (pass --allow-production)", file=sys.stderr)
        return 2
    engine = create_engine(settings)
    try:
        result = await seed(
            engine,
            settings,
            args.count,
            password=args.password,
            start=args.start,
            batch=args.batch,
        )
    except ValueError as exc:
        print(f"seed_accounts: {exc}", file=sys.stderr)
        return 2
    except IntegrityError:
        print(
            "seed_accounts: some of those usernames exist already; choose another --start",
            file=sys.stderr,
        )
        return 2
    finally:
        await engine.dispose()
    total = result.hash_seconds + result.insert_seconds
    print(
        f"seeded {result.count} accounts {bench_username(result.first)}..."
        f"{bench_username(result.last)} in {total:.2f} s "
        f"(hash {result.hash_seconds:.2f} s, insert {result.insert_seconds:.2f} s, "
        f"{result.count / result.insert_seconds:,.0f} rows/s) on {engine.dialect.name}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
