"""`gatehouse rotate-key`, run the way `make rotate-key` runs it (as
`python -m app.cli`, the same entry point without relying on the venv's bin/)."""

import os
import subprocess
import sys
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import create_async_engine

from app.core.models import utcnow
from tests.conftest import ROOT, TEST_SECRET, AppFactory, app_state
from tests.factories import bearer, create_user
from tests.signing_keys.forgery import header_of
from tests.signing_keys.keyset import TABLE, restore_signing_keys, set_retire_at

__all__ = ["restore_signing_keys"]
pytestmark = pytest.mark.usefixtures("restore_signing_keys")


def rotate_key(
    database_url: str, tmp_path: Path, *args: str, secret: str = TEST_SECRET
) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "GATEHOUSE_DATABASE_URL": database_url,
        "GATEHOUSE_SECRET_KEY": secret,
        "GATEHOUSE_DATA_DIR": str(tmp_path / "data"),
    }
    return subprocess.run(
        [sys.executable, "-m", "app.cli", "rotate-key", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


async def kids(database_url: str) -> dict[str, datetime | None]:
    engine = create_async_engine(database_url)
    async with engine.connect() as conn:
        rows = (await conn.execute(select(TABLE.c.kid, TABLE.c.retire_at))).all()
    await engine.dispose()
    return dict(rows)


async def test_rotate_key_prints_the_new_kid_and_old_keys_retirement(
    make_client: AppFactory, database_url: str, tmp_path: Path
) -> None:
    async with make_client() as client:
        old_kid = app_state(client).keyring.signer.kid
    result = rotate_key(database_url, tmp_path)
    assert result.returncode == 0, result.stderr
    new_kid = result.stdout.split("kid=", 1)[1].split()[0]
    assert new_kid in await kids(database_url)
    assert f"{old_kid} (RS256) verifies until " in result.stdout


async def test_rotate_key_prints_no_key_material_or_secret(
    make_client: AppFactory, database_url: str, tmp_path: Path
) -> None:
    async with make_client():
        pass
    result = rotate_key(database_url, tmp_path)
    assert result.returncode == 0, result.stderr
    output = result.stdout + result.stderr
    assert "PRIVATE" not in output
    assert TEST_SECRET not in output
    assert "v1." not in output


async def test_key_made_by_rotate_key_signs_for_the_service(
    make_client: AppFactory, database_url: str, tmp_path: Path
) -> None:
    async with make_client() as client:
        account, before = await create_user(client)
    result = rotate_key(database_url, tmp_path)
    new_kid = result.stdout.split("kid=", 1)[1].split()[0]
    async with make_client() as client:
        account, after = await create_user(client)
        old_still_valid = await client.get("/accounts/me", headers=bearer(before["access_token"]))
    assert header_of(after["access_token"])["kid"] == new_kid
    assert old_still_valid.status_code == 200


async def test_rotate_key_refuses_a_secret_that_opens_no_live_key(
    make_client: AppFactory, database_url: str, tmp_path: Path
) -> None:
    async with make_client():
        pass
    before = await kids(database_url)
    result = rotate_key(database_url, tmp_path, secret="not-the-service-secret-" + "q" * 20)
    assert result.returncode == 1
    assert "GATEHOUSE_SECRET_KEY" in result.stderr
    assert await kids(database_url) == before


async def test_retire_expired_deletes_only_keys_past_their_retirement(
    make_client: AppFactory, database_url: str, tmp_path: Path
) -> None:
    async with make_client() as client:
        current = app_state(client).keyring.signer.kid
    first = rotate_key(database_url, tmp_path)
    retiring = first.stdout.split("kid=", 1)[1].split()[0]
    rotate_key(database_url, tmp_path)
    await set_retire_at(database_url, current, utcnow() - timedelta(seconds=1))
    result = rotate_key(database_url, tmp_path, "--retire-expired")
    assert result.returncode == 0, result.stderr
    remaining = await kids(database_url)
    assert current not in remaining
    retiring_at = remaining[retiring]
    assert retiring_at is not None and retiring_at > utcnow()
    assert current in result.stdout.split("Deleted", 1)[1]
