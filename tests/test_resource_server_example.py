"""docs/resource_server_example.py works: another service, knowing only the JWKS
URL, accepts Gatehouse tokens and enforces its own scope with RFC 6750 answers."""

import asyncio
import importlib.util
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from types import ModuleType
from typing import Any

import httpx
import pytest
import uvicorn
from fastapi import FastAPI

from tests.conftest import ROOT, AppFactory, app_of, app_state
from tests.factories import admin_login, bearer, create_user, login
from tests.signing_keys.forgery import hs256_token

EXAMPLE = ROOT / "docs" / "resource_server_example.py"


def load_example() -> ModuleType:
    spec = importlib.util.spec_from_file_location("resource_server_example", EXAMPLE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@asynccontextmanager
async def example_service(gatehouse: FastAPI, **options: str) -> AsyncIterator[httpx.AsyncClient]:
    """The example, pointed at `gatehouse` served over real HTTP: PyJWKClient fetches
    the JWKS with urllib, so it needs a real socket."""
    server = uvicorn.Server(
        uvicorn.Config(
            gatehouse, host="127.0.0.1", port=0, lifespan="off", ws="none", log_level="warning"
        )
    )
    task = asyncio.create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    service = load_example().create_app(f"http://127.0.0.1:{port}", **options)
    try:
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=service), base_url="http://orders"
        ) as http:
            yield http
    finally:
        server.should_exit = True
        await task


@pytest.fixture
async def orders(client: httpx.AsyncClient) -> AsyncIterator[httpx.AsyncClient]:
    settings = app_state(client).settings
    async with example_service(
        app_of(client), issuer=settings.issuer, audience=settings.audience
    ) as http:
        yield http


async def reader(
    client: httpx.AsyncClient, *, scope: str | None = None
) -> tuple[dict[str, Any], dict[str, Any]]:
    """An account holding `orders:read` through a role, and its token response."""
    headers = bearer((await admin_login(client))["access_token"])
    await client.post("/scopes", json={"name": "orders:read"}, headers=headers)
    await client.post(
        "/roles", json={"name": "orders-reader", "scopes": ["orders:read"]}, headers=headers
    )
    account, _ = await create_user(client)
    assigned = await client.put(f"/accounts/{account['id']}/roles/orders-reader", headers=headers)
    assert assigned.status_code == 200, assigned.text
    return account, await login(client, account["username"], scope=scope)


async def test_example_accepts_a_token_carrying_its_scope(
    client: httpx.AsyncClient, orders: httpx.AsyncClient
) -> None:
    account, issued = await reader(client)
    response = await orders.get("/orders", headers=bearer(issued["access_token"]))
    assert response.status_code == 200
    assert response.json()["account"] == account["id"]


async def test_example_answers_403_insufficient_scope_without_its_scope(
    client: httpx.AsyncClient, orders: httpx.AsyncClient
) -> None:
    account, issued = await reader(client, scope="me:read")
    response = await orders.get("/orders", headers=bearer(issued["access_token"]))
    assert response.status_code == 403
    assert response.headers["www-authenticate"] == (
        'Bearer error="insufficient_scope", scope="orders:read"'
    )


async def test_example_answers_401_without_error_code_when_no_token_is_sent(
    orders: httpx.AsyncClient,
) -> None:
    response = await orders.get("/orders")
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == 'Bearer scope="orders:read"'


HOSTILE_HEADERS: dict[str, dict[str, Any]] = {
    "typ-not-a-string": {"alg": "RS256", "typ": 1, "kid": "x"},
    "kid-not-a-string": {"alg": "RS256", "typ": "at+jwt", "kid": 5},
    "unknown-kid": {"alg": "RS256", "typ": "at+jwt", "kid": "no-such-key"},
    "alg-none": {"alg": "none", "typ": "at+jwt"},
}


@pytest.mark.parametrize("token", ["not-a-jwt", "a.b.c", *HOSTILE_HEADERS])
async def test_example_answers_401_invalid_token_for_garbage(
    orders: httpx.AsyncClient, token: str
) -> None:
    if token in HOSTILE_HEADERS:
        token = hs256_token(HOSTILE_HEADERS[token], {"sub": "x", "scope": "orders:read"}, b"k")
    response = await orders.get("/orders", headers=bearer(token))
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == (
        'Bearer error="invalid_token", scope="orders:read"'
    )


async def test_example_rejects_a_token_for_another_audience(make_client: AppFactory) -> None:
    async with make_client(audience="someone-else") as other:
        account, issued = await create_user(other)
    async with make_client() as client:
        settings = app_state(client).settings
        async with example_service(
            app_of(client), issuer=settings.issuer, audience=settings.audience
        ) as orders:
            response = await orders.get("/orders", headers=bearer(issued["access_token"]))
    assert response.status_code == 401
    assert 'error="invalid_token"' in response.headers["www-authenticate"]


def test_the_documented_command_serves_the_example_from_the_repository_root(tmp_path):
    """The command in the example's docstring, as written, from the repository root."""
    import os
    import shlex
    import subprocess
    import time

    from tests.servers import _stop, free_port

    [line] = [
        line.strip()
        for line in (EXAMPLE.read_text().splitlines())
        if line.strip().startswith("GATEHOUSE_URL=")
    ]
    assert line in (ROOT / "docs" / "resource-server.md").read_text()
    words = shlex.split(line)
    assignments = [w for w in words if w.startswith("GATEHOUSE_URL=")]
    env = {**os.environ, **dict(w.split("=", 1) for w in assignments)}
    command = [w for w in words if w not in assignments]
    port = free_port()
    command[command.index("--port") + 1] = str(port)
    process = subprocess.Popen(
        command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            assert process.poll() is None, process.stderr.read().decode() if process.stderr else ""
            try:
                response = httpx.get(f"http://127.0.0.1:{port}/orders", timeout=1)
                break
            except httpx.HTTPError:
                assert time.monotonic() < deadline
                time.sleep(0.2)
        assert response.status_code == 401
        assert response.headers["www-authenticate"] == 'Bearer scope="orders:read"'
    finally:
        _stop(process)
