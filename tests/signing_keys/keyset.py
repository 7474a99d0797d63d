"""The `signing_key` table as the tests see it: read a row, retire a key, and put
the whole table back after a test that rotates or switches algorithm."""

from collections.abc import AsyncIterator
from datetime import datetime

import pytest
from sqlalchemy import delete, insert, select, update
from sqlalchemy.ext.asyncio import async_sessionmaker, create_async_engine

from app.crypto.sealing import decrypt_private_key
from app.tables import SigningKey
from tests.conftest import TEST_SECRET

TABLE = SigningKey.__table__  # type: ignore[attr-defined]


async def stored_key(database_url: str, kid: str) -> SigningKey:
    """The row as stored, read straight from the database."""
    engine = create_async_engine(database_url)
    try:
        async with async_sessionmaker(engine)() as session:
            row = await session.get(SigningKey, kid)
    finally:
        await engine.dispose()
    assert row is not None, kid
    return row


async def private_pem(database_url: str, kid: str) -> bytes:
    """The real private key of `kid`, decrypted the way the service does."""
    row = await stored_key(database_url, kid)
    return decrypt_private_key(TEST_SECRET.encode(), kid, row.private_key)


async def set_retire_at(database_url: str, kid: str, when: datetime) -> None:
    engine = create_async_engine(database_url)
    try:
        async with engine.begin() as conn:
            await conn.execute(update(TABLE).where(TABLE.c.kid == kid).values(retire_at=when))
    finally:
        await engine.dispose()


@pytest.fixture
async def restore_signing_keys(database_url: str) -> AsyncIterator[None]:
    """Keys outlive the per-test reset, and every app start parses each live key
    (~30 ms for RSA): tests that create keys put the table back as they found it."""
    engine = create_async_engine(database_url)
    async with engine.connect() as conn:
        saved = [dict(row._mapping) for row in await conn.execute(select(TABLE))]
    yield
    async with engine.begin() as conn:
        await conn.execute(delete(TABLE))
        if saved:
            await conn.execute(insert(TABLE), saved)
    await engine.dispose()
