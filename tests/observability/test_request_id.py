"""Every answer carries X-Request-ID: the caller's when it is a plain token,
otherwise a fresh one."""

import pytest


async def test_an_incoming_request_id_is_echoed(client):
    response = await client.get("/healthz", headers={"X-Request-ID": "trace-42.a:b"})
    assert response.headers["x-request-id"] == "trace-42.a:b"


async def test_a_request_id_is_made_when_none_is_sent(client):
    first = (await client.get("/healthz")).headers["x-request-id"]
    second = (await client.get("/healthz")).headers["x-request-id"]
    assert len(first) == 32 and first != second


@pytest.mark.parametrize("given", ["x" * 129, "two words", 'a"b', "ünï"])
async def test_an_unsafe_request_id_is_replaced(client, given):
    response = await client.get("/healthz", headers={"X-Request-ID": given.encode("utf-8")})
    assert response.headers["x-request-id"] != given
    assert len(response.headers["x-request-id"]) == 32


async def test_errors_carry_the_request_id_too(client):
    response = await client.get("/accounts/me", headers={"X-Request-ID": "err-1"})
    assert response.status_code == 401
    assert response.headers["x-request-id"] == "err-1"
