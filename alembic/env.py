"""Async migrations against GATEHOUSE_DATABASE_URL (or the URL a caller sets).

A configuration problem stops with one line per problem and exit code 2, an
unreachable database with one line and exit code 1: no traceback either way.
"""

import asyncio
import sys

from alembic import context
from sqlalchemy import pool
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import create_async_engine

from app.core.config import settings_or_exit
from app.core.db import unreachable
from app.tables import SQLModel

config = context.config
target_metadata = SQLModel.metadata


def _url() -> str:
    return config.get_main_option("sqlalchemy.url") or settings_or_exit().database_url


def _configure(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        compare_type=True,
        render_as_batch=connection.dialect.name == "sqlite",
    )


def run_migrations_offline() -> None:
    context.configure(url=_url(), target_metadata=target_metadata, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()


def _run_sync(connection: Connection) -> None:
    _configure(connection)
    with context.begin_transaction():
        context.run_migrations()


async def run_migrations_online() -> None:
    url = _url()
    if url.startswith("sqlite"):
        from pathlib import Path

        path = url.split(":///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
    engine = create_async_engine(url, poolclass=pool.NullPool)
    try:
        connection = await engine.connect()
    except (OSError, TimeoutError, DBAPIError) as exc:
        await engine.dispose()
        print(unreachable(exc, url), file=sys.stderr)
        raise SystemExit(1) from None
    try:
        await connection.run_sync(_run_sync)
    finally:
        await connection.close()
        await engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    connectable = config.attributes.get("connection")
    if connectable is not None:
        _run_sync(connectable)
    else:
        asyncio.run(run_migrations_online())
