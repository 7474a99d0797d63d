"""Guardrails (CONTRACT.md): nobody grants what they do not hold, every admin
endpoint is gated by its scope, and the last active admin stays, also when two
demotions race."""

import asyncio
import uuid
from collections.abc import Callable, Coroutine
from typing import Any

import asyncpg
import httpx
import pytest

from app.authz.catalogue import PERMISSION_SCOPES
from tests.conftest import ADMIN_PASSWORD, ADMIN_USERNAME, unique_name
from tests.factories import PASSWORD, admin_login, bearer, create_user, login

LITE_SCOPES = ["me:read", "roles:read", "roles:write"]


async def admin_headers(client: httpx.AsyncClient, scope: str | None = None) -> dict[str, str]:
    return bearer((await admin_login(client, scope))["access_token"])


async def create_account(
    client: httpx.AsyncClient, headers: dict[str, str], roles: list[str]
) -> dict[str, Any]:
    response = await client.post(
        "/accounts",
        json={"username": unique_name(), "password": PASSWORD, "roles": roles},
        headers=headers,
    )
    assert response.status_code == 201, response.text
    return response.json()  # type: ignore[no-any-return]


async def create_role(
    client: httpx.AsyncClient, headers: dict[str, str], name: str, scopes: list[str]
) -> None:
    response = await client.post("/roles", json={"name": name, "scopes": scopes}, headers=headers)
    assert response.status_code == 201, response.text


async def admin_lite(
    client: httpx.AsyncClient, headers: dict[str, str]
) -> tuple[dict[str, Any], dict[str, str]]:
    """An account whose only role, `roleadmin`, carries roles:read roles:write me:read."""
    await create_role(client, headers, "roleadmin", LITE_SCOPES)
    account = await create_account(client, headers, ["roleadmin"])
    tokens = await login(client, account["username"])
    assert sorted(tokens["scope"].split()) == LITE_SCOPES
    return account, bearer(tokens["access_token"])


async def role_or_none(
    client: httpx.AsyncClient, headers: dict[str, str], name: str
) -> dict[str, Any] | None:
    response = await client.get(f"/roles/{name}", headers=headers)
    return response.json() if response.status_code == 200 else None


async def existing_role(
    client: httpx.AsyncClient, headers: dict[str, str], name: str
) -> dict[str, Any]:
    role = await role_or_none(client, headers, name)
    assert role is not None, f"role {name} is missing"
    return role


async def roles_of(
    client: httpx.AsyncClient, headers: dict[str, str], account_id: str
) -> list[str]:
    return (await client.get(f"/accounts/{account_id}", headers=headers)).json()["roles"]  # type: ignore[no-any-return]


def assert_insufficient_scope(response: httpx.Response, scope: str) -> None:
    assert response.status_code == 403, response.text
    assert response.headers["www-authenticate"] == (
        f'Bearer error="insufficient_scope", scope="{scope}"'
    )


# Nobody grants what they do not hold


async def test_admin_lite_creates_a_role_with_only_scopes_it_holds(
    client: httpx.AsyncClient,
) -> None:
    headers = await admin_headers(client)
    _, lite = await admin_lite(client, headers)

    response = await client.post(
        "/roles", json={"name": "helper", "scopes": ["roles:read", "me:read"]}, headers=lite
    )

    assert response.status_code == 201, response.text
    assert response.json()["scopes"] == ["me:read", "roles:read"]


@pytest.mark.parametrize(
    "scopes", [["audit:read"], ["accounts:write"], ["me:read", "audit:read"], ["me:write"]]
)
async def test_admin_lite_cannot_create_a_role_with_a_scope_it_lacks(
    client: httpx.AsyncClient, scopes: list[str]
) -> None:
    headers = await admin_headers(client)
    _, lite = await admin_lite(client, headers)

    response = await client.post("/roles", json={"name": "sneaky", "scopes": scopes}, headers=lite)

    assert response.status_code == 403, response.text
    assert await role_or_none(client, headers, "sneaky") is None


@pytest.mark.parametrize("scope", ["audit:read", "accounts:write"])
async def test_admin_lite_cannot_add_a_scope_it_lacks_to_a_role(
    client: httpx.AsyncClient, scope: str
) -> None:
    headers = await admin_headers(client)
    _, lite = await admin_lite(client, headers)
    await create_role(client, lite, "helper", ["me:read"])

    response = await client.patch(
        "/roles/helper", json={"scopes": ["me:read", scope]}, headers=lite
    )

    assert response.status_code == 403, response.text
    assert (await existing_role(client, headers, "helper"))["scopes"] == ["me:read"]


async def test_admin_lite_cannot_add_a_scope_it_lacks_to_its_own_role(
    client: httpx.AsyncClient,
) -> None:
    headers = await admin_headers(client)
    _, lite = await admin_lite(client, headers)

    response = await client.patch(
        "/roles/roleadmin", json={"scopes": [*LITE_SCOPES, "audit:read"]}, headers=lite
    )

    assert response.status_code == 403, response.text
    assert (await existing_role(client, headers, "roleadmin"))["scopes"] == LITE_SCOPES


async def test_admin_lite_cannot_strip_a_scope_it_lacks_from_a_role(
    client: httpx.AsyncClient,
) -> None:
    headers = await admin_headers(client)
    _, lite = await admin_lite(client, headers)
    await create_role(client, headers, "auditor", ["audit:read", "me:read"])

    response = await client.patch("/roles/auditor", json={"scopes": ["me:read"]}, headers=lite)

    assert response.status_code == 403, response.text
    assert (await existing_role(client, headers, "auditor"))["scopes"] == ["audit:read", "me:read"]


async def test_admin_lite_cannot_redescribe_a_role_carrying_scopes_it_lacks(
    client: httpx.AsyncClient,
) -> None:
    headers = await admin_headers(client)
    _, lite = await admin_lite(client, headers)
    before = await role_or_none(client, headers, "admin")

    response = await client.patch(
        "/roles/admin", json={"description": "Deprecated: do not use"}, headers=lite
    )

    assert response.status_code == 403, response.text
    assert await role_or_none(client, headers, "admin") == before


async def test_admin_lite_cannot_delete_a_role_carrying_scopes_it_lacks(
    client: httpx.AsyncClient,
) -> None:
    headers = await admin_headers(client)
    _, lite = await admin_lite(client, headers)
    await create_role(client, headers, "auditor", ["audit:read"])

    response = await client.delete("/roles/auditor", headers=lite)

    assert response.status_code == 403, response.text
    assert await role_or_none(client, headers, "auditor") is not None


@pytest.mark.parametrize("target", ["itself", "another account"])
async def test_admin_lite_cannot_assign_the_admin_role(
    client: httpx.AsyncClient, target: str
) -> None:
    headers = await admin_headers(client)
    lite_account, lite = await admin_lite(client, headers)
    other, _ = await create_user(client)
    account_id = lite_account["id"] if target == "itself" else other["id"]

    response = await client.put(f"/accounts/{account_id}/roles/admin", headers=lite)

    assert response.status_code == 403, response.text
    assert "admin" not in await roles_of(client, headers, account_id)


async def test_admin_lite_cannot_take_the_admin_role_from_an_admin(
    client: httpx.AsyncClient,
) -> None:
    headers = await admin_headers(client)
    _, lite = await admin_lite(client, headers)
    second = await create_account(client, headers, ["admin"])

    response = await client.delete(f"/accounts/{second['id']}/roles/admin", headers=lite)

    assert response.status_code == 403, response.text
    assert await roles_of(client, headers, second["id"]) == ["admin"]


async def test_admin_lite_cannot_assign_a_role_carrying_a_scope_it_lacks(
    client: httpx.AsyncClient,
) -> None:
    headers = await admin_headers(client)
    _, lite = await admin_lite(client, headers)
    other = await create_account(client, headers, [])

    # `user` carries me:write, which the admin-lite does not hold.
    response = await client.put(f"/accounts/{other['id']}/roles/user", headers=lite)

    assert response.status_code == 403, response.text
    assert await roles_of(client, headers, other["id"]) == []


async def test_admin_lite_assigns_a_role_whose_scopes_it_holds(client: httpx.AsyncClient) -> None:
    headers = await admin_headers(client)
    _, lite = await admin_lite(client, headers)
    await create_role(client, lite, "viewer", ["roles:read"])
    other, _ = await create_user(client)

    response = await client.put(f"/accounts/{other['id']}/roles/viewer", headers=lite)

    assert response.status_code == 200, response.text
    assert response.json()["roles"] == ["user", "viewer"]


async def test_admin_lite_cannot_read_the_audit_log(client: httpx.AsyncClient) -> None:
    headers = await admin_headers(client)
    _, lite = await admin_lite(client, headers)

    response = await client.get("/audit", headers=lite)

    assert_insufficient_scope(response, "audit:read")


async def test_admin_counts_as_holding_custom_scopes(client: httpx.AsyncClient) -> None:
    headers = await admin_headers(client)
    assert (
        await client.post("/scopes", json={"name": "billing:read"}, headers=headers)
    ).status_code == 201
    other, _ = await create_user(client)

    created = await client.post(
        "/roles", json={"name": "billing", "scopes": ["billing:read"]}, headers=headers
    )
    assigned = await client.put(f"/accounts/{other['id']}/roles/billing", headers=headers)

    assert created.status_code == 201, created.text
    assert assigned.status_code == 200, assigned.text
    assert "billing:read" in assigned.json()["scopes"]


async def test_an_admins_token_does_not_carry_custom_scopes_it_was_not_granted(
    client: httpx.AsyncClient,
) -> None:
    headers = await admin_headers(client)
    await client.post("/scopes", json={"name": "billing:read"}, headers=headers)

    tokens = await admin_login(client)

    assert "billing:read" not in tokens["scope"].split()


async def test_admin_lite_cannot_assign_a_role_carrying_a_custom_scope(
    client: httpx.AsyncClient,
) -> None:
    headers = await admin_headers(client)
    _, lite = await admin_lite(client, headers)
    await client.post("/scopes", json={"name": "billing:read"}, headers=headers)
    await create_role(client, headers, "billing", ["billing:read"])
    other, _ = await create_user(client)

    response = await client.put(f"/accounts/{other['id']}/roles/billing", headers=lite)

    assert response.status_code == 403, response.text
    assert "billing" not in await roles_of(client, headers, other["id"])


async def test_admin_lite_cannot_create_a_role_carrying_a_custom_scope(
    client: httpx.AsyncClient,
) -> None:
    headers = await admin_headers(client)
    _, lite = await admin_lite(client, headers)
    await client.post("/scopes", json={"name": "billing:read"}, headers=headers)

    response = await client.post(
        "/roles", json={"name": "billing", "scopes": ["billing:read"]}, headers=lite
    )

    assert response.status_code == 403, response.text
    assert await role_or_none(client, headers, "billing") is None


# The token making the request is what counts, not everything its account holds


@pytest.mark.parametrize("narrowed", ["roles:write", "roles:read roles:write me:read me:write"])
async def test_a_narrowed_admin_token_cannot_assign_the_admin_role(client, narrowed):
    headers = await admin_headers(client)
    other, _ = await create_user(client)

    response = await client.put(
        f"/accounts/{other['id']}/roles/admin", headers=await admin_headers(client, narrowed)
    )

    assert response.status_code == 403, response.text
    assert "admin" not in await roles_of(client, headers, other["id"])


async def test_a_narrowed_admin_token_cannot_create_a_role_with_scopes_it_does_not_carry(client):
    headers = await admin_headers(client)

    response = await client.post(
        "/roles",
        json={"name": "sneaky", "scopes": ["audit:read", "accounts:write"]},
        headers=await admin_headers(client, "roles:write"),
    )

    assert response.status_code == 403, response.text
    assert await role_or_none(client, headers, "sneaky") is None


async def test_a_narrowed_admin_token_cannot_create_an_admin_account(client):
    response = await client.post(
        "/accounts",
        json={"username": unique_name(), "password": PASSWORD, "roles": ["admin"]},
        headers=await admin_headers(client, "accounts:write"),
    )

    assert response.status_code == 403, response.text


async def test_a_narrowed_admin_token_grants_what_it_carries(client):
    response = await client.post(
        "/roles",
        json={"name": "viewer", "scopes": ["roles:read"]},
        headers=await admin_headers(client, "roles:read roles:write"),
    )

    assert response.status_code == 201, response.text


async def test_a_narrowed_admin_token_does_not_count_as_holding_custom_scopes(client):
    headers = await admin_headers(client)
    assert (
        await client.post("/scopes", json={"name": "billing:read"}, headers=headers)
    ).status_code == 201
    all_but_audit = " ".join(sorted(PERMISSION_SCOPES - {"audit:read"}))

    response = await client.post(
        "/roles",
        json={"name": "billing", "scopes": ["billing:read"]},
        headers=await admin_headers(client, all_but_audit),
    )

    assert response.status_code == 403, response.text
    assert await role_or_none(client, headers, "billing") is None


async def test_an_admin_token_naming_every_permission_scope_counts_as_holding_custom_ones(
    client,
):
    headers = await admin_headers(client)
    await client.post("/scopes", json={"name": "billing:read"}, headers=headers)

    response = await client.post(
        "/roles",
        json={"name": "billing", "scopes": ["billing:read"]},
        headers=await admin_headers(client, " ".join(sorted(PERMISSION_SCOPES))),
    )

    assert response.status_code == 201, response.text


# Built-in roles change only with a token carrying every built-in permission scope

ROLE_MANAGER_SCOPES = ["me:read", "me:write", "roles:read", "roles:write"]


async def role_manager(client: httpx.AsyncClient, headers: dict[str, str]) -> dict[str, str]:
    """A token of an account holding me:* and roles:*, nothing else."""
    await create_role(client, headers, "rolemanager", ROLE_MANAGER_SCOPES)
    account = await create_account(client, headers, ["rolemanager"])
    tokens = await login(client, account["username"])
    assert sorted(tokens["scope"].split()) == ROLE_MANAGER_SCOPES
    return bearer(tokens["access_token"])


@pytest.mark.parametrize(
    "change",
    [
        {"scopes": ["me:read", "me:write", "roles:write"]},
        {"scopes": ["me:read"]},
        {"description": "Every signup, and a little more"},
    ],
    ids=["widen", "narrow", "redescribe"],
)
async def test_a_role_manager_cannot_change_the_user_role(client, change):
    headers = await admin_headers(client)
    manager = await role_manager(client, headers)
    before = await role_or_none(client, headers, "user")

    response = await client.patch("/roles/user", json=change, headers=manager)

    assert response.status_code == 403, response.text
    assert await role_or_none(client, headers, "user") == before


@pytest.mark.parametrize("role", ["user", "admin"])
async def test_a_narrowed_admin_token_cannot_change_a_built_in_role(client, role):
    headers = await admin_headers(client)
    before = await role_or_none(client, headers, role)

    response = await client.patch(
        f"/roles/{role}",
        json={"description": "changed"},
        headers=await admin_headers(client, " ".join(ROLE_MANAGER_SCOPES)),
    )

    assert response.status_code == 403, response.text
    assert await role_or_none(client, headers, role) == before


async def test_a_token_carrying_every_permission_scope_changes_the_user_role(client):
    headers = await admin_headers(client)

    response = await client.patch(
        "/roles/user",
        json={"description": "Every signed-up account, as of today"},
        headers=await admin_headers(client, " ".join(sorted(PERMISSION_SCOPES))),
    )

    assert response.status_code == 200, response.text
    role = await role_or_none(client, headers, "user")
    assert role is not None
    assert role["scopes"] == ["me:read", "me:write"]


async def test_a_role_manager_still_changes_custom_roles_it_could_grant(client):
    headers = await admin_headers(client)
    manager = await role_manager(client, headers)
    await create_role(client, manager, "helper", ["me:read"])

    response = await client.patch(
        "/roles/helper", json={"scopes": ["me:read", "roles:read"]}, headers=manager
    )

    assert response.status_code == 200, response.text


# Every admin endpoint is gated by its scope, with no side effect when refused

VICTIM_ROLE = "victim"
VICTIM_SCOPE = "victim:read"

# (method, path template, JSON body, scope the endpoint needs)
ADMIN_ENDPOINTS = [
    ("GET", "/accounts", None, "accounts:read"),
    ("POST", "/accounts", {"username": "intruder", "password": PASSWORD}, "accounts:write"),
    ("GET", "/accounts/{victim}", None, "accounts:read"),
    ("PATCH", "/accounts/{victim}", {"is_active": False}, "accounts:write"),
    ("DELETE", "/accounts/{victim}", None, "accounts:write"),
    ("PUT", "/accounts/{victim}/roles/admin", None, "roles:write"),
    ("PUT", "/accounts/{me}/roles/admin", None, "roles:write"),
    ("DELETE", "/accounts/{victim}/roles/" + VICTIM_ROLE, None, "roles:write"),
    ("GET", "/roles", None, "roles:read"),
    ("POST", "/roles", {"name": "intruders", "scopes": ["me:read"]}, "roles:write"),
    ("GET", "/roles/" + VICTIM_ROLE, None, "roles:read"),
    ("PATCH", "/roles/" + VICTIM_ROLE, {"scopes": ["me:read"]}, "roles:write"),
    ("PATCH", "/roles/user", {"scopes": ["me:read", "me:write", "roles:write"]}, "roles:write"),
    ("DELETE", "/roles/" + VICTIM_ROLE, None, "roles:write"),
    ("GET", "/scopes", None, "roles:read"),
    ("POST", "/scopes", {"name": "intruder:read"}, "roles:write"),
    ("DELETE", "/scopes/" + VICTIM_SCOPE, None, "roles:write"),
    ("GET", "/audit", None, "audit:read"),
]
Demote = Callable[[dict[str, str], str], Coroutine[Any, Any, httpx.Response]]
ENDPOINT_IDS = [f"{m} {p}" for m, p, _, _ in ADMIN_ENDPOINTS]


async def snapshot(client: httpx.AsyncClient, headers: dict[str, str]) -> dict[str, Any]:
    """Everything an admin endpoint could change."""
    state = {}
    for path in ("/accounts?limit=100", "/roles", "/scopes", "/audit?limit=100"):
        response = await client.get(path, headers=headers)
        assert response.status_code == 200, response.text
        state[path] = response.json()
    return state


async def victim_setup(client: httpx.AsyncClient) -> tuple[dict[str, str], dict[str, str]]:
    """Admin headers and the ids a refused request would have touched."""
    headers = await admin_headers(client)
    await client.post("/scopes", json={"name": VICTIM_SCOPE}, headers=headers)
    await create_role(client, headers, VICTIM_ROLE, [VICTIM_SCOPE, "me:read"])
    victim = await create_account(client, headers, ["user", VICTIM_ROLE])
    await login(client, victim["username"])
    return headers, {"victim": victim["id"]}


@pytest.mark.parametrize(("method", "path", "body", "needed"), ADMIN_ENDPOINTS, ids=ENDPOINT_IDS)
async def test_every_admin_endpoint_refuses_a_plain_user_token_without_side_effect(
    client: httpx.AsyncClient,
    method: str,
    path: str,
    body: dict[str, Any] | None,
    needed: str,
) -> None:
    headers, ids = await victim_setup(client)
    me, tokens = await create_user(client)
    ids["me"] = me["id"]
    before = await snapshot(client, headers)

    response = await client.request(
        method, path.format(**ids), json=body, headers=bearer(tokens["access_token"])
    )

    assert_insufficient_scope(response, needed)
    assert response.json() == {"detail": "The token lacks a scope this endpoint needs"}
    assert await snapshot(client, headers) == before


@pytest.mark.parametrize(("method", "path", "body", "needed"), ADMIN_ENDPOINTS, ids=ENDPOINT_IDS)
async def test_an_admin_token_narrowed_to_me_read_is_refused_by_every_admin_endpoint(
    client: httpx.AsyncClient,
    method: str,
    path: str,
    body: dict[str, Any] | None,
    needed: str,
) -> None:
    headers, ids = await victim_setup(client)
    narrowed = await admin_login(client, scope="me:read")
    assert narrowed["scope"] == "me:read"
    ids["me"] = str(uuid.uuid4())
    before = await snapshot(client, headers)

    response = await client.request(
        method, path.format(**ids), json=body, headers=bearer(narrowed["access_token"])
    )

    assert_insufficient_scope(response, needed)
    assert await snapshot(client, headers) == before


async def test_every_admin_endpoint_refuses_a_request_without_a_token(
    client: httpx.AsyncClient,
) -> None:
    headers, ids = await victim_setup(client)
    ids["me"] = str(uuid.uuid4())
    before = await snapshot(client, headers)

    for method, path, body, needed in ADMIN_ENDPOINTS:
        response = await client.request(method, path.format(**ids), json=body)

        assert response.status_code == 401, (method, path)
        assert response.headers["www-authenticate"] == f'Bearer scope="{needed}"'
    assert await snapshot(client, headers) == before


# The last active admin, under concurrency

ROUNDS = 5


async def _active_admins(client: httpx.AsyncClient, headers: dict[str, str]) -> list[str]:
    response = await client.get(
        "/accounts", params={"role": "admin", "is_active": "true", "limit": 100}, headers=headers
    )
    assert response.status_code == 200, response.text
    return [a["id"] for a in response.json()["items"]]


class LockGate:
    """On PostgreSQL, holds the tables a demotion writes (EXCLUSIVE: plain reads such
    as the token check go on, row locks and writes wait) until both racing requests
    are waiting on them, then lets them go at once: their token checks are done and
    the race is real on every round. SQLite serialises writers by itself."""

    def __init__(self, database_url: str) -> None:
        self.url = database_url.replace("postgresql+asyncpg://", "postgresql://")
        self.postgres = database_url.startswith("postgresql")

    async def __aenter__(self) -> "LockGate":
        if self.postgres:
            self.conn = await asyncpg.connect(self.url)
            self.transaction = self.conn.transaction()
            await self.transaction.start()
            await self.conn.execute("LOCK TABLE role, account, account_role IN EXCLUSIVE MODE")
        return self

    async def wait_for(self, waiting: int) -> None:
        if not self.postgres:
            return
        for _ in range(60):
            # pg_stat_activity is a per-transaction snapshot unless cleared.
            await self.conn.execute("SELECT pg_stat_clear_snapshot()")
            blocked = await self.conn.fetchval(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                " AND pid <> pg_backend_pid() AND wait_event_type = 'Lock'"
            )
            if blocked >= waiting:
                return
            await asyncio.sleep(0.05)
        raise AssertionError(f"fewer than {waiting} requests ever waited on the tables")

    async def __aexit__(self, *exc: object) -> None:
        if self.postgres:
            await self.transaction.rollback()
            await self.conn.close()


async def _race(client: httpx.AsyncClient, database_url: str, demote: Demote, ok: int) -> None:
    """Rounds of: the one active admin makes a second; each demotes the other at once."""
    survivor = (ADMIN_USERNAME, ADMIN_PASSWORD)
    for _ in range(ROUNDS):
        a_headers = bearer((await login(client, *survivor))["access_token"])
        a_id = (await client.get("/accounts/me", headers=a_headers)).json()["id"]
        second = await create_account(client, a_headers, ["admin"])
        b_id = second["id"]
        b_headers = bearer((await login(client, second["username"]))["access_token"])

        async with LockGate(database_url) as gate:
            racers = [
                asyncio.create_task(demote(a_headers, b_id)),
                asyncio.create_task(demote(b_headers, a_id)),
            ]
            await gate.wait_for(2)
        a_response, b_response = await asyncio.gather(*racers)

        statuses = sorted([a_response.status_code, b_response.status_code])
        # On PostgreSQL both requests pass the token check before either demotes
        # (the gate holds them), so the loser meets the guardrail: 409. SQLite runs
        # one request's transaction at a time, so there the second request may
        # already see that its own admin role is gone: its token is refused (401).
        losers = [409] if gate.postgres else [409, 401]
        assert any(statuses == sorted([ok, lost]) for lost in losers), (
            a_response.text,
            b_response.text,
        )
        a_won = a_response.status_code == ok
        winner_id = a_id if a_won else b_id
        survivor = survivor if a_won else (second["username"], PASSWORD)
        winner_headers = bearer((await login(client, *survivor))["access_token"])
        assert await _active_admins(client, winner_headers) == [winner_id]


async def test_two_admins_unassigning_each_other_at_once_leave_exactly_one_admin(
    client: httpx.AsyncClient, database_url: str
) -> None:
    async def unassign(headers: dict[str, str], target: str) -> httpx.Response:
        return await client.delete(f"/accounts/{target}/roles/admin", headers=headers)

    await _race(client, database_url, unassign, ok=200)


async def test_two_admins_disabling_each_other_at_once_leave_exactly_one_admin(
    client: httpx.AsyncClient, database_url: str
) -> None:
    async def disable(headers: dict[str, str], target: str) -> httpx.Response:
        return await client.patch(f"/accounts/{target}", json={"is_active": False}, headers=headers)

    await _race(client, database_url, disable, ok=200)


async def test_two_admins_deleting_each_other_at_once_leave_exactly_one_admin(
    client: httpx.AsyncClient, database_url: str
) -> None:
    async def delete(headers: dict[str, str], target: str) -> httpx.Response:
        return await client.delete(f"/accounts/{target}", headers=headers)

    await _race(client, database_url, delete, ok=204)
