"""Discovery documents: the JWKS (RFC 7517) and authorization server metadata (RFC 8414)."""

import re

import httpx
import pytest

from tests.conftest import AppFactory, app_state
from tests.factories import admin_login, bearer, create_user
from tests.signing_keys.forgery import b64decode, claims_of, header_of
from tests.signing_keys.keyset import restore_signing_keys

__all__ = ["restore_signing_keys"]
pytestmark = pytest.mark.usefixtures("restore_signing_keys")

PRIVATE_MEMBERS = {"d", "p", "q", "dp", "dq", "qi", "oth", "k"}


@pytest.mark.parametrize(
    ("algorithm", "members"),
    [("RS256", {"n", "e"}), ("ES256", {"crv", "x", "y"})],
)
async def test_jwks_publishes_the_signing_key_with_public_members_only(
    make_client: AppFactory, algorithm: str, members: set[str]
) -> None:
    async with make_client(signing_algorithm=algorithm) as client:
        response = await client.get("/.well-known/jwks.json")
        kid = app_state(client).keyring.signer.kid
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    keys = {k["kid"]: k for k in response.json()["keys"]}
    key = keys[kid]
    assert key["alg"] == algorithm
    assert key["use"] == "sig"
    assert members <= key.keys()
    if algorithm == "ES256":
        assert key["kty"] == "EC" and key["crv"] == "P-256"
        # RFC 7518 §6.2.1.2: coordinates are full-length octet strings
        assert len(b64decode(key["x"])) == len(b64decode(key["y"])) == 32
    else:
        assert key["kty"] == "RSA" and key["e"] == "AQAB"
    for published in keys.values():
        assert not PRIVATE_MEMBERS & published.keys()
        assert {"kty", "kid", "alg", "use"} <= published.keys()


async def test_jwks_names_the_key_that_signs_access_tokens(client: httpx.AsyncClient) -> None:
    account, issued = await create_user(client)
    kids = {k["kid"] for k in (await client.get("/.well-known/jwks.json")).json()["keys"]}
    assert header_of(issued["access_token"])["kid"] in kids


async def test_jwks_is_cacheable_with_max_age(client: httpx.AsyncClient) -> None:
    response = await client.get("/.well-known/jwks.json")
    match = re.search(r"(?:^|[,\s])max-age=(\d+)(?:$|[,\s])", response.headers["cache-control"])
    assert match is not None
    assert 0 < int(match.group(1)) <= 3600
    assert "no-store" not in response.headers["cache-control"]


async def test_jwks_needs_no_token(client: httpx.AsyncClient) -> None:
    response = await client.get("/.well-known/jwks.json")
    assert response.status_code == 200
    assert "www-authenticate" not in response.headers


async def test_metadata_describes_the_issuer_and_its_endpoints(make_client: AppFactory) -> None:
    issuer = "https://auth.example.test"
    async with make_client(issuer=issuer) as client:
        response = await client.get("/.well-known/oauth-authorization-server")
    assert response.status_code == 200
    metadata = response.json()
    assert metadata["issuer"] == issuer
    assert metadata["token_endpoint"] == f"{issuer}/auth/token"
    assert metadata["revocation_endpoint"] == f"{issuer}/auth/revoke"
    assert metadata["jwks_uri"] == f"{issuer}/.well-known/jwks.json"
    assert metadata["introspection_endpoint"] == f"{issuer}/oauth/introspect"
    assert set(metadata["grant_types_supported"]) == {
        "authorization_code",
        "password",
        "refresh_token",
        "client_credentials",
    }
    assert set(metadata["token_endpoint_auth_methods_supported"]) == {
        "client_secret_basic",
        "client_secret_post",
        "none",
    }
    assert set(metadata["introspection_endpoint_auth_methods_supported"]) == {
        "client_secret_basic",
        "client_secret_post",
    }


async def test_metadata_issuer_is_the_iss_of_access_tokens(client: httpx.AsyncClient) -> None:
    metadata = (await client.get("/.well-known/oauth-authorization-server")).json()
    account, issued = await create_user(client)
    assert claims_of(issued["access_token"])["iss"] == metadata["issuer"]


async def test_metadata_lists_builtin_scopes(client: httpx.AsyncClient) -> None:
    metadata = (await client.get("/.well-known/oauth-authorization-server")).json()
    assert {
        "me:read",
        "me:write",
        "accounts:read",
        "accounts:write",
        "roles:read",
        "roles:write",
        "audit:read",
        "clients:read",
        "clients:write",
        "tokens:introspect",
        "openid",
        "profile",
        "email",
    } <= set(metadata["scopes_supported"])


async def test_metadata_lists_a_custom_scope_as_soon_as_it_is_created(
    client: httpx.AsyncClient,
) -> None:
    admin = await admin_login(client)
    created = await client.post(
        "/scopes",
        json={"name": "orders:read", "description": "Read orders"},
        headers=bearer(admin["access_token"]),
    )
    assert created.status_code == 201, created.text
    metadata = (await client.get("/.well-known/oauth-authorization-server")).json()
    assert "orders:read" in metadata["scopes_supported"]


async def test_metadata_stops_listing_a_deleted_custom_scope(client: httpx.AsyncClient) -> None:
    admin = await admin_login(client)
    headers = bearer(admin["access_token"])
    await client.post("/scopes", json={"name": "orders:write"}, headers=headers)
    deleted = await client.delete("/scopes/orders:write", headers=headers)
    assert deleted.status_code == 204, deleted.text
    metadata = (await client.get("/.well-known/oauth-authorization-server")).json()
    assert "orders:write" not in metadata["scopes_supported"]


async def test_metadata_needs_no_token(client: httpx.AsyncClient) -> None:
    response = await client.get("/.well-known/oauth-authorization-server")
    assert response.status_code == 200
    assert "www-authenticate" not in response.headers
