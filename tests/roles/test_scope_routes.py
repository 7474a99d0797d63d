"""The scope catalogue over the API: built-in and custom scopes (CONTRACT.md,
/scopes rows and Built-in scopes and roles)."""

from typing import Any

import httpx
import pytest

from app.authz.catalogue import OIDC_SCOPES
from tests.factories import admin_login, bearer, create_user, login, refresh

BUILTIN_SCOPES = {
    "accounts:read",
    "accounts:write",
    "audit:read",
    "clients:read",
    "clients:write",
    "email",
    "me:read",
    "me:write",
    "metrics:read",
    "openid",
    "profile",
    "roles:read",
    "roles:write",
    "tokens:introspect",
}


async def admin_headers(client: httpx.AsyncClient) -> dict[str, str]:
    return bearer((await admin_login(client))["access_token"])


async def create_scope(
    client: httpx.AsyncClient, headers: dict[str, str], name: str, description: str = ""
) -> dict[str, Any]:
    response = await client.post(
        "/scopes", json={"name": name, "description": description}, headers=headers
    )
    assert response.status_code == 201, response.text
    return response.json()  # type: ignore[no-any-return]


async def catalogue(client: httpx.AsyncClient, headers: dict[str, str]) -> dict[str, Any]:
    response = await client.get("/scopes", headers=headers)
    assert response.status_code == 200, response.text
    return {s["name"]: s for s in response.json()}


async def test_the_catalogue_lists_every_built_in_scope_flagged_builtin(
    client: httpx.AsyncClient,
) -> None:
    headers = await admin_headers(client)

    scopes = await catalogue(client, headers)

    assert set(scopes) == BUILTIN_SCOPES
    for scope in scopes.values():
        assert set(scope) == {"name", "description", "builtin"}
        assert scope["builtin"] is True
        assert scope["description"]


async def test_creating_a_custom_scope_answers_201_and_lists_it_not_builtin(
    client: httpx.AsyncClient,
) -> None:
    headers = await admin_headers(client)

    response = await client.post(
        "/scopes",
        json={"name": "billing:read", "description": "Read invoices"},
        headers=headers,
    )

    assert response.status_code == 201
    assert response.json() == {
        "name": "billing:read",
        "description": "Read invoices",
        "builtin": False,
    }
    assert (await catalogue(client, headers))["billing:read"] == response.json()


@pytest.mark.parametrize("name", ["billing:read", "me:read", "audit:read"])
async def test_creating_a_scope_that_exists_is_409(client: httpx.AsyncClient, name: str) -> None:
    headers = await admin_headers(client)
    await create_scope(client, headers, "billing:read", "first")
    before = await catalogue(client, headers)

    response = await client.post(
        "/scopes", json={"name": name, "description": "second"}, headers=headers
    )

    assert response.status_code == 409
    assert await catalogue(client, headers) == before


@pytest.mark.parametrize(
    "name",
    [
        "",
        "has space",
        ":leading",
        "x" * 65,
        "tab\there",
        "nul\x00",
        "é:read",
        None,
        # Names differing from another only in case, a trailing mark, or a slash
        # that no URL path can carry (so the scope could never be deleted).
        "ME:READ",
        "Accounts:write",
        "accounts:write.",
        "billing:read-",
        "x/y",
        "reports read",
    ],
)
async def test_creating_a_scope_with_a_malformed_name_is_422(
    client: httpx.AsyncClient, name: str | None
) -> None:
    headers = await admin_headers(client)

    response = await client.post(
        "/scopes", json={"name": name, "description": "bad"}, headers=headers
    )

    assert response.status_code == 422
    assert set(await catalogue(client, headers)) == BUILTIN_SCOPES


async def test_a_custom_scope_can_be_requested_at_login_once_a_role_carries_it(
    client: httpx.AsyncClient,
) -> None:
    headers = await admin_headers(client)
    await create_scope(client, headers, "wiki:edit")
    await client.post("/roles", json={"name": "editor", "scopes": ["wiki:edit"]}, headers=headers)
    account, _ = await create_user(client)
    await client.put(f"/accounts/{account['id']}/roles/editor", headers=headers)

    tokens = await login(client, account["username"], scope="wiki:edit")

    assert tokens["scope"] == "wiki:edit"


async def test_deleting_a_custom_scope_answers_204_and_drops_it_from_the_catalogue(
    client: httpx.AsyncClient,
) -> None:
    headers = await admin_headers(client)
    await create_scope(client, headers, "billing:read")

    response = await client.delete("/scopes/billing:read", headers=headers)

    assert response.status_code == 204
    assert response.content == b""
    assert "billing:read" not in await catalogue(client, headers)
    assert (await client.delete("/scopes/billing:read", headers=headers)).status_code == 404


@pytest.mark.parametrize("name", sorted(BUILTIN_SCOPES))
async def test_deleting_a_built_in_scope_is_409(client: httpx.AsyncClient, name: str) -> None:
    headers = await admin_headers(client)

    response = await client.delete(f"/scopes/{name}", headers=headers)

    assert response.status_code == 409
    assert set(await catalogue(client, headers)) == BUILTIN_SCOPES
    admin_scopes = (await client.get("/roles/admin", headers=headers)).json()["scopes"]
    # The OpenID Connect scopes are identity requests, in no role.
    assert (name in admin_scopes) is (name not in OIDC_SCOPES)


@pytest.mark.parametrize("name", ["no:such", "a%00b", "x" * 65])
async def test_deleting_an_unknown_scope_is_404_or_422_never_500(
    client: httpx.AsyncClient, name: str
) -> None:
    headers = await admin_headers(client)

    response = await client.delete(f"/scopes/{name}", headers=headers)

    assert response.status_code == (404 if name == "no:such" else 422), response.text


async def test_deleting_a_custom_scope_removes_it_from_every_role(
    client: httpx.AsyncClient,
) -> None:
    headers = await admin_headers(client)
    await create_scope(client, headers, "billing:read")
    await create_scope(client, headers, "billing:write")
    for name in ("billing", "finance"):
        response = await client.post(
            "/roles",
            json={"name": name, "scopes": ["billing:read", "billing:write", "me:read"]},
            headers=headers,
        )
        assert response.status_code == 201

    await client.delete("/scopes/billing:read", headers=headers)

    for name in ("billing", "finance"):
        role = (await client.get(f"/roles/{name}", headers=headers)).json()
        assert role["scopes"] == ["billing:write", "me:read"]


async def test_deleting_a_custom_scope_refuses_its_holders_older_tokens(
    client: httpx.AsyncClient,
) -> None:
    headers = await admin_headers(client)
    await create_scope(client, headers, "billing:read")
    await client.post(
        "/roles", json={"name": "billing", "scopes": ["billing:read"]}, headers=headers
    )
    account, _ = await create_user(client)
    await client.put(f"/accounts/{account['id']}/roles/billing", headers=headers)
    tokens = await login(client, account["username"])
    assert "billing:read" in tokens["scope"].split()

    await client.delete("/scopes/billing:read", headers=headers)

    response = await client.get("/accounts/me", headers=bearer(tokens["access_token"]))
    assert response.status_code == 401
    assert 'error="invalid_token"' in response.headers["www-authenticate"]
    renewed = await refresh(client, tokens["refresh_token"])
    assert renewed.status_code == 200
    assert sorted(renewed.json()["scope"].split()) == ["me:read", "me:write"]


async def test_a_deleted_scope_name_is_refused_at_login(client: httpx.AsyncClient) -> None:
    headers = await admin_headers(client)
    await create_scope(client, headers, "billing:read")
    account, _ = await create_user(client)
    await client.delete("/scopes/billing:read", headers=headers)

    response = await client.post(
        "/auth/token",
        data={
            "grant_type": "password",
            "username": account["username"],
            "password": "a perfectly fine passphrase",
            "scope": "billing:read",
        },
    )

    assert response.status_code == 400
    assert response.json()["error"] == "invalid_scope"


@pytest.mark.parametrize(
    "name", ["a", "billing:read", "reports.v2:export_all", "x" * 64, "9-lives"]
)
async def test_a_scope_name_of_lowercase_letters_digits_and_separators_is_accepted(client, name):
    headers = await admin_headers(client)

    await create_scope(client, headers, name)

    assert (await client.delete(f"/scopes/{name}", headers=headers)).status_code == 204
