"""docs/resource_server_example.py works: another service, knowing only the JWKS
URL, accepts Gatehouse tokens and enforces its own scope with RFC 6750 answers;
given a client allowed to introspect, it accepts personal access tokens and sees
revocation at once."""

import asyncio
import importlib.util
import subprocess
import sys
import time
from contextlib import asynccontextmanager
from types import ModuleType
from typing import Any

import httpx
import pytest
import uvicorn
from fastapi import FastAPI

from tests.conftest import ROOT
from tests.factories import admin_login, bearer, create_pat, create_user, introspector, login
from tests.servers import free_port
from tests.signing_keys.forgery import hs256_token

EXAMPLE = ROOT / "docs" / "resource_server_example.py"


def load_example() -> ModuleType:
    spec = importlib.util.spec_from_file_location("resource_server_example", EXAMPLE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@asynccontextmanager
async def example_service(gatehouse: FastAPI, **options):
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
async def orders(client):
    settings = client.app.state.settings
    async with example_service(
        client.app, issuer=settings.issuer, audience=settings.audience
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


async def test_example_accepts_a_token_carrying_its_scope(client, orders):
    account, issued = await reader(client)
    response = await orders.get("/orders", headers=bearer(issued["access_token"]))
    assert response.status_code == 200
    assert response.json()["account"] == account["id"]


async def test_example_answers_403_insufficient_scope_without_its_scope(client, orders):
    account, issued = await reader(client, scope="me:read")
    response = await orders.get("/orders", headers=bearer(issued["access_token"]))
    assert response.status_code == 403
    assert response.headers["www-authenticate"] == (
        'Bearer error="insufficient_scope", scope="orders:read"'
    )


async def test_example_answers_401_without_error_code_when_no_token_is_sent(orders):
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
async def test_example_answers_401_invalid_token_for_garbage(orders, token):
    if token in HOSTILE_HEADERS:
        token = hs256_token(HOSTILE_HEADERS[token], {"sub": "x", "scope": "orders:read"}, b"k")
    response = await orders.get("/orders", headers=bearer(token))
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == (
        'Bearer error="invalid_token", scope="orders:read"'
    )


async def test_example_rejects_a_token_for_another_audience(make_client):
    async with make_client(audience="someone-else") as other:
        account, issued = await create_user(other)
    async with make_client() as client:
        settings = client.app.state.settings
        async with example_service(
            client.app, issuer=settings.issuer, audience=settings.audience
        ) as orders:
            response = await orders.get("/orders", headers=bearer(issued["access_token"]))
    assert response.status_code == 401
    assert 'error="invalid_token"' in response.headers["www-authenticate"]


# --- introspection: opaque tokens, and revocation seen at once -----------------


@pytest.fixture
async def introspecting_orders(client):
    """The example with a client allowed to introspect, introspecting every token."""
    headers = bearer((await admin_login(client))["access_token"])
    rs = await introspector(client, headers)
    settings = client.app.state.settings
    async with example_service(
        client.app,
        issuer=settings.issuer,
        audience=settings.audience,
        client_id=rs["client_id"],
        client_secret=rs["client_secret"],
    ) as http:
        yield http


async def test_example_introspects_a_pat_and_sees_it_die_the_moment_it_is_revoked(
    client, introspecting_orders
):
    account, issued = await reader(client)
    pat = await create_pat(client, bearer(issued["access_token"]), ["orders:read"])

    accepted = await introspecting_orders.get("/orders", headers=bearer(pat["token"]))
    assert accepted.status_code == 200, accepted.text
    assert accepted.json()["account"] == account["id"]

    revoked = await client.delete(
        f"/accounts/me/tokens/{pat['id']}", headers=bearer(issued["access_token"])
    )
    assert revoked.status_code == 204

    refused = await introspecting_orders.get("/orders", headers=bearer(pat["token"]))
    assert refused.status_code == 401
    assert refused.headers["www-authenticate"] == (
        'Bearer error="invalid_token", scope="orders:read"'
    )


async def test_example_refuses_a_pat_without_its_scope(client, introspecting_orders):
    _, issued = await reader(client)
    pat = await create_pat(client, bearer(issued["access_token"]), ["me:read"])
    response = await introspecting_orders.get("/orders", headers=bearer(pat["token"]))
    assert response.status_code == 403


async def test_example_refuses_a_refresh_token_passed_off_as_a_bearer(client, introspecting_orders):
    _, issued = await reader(client)
    response = await introspecting_orders.get("/orders", headers=bearer(issued["refresh_token"]))
    assert response.status_code == 401


async def test_example_introspecting_every_token_sees_a_logout_at_once(client):
    headers = bearer((await admin_login(client))["access_token"])
    rs = await introspector(client, headers)
    settings = client.app.state.settings
    _, issued = await reader(client)
    async with example_service(
        client.app,
        issuer=settings.issuer,
        audience=settings.audience,
        client_id=rs["client_id"],
        client_secret=rs["client_secret"],
        introspect_all=True,
    ) as orders:
        before = await orders.get("/orders", headers=bearer(issued["access_token"]))
        await client.post("/auth/logout", headers=bearer(issued["access_token"]))
        after = await orders.get("/orders", headers=bearer(issued["access_token"]))
    assert (before.status_code, after.status_code) == (200, 401)


def test_the_example_runs_from_the_repository_root(tmp_path):
    """`uvicorn docs.resource_server_example:app`, as its docstring says, from the root."""
    port = free_port()
    with (tmp_path / "example.log").open("wb") as log:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "uvicorn",
                "docs.resource_server_example:app",
                "--port",
                str(port),
            ],
            cwd=ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 30
        while True:
            assert process.poll() is None, (tmp_path / "example.log").read_text()
            try:
                response = httpx.get(f"http://127.0.0.1:{port}/orders", trust_env=False)
                break
            except httpx.HTTPError:
                assert time.monotonic() < deadline, "the example did not start"
                time.sleep(0.1)
    finally:
        process.terminate()
        process.wait(timeout=10)
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == 'Bearer scope="orders:read"'
