"""Roles over the API: CRUD, assignment, and how role changes reach holders'
tokens (CONTRACT.md, /roles and /accounts/{id}/roles rows, Tokens)."""

import uuid
from typing import Any

import httpx
import pytest

from tests.conftest import unique_name
from tests.factories import PASSWORD, admin_login, bearer, create_user, login, refresh

ROLE_FIELDS = {"name", "description", "scopes", "builtin"}
# Every built-in permission scope: the OpenID Connect scopes belong to no role.
ALL_BUILTIN_SCOPES = [
    "accounts:read",
    "accounts:write",
    "audit:read",
    "clients:read",
    "clients:write",
    "me:read",
    "me:write",
    "metrics:read",
    "roles:read",
    "roles:write",
    "tokens:introspect",
]


async def admin_headers(client: httpx.AsyncClient) -> dict[str, str]:
    return bearer((await admin_login(client))["access_token"])


async def create_role(
    client: httpx.AsyncClient,
    headers: dict[str, str],
    name: str,
    scopes: list[str],
    description: str = "",
) -> dict[str, Any]:
    response = await client.post(
        "/roles", json={"name": name, "description": description, "scopes": scopes}, headers=headers
    )
    assert response.status_code == 201, response.text
    return response.json()  # type: ignore[no-any-return]


async def assign(
    client: httpx.AsyncClient, headers: dict[str, str], account_id: str, role: str
) -> httpx.Response:
    return await client.put(f"/accounts/{account_id}/roles/{role}", headers=headers)


async def unassign(
    client: httpx.AsyncClient, headers: dict[str, str], account_id: str, role: str
) -> httpx.Response:
    return await client.delete(f"/accounts/{account_id}/roles/{role}", headers=headers)


def assert_refused_token(response: httpx.Response) -> None:
    assert response.status_code == 401, response.text
    assert 'error="invalid_token"' in response.headers["www-authenticate"]


def scopes_of(token_response: dict[str, Any] | httpx.Response) -> list[str]:
    body = token_response.json() if isinstance(token_response, httpx.Response) else token_response
    return sorted(body["scope"].split())


# Reading roles


async def test_the_built_in_roles_are_listed_with_their_scopes(client: httpx.AsyncClient) -> None:
    headers = await admin_headers(client)

    response = await client.get("/roles", headers=headers)

    assert response.status_code == 200
    roles = {r["name"]: r for r in response.json()}
    assert set(roles) == {"admin", "user"}
    assert roles["user"]["scopes"] == ["me:read", "me:write"]
    assert roles["admin"]["scopes"] == ALL_BUILTIN_SCOPES
    assert roles["admin"]["builtin"] is roles["user"]["builtin"] is True
    for role in roles.values():
        assert set(role) == ROLE_FIELDS


async def test_one_role_is_read_by_name(client: httpx.AsyncClient) -> None:
    headers = await admin_headers(client)

    response = await client.get("/roles/user", headers=headers)

    assert response.status_code == 200
    assert response.json()["name"] == "user"
    assert response.json()["scopes"] == ["me:read", "me:write"]
    assert set(response.json()) == ROLE_FIELDS


async def test_reading_an_unknown_role_is_404(client: httpx.AsyncClient) -> None:
    headers = await admin_headers(client)

    assert (await client.get("/roles/nope", headers=headers)).status_code == 404


# Creating, changing, deleting roles


async def test_creating_a_role_answers_201_with_the_role(client: httpx.AsyncClient) -> None:
    headers = await admin_headers(client)

    response = await client.post(
        "/roles",
        json={"name": "auditor", "description": "Reads logs", "scopes": ["audit:read", "me:read"]},
        headers=headers,
    )

    assert response.status_code == 201
    assert response.json() == {
        "name": "auditor",
        "description": "Reads logs",
        "scopes": ["audit:read", "me:read"],
        "builtin": False,
    }
    assert (await client.get("/roles/auditor", headers=headers)).json() == response.json()
    assert "auditor" in [r["name"] for r in (await client.get("/roles", headers=headers)).json()]


async def test_creating_a_role_with_no_scopes_is_allowed(client: httpx.AsyncClient) -> None:
    headers = await admin_headers(client)

    role = await create_role(client, headers, "empty", [])

    assert role["scopes"] == []


@pytest.mark.parametrize("name", ["auditor", "admin", "user"])
async def test_creating_a_role_whose_name_exists_is_409(
    client: httpx.AsyncClient, name: str
) -> None:
    headers = await admin_headers(client)
    await create_role(client, headers, "auditor", ["audit:read"])
    before = (await client.get(f"/roles/{name}", headers=headers)).json()

    response = await client.post(
        "/roles", json={"name": name, "scopes": ["roles:read"]}, headers=headers
    )

    assert response.status_code == 409
    assert (await client.get(f"/roles/{name}", headers=headers)).json() == before


async def test_creating_a_role_with_an_unknown_scope_is_refused(client: httpx.AsyncClient) -> None:
    headers = await admin_headers(client)

    response = await client.post(
        "/roles", json={"name": "weird", "scopes": ["no:such"]}, headers=headers
    )

    assert response.status_code == 422
    assert (await client.get("/roles/weird", headers=headers)).status_code == 404


@pytest.mark.parametrize(
    "name", ["", "has space", "-leading", "x" * 65, "a/b", "Admin", "USER", "ops.", "ops-", "é"]
)
async def test_creating_a_role_with_a_malformed_name_is_422(
    client: httpx.AsyncClient, name: str
) -> None:
    headers = await admin_headers(client)

    response = await client.post("/roles", json={"name": name, "scopes": []}, headers=headers)

    assert response.status_code == 422


async def test_patching_a_roles_description_changes_only_that(client: httpx.AsyncClient) -> None:
    headers = await admin_headers(client)
    await create_role(client, headers, "support", ["accounts:read"], description="old")

    response = await client.patch(
        "/roles/support", json={"description": "new words"}, headers=headers
    )

    assert response.status_code == 200
    assert response.json()["description"] == "new words"
    assert response.json()["scopes"] == ["accounts:read"]


async def test_patching_a_roles_scopes_replaces_them(client: httpx.AsyncClient) -> None:
    headers = await admin_headers(client)
    await create_role(client, headers, "support", ["accounts:read"])

    response = await client.patch(
        "/roles/support", json={"scopes": ["audit:read", "roles:read"]}, headers=headers
    )

    assert response.status_code == 200
    assert response.json()["scopes"] == ["audit:read", "roles:read"]
    assert (await client.get("/roles/support", headers=headers)).json()["scopes"] == [
        "audit:read",
        "roles:read",
    ]


async def test_patching_an_unknown_role_is_404(client: httpx.AsyncClient) -> None:
    headers = await admin_headers(client)

    response = await client.patch("/roles/nope", json={"description": "x"}, headers=headers)

    assert response.status_code == 404


async def test_patching_the_admin_roles_scopes_is_409(client: httpx.AsyncClient) -> None:
    headers = await admin_headers(client)

    response = await client.patch("/roles/admin", json={"scopes": ["me:read"]}, headers=headers)

    assert response.status_code == 409
    assert (await client.get("/roles/admin", headers=headers)).json()["scopes"] == (
        ALL_BUILTIN_SCOPES
    )


async def test_patching_the_user_role_to_add_a_custom_scope_works(
    client: httpx.AsyncClient,
) -> None:
    headers = await admin_headers(client)
    assert (
        await client.post("/scopes", json={"name": "wiki:edit"}, headers=headers)
    ).status_code == 201

    response = await client.patch(
        "/roles/user", json={"scopes": ["me:read", "me:write", "wiki:edit"]}, headers=headers
    )

    assert response.status_code == 200
    assert response.json()["scopes"] == ["me:read", "me:write", "wiki:edit"]
    _, tokens = await create_user(client)
    assert scopes_of(tokens) == ["me:read", "me:write", "wiki:edit"]


async def test_deleting_a_custom_role_answers_204_and_then_it_is_gone(
    client: httpx.AsyncClient,
) -> None:
    headers = await admin_headers(client)
    await create_role(client, headers, "temp", ["me:read"])

    response = await client.delete("/roles/temp", headers=headers)

    assert response.status_code == 204
    assert (await client.get("/roles/temp", headers=headers)).status_code == 404
    assert (await client.delete("/roles/temp", headers=headers)).status_code == 404


@pytest.mark.parametrize("name", ["admin", "user"])
async def test_deleting_a_built_in_role_is_409(client: httpx.AsyncClient, name: str) -> None:
    headers = await admin_headers(client)

    response = await client.delete(f"/roles/{name}", headers=headers)

    assert response.status_code == 409
    assert (await client.get(f"/roles/{name}", headers=headers)).status_code == 200


async def test_deleting_a_role_takes_it_from_its_holders(client: httpx.AsyncClient) -> None:
    headers = await admin_headers(client)
    await create_role(client, headers, "temp", ["accounts:read"])
    account, _ = await create_user(client)
    await assign(client, headers, account["id"], "temp")

    await client.delete("/roles/temp", headers=headers)

    after = await client.get(f"/accounts/{account['id']}", headers=headers)
    assert after.json()["roles"] == ["user"]
    assert "accounts:read" not in after.json()["scopes"]


async def test_a_role_name_can_be_reused_after_deletion(client: httpx.AsyncClient) -> None:
    headers = await admin_headers(client)
    await create_role(client, headers, "phoenix", ["accounts:read"])
    await client.delete("/roles/phoenix", headers=headers)

    role = await create_role(client, headers, "phoenix", ["audit:read"])

    assert role["scopes"] == ["audit:read"]


# Assigning and unassigning


async def test_assigning_a_role_twice_answers_200_and_lists_it_once(
    client: httpx.AsyncClient,
) -> None:
    headers = await admin_headers(client)
    await create_role(client, headers, "reader", ["accounts:read"])
    account, _ = await create_user(client)

    first = await assign(client, headers, account["id"], "reader")
    second = await assign(client, headers, account["id"], "reader")

    assert first.status_code == second.status_code == 200
    assert first.json()["roles"] == second.json()["roles"] == ["reader", "user"]
    assert "accounts:read" in second.json()["scopes"]


async def test_unassigning_a_role_answers_200_without_it(client: httpx.AsyncClient) -> None:
    headers = await admin_headers(client)
    await create_role(client, headers, "reader", ["accounts:read"])
    account, _ = await create_user(client)
    await assign(client, headers, account["id"], "reader")

    response = await unassign(client, headers, account["id"], "reader")

    assert response.status_code == 200
    assert response.json()["roles"] == ["user"]
    assert response.json()["scopes"] == ["me:read", "me:write"]


async def test_unassigning_a_role_the_account_does_not_hold_is_a_200_no_op(
    client: httpx.AsyncClient,
) -> None:
    headers = await admin_headers(client)
    await create_role(client, headers, "reader", ["accounts:read"])
    account, tokens = await create_user(client)

    response = await unassign(client, headers, account["id"], "reader")

    assert response.status_code == 200
    assert response.json()["roles"] == ["user"]
    assert (await client.get("/accounts/me", headers=bearer(tokens["access_token"]))).is_success


async def test_assigning_an_unknown_role_is_404(client: httpx.AsyncClient) -> None:
    headers = await admin_headers(client)
    account, _ = await create_user(client)

    response = await assign(client, headers, account["id"], "nope")

    assert response.status_code == 404
    assert (await client.get(f"/accounts/{account['id']}", headers=headers)).json()["roles"] == [
        "user"
    ]


async def test_unassigning_an_unknown_role_is_404(client: httpx.AsyncClient) -> None:
    headers = await admin_headers(client)
    account, _ = await create_user(client)

    assert (await unassign(client, headers, account["id"], "nope")).status_code == 404


@pytest.mark.parametrize("verb", ["PUT", "DELETE"])
async def test_role_assignment_on_an_unknown_account_is_404(
    client: httpx.AsyncClient, verb: str
) -> None:
    headers = await admin_headers(client)

    response = await client.request(verb, f"/accounts/{uuid.uuid4()}/roles/user", headers=headers)

    assert response.status_code == 404


@pytest.mark.parametrize("verb", ["PUT", "DELETE"])
async def test_role_assignment_on_a_non_uuid_account_is_422(
    client: httpx.AsyncClient, verb: str
) -> None:
    headers = await admin_headers(client)

    response = await client.request(verb, "/accounts/not-a-uuid/roles/user", headers=headers)

    assert response.status_code == 422


@pytest.mark.parametrize("verb", ["GET", "PATCH", "DELETE"])
async def test_a_nul_in_a_role_name_is_no_server_error(
    client: httpx.AsyncClient, verb: str
) -> None:
    headers = await admin_headers(client)
    body: dict[str, Any] = {"json": {"description": "x"}} if verb == "PATCH" else {}

    response = await client.request(verb, "/roles/a%00b", headers=headers, **body)

    assert response.status_code in (404, 422), response.text


@pytest.mark.parametrize("verb", ["PUT", "DELETE"])
async def test_a_nul_in_an_assigned_role_name_is_no_server_error(
    client: httpx.AsyncClient, verb: str
) -> None:
    headers = await admin_headers(client)
    account, _ = await create_user(client)

    response = await client.request(verb, f"/accounts/{account['id']}/roles/a%00b", headers=headers)

    assert response.status_code in (404, 422), response.text


# How role changes reach tokens


async def test_an_assigned_roles_scopes_appear_in_the_holders_next_refresh(
    client: httpx.AsyncClient,
) -> None:
    headers = await admin_headers(client)
    await create_role(client, headers, "reader", ["accounts:read"])
    account, tokens = await create_user(client)

    await assign(client, headers, account["id"], "reader")

    response = await refresh(client, tokens["refresh_token"])
    assert response.status_code == 200, response.text
    assert scopes_of(response) == ["accounts:read", "me:read", "me:write"]
    listing = await client.get("/accounts", headers=bearer(response.json()["access_token"]))
    assert listing.status_code == 200


async def test_an_assigned_roles_scopes_appear_in_the_holders_next_login(
    client: httpx.AsyncClient,
) -> None:
    headers = await admin_headers(client)
    await create_role(client, headers, "reader", ["accounts:read"])
    account, _ = await create_user(client)

    await assign(client, headers, account["id"], "reader")

    assert scopes_of(await login(client, account["username"])) == [
        "accounts:read",
        "me:read",
        "me:write",
    ]


async def test_assigning_a_role_refuses_the_holders_older_access_token(
    client: httpx.AsyncClient,
) -> None:
    headers = await admin_headers(client)
    await create_role(client, headers, "reader", ["accounts:read"])
    account, tokens = await create_user(client)

    await assign(client, headers, account["id"], "reader")

    assert_refused_token(await client.get("/accounts/me", headers=bearer(tokens["access_token"])))


async def test_an_unassigned_roles_holder_has_its_token_refused_on_the_next_request(
    client: httpx.AsyncClient,
) -> None:
    headers = await admin_headers(client)
    await create_role(client, headers, "reader", ["accounts:read"])
    account = (
        await client.post(
            "/accounts",
            json={"username": unique_name(), "password": PASSWORD, "roles": ["user", "reader"]},
            headers=headers,
        )
    ).json()
    tokens = await login(client, account["username"])
    user_headers = bearer(tokens["access_token"])
    assert (await client.get("/accounts", headers=user_headers)).status_code == 200

    response = await unassign(client, headers, account["id"], "reader")

    assert response.status_code == 200
    assert_refused_token(await client.get("/accounts", headers=user_headers))
    assert_refused_token(await client.get("/accounts/me", headers=user_headers))


async def test_after_an_unassignment_a_refresh_gives_the_reduced_scopes(
    client: httpx.AsyncClient,
) -> None:
    headers = await admin_headers(client)
    await create_role(client, headers, "reader", ["accounts:read"])
    account = (
        await client.post(
            "/accounts",
            json={"username": unique_name(), "password": PASSWORD, "roles": ["user", "reader"]},
            headers=headers,
        )
    ).json()
    tokens = await login(client, account["username"])
    assert scopes_of(tokens) == ["accounts:read", "me:read", "me:write"]

    await unassign(client, headers, account["id"], "reader")

    response = await refresh(client, tokens["refresh_token"])
    assert response.status_code == 200, response.text
    assert scopes_of(response) == ["me:read", "me:write"]
    new_headers = bearer(response.json()["access_token"])
    assert (await client.get("/accounts/me", headers=new_headers)).status_code == 200
    assert (await client.get("/accounts", headers=new_headers)).status_code == 403


async def test_changing_a_roles_scopes_refuses_its_holders_older_tokens(
    client: httpx.AsyncClient,
) -> None:
    headers = await admin_headers(client)
    await create_role(client, headers, "reader", ["accounts:read"])
    holder, holder_tokens = await create_user(client)
    bystander, bystander_tokens = await create_user(client)
    await assign(client, headers, holder["id"], "reader")
    holder_tokens = await login(client, holder["username"])

    response = await client.patch("/roles/reader", json={"scopes": ["me:read"]}, headers=headers)

    assert response.status_code == 200
    assert_refused_token(
        await client.get("/accounts/me", headers=bearer(holder_tokens["access_token"]))
    )
    bystander_me = await client.get(
        "/accounts/me", headers=bearer(bystander_tokens["access_token"])
    )
    assert bystander_me.status_code == 200


async def test_after_a_role_loses_a_scope_a_refresh_gives_the_reduced_scopes(
    client: httpx.AsyncClient,
) -> None:
    headers = await admin_headers(client)
    await create_role(client, headers, "reader", ["accounts:read", "roles:read"])
    account, _ = await create_user(client)
    await assign(client, headers, account["id"], "reader")
    tokens = await login(client, account["username"])

    await client.patch("/roles/reader", json={"scopes": ["roles:read"]}, headers=headers)

    response = await refresh(client, tokens["refresh_token"])
    assert scopes_of(response) == ["me:read", "me:write", "roles:read"]


async def test_after_a_role_gains_a_scope_a_refresh_gives_the_new_scope(
    client: httpx.AsyncClient,
) -> None:
    headers = await admin_headers(client)
    await create_role(client, headers, "reader", ["roles:read"])
    account, _ = await create_user(client)
    await assign(client, headers, account["id"], "reader")
    tokens = await login(client, account["username"])

    await client.patch(
        "/roles/reader", json={"scopes": ["roles:read", "accounts:read"]}, headers=headers
    )

    response = await refresh(client, tokens["refresh_token"])
    assert response.status_code == 200, response.text
    assert scopes_of(response) == ["accounts:read", "me:read", "me:write", "roles:read"]


async def test_changing_only_a_roles_description_keeps_holders_tokens(
    client: httpx.AsyncClient,
) -> None:
    headers = await admin_headers(client)
    await create_role(client, headers, "reader", ["accounts:read"])
    account, _ = await create_user(client)
    await assign(client, headers, account["id"], "reader")
    tokens = await login(client, account["username"])

    await client.patch("/roles/reader", json={"description": "same power"}, headers=headers)

    assert (await client.get("/accounts", headers=bearer(tokens["access_token"]))).is_success


async def test_deleting_a_role_refuses_its_holders_older_tokens(client: httpx.AsyncClient) -> None:
    headers = await admin_headers(client)
    await create_role(client, headers, "temp", ["accounts:read"])
    account, _ = await create_user(client)
    await assign(client, headers, account["id"], "temp")
    tokens = await login(client, account["username"])

    await client.delete("/roles/temp", headers=headers)

    assert_refused_token(await client.get("/accounts", headers=bearer(tokens["access_token"])))
    assert scopes_of(await refresh(client, tokens["refresh_token"])) == ["me:read", "me:write"]


async def test_a_narrowed_session_stays_narrow_after_a_role_is_assigned(
    client: httpx.AsyncClient,
) -> None:
    headers = await admin_headers(client)
    await create_role(client, headers, "reader", ["accounts:read"])
    account, _ = await create_user(client)
    tokens = await login(client, account["username"], scope="me:read")

    await assign(client, headers, account["id"], "reader")

    response = await refresh(client, tokens["refresh_token"])
    assert response.status_code == 200
    assert scopes_of(response) == ["me:read"]
