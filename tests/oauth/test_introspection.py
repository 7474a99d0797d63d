"""Token introspection (RFC 7662) at POST /oauth/introspect: who may ask, one
answer shape for every live token, `{"active": false}` alone for anything else,
and revocation visible at once."""

import time
from typing import Any

import httpx
import jwt as pyjwt
import pytest

from tests.factories import (
    admin_headers,
    basic_auth,
    bearer,
    client_token,
    create_pat,
    create_user,
    introspect,
    introspector,
    refresh,
    register_client,
)
from tests.signing_keys.forgery import hs256_token

LIVE_FIELDS = {
    "active",
    "scope",
    "client_id",
    "token_type",
    "exp",
    "iat",
    "sub",
    "aud",
    "iss",
    "jti",
}


async def resource_server(client: httpx.AsyncClient) -> dict[str, Any]:
    return await introspector(client, await admin_headers(client))


def assert_inactive(response: httpx.Response) -> None:
    assert response.status_code == 200, response.text
    assert response.json() == {"active": False}


async def test_a_live_access_token_is_described(client):
    rs = await resource_server(client)
    account, issued = await create_user(client)

    response = await introspect(client, rs, issued["access_token"])

    assert response.status_code == 200
    assert response.headers["cache-control"] == "no-store"
    body = response.json()
    assert set(body) == LIVE_FIELDS | {"username", "sid"}
    settings = client.app.state.settings
    assert body["active"] is True and body["token_type"] == "Bearer"
    assert (body["sub"], body["username"]) == (account["id"], account["username"])
    assert (body["client_id"], body["scope"]) == ("gatehouse", "me:read me:write")
    assert (body["iss"], body["aud"]) == (settings.issuer, settings.audience)
    assert body["exp"] > body["iat"]


async def test_a_live_refresh_token_is_described_as_one(client):
    rs = await resource_server(client)
    account, issued = await create_user(client)

    body = (await introspect(client, rs, issued["refresh_token"])).json()

    assert set(body) == LIVE_FIELDS | {"username", "sid"}
    # Not a bearer: a resource server must not take it for an access token.
    assert body["token_type"] == "refresh_token"
    assert (body["sub"], body["scope"]) == (account["id"], "me:read me:write")


async def test_a_live_personal_access_token_is_described(client):
    rs = await resource_server(client)
    account, issued = await create_user(client)
    pat = await create_pat(client, bearer(issued["access_token"]), ["me:read"])

    body = (await introspect(client, rs, pat["token"])).json()

    assert set(body) == LIVE_FIELDS | {"username"}
    assert (body["sub"], body["jti"], body["scope"]) == (account["id"], pat["id"], "me:read")
    assert body["token_type"] == "Bearer"


async def test_a_live_client_token_is_described(client):
    headers = await admin_headers(client)
    rs = await introspector(client, headers)
    other = await register_client(client, headers, roles=["admin"])
    token = await client_token(client, other["client_id"], other["client_secret"], "roles:read")

    body = (await introspect(client, rs, token)).json()

    assert set(body) == LIVE_FIELDS
    assert body["sub"] == body["client_id"] == other["client_id"]
    assert body["scope"] == "roles:read"


@pytest.mark.parametrize(
    "token",
    ["garbage", "a.b.c", "gatehouse_pat_" + "0" * 49, "x" * 9000],
)
async def test_anything_that_is_no_token_is_inactive(client, token):
    rs = await resource_server(client)
    assert_inactive(await introspect(client, rs, token))


async def test_a_forged_token_is_inactive(client):
    rs = await resource_server(client)
    forged = hs256_token({"alg": "HS256", "typ": "at+jwt", "kid": "x"}, {"sub": "x"}, b"k")
    assert_inactive(await introspect(client, rs, forged))


async def test_revocation_is_visible_at_once(client):
    rs = await resource_server(client)
    _, issued = await create_user(client)
    assert (await introspect(client, rs, issued["access_token"])).json()["active"] is True

    await client.post("/auth/logout", headers=bearer(issued["access_token"]))

    assert_inactive(await introspect(client, rs, issued["access_token"]))
    assert_inactive(await introspect(client, rs, issued["refresh_token"]))


async def test_a_used_refresh_token_is_inactive(client):
    rs = await resource_server(client)
    _, issued = await create_user(client)
    await refresh(client, issued["refresh_token"])
    assert_inactive(await introspect(client, rs, issued["refresh_token"]))


async def test_a_disabled_accounts_tokens_are_inactive(client):
    headers = await admin_headers(client)
    rs = await introspector(client, headers)
    account, issued = await create_user(client)
    pat = await create_pat(client, bearer(issued["access_token"]), ["me:read"])

    await client.patch(f"/accounts/{account['id']}", json={"is_active": False}, headers=headers)

    for token in (issued["access_token"], issued["refresh_token"], pat["token"]):
        assert_inactive(await introspect(client, rs, token))


async def test_an_expired_access_token_is_inactive(client):
    rs = await resource_server(client)
    _, issued = await create_user(client)
    claims = pyjwt.decode(issued["access_token"], options={"verify_signature": False})
    past = int(time.time()) - 3600
    expired = client.app.state.gatehouse.keyring.sign({**claims, "iat": past, "exp": past + 900})
    assert_inactive(await introspect(client, rs, expired))


async def test_a_client_without_tokens_introspect_is_invalid_client(client):
    """Attack: any registered client reads other services' tokens."""
    headers = await admin_headers(client)
    other = await register_client(client, headers, roles=["user"])
    _, issued = await create_user(client)

    response = await introspect(client, other, issued["access_token"])

    assert response.status_code == 401
    assert response.json()["error"] == "invalid_client"
    assert response.headers["www-authenticate"].startswith("Basic")


async def test_introspection_without_client_authentication_is_invalid_client(client):
    _, issued = await create_user(client)
    anonymous = await client.post("/oauth/introspect", data={"token": issued["access_token"]})
    public = await client.post(
        "/oauth/introspect", data={"token": issued["access_token"], "client_id": "gatehouse"}
    )
    with_bearer = await client.post(
        "/oauth/introspect",
        data={"token": issued["access_token"]},
        headers=bearer(issued["access_token"]),
    )
    for response in (anonymous, public, with_bearer):
        assert response.status_code == 401
        assert response.json()["error"] == "invalid_client"


async def test_a_wrong_secret_is_invalid_client(client):
    rs = await resource_server(client)
    response = await client.post(
        "/oauth/introspect", data={"token": "x"}, headers=basic_auth(rs["client_id"], "wrong")
    )
    assert response.status_code == 401


async def test_introspection_by_client_secret_post_works(client):
    rs = await resource_server(client)
    _, issued = await create_user(client)
    response = await client.post(
        "/oauth/introspect",
        data={
            "token": issued["access_token"],
            "token_type_hint": "access_token",
            "client_id": rs["client_id"],
            "client_secret": rs["client_secret"],
        },
    )
    assert response.json()["active"] is True


@pytest.mark.parametrize("form", [{}, {"token": ""}])
async def test_a_missing_token_parameter_is_invalid_request(client, form):
    rs = await resource_server(client)
    response = await client.post(
        "/oauth/introspect", data=form, headers=basic_auth(rs["client_id"], rs["client_secret"])
    )
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"


async def test_revoking_a_token_signed_by_an_unknown_key_is_quietly_200(client):
    # Client authentication holds the request's connection; the key-set reload an
    # unknown `kid` triggers must not wait on it (SQLite has a single connection).
    created = await register_client(client, await admin_headers(client))
    forged = hs256_token({"alg": "HS256", "typ": "at+jwt", "kid": "x"}, {"sub": "x"}, b"k")
    response = await client.post(
        "/auth/revoke",
        data={"token": forged},
        headers=basic_auth(created["client_id"], created["client_secret"]),
    )
    assert response.status_code == 200


async def test_losing_tokens_introspect_stops_the_resource_server(client):
    headers = await admin_headers(client)
    rs = await introspector(client, headers)
    _, issued = await create_user(client)
    await client.patch(f"/clients/{rs['client_id']}", json={"roles": []}, headers=headers)
    assert (await introspect(client, rs, issued["access_token"])).status_code == 401
