"""One async engine per process, one session per request, and the one helper
for flows that must give their connection back before slow work."""

import asyncio
import socket
from collections import defaultdict
from collections.abc import AsyncIterator, Callable, Coroutine, Iterable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Annotated, Any, TypeVar, cast

import asyncpg
from fastapi import Depends, Request, Response
from fastapi.routing import APIRoute, APIRouter
from sqlalchemy import (
    ClauseElement,
    ColumnElement,
    CursorResult,
    Executable,
    Select,
    event,
    select,
    text,
)
from sqlalchemy.dialects.postgresql.asyncpg import PGDialect_asyncpg
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import Mapped
from sqlalchemy.pool import AsyncAdaptedQueuePool
from sqlalchemy.sql.compiler import SQLCompiler
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
        connect_args=_asyncpg_options(settings, plan_cache_mode="force_custom_plan"),
    )


def _asyncpg_options(settings: Settings, *, plan_cache_mode: str) -> dict[str, Any]:
    timeout = settings.db_timeout_seconds
    return {
        "timeout": timeout,
        "command_timeout": timeout,
        "server_settings": {"application_name": "gatehouse", "plan_cache_mode": plan_cache_mode},
    }


# asyncpg prepares every statement; after five runs PostgreSQL may switch to a
# generic plan, which for `username_key LIKE $1` scans the whole table instead of
# the prefix index (25 ms vs 0.1 ms at 100k accounts). The ORM's statements are
# small: the engine's connections plan each with its values. The read path's are
# lookups by primary or unique key, where the generic plan is the same plan, so
# its connections keep PostgreSQL's default and skip planning on every request.
READS = "gatehouse.reads"  # the session's `info` key of its `ReadPath`


def create_sessionmaker(
    engine: AsyncEngine, reads: "ReadPath | None" = None
) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(
        engine, expire_on_commit=False, autoflush=False, info={READS: reads} if reads else None
    )


@dataclass(frozen=True, slots=True)
class _Compiled:
    """A Core statement rendered once for asyncpg: its SQL, the order of its
    parameters, and SQLAlchemy's type processing for them and for its columns."""

    statement: Executable  # kept alive, so the `id` it is found by stays its own
    sql: str
    names: tuple[str, ...]
    binds: tuple[Callable[[Any], Any] | None, ...]
    results: tuple[Callable[[Any], Any] | None, ...]


class ReadPath:
    """The path of the hot requests' statements on PostgreSQL: one statement at a
    time (a read, or a write that is a whole change, see `write_alone`), on a
    connection of asyncpg's own pool, in autocommit, with no SQLAlchemy
    connection, transaction or result objects around it.

    A protected request's token check, a refresh token's lookup and a client's
    authentication each run one such statement; through the ORM session they
    cost a pool checkout, BEGIN and COMMIT round trips and SQLAlchemy's
    execution machinery, several times the statement itself (issue 15's
    profile). The statements stay SQLAlchemy Core, written once in their
    service: this class compiles each for the dialect on first use and applies
    the same type processing SQLAlchemy would. A single statement sees one
    snapshot, so autocommit reads exactly what a transaction would.

    Its pool is opened on first use and holds up to `GATEHOUSE_DB_POOL_SIZE`
    connections, next to the engine's."""

    def __init__(self, engine: AsyncEngine, settings: Settings):
        self._engine = engine
        self._settings = settings
        self._pool: asyncpg.Pool | None = None
        self._opening = asyncio.Lock()
        self._compiled: dict[int, _Compiled] = {}

    async def _connections(self) -> asyncpg.Pool:
        async with self._opening:
            if self._pool is None:
                dialect = self._engine.dialect
                _, options = dialect.create_connect_args(self._engine.url)
                options.update(_asyncpg_options(self._settings, plan_cache_mode="auto"))
                self._pool = await asyncpg.create_pool(
                    min_size=0,
                    max_size=self._settings.db_pool_size,
                    init=self._decode_like_sqlalchemy,
                    reset=_nothing_to_reset,
                    **options,
                )
            return self._pool

    async def _decode_like_sqlalchemy(self, connection: asyncpg.Connection) -> None:
        """The JSON codecs SQLAlchemy's dialect installs on its own connections
        (asyncpg returns JSON as text otherwise), installed by that very code."""
        dialect = cast(PGDialect_asyncpg, self._engine.dialect)
        adapted = SimpleNamespace(_connection=connection)
        await dialect.setup_asyncpg_json_codec(adapted)  # type: ignore[no-untyped-call]
        await dialect.setup_asyncpg_jsonb_codec(adapted)  # type: ignore[no-untyped-call]

    def _compile(self, statement: Executable) -> _Compiled:
        dialect = self._engine.dialect
        if not isinstance(statement, ClauseElement):
            raise TypeError(f"not a Core statement: {statement!r}")
        compiled = cast(SQLCompiler, statement.compile(dialect=dialect))
        sql = compiled.string
        literal = {compiled.bind_names[b]: b for b in compiled.literal_execute_params}
        for name, bind in literal.items():  # constants such as a separator
            rendered = compiled.render_literal_value(bind.value, bind.type)
            sql = sql.replace(f"__[POSTCOMPILE_{name}]", rendered)
        names = tuple(n for n in compiled.positiontup or () if n not in literal)
        processors = compiled._bind_processors  # noqa: SLF001 - SQLAlchemy's own typing
        columns: Sequence[ColumnElement[Any]] = (
            list(statement.selected_columns) if isinstance(statement, Select) else []
        )
        return _Compiled(
            statement=statement,
            sql=sql,
            names=names,
            binds=tuple(_single(processors.get(n)) for n in names),
            results=tuple(c.type._cached_result_processor(dialect, None) for c in columns),  # noqa: SLF001
        )

    async def rows(self, statement: Executable, params: dict[str, Any]) -> list[Sequence[Any]]:
        compiled = self._compiled.get(id(statement))
        if compiled is None or compiled.statement is not statement:
            compiled = self._compiled[id(statement)] = self._compile(statement)
        args = [
            params[name] if process is None else process(params[name])
            for name, process in zip(compiled.names, compiled.binds, strict=True)
        ]
        pool = self._pool or await self._connections()
        try:
            async with pool.acquire() as connection:
                records = await connection.fetch(compiled.sql, *args)
        except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError) as exc:
            raise _as_sqlalchemy_error(compiled.sql, exc) from exc
        results = compiled.results
        if not any(results):
            return cast("list[Sequence[Any]]", records)
        return [
            tuple(v if p is None else p(v) for v, p in zip(record, results, strict=True))
            for record in records
        ]

    async def close(self) -> None:
        if self._pool is not None:
            await self._pool.close()


async def _nothing_to_reset(_connection: asyncpg.Connection) -> None:
    """asyncpg's default reset runs `RESET ALL`, `UNLISTEN *`, `CLOSE ALL` and an
    advisory unlock on every release, a round trip per request. The read path
    sets nothing that outlives its one statement (autocommit, no SET, no cursor,
    no lock, no LISTEN), so there is nothing to undo. The pool still closes a
    broken connection and rolls back an open transaction before calling this."""


def _single(processor: object) -> Callable[[Any], Any] | None:
    if processor is None or callable(processor):
        return processor
    raise TypeError("tuple-typed parameters are not on the read path")


# SQLSTATE classes of a connection that failed or a server that refuses work for
# now (08 connection exception, 53 insufficient resources, 57 operator intervention).
_UNAVAILABLE = ("08", "53", "57")


def _as_sqlalchemy_error(sql: str, exc: Exception) -> DBAPIError:
    """The error SQLAlchemy would raise, so the one set of handlers in
    `core.errors` answers 503 for an outage and 422 for refused input alike on
    both paths."""
    sqlstate = str(getattr(exc, "sqlstate", "") or "")
    if not isinstance(exc, asyncpg.PostgresError) or sqlstate.startswith(_UNAVAILABLE):
        return OperationalError(sql, None, exc, connection_invalidated=True)
    return DBAPIError(sql, None, exc)


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
                " (see transactional_router)"
            )
        db = scope[_SESSION] = request.app.state.sessionmaker()
    return db


DbSession = Annotated[AsyncSession, Depends(get_db)]


async def _end(db: AsyncSession | None, *, commit: bool) -> None:
    """Commit or roll back the request's session. One that holds no transaction
    (never used, or its work already committed by `released_after`) holds no
    connection either, and is simply dropped."""
    if db is None or not db.in_transaction():
        return
    try:
        if commit:
            await db.commit()
        else:
            await db.rollback()
    except BaseException:
        await db.rollback()
        raise
    finally:
        await db.close()


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
                await _end(scope.pop(_SESSION, None), commit=False)
                raise
            await _end(scope.pop(_SESSION, None), commit=True)
            return response

        return handle_in_transaction


def transactional_router(prefix: str = "", *, tag: str, **options: Any) -> APIRouter:
    """A router whose routes are `TransactionalRoute`s: every router of the app."""
    return APIRouter(prefix=prefix, tags=[tag], route_class=TransactionalRoute, **options)


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
    the `ReadPath`: a request that only reads, such as most protected GETs, then
    pays no BEGIN and COMMIT round trips around its one statement. Otherwise in
    the request's transaction: its connection is already held, and SQLite's pool
    has only that one (where BEGIN costs no round trip)."""
    reads: ReadPath | None = db.info.get(READS)
    if reads is None or db.in_transaction():
        return list((await db.execute(statement, params)).all())
    return await reads.rows(statement, params)


@dataclass(frozen=True, slots=True)
class Written:
    rows: list[Sequence[Any]]
    committed: bool  # durable already, rather than with the request's transaction


async def write_alone(db: AsyncSession, statement: Executable, params: dict[str, Any]) -> Written:
    """One write that is a whole change by itself (a refresh token's rotation, the
    audit entry of a client's token), with its RETURNING rows. Like `read_rows`:
    on PostgreSQL, when the request has no transaction open, it runs on the
    `ReadPath` in autocommit and is durable at once (a single statement is
    atomic); otherwise it joins the request's transaction and commits with it.
    Only for the last write of a request: a later failure cannot take it back."""
    reads: ReadPath | None = db.info.get(READS)
    if reads is None or db.in_transaction():
        result = cast("CursorResult[Any]", await db.execute(statement, params))
        return Written(list(result.all()) if result.returns_rows else [], committed=False)
    return Written(await reads.rows(statement, params), committed=True)


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
