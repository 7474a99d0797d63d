"""The client credentials grant (RFC 6749 §4.4): a client's own token, its scopes
from its roles, its acceptance by the Security dependency, and its immediate
revocation when the client changes; plus the `client_id` claim (RFC 9068 §2.2)
and refresh tokens bound to their client."""

from typing import Any

import httpx
import jwt as pyjwt
import pytest

from tests.factories import (
    PASSWORD,
    admin_headers,
    basic_auth,
    bearer,
    client_credentials,
    client_token,
    create_scope_and_role,
    create_user,
    login,
    register_client,
)


def claims_of(token: str) -> dict[str, Any]:
    return pyjwt.decode(token, options={"verify_signature": False})


async def reader_client(client: httpx.AsyncClient, **body: Any) -> dict[str, Any]:
    """A confidential client whose role holds accounts:read."""
    headers = await admin_headers(client)
    await create_scope_and_role(client, headers, "account-reader", ["accounts:read"])
    return await register_client(client, headers, roles=["account-reader"], **body)


@pytest.mark.parametrize("method", ["basic", "post"])
async def test_a_client_gets_a_token_for_itself(client, method):
    created = await reader_client(client)

    response = await client_credentials(
        client, created["client_id"], created["client_secret"], method=method
    )

    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == {"access_token", "token_type", "expires_in", "scope"}  # no refresh token
    assert body["scope"] == "accounts:read"
    assert response.headers["cache-control"] == "no-store"
    claims = claims_of(body["access_token"])
    assert claims["sub"] == claims["client_id"] == created["client_id"]
    assert "sid" not in claims


async def test_the_requested_scopes_are_narrowed_to_what_the_roles_hold(client):
    created = await reader_client(client)
    response = await client_credentials(
        client, created["client_id"], created["client_secret"], scope="accounts:read audit:read"
    )
    assert response.json()["scope"] == "accounts:read"


async def test_an_unknown_requested_scope_is_invalid_scope(client):
    created = await reader_client(client)
    response = await client_credentials(
        client, created["client_id"], created["client_secret"], scope="no:such"
    )
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_scope"


async def test_a_client_token_never_carries_the_account_scopes(client):
    headers = await admin_headers(client)
    created = await register_client(client, headers, roles=["admin", "user"])

    response = await client_credentials(
        client, created["client_id"], created["client_secret"], scope="me:read me:write roles:read"
    )
    everything = await client_credentials(client, created["client_id"], created["client_secret"])

    assert response.json()["scope"] == "roles:read"
    assert not {"me:read", "me:write"} & set(everything.json()["scope"].split())


async def test_the_security_dependency_accepts_a_client_token_where_its_scopes_suffice(client):
    created = await reader_client(client)
    token = await client_token(client, created["client_id"], created["client_secret"])

    listed = await client.get("/accounts", headers=bearer(token))
    roles = await client.get("/roles", headers=bearer(token))

    assert listed.status_code == 200, listed.text
    assert roles.status_code == 403
    assert 'error="insufficient_scope"' in roles.headers["www-authenticate"]


async def test_routes_that_act_as_an_account_refuse_a_client_token_cleanly(client):
    headers = await admin_headers(client)
    created = await register_client(client, headers, roles=["admin"])
    token = await client_token(client, created["client_id"], created["client_secret"])

    me = await client.get("/accounts/me", headers=bearer(token))
    create = await client.post(
        "/accounts", json={"username": "x", "password": PASSWORD}, headers=bearer(token)
    )
    logout = await client.post("/auth/logout", headers=bearer(token))
    pat = await client.post(
        "/accounts/me/tokens", json={"name": "x", "scopes": ["roles:read"]}, headers=bearer(token)
    )

    assert [r.status_code for r in (me, create, logout, pat)] == [403, 403, 403, 403]
    for response in (me, create, logout, pat):
        assert response.headers["www-authenticate"].startswith("Bearer")


async def test_a_client_token_with_clients_write_registers_clients(client):
    headers = await admin_headers(client)
    await create_scope_and_role(client, headers, "provisioner", ["clients:write"])
    created = await register_client(client, headers, roles=["provisioner"])
    token = await client_token(client, created["client_id"], created["client_secret"])

    response = await client.post(
        "/clients",
        json={"name": "child", "type": "public", "grant_types": ["password"]},
        headers=bearer(token),
    )
    entries = (
        await client.get("/audit", params={"action": "client.create"}, headers=headers)
    ).json()

    assert response.status_code == 201, response.text
    newest = entries["items"][0]
    assert newest["actor"] is None
    assert newest["detail"]["actor_client"] == created["client_id"]


@pytest.mark.parametrize(
    "change",
    [
        {"is_active": False},
        {"roles": []},
        {"grant_types": ["client_credentials", "password"]},
    ],
)
async def test_changing_a_client_refuses_its_tokens_on_the_next_request(client, change):
    created = await reader_client(client)
    token = await client_token(client, created["client_id"], created["client_secret"])
    assert (await client.get("/accounts", headers=bearer(token))).status_code == 200

    changed = await client.patch(
        f"/clients/{created['client_id']}", json=change, headers=await admin_headers(client)
    )
    assert changed.status_code == 200, changed.text

    response = await client.get("/accounts", headers=bearer(token))
    assert response.status_code == 401
    assert 'error="invalid_token"' in response.headers["www-authenticate"]


async def test_rotating_the_secret_refuses_the_clients_tokens_on_the_next_request(client):
    created = await reader_client(client)
    token = await client_token(client, created["client_id"], created["client_secret"])
    await client.post(
        f"/clients/{created['client_id']}/secret",
        json={"previous_valid_for_seconds": 60},
        headers=await admin_headers(client),
    )
    assert (await client.get("/accounts", headers=bearer(token))).status_code == 401


async def test_narrowing_the_clients_role_refuses_its_tokens_on_the_next_request(client):
    created = await reader_client(client)
    token = await client_token(client, created["client_id"], created["client_secret"])

    await client.patch(
        "/roles/account-reader",
        json={"scopes": ["roles:read"]},
        headers=await admin_headers(client),
    )

    assert (await client.get("/accounts", headers=bearer(token))).status_code == 401
    fresh = await client_token(client, created["client_id"], created["client_secret"])
    assert claims_of(fresh)["scope"] == "roles:read"


async def test_deleting_the_clients_role_refuses_its_tokens_on_the_next_request(client):
    created = await reader_client(client)
    token = await client_token(client, created["client_id"], created["client_secret"])
    await client.delete("/roles/account-reader", headers=await admin_headers(client))
    assert (await client.get("/accounts", headers=bearer(token))).status_code == 401


async def test_deleting_the_client_refuses_its_tokens(client):
    created = await reader_client(client)
    token = await client_token(client, created["client_id"], created["client_secret"])
    await client.delete(f"/clients/{created['client_id']}", headers=await admin_headers(client))
    assert (await client.get("/accounts", headers=bearer(token))).status_code == 401


async def test_revoking_a_client_token_at_the_revocation_endpoint_ends_it(client):
    created = await reader_client(client)
    token = await client_token(client, created["client_id"], created["client_secret"])

    revoked = await client.post(
        "/auth/revoke",
        data={"token": token},
        headers=basic_auth(created["client_id"], created["client_secret"]),
    )

    assert revoked.status_code == 200
    assert (await client.get("/accounts", headers=bearer(token))).status_code == 401


async def test_another_client_cannot_revoke_a_clients_token(client):
    created = await reader_client(client)
    other = await register_client(client, await admin_headers(client))
    token = await client_token(client, created["client_id"], created["client_secret"])

    revoked = await client.post(
        "/auth/revoke",
        data={"token": token},
        headers=basic_auth(other["client_id"], other["client_secret"]),
    )

    assert revoked.status_code == 200
    assert (await client.get("/accounts", headers=bearer(token))).status_code == 200


async def test_a_client_credentials_grant_is_audited(client):
    created = await reader_client(client)
    await client_token(client, created["client_id"], created["client_secret"])
    entries = (
        await client.get(
            "/audit",
            params={"action": "auth.client_credentials"},
            headers=await admin_headers(client),
        )
    ).json()["items"]
    assert entries[0]["target"] == created["client_id"]
    assert entries[0]["detail"] == {"scope": "accounts:read"}


# --- user tokens name their client; refresh tokens are bound to it -------------


async def test_every_access_token_carries_its_client_id(client):
    _, issued = await create_user(client)
    assert claims_of(issued["access_token"])["client_id"] == "gatehouse"


async def password_client(client: httpx.AsyncClient) -> dict[str, Any]:
    return await register_client(
        client, await admin_headers(client), grant_types=["password", "refresh_token"]
    )


async def login_through(
    client: httpx.AsyncClient, web: dict[str, Any], username: str
) -> dict[str, Any]:
    response = await client.post(
        "/auth/token",
        data={"grant_type": "password", "username": username, "password": PASSWORD},
        headers=basic_auth(web["client_id"], web["client_secret"]),
    )
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


async def test_a_refresh_token_replayed_by_another_client_is_invalid_grant(client):
    web = await password_client(client)
    account, _ = await create_user(client)
    issued = await login_through(client, web, account["username"])
    assert claims_of(issued["access_token"])["client_id"] == web["client_id"]

    # Through the built-in public client, and through another confidential one.
    other = await password_client(client)
    by_builtin = await client.post(
        "/auth/token",
        data={"grant_type": "refresh_token", "refresh_token": issued["refresh_token"]},
    )
    by_other = await client.post(
        "/auth/token",
        data={"grant_type": "refresh_token", "refresh_token": issued["refresh_token"]},
        headers=basic_auth(other["client_id"], other["client_secret"]),
    )

    assert (by_builtin.status_code, by_builtin.json()["error"]) == (400, "invalid_grant")
    assert (by_other.status_code, by_other.json()["error"]) == (400, "invalid_grant")
    # The replay neither used nor burned it: its own client still refreshes.
    own = await client.post(
        "/auth/token",
        data={"grant_type": "refresh_token", "refresh_token": issued["refresh_token"]},
        headers=basic_auth(web["client_id"], web["client_secret"]),
    )
    assert own.status_code == 200, own.text
    assert claims_of(own.json()["access_token"])["client_id"] == web["client_id"]


async def test_disabling_a_client_ends_the_sessions_opened_through_it(client):
    web = await password_client(client)
    account, _ = await create_user(client)
    issued = await login_through(client, web, account["username"])

    await client.patch(
        f"/clients/{web['client_id']}",
        json={"is_active": False},
        headers=await admin_headers(client),
    )

    assert (
        await client.get("/accounts/me", headers=bearer(issued["access_token"]))
    ).status_code == 401


async def test_a_refresh_through_a_client_keeps_within_its_allowed_scopes(client):
    headers = await admin_headers(client)
    web = await register_client(
        client, headers, grant_types=["password", "refresh_token"], allowed_scopes=["me:read"]
    )
    account, _ = await create_user(client)
    issued = await login_through(client, web, account["username"])
    response = await client.post(
        "/auth/token",
        data={"grant_type": "refresh_token", "refresh_token": issued["refresh_token"]},
        headers=basic_auth(web["client_id"], web["client_secret"]),
    )
    assert response.json()["scope"] == "me:read"


async def test_a_login_without_client_id_is_the_builtin_clients(client):
    account, _ = await create_user(client)
    issued = await login(client, account["username"])
    assert claims_of(issued["access_token"])["client_id"] == "gatehouse"
