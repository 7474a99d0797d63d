"""One async engine per process, one session per request, and the one helper
for flows that must give their connection back before slow work."""

import socket
from collections import defaultdict
from collections.abc import AsyncIterator, Callable, Coroutine, Iterable, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Annotated, Any, TypeVar, cast

from fastapi import Depends, Request, Response
from fastapi.routing import APIRoute
from sqlalchemy import CursorResult, Executable, event, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import Mapped
from sqlalchemy.pool import AsyncAdaptedQueuePool
from sqlmodel import SQLModel

from app.core.config import Settings, redacted


def create_engine(settings: Settings) -> AsyncEngine:
    """Build the engine with timeouts short enough that an outage answers 503 in time."""
    timeout = settings.db_timeout_seconds
    if settings.is_sqlite:
        path = settings.database_url.split(":///", 1)[-1]
        if path and path != ":memory:" and not path.startswith("file:"):
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        # SQLite allows one writer at a time; a single pooled connection serialises
        # this process's transactions instead of failing them with "database is
        # locked". PostgreSQL is the choice for concurrency and for more instances.
        engine = create_async_engine(
            settings.database_url,
            poolclass=AsyncAdaptedQueuePool,
            pool_size=1,
            max_overflow=0,
            pool_timeout=timeout * 2,
            connect_args={"timeout": timeout},
        )

        @event.listens_for(engine.sync_engine, "connect")
        def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute(f"PRAGMA busy_timeout={int(timeout * 1000)}")
            cursor.close()

        return engine
    return create_async_engine(
        settings.database_url,
        pool_size=settings.db_pool_size,
        max_overflow=settings.db_pool_size,
        pool_timeout=timeout,
        pool_recycle=1800,
        connect_args={
            "timeout": timeout,
            "command_timeout": timeout,
            "server_settings": {
                "application_name": "gatehouse",
                # asyncpg prepares every statement; after five runs PostgreSQL may
                # switch to a generic plan, which for `username_key LIKE $1` scans
                # the whole table instead of the prefix index (25 ms vs 0.1 ms at
                # 100k accounts). Our statements are small: plan each with its values.
                "plan_cache_mode": "force_custom_plan",
            },
        },
    )


def create_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False, autoflush=False)


_SESSION = "gatehouse.db"  # the request's session, in its ASGI scope, once opened
_TRANSACTIONAL = "gatehouse.transactional"  # set by TransactionalRoute around the route


async def get_db(request: Request) -> AsyncSession:
    """The request's session. Opened on first use and made durable by
    `TransactionalRoute` when the route returns (rolled back when it raises):
    services only flush. A session costs no connection until its first
    statement, and a request that never asks for one (a protected read whose
    token check runs on the read path, `read_rows`) pays nothing for it."""
    scope = request.scope
    db: AsyncSession | None = scope.get(_SESSION)
    if db is None:
        if _TRANSACTIONAL not in scope:
            # A route outside `TransactionalRoute` would never commit nor give its
            # connection back: refuse loudly rather than lose writes.
            raise RuntimeError(
                f"{scope.get('path')}: its router needs route_class=TransactionalRoute"
            )
        db = scope[_SESSION] = request.app.state.sessionmaker()
    return db


DbSession = Annotated[AsyncSession, Depends(get_db)]


class TransactionalRoute(APIRoute):
    """A route whose request session commits when the endpoint returns and rolls
    back when anything raises, before the response is sent: a client never sees
    success for a change that then fails to commit. Done here rather than in a
    `yield` dependency, which FastAPI runs in an exit stack with a shielded
    cancel scope on every request, whether or not the request touches the
    database (issue 15's profile)."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handle = super().get_route_handler()

        async def handle_in_transaction(request: Request) -> Response:
            scope = request.scope
            scope[_TRANSACTIONAL] = True
            try:
                response = await handle(request)
            except BaseException:
                db: AsyncSession | None = scope.pop(_SESSION, None)
                if db is not None:
                    await db.rollback()
                    await db.close()
                raise
            db = scope.pop(_SESSION, None)
            if db is not None:
                try:
                    await db.commit()
                except BaseException:
                    await db.rollback()
                    raise
                finally:
                    await db.close()
            return response

        return handle_in_transaction


async def inserted(db: AsyncSession, row: SQLModel) -> bool:
    """Insert `row` in a savepoint; False when a unique key already holds it.
    The database decides, so of two racing inserts exactly one wins, and the
    loser's transaction carries on."""
    try:
        async with db.begin_nested():
            db.add(row)
            await db.flush()
    except IntegrityError:
        return False
    return True


async def affected(
    db: AsyncSession, statement: Executable, params: dict[str, Any] | None = None
) -> int:
    """How many rows an UPDATE, DELETE or INSERT ... SELECT changed. The
    conditional writes that carry an atomic rule ("only while still unused",
    "only over the hash that was verified") are answered by this count: the
    database decides which of two racing requests wins."""
    result = cast("CursorResult[Any]", await db.execute(statement, params))
    return int(result.rowcount or 0)


K = TypeVar("K")
V = TypeVar("V")


async def grouped(
    db: AsyncSession, key: Mapped[K], value: Mapped[V], keys: Iterable[K]
) -> defaultdict[K, list[V]]:
    """{key: [value, ...]} for the rows whose `key` is one of `keys`, values in
    order: each role's scopes, each client's roles. A key without rows reads as
    an empty list."""
    found: defaultdict[K, list[V]] = defaultdict(list)
    for k, v in await db.execute(select(key, value).where(key.in_(keys)).order_by(value)):
        found[k].append(v)
    return found


async def read_rows(
    db: AsyncSession, statement: Executable, params: dict[str, Any]
) -> list[Sequence[Any]]:
    """The rows of one read-only Core statement, as tuples (no ORM unit of work,
    no objects). On PostgreSQL, when the request has no transaction open yet, on
    a pooled connection in autocommit: a request that only reads, such as most
    protected GETs, then pays no BEGIN and COMMIT round trips around its one
    statement (a single statement sees one snapshot either way). Otherwise in the
    request's transaction: its connection is already held, and SQLite's pool has
    only that one (where BEGIN costs no round trip)."""
    engine = db.bind
    if (
        db.in_transaction()
        or not isinstance(engine, AsyncEngine)
        or engine.dialect.name != "postgresql"
    ):
        return list((await db.execute(statement, params)).all())
    async with engine.connect() as connection:
        await connection.execution_options(isolation_level="AUTOCOMMIT")
        return list((await connection.execute(statement, params)).all())


async def release_connection(db: AsyncSession) -> None:
    """End the request's open transaction (reads only, by then) so its connection
    goes back to the pool before a slow step; see `released_after`."""
    await db.commit()


@asynccontextmanager
async def released_after(db: AsyncSession) -> AsyncIterator[None]:
    """Run the block in a transaction of its own and commit it at once, so the
    connection goes back to the pool when the block ends.

    For the flows that check or hash a password (login, signup, password change,
    account creation): argon2 takes a quarter of a second on purpose, and a burst
    of logins holding connections meanwhile would drain the pool that every
    protected request needs (SQLite has a single connection). Whatever the request
    had open before is committed first; what the block writes is kept even when
    the flow then fails (a counted failure, a lockout, an audit entry of a reused
    token), because the error raised afterwards rolls back only later work. No
    other code commits."""
    await release_connection(db)
    try:
        yield
    except BaseException:
        await db.rollback()
        raise
    await db.commit()


def unreachable(exc: BaseException, database_url: str) -> str:
    """One line saying why the database at `database_url` cannot be used, naming
    it without its password: what an operator needs instead of a driver traceback."""
    cause: BaseException = exc.orig if isinstance(exc, DBAPIError) and exc.orig else exc
    reason = " ".join(str(cause).split()) or type(cause).__name__
    if isinstance(cause, ConnectionRefusedError) or "Connect call failed" in reason:
        reason = "connection refused (is the server running, and on that host and port?)"
    elif isinstance(cause, socket.gaierror):
        reason = "unknown host"
    elif isinstance(cause, TimeoutError):
        reason = "no answer in time"
    url = make_url(database_url)
    if "does not exist" in reason and "database" in reason:
        reason += f" (create it first: createdb {url.database})"
    return f"GATEHOUSE_DATABASE_URL: cannot use the database at {redacted(url)}: {reason[:300]}"


async def database_problem(settings: Settings) -> str | None:
    """Connect once and run `SELECT 1`: None when the database answers, else the
    line from `unreachable`."""
    engine = create_engine(settings)
    try:
        async with engine.connect() as connection:
            await connection.execute(text("SELECT 1"))
    except (OSError, TimeoutError, DBAPIError) as exc:
        return unreachable(exc, settings.database_url)
    finally:
        await engine.dispose()
    return None
