"""The audit log (CONTRACT.md, Guardrails and GET /audit): every admin change and
sign-in event, with actor, target, time and client address; never a secret."""

import base64
import json
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from tests.conftest import ADMIN_PASSWORD, unique_name
from tests.factories import PASSWORD, admin_login, bearer, create_user, login, refresh, signup

AUDIT_FIELDS = {"id", "time", "actor", "action", "target", "ip", "detail"}
CLIENT_IP = "127.0.0.1"  # httpx's ASGI transport reports this peer


class Admin:
    def __init__(self, client: httpx.AsyncClient, tokens: dict[str, Any]) -> None:
        self.client = client
        self.headers = bearer(tokens["access_token"])
        self.id = claims(tokens["access_token"])["sub"]

    async def events(self, **params: Any) -> list[dict[str, Any]]:
        response = await self.client.get(
            "/audit", params={"limit": 100, **params}, headers=self.headers
        )
        assert response.status_code == 200, response.text
        return response.json()["items"]  # type: ignore[no-any-return]

    async def newest(self, action: str) -> dict[str, Any]:
        events = await self.events(action=action)
        assert events, f"no {action} event"
        return events[0]

    async def post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        response = await self.client.post(path, json=body, headers=self.headers)
        assert response.status_code == 201, response.text
        return response.json()  # type: ignore[no-any-return]


def claims(jwt: str) -> dict[str, Any]:
    payload = jwt.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))  # type: ignore[no-any-return]


async def as_admin(client: httpx.AsyncClient) -> Admin:
    return Admin(client, await admin_login(client))


def assert_entry_shape(entry: dict[str, Any]) -> None:
    assert set(entry) == AUDIT_FIELDS
    when = datetime.fromisoformat(entry["time"])
    assert when.tzinfo is not None
    assert abs(datetime.now(UTC) - when) < timedelta(minutes=5)
    assert entry["ip"] == CLIENT_IP
    assert isinstance(entry["detail"], dict)


# Admin changes: each action, with the admin as actor and the right target


async def _account_create(admin: Admin) -> tuple[str, dict[str, Any]]:
    account = await admin.post(
        "/accounts", {"username": "audited", "password": PASSWORD, "roles": ["user"]}
    )
    return account["id"], {"username": "audited"}


async def _account_update(admin: Admin) -> tuple[str, dict[str, Any]]:
    account = await admin.post("/accounts", {"username": unique_name(), "password": PASSWORD})
    response = await admin.client.patch(
        f"/accounts/{account['id']}", json={"is_active": False}, headers=admin.headers
    )
    assert response.status_code == 200
    return account["id"], {"is_active": False}


async def _account_delete(admin: Admin) -> tuple[str, dict[str, Any]]:
    account = await admin.post("/accounts", {"username": "doomed", "password": PASSWORD})
    response = await admin.client.delete(f"/accounts/{account['id']}", headers=admin.headers)
    assert response.status_code == 204
    return account["id"], {}


async def _role_create(admin: Admin) -> tuple[str, dict[str, Any]]:
    await admin.post("/roles", {"name": "reader", "scopes": ["accounts:read"]})
    return "reader", {"scopes": ["accounts:read"]}


async def _role_update(admin: Admin) -> tuple[str, dict[str, Any]]:
    await admin.post("/roles", {"name": "reader", "scopes": ["accounts:read"]})
    response = await admin.client.patch(
        "/roles/reader", json={"scopes": ["audit:read"]}, headers=admin.headers
    )
    assert response.status_code == 200
    return "reader", {"added": ["audit:read"], "removed": ["accounts:read"]}


async def _role_delete(admin: Admin) -> tuple[str, dict[str, Any]]:
    await admin.post("/roles", {"name": "reader", "scopes": []})
    response = await admin.client.delete("/roles/reader", headers=admin.headers)
    assert response.status_code == 204
    return "reader", {}


async def _role_assign(admin: Admin) -> tuple[str, dict[str, Any]]:
    account, _ = await create_user(admin.client)
    response = await admin.client.put(
        f"/accounts/{account['id']}/roles/admin", headers=admin.headers
    )
    assert response.status_code == 200
    return account["id"], {"role": "admin"}


async def _role_unassign(admin: Admin) -> tuple[str, dict[str, Any]]:
    account, _ = await create_user(admin.client)
    response = await admin.client.delete(
        f"/accounts/{account['id']}/roles/user", headers=admin.headers
    )
    assert response.status_code == 200
    return account["id"], {"role": "user"}


async def _scope_create(admin: Admin) -> tuple[str, dict[str, Any]]:
    await admin.post("/scopes", {"name": "billing:read", "description": "Invoices"})
    return "billing:read", {}


async def _scope_delete(admin: Admin) -> tuple[str, dict[str, Any]]:
    await admin.post("/scopes", {"name": "billing:read"})
    response = await admin.client.delete("/scopes/billing:read", headers=admin.headers)
    assert response.status_code == 204
    return "billing:read", {}


ADMIN_CHANGES: dict[str, Callable[[Admin], Awaitable[tuple[str, dict[str, Any]]]]] = {
    "account.create": _account_create,
    "account.update": _account_update,
    "account.delete": _account_delete,
    "role.create": _role_create,
    "role.update": _role_update,
    "role.delete": _role_delete,
    "role.assign": _role_assign,
    "role.unassign": _role_unassign,
    "scope.create": _scope_create,
    "scope.delete": _scope_delete,
}


@pytest.mark.parametrize("action", list(ADMIN_CHANGES))
async def test_each_admin_change_is_logged_with_the_admin_as_actor_and_its_target(
    client: httpx.AsyncClient, action: str
) -> None:
    admin = await as_admin(client)

    target, detail = await ADMIN_CHANGES[action](admin)

    entry = await admin.newest(action)
    assert_entry_shape(entry)
    assert entry["actor"] == admin.id
    assert entry["target"] == target
    assert detail.items() <= entry["detail"].items()


async def test_a_change_that_is_refused_leaves_no_audit_entry(client: httpx.AsyncClient) -> None:
    admin = await as_admin(client)

    response = await client.patch(
        f"/accounts/{admin.id}", json={"is_active": False}, headers=admin.headers
    )

    assert response.status_code == 409
    assert await admin.events(action="account.update") == []


async def test_a_change_that_changes_nothing_leaves_no_audit_entry(
    client: httpx.AsyncClient,
) -> None:
    admin = await as_admin(client)
    account, _ = await create_user(client)

    response = await client.put(f"/accounts/{account['id']}/roles/user", headers=admin.headers)

    assert response.status_code == 200
    assert await admin.events(action="role.assign") == []


# Sign-in events


async def test_a_login_is_logged_with_the_account_as_actor_and_target(
    client: httpx.AsyncClient,
) -> None:
    account, _ = await create_user(client)
    admin = await as_admin(client)

    entry = (await admin.events(action="auth.login", actor=account["id"]))[0]

    assert_entry_shape(entry)
    assert entry["actor"] == entry["target"] == account["id"]


async def test_a_failed_login_for_a_known_account_is_logged_as_anonymous(
    client: httpx.AsyncClient,
) -> None:
    account = await signup(client)
    response = await client.post(
        "/auth/token",
        data={"grant_type": "password", "username": account["username"], "password": "nope-x1"},
    )
    assert response.status_code == 400
    admin = await as_admin(client)

    entry = await admin.newest("auth.login_failed")

    assert_entry_shape(entry)
    assert entry["actor"] is None
    assert entry["target"] == account["id"]


async def test_a_failed_login_for_an_unknown_username_is_logged_as_anonymous(
    client: httpx.AsyncClient,
) -> None:
    response = await client.post(
        "/auth/token",
        data={"grant_type": "password", "username": "nobody_here", "password": "whatever-x1"},
    )
    assert response.status_code == 400
    admin = await as_admin(client)

    entry = await admin.newest("auth.login_failed")

    assert_entry_shape(entry)
    assert entry["actor"] is None
    assert entry["target"] == "nobody_here"


async def test_a_logout_is_logged_with_the_account_as_actor_and_the_session_as_target(
    client: httpx.AsyncClient,
) -> None:
    account, tokens = await create_user(client)
    response = await client.post("/auth/logout", headers=bearer(tokens["access_token"]))
    assert response.status_code == 204
    admin = await as_admin(client)

    entry = await admin.newest("auth.logout")

    assert_entry_shape(entry)
    assert entry["actor"] == account["id"]
    assert entry["target"] == claims(tokens["access_token"])["sid"]


async def test_a_reused_refresh_token_is_logged_against_its_account(
    client: httpx.AsyncClient,
) -> None:
    account, tokens = await create_user(client)
    assert (await refresh(client, tokens["refresh_token"])).status_code == 200
    assert (await refresh(client, tokens["refresh_token"])).status_code == 400
    admin = await as_admin(client)

    entry = await admin.newest("auth.refresh_reuse")

    assert_entry_shape(entry)
    assert entry["actor"] is None
    assert entry["target"] == account["id"]


# No secrets


async def test_no_password_or_token_used_anywhere_appears_in_the_log(
    client: httpx.AsyncClient,
) -> None:
    secrets_used = [PASSWORD, ADMIN_PASSWORD, "wrong-guess-Zq81", "brand new passphrase 77"]
    admin = await as_admin(client)
    secrets_used += [admin.headers["Authorization"].split()[1]]
    account = await admin.post(
        "/accounts",
        {"username": "secretive", "password": "created by admin 55", "email": "s@example.com"},
    )
    secrets_used.append("created by admin 55")
    await client.patch(f"/accounts/{account['id']}", json={"email": None}, headers=admin.headers)
    user, tokens = await create_user(client)
    secrets_used += [tokens["access_token"], tokens["refresh_token"]]
    await client.post(
        "/auth/token",
        data={"grant_type": "password", "username": user["username"], "password": secrets_used[2]},
    )
    renewed = (await refresh(client, tokens["refresh_token"])).json()
    secrets_used += [renewed["access_token"], renewed["refresh_token"]]
    await refresh(client, tokens["refresh_token"])  # reuse
    again = await login(client, user["username"])
    secrets_used += [again["access_token"], again["refresh_token"]]
    changed = await client.post(
        "/accounts/me/password",
        json={"current_password": PASSWORD, "new_password": secrets_used[3]},
        headers=bearer(again["access_token"]),
    )
    assert changed.status_code == 204
    await client.post("/auth/revoke", data={"token": again["refresh_token"]})
    await client.post("/auth/logout", headers=admin.headers)
    admin = await as_admin(client)

    entries = await admin.events()
    text = json.dumps(entries)

    assert len(entries) >= 8
    for secret in secrets_used:
        assert secret not in text
    assert "$argon2" not in text


# Order, paging, filters, limits


async def test_entries_come_newest_first(client: httpx.AsyncClient) -> None:
    admin = await as_admin(client)
    for name in ("first:s", "second:s", "third:s"):
        await admin.post("/scopes", {"name": name})

    entries = await admin.events()

    assert [e["target"] for e in entries[:3]] == ["third:s", "second:s", "first:s"]
    ids = [e["id"] for e in entries]
    assert ids == sorted(ids, reverse=True)
    times = [datetime.fromisoformat(e["time"]) for e in entries]
    assert times == sorted(times, reverse=True)


async def test_pages_chain_through_every_entry_exactly_once(client: httpx.AsyncClient) -> None:
    admin = await as_admin(client)
    for i in range(7):
        await admin.post("/scopes", {"name": f"paged:{i}"})
    everything = [e["id"] for e in await admin.events()]

    seen: list[int] = []
    params: dict[str, Any] = {"limit": 3}
    while True:
        response = await client.get("/audit", params=params, headers=admin.headers)
        assert response.status_code == 200
        body = response.json()
        assert len(body["items"]) <= 3
        seen += [e["id"] for e in body["items"]]
        if body["next_cursor"] is None:
            break
        assert len(seen) < 100
        params = {"limit": 3, "cursor": body["next_cursor"]}

    assert seen == everything
    assert len(seen) == len(set(seen)) >= 9


async def test_pages_keep_their_place_while_new_entries_arrive(client: httpx.AsyncClient) -> None:
    admin = await as_admin(client)
    for i in range(4):
        await admin.post("/scopes", {"name": f"old:{i}"})
    first = await client.get("/audit", params={"limit": 2}, headers=admin.headers)

    await admin.post("/scopes", {"name": "new:0"})
    second = await client.get(
        "/audit", params={"limit": 2, "cursor": first.json()["next_cursor"]}, headers=admin.headers
    )

    assert [e["target"] for e in first.json()["items"]] == ["old:3", "old:2"]
    assert [e["target"] for e in second.json()["items"]] == ["old:1", "old:0"]


async def test_the_action_filter_returns_only_that_action(client: httpx.AsyncClient) -> None:
    admin = await as_admin(client)
    await admin.post("/scopes", {"name": "a:1"})
    await admin.post("/roles", {"name": "r1", "scopes": []})
    await admin.post("/scopes", {"name": "a:2"})

    entries = await admin.events(action="scope.create")

    assert [e["target"] for e in entries] == ["a:2", "a:1"]


async def test_the_actor_filter_returns_only_that_accounts_events(
    client: httpx.AsyncClient,
) -> None:
    admin = await as_admin(client)
    account, tokens = await create_user(client)
    await client.post("/auth/logout", headers=bearer(tokens["access_token"]))
    await admin.post("/scopes", {"name": "by:admin"})

    entries = await admin.events(actor=account["id"])

    assert {e["action"] for e in entries} == {"account.create", "auth.login", "auth.logout"}
    assert all(e["actor"] == account["id"] for e in entries)


async def test_the_actor_and_action_filters_combine(client: httpx.AsyncClient) -> None:
    admin = await as_admin(client)
    account, _ = await create_user(client)
    await login(client, account["username"])

    entries = await admin.events(actor=account["id"], action="auth.login")

    assert len(entries) == 2
    assert all(e["actor"] == account["id"] and e["action"] == "auth.login" for e in entries)


async def test_an_unknown_action_filter_finds_nothing(client: httpx.AsyncClient) -> None:
    admin = await as_admin(client)

    assert await admin.events(action="no.such") == []


async def test_an_actor_filter_that_is_not_a_uuid_is_422(client: httpx.AsyncClient) -> None:
    admin = await as_admin(client)

    response = await client.get("/audit", params={"actor": "admin"}, headers=admin.headers)

    assert response.status_code == 422


@pytest.mark.parametrize("limit", [0, 101, -5])
async def test_a_limit_outside_1_to_100_is_422(client: httpx.AsyncClient, limit: int) -> None:
    admin = await as_admin(client)

    response = await client.get("/audit", params={"limit": limit}, headers=admin.headers)

    assert response.status_code == 422


async def test_a_limit_of_one_returns_one_entry_and_a_cursor(client: httpx.AsyncClient) -> None:
    admin = await as_admin(client)
    await admin.post("/scopes", {"name": "one:more"})

    response = await client.get("/audit", params={"limit": 1}, headers=admin.headers)

    assert len(response.json()["items"]) == 1
    assert response.json()["next_cursor"] is not None


async def test_the_default_limit_is_50(client: httpx.AsyncClient) -> None:
    admin = await as_admin(client)
    for i in range(26):
        await admin.post("/scopes", {"name": f"bulk:{i}"})
        await client.delete(f"/scopes/bulk:{i}", headers=admin.headers)

    response = await client.get("/audit", headers=admin.headers)

    assert len(response.json()["items"]) == 50
    assert response.json()["next_cursor"] is not None


def _b64(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


@pytest.mark.parametrize(
    "cursor",
    [
        "garbage!",
        _b64("not a number"),
        _b64("9" * 40),
        _b64(str(2**63)),
        _b64(str(uuid.uuid4())),
        "x" * 500,
        "%00",
    ],
)
async def test_a_garbage_cursor_is_422_not_500(client: httpx.AsyncClient, cursor: str) -> None:
    admin = await as_admin(client)

    response = await client.get("/audit", params={"cursor": cursor}, headers=admin.headers)

    assert response.status_code == 422, response.text


async def test_a_nul_in_the_action_filter_is_no_server_error(client: httpx.AsyncClient) -> None:
    admin = await as_admin(client)

    response = await client.get("/audit", params={"action": "a\x00b"}, headers=admin.headers)

    assert response.status_code == 422, response.text
