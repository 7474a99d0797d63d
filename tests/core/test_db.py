"""`inserted`: the unique key decides, and losing leaves the transaction usable."""

import uuid

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import async_sessionmaker, create_async_engine
from sqlmodel import col

from app.core.db import inserted
from app.roles.models import Scope


async def test_a_second_row_with_a_taken_key_is_refused_and_the_transaction_carries_on(
    database_url: str,
) -> None:
    engine = create_async_engine(database_url)
    name = f"test:{uuid.uuid4().hex[:8]}"
    try:
        # Never committed: closing the session rolls everything back.
        async with async_sessionmaker(engine)() as db:
            assert await inserted(db, Scope(name=name, description="first"))
            assert not await inserted(db, Scope(name=name, description="second"))
            assert await inserted(db, Scope(name=f"{name}:other"))
            stored = await db.scalars(select(col(Scope.description)).where(col(Scope.name) == name))
            assert stored.all() == ["first"]
            count = await db.scalar(select(func.count()).where(col(Scope.name).startswith(name)))
            assert count == 2
    finally:
        await engine.dispose()
