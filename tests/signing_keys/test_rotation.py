"""Key rotation without downtime, on one instance and across instances sharing a database."""

import asyncio
import os
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import httpx
import pytest

from app.core.models import utcnow
from app.signing_keys.service import create_key
from tests.conftest import ROOT, TEST_SECRET, AppFactory, app_state
from tests.factories import PASSWORD, bearer, create_user, login
from tests.servers import serve
from tests.signing_keys.forgery import header_of
from tests.signing_keys.keyset import set_retire_at, stored_key

pytestmark = pytest.mark.usefixtures("restore_signing_keys")


async def rotate(client: httpx.AsyncClient) -> str:
    """What `make rotate-key` does, then this instance's reload."""
    state = app_state(client)
    async with state.sessionmaker() as session, session.begin():
        key = await create_key(session, state.settings)
    await state.keyring.reload()
    return key.kid


async def published_kids(client: httpx.AsyncClient) -> set[str]:
    return {k["kid"] for k in (await client.get("/.well-known/jwks.json")).json()["keys"]}


async def test_token_signed_before_a_rotation_still_verifies_after_it(
    client: httpx.AsyncClient,
) -> None:
    account, before = await create_user(client)
    await rotate(client)
    response = await client.get("/accounts/me", headers=bearer(before["access_token"]))
    assert response.status_code == 200


async def test_tokens_issued_after_a_rotation_carry_the_new_kid(client: httpx.AsyncClient) -> None:
    account, before = await create_user(client)
    new_kid = await rotate(client)
    after = await login(client, account["username"])
    assert header_of(after["access_token"])["kid"] == new_kid
    assert header_of(before["access_token"])["kid"] != new_kid
    me = await client.get("/accounts/me", headers=bearer(after["access_token"]))
    assert me.status_code == 200


async def test_jwks_publishes_old_and_new_keys_until_the_old_one_retires(
    client: httpx.AsyncClient, database_url: str
) -> None:
    old_kid = app_state(client).keyring.signer.kid
    new_kid = await rotate(client)
    assert {old_kid, new_kid} <= await published_kids(client)
    old_retires_at = (await stored_key(database_url, old_kid)).retire_at
    assert old_retires_at is not None and old_retires_at > utcnow()
    assert (await stored_key(database_url, new_kid)).retire_at is None


async def test_old_key_retires_only_after_its_last_tokens_can_have_expired(
    client: httpx.AsyncClient, database_url: str
) -> None:
    # Other instances sign with the old key until their next refresh; those
    # tokens must stay valid for their whole lifetime.
    settings = app_state(client).settings
    old_kid = app_state(client).keyring.signer.kid
    rotated_at = utcnow()
    await rotate(client)
    retire_at = (await stored_key(database_url, old_kid)).retire_at
    last_token_expiry = rotated_at + timedelta(
        seconds=settings.access_token_ttl_seconds + settings.key_refresh_seconds
    )
    assert retire_at is not None and retire_at >= last_token_expiry


async def test_retired_key_no_longer_verifies(client: httpx.AsyncClient, database_url: str) -> None:
    account, before = await create_user(client)
    old_kid = header_of(before["access_token"])["kid"]
    await rotate(client)
    await set_retire_at(database_url, old_kid, utcnow() - timedelta(seconds=1))
    await app_state(client).keyring.reload()
    response = await client.get("/accounts/me", headers=bearer(before["access_token"]))
    assert response.status_code == 401
    assert 'error="invalid_token"' in response.headers["www-authenticate"]


async def test_retired_key_is_no_longer_published(
    client: httpx.AsyncClient, database_url: str
) -> None:
    old_kid = app_state(client).keyring.signer.kid
    new_kid = await rotate(client)
    await set_retire_at(database_url, old_kid, utcnow() - timedelta(seconds=1))
    await app_state(client).keyring.reload()
    kids = await published_kids(client)
    assert old_kid not in kids
    assert new_kid in kids


async def test_key_passing_its_retirement_time_stops_verifying_without_a_reload(
    client: httpx.AsyncClient, database_url: str
) -> None:
    account, before = await create_user(client)
    old_kid = header_of(before["access_token"])["kid"]
    await rotate(client)
    await set_retire_at(database_url, old_kid, utcnow() + timedelta(seconds=1))
    await app_state(client).keyring.reload()
    assert old_kid in await published_kids(client)
    await asyncio.sleep(1.1)
    response = await client.get("/accounts/me", headers=bearer(before["access_token"]))
    assert response.status_code == 401
    assert old_kid not in await published_kids(client)


async def test_second_instance_accepts_a_token_from_a_key_created_after_it_started(
    make_client: AppFactory,
) -> None:
    async with make_client() as a, make_client(key_refresh_seconds=3600) as b:
        old_kid = app_state(b).keyring.signer.kid
        account, before = await create_user(a)
        new_kid = await rotate(a)
        after = await login(a, account["username"])
        assert header_of(after["access_token"])["kid"] == new_kid != old_kid
        # b has not refreshed (hourly); the unknown kid makes it reload once
        new_token = await b.get("/accounts/me", headers=bearer(after["access_token"]))
        old_token = await b.get("/accounts/me", headers=bearer(before["access_token"]))
        kids = await published_kids(b)
    assert new_token.status_code == 200
    assert old_token.status_code == 200
    assert {old_kid, new_kid} <= kids


async def test_second_instance_signs_with_the_new_key_after_its_periodic_refresh(
    make_client: AppFactory,
) -> None:
    async with make_client() as a, make_client(key_refresh_seconds=0.5) as b:
        account, _ = await create_user(b)
        new_kid = await rotate(a)
        deadline = time.monotonic() + 5
        kid = None
        while time.monotonic() < deadline:
            kid = header_of((await login(b, account["username"]))["access_token"])["kid"]
            if kid == new_kid:
                break
            await asyncio.sleep(0.1)
    assert kid == new_kid


# Real processes: two uvicorn instances on one PostgreSQL database, rotated by the script.


def _service_env(database_url: str, tmp_path: Path, **extra: str) -> dict[str, str]:
    return {
        **os.environ,
        "GATEHOUSE_DATABASE_URL": database_url,
        "GATEHOUSE_SECRET_KEY": TEST_SECRET,
        "GATEHOUSE_DATA_DIR": str(tmp_path / "data"),
        "GATEHOUSE_ARGON2_TIME_COST": "1",
        "GATEHOUSE_ARGON2_MEMORY_KIB": "1024",
        "GATEHOUSE_ARGON2_PARALLELISM": "1",
        **extra,
    }


@pytest.mark.postgres_only
@pytest.mark.slow
async def test_rotation_script_reaches_running_instances_without_restart(
    backend: str, database_url: str, tmp_path: Path
) -> None:
    if backend != "postgresql":
        pytest.skip("two service processes share a PostgreSQL database")
    with (
        serve(
            _service_env(database_url, tmp_path, GATEHOUSE_KEY_REFRESH_SECONDS="0.5"),
            log_path=tmp_path / "a.log",
            startup_timeout=15,
        ) as a_url,
        serve(
            _service_env(
                database_url,
                tmp_path,
                GATEHOUSE_KEY_REFRESH_SECONDS="3600",
                GATEHOUSE_KEY_RELOAD_MIN_INTERVAL_SECONDS="0.5",
            ),
            log_path=tmp_path / "b.log",
            startup_timeout=15,
        ) as b_url,
    ):
        async with httpx.AsyncClient(base_url=a_url) as on_a, httpx.AsyncClient() as http:
            account, before = await create_user(on_a)
            rotated = subprocess.run(
                [sys.executable, "-m", "app.cli", "rotate-key"],
                cwd=ROOT,
                env=_service_env(database_url, tmp_path, GATEHOUSE_KEY_REFRESH_SECONDS="0.5"),
                capture_output=True,
                text=True,
                timeout=60,
            )
            assert rotated.returncode == 0, rotated.stderr
            new_kid = rotated.stdout.split("kid=", 1)[1].split()[0]
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                after = await login(on_a, account["username"], PASSWORD)
                if header_of(after["access_token"])["kid"] == new_kid:
                    break
                await asyncio.sleep(0.2)
            assert header_of(after["access_token"])["kid"] == new_kid
            new_on_b = await http.get(f"{b_url}/accounts/me", headers=bearer(after["access_token"]))
            old_on_b = await http.get(
                f"{b_url}/accounts/me", headers=bearer(before["access_token"])
            )
            old_on_a = await on_a.get("/accounts/me", headers=bearer(before["access_token"]))
    assert new_on_b.status_code == 200
    assert old_on_b.status_code == 200
    assert old_on_a.status_code == 200
