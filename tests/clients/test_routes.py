"""The client admin API (CONTRACT.md, OAuth clients): registration and its rules,
secrets shown once and rotated with an overlap, the built-in client, the
guardrail, and the audit trail."""

from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from app.clients.service import hash_secret
from tests.factories import (
    admin_headers,
    bearer,
    client_credentials,
    create_scope_and_role,
    create_user,
    login,
    register_client,
)

CLIENT_FIELDS = {
    "client_id",
    "name",
    "type",
    "redirect_uris",
    "grant_types",
    "allowed_scopes",
    "roles",
    "first_party",
    "is_active",
    "builtin",
    "created_at",
}


async def test_registering_a_confidential_client_shows_its_secret_once(client):
    headers = await admin_headers(client)

    created = await register_client(client, headers, name="billing")

    assert set(created) == CLIENT_FIELDS | {"client_secret"}
    assert created["type"] == "confidential" and created["builtin"] is False
    assert len(created["client_secret"]) >= 43  # 256 bits in base64url
    read = await client.get(f"/clients/{created['client_id']}", headers=headers)
    assert read.status_code == 200
    assert set(read.json()) == CLIENT_FIELDS
    listed = (await client.get("/clients", headers=headers)).json()["items"]
    assert created["client_secret"] not in str(listed)


async def test_the_answer_carrying_a_secret_is_not_cached(client):
    headers = await admin_headers(client)
    response = await client.post(
        "/clients",
        json={"name": "x", "type": "confidential", "grant_types": ["client_credentials"]},
        headers=headers,
    )
    assert response.status_code == 201
    assert response.headers["cache-control"] == "no-store"


async def test_the_secret_is_stored_only_as_its_hash(client, database_url):
    created = await register_client(client, await admin_headers(client))
    engine = create_async_engine(database_url)
    async with engine.connect() as conn:
        stored = (await conn.execute(text("SELECT * FROM oauth_client"))).all()
    await engine.dispose()
    assert created["client_secret"] not in str(stored)
    assert hash_secret(created["client_secret"]) in str(stored)


async def test_a_public_client_has_no_secret(client):
    created = await register_client(
        client,
        await admin_headers(client),
        type="public",
        grant_types=["authorization_code", "refresh_token"],
        redirect_uris=["http://127.0.0.1/callback"],
    )
    assert created["client_secret"] is None


async def test_the_builtin_client_is_listed_with_the_swagger_redirect(client):
    headers = await admin_headers(client)
    builtin = (await client.get("/clients/gatehouse", headers=headers)).json()
    issuer = client.app.state.settings.issuer.rstrip("/")
    assert builtin["builtin"] is True and builtin["type"] == "public"
    assert builtin["first_party"] is True
    assert builtin["grant_types"] == ["password", "refresh_token", "authorization_code"]
    assert builtin["redirect_uris"] == [f"{issuer}/docs/oauth2-redirect"]


async def test_the_builtin_client_cannot_be_deleted(client):
    response = await client.delete("/clients/gatehouse", headers=await admin_headers(client))
    assert response.status_code == 409


async def test_the_builtin_client_can_be_switched_off_and_then_no_one_logs_in_through_it(client):
    account, _ = await create_user(client)
    headers = await admin_headers(client)

    response = await client.patch("/clients/gatehouse", json={"is_active": False}, headers=headers)
    assert response.status_code == 200, response.text

    refused = await client.post(
        "/auth/token",
        data={"grant_type": "password", "username": account["username"], "password": "x" * 20},
    )
    assert refused.status_code == 401
    assert refused.json()["error"] == "invalid_client"


async def test_the_builtin_client_can_only_be_switched_on_or_off(client):
    response = await client.patch(
        "/clients/gatehouse", json={"name": "renamed"}, headers=await admin_headers(client)
    )
    assert response.status_code == 409


@pytest.mark.parametrize(
    "uri",
    [
        "http://example.com/cb",  # http off loopback
        "https://example.com/cb#frag",  # fragment
        "/relative/cb",  # not absolute
        "ftp://example.com/cb",  # another scheme
        "https://user:pw@example.com/cb",  # user information
        "https://example.com:99999/cb",  # a port that is none
        "https://exa mple.com/cb",  # whitespace
        "javascript:alert(1)",
    ],
)
async def test_a_bad_redirect_uri_is_422(client, uri):
    response = await client.post(
        "/clients",
        json={
            "name": "web",
            "type": "public",
            "grant_types": ["authorization_code"],
            "redirect_uris": [uri],
        },
        headers=await admin_headers(client),
    )
    assert response.status_code == 422, response.text


@pytest.mark.parametrize(
    "uri",
    [
        "https://app.example.com/callback",
        "http://127.0.0.1/callback",
        "http://[::1]:8080/callback",
        "http://localhost:3000/cb?x=1",
    ],
)
async def test_https_and_loopback_http_redirect_uris_are_accepted(client, uri):
    created = await register_client(
        client,
        await admin_headers(client),
        type="public",
        grant_types=["authorization_code"],
        redirect_uris=[uri],
    )
    assert created["redirect_uris"] == [uri]


@pytest.mark.parametrize(
    "body",
    [
        {"type": "public", "grant_types": ["client_credentials"]},
        {"type": "confidential", "grant_types": ["authorization_code"]},  # no redirect URI
        {"type": "confidential", "grant_types": ["implicit"]},
        {"type": "confidential", "grant_types": []},
        {"type": "public", "grant_types": ["password"], "roles": ["user"]},
        {"type": "spa", "grant_types": ["password"]},
        {"type": "confidential", "grant_types": ["password"], "allowed_scopes": ["nope:nope"]},
        {"type": "confidential", "grant_types": ["password"], "secret": "mine"},
    ],
)
async def test_an_impossible_client_is_422(client, body):
    response = await client.post(
        "/clients", json={"name": "x", **body}, headers=await admin_headers(client)
    )
    assert response.status_code == 422, response.text


async def test_an_unknown_role_is_404(client):
    response = await client.post(
        "/clients",
        json={
            "name": "x",
            "type": "confidential",
            "grant_types": ["client_credentials"],
            "roles": ["no-such-role"],
        },
        headers=await admin_headers(client),
    )
    assert response.status_code == 404


async def test_registering_a_client_with_a_role_carrying_scopes_its_creator_lacks_is_403(client):
    """Attack: an account that may register clients gives one a role with scopes
    it does not hold, then uses the client's token to act with them."""
    headers = await admin_headers(client)
    await create_scope_and_role(client, headers, "registrar", ["clients:write"])
    account, _ = await create_user(client)
    await client.put(f"/accounts/{account['id']}/roles/registrar", headers=headers)
    registrar = bearer((await login(client, account["username"]))["access_token"])

    response = await client.post(
        "/clients",
        json={
            "name": "escalator",
            "type": "confidential",
            "grant_types": ["client_credentials"],
            "roles": ["admin"],
        },
        headers=registrar,
    )

    assert response.status_code == 403, response.text
    listed = (await client.get("/clients", headers=headers)).json()["items"]
    assert "escalator" not in [c["name"] for c in listed]


async def test_a_token_narrowed_to_clients_write_gives_no_role(client):
    headers = await admin_headers(client)
    await create_scope_and_role(client, headers, "auditors", ["audit:read"])
    narrowed = await admin_headers(client, scope="clients:write")
    response = await client.post(
        "/clients",
        json={
            "name": "x",
            "type": "confidential",
            "grant_types": ["client_credentials"],
            "roles": ["auditors"],
        },
        headers=narrowed,
    )
    assert response.status_code == 403


async def test_an_admin_gives_a_client_a_role_with_custom_scopes(client):
    headers = await admin_headers(client)
    await create_scope_and_role(client, headers, "orders-writer", ["orders:write"])
    created = await register_client(client, headers, roles=["orders-writer"])
    assert created["roles"] == ["orders-writer"]


async def test_rotating_the_secret_of_a_client_whose_roles_the_caller_lacks_is_403(client):
    """Attack: take over a powerful client by rotating its secret."""
    headers = await admin_headers(client)
    powerful = await register_client(client, headers, roles=["admin"])
    await create_scope_and_role(client, headers, "registrar", ["clients:write"])
    account, _ = await create_user(client)
    await client.put(f"/accounts/{account['id']}/roles/registrar", headers=headers)
    registrar = bearer((await login(client, account["username"]))["access_token"])

    rotated = await client.post(f"/clients/{powerful['client_id']}/secret", headers=registrar)
    changed = await client.patch(
        f"/clients/{powerful['client_id']}", json={"name": "mine"}, headers=registrar
    )

    assert (rotated.status_code, changed.status_code) == (403, 403)


async def test_rotation_without_overlap_ends_the_old_secret_at_once(client):
    headers = await admin_headers(client)
    created = await register_client(client, headers)
    old = created["client_secret"]

    rotated = await client.post(f"/clients/{created['client_id']}/secret", headers=headers)

    assert rotated.status_code == 200, rotated.text
    new = rotated.json()["client_secret"]
    assert new != old and rotated.headers["cache-control"] == "no-store"
    assert (await client_credentials(client, created["client_id"], old)).status_code == 401
    assert (await client_credentials(client, created["client_id"], new)).status_code == 200


async def test_rotation_with_overlap_keeps_the_old_secret_working_for_that_long(client, backend):
    headers = await admin_headers(client)
    created = await register_client(client, headers)
    old = created["client_secret"]

    rotated = await client.post(
        f"/clients/{created['client_id']}/secret",
        json={"previous_valid_for_seconds": 3600},
        headers=headers,
    )
    new = rotated.json()["client_secret"]

    assert (await client_credentials(client, created["client_id"], old)).status_code == 200
    assert (await client_credentials(client, created["client_id"], new)).status_code == 200
    # The window passes.
    engine = create_async_engine(client.app.state.settings.database_url)
    async with engine.begin() as conn:
        await conn.execute(text("UPDATE oauth_client SET previous_secret_expires_at = created_at"))
    await engine.dispose()
    assert (await client_credentials(client, created["client_id"], old)).status_code == 401
    assert (await client_credentials(client, created["client_id"], new)).status_code == 200


@pytest.mark.parametrize("seconds", [-1, 604_801])
async def test_an_overlap_outside_a_week_is_422(client, seconds):
    headers = await admin_headers(client)
    created = await register_client(client, headers)
    response = await client.post(
        f"/clients/{created['client_id']}/secret",
        json={"previous_valid_for_seconds": seconds},
        headers=headers,
    )
    assert response.status_code == 422


async def test_a_public_client_has_no_secret_to_rotate(client):
    headers = await admin_headers(client)
    response = await client.post("/clients/gatehouse/secret", headers=headers)
    assert response.status_code == 409


async def test_deleting_a_client_ends_its_sessions(client):
    headers = await admin_headers(client)
    web = await register_client(client, headers, type="public", grant_types=["password"])
    account, _ = await create_user(client)
    issued = (
        await client.post(
            "/auth/token",
            data={
                "grant_type": "password",
                "username": account["username"],
                "password": "a perfectly fine passphrase",
                "client_id": web["client_id"],
            },
        )
    ).json()
    assert (
        await client.get("/accounts/me", headers=bearer(issued["access_token"]))
    ).status_code == 200

    deleted = await client.delete(f"/clients/{web['client_id']}", headers=headers)

    assert deleted.status_code == 204
    assert (
        await client.get("/accounts/me", headers=bearer(issued["access_token"]))
    ).status_code == 401
    assert (await client.get(f"/clients/{web['client_id']}", headers=headers)).status_code == 404


async def test_clients_are_listed_a_page_at_a_time(client):
    headers = await admin_headers(client)
    for _ in range(3):
        await register_client(client, headers)
    seen: list[str] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 2}
        if cursor:
            params["cursor"] = cursor
        page = (await client.get("/clients", params=params, headers=headers)).json()
        seen += [c["client_id"] for c in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert len(seen) == len(set(seen)) == 4  # the three and the built-in one


async def test_reading_clients_needs_clients_read(client):
    _, issued = await create_user(client)
    response = await client.get("/clients", headers=bearer(issued["access_token"]))
    assert response.status_code == 403
    assert 'scope="clients:read"' in response.headers["www-authenticate"]


async def test_every_client_change_is_audited(client):
    headers = await admin_headers(client)
    created = await register_client(client, headers)
    client_id = created["client_id"]
    await client.patch(f"/clients/{client_id}", json={"name": "renamed"}, headers=headers)
    await client.post(f"/clients/{client_id}/secret", headers=headers)
    await client_credentials(client, client_id, "wrong")
    await client.delete(f"/clients/{client_id}", headers=headers)

    entries = (await client.get("/audit", params={"limit": 100}, headers=headers)).json()["items"]

    actions = [e["action"] for e in entries if e["target"] == client_id]
    assert actions == ["client.delete", "client.secret_rotate", "client.update", "client.create"]
    assert created["client_secret"] not in str(entries)
