"""Instances starting together on an empty key table agree on one first key."""

import asyncio
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import func, select

from app.core.db import create_engine, create_sessionmaker
from app.signing_keys.service import KeyRing
from app.tables import SigningKey
from tests.conftest import make_settings, migrate


@pytest.fixture
def fresh_pg_url(pg_database_factory: Callable[[], str]) -> str:
    url = pg_database_factory()
    migrate(url)
    return url


async def test_instances_starting_together_create_one_first_key(
    fresh_pg_url: str, tmp_path: Path
) -> None:
    settings = make_settings(fresh_pg_url, tmp_path)
    engines = [create_engine(settings) for _ in range(4)]
    rings = [KeyRing(settings, create_sessionmaker(engine)) for engine in engines]
    try:
        await asyncio.gather(*(ring.start() for ring in rings))
        async with create_sessionmaker(engines[0])() as session:
            count = await session.scalar(select(func.count()).select_from(SigningKey))
        assert count == 1
        assert len({ring.signer.kid for ring in rings}) == 1
    finally:
        for ring in rings:
            await ring.stop()
        for engine in engines:
            await engine.dispose()
