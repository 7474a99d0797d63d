"""Admin changes racing each other (CONTRACT.md, Guardrails): a role naming a
scope while the scope is deleted, a role assigned while it is deleted. The
answers are 404 or 409 (or the change simply went first), never 500, never a
200 that did nothing. Each race is forced: the first request is held after its
checks and before its writes (tests/races.py) while the second one runs."""

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any

import httpx
import pytest

from app.roles import service as roles_service
from tests.factories import admin_login, bearer, create_user
from tests.races import Pause, blocked_or_done


async def admin_headers(client: httpx.AsyncClient) -> dict[str, str]:
    return bearer((await admin_login(client))["access_token"])


async def audit_actions(client: httpx.AsyncClient, headers: dict[str, str]) -> list[str]:
    response = await client.get("/audit", params={"limit": 100}, headers=headers)
    assert response.status_code == 200, response.text
    return [item["action"] for item in response.json()["items"]]


async def race(
    database_url: str,
    monkeypatch: pytest.MonkeyPatch,
    first: Callable[[], Coroutine[Any, Any, httpx.Response]],
    second: Callable[[], Coroutine[Any, Any, httpx.Response]],
) -> tuple[httpx.Response, httpx.Response]:
    """`first` is held once it has passed its checks (the guardrail check is the
    last one before any write); `second` runs to its end or to a lock; then both
    go. `second` must have waited for `first` (its row lock on PostgreSQL, the one
    connection on SQLite), not pulled the row away under it."""
    pause = Pause(roles_service.check_may_grant)
    monkeypatch.setattr(roles_service, "check_may_grant", pause)
    held = asyncio.create_task(first())
    await asyncio.wait_for(pause.reached.wait(), timeout=15)
    other = asyncio.create_task(second())
    await blocked_or_done(other, database_url)
    waited = not other.done()
    pause.release()
    a, b = await asyncio.gather(held, other)
    assert waited, (a.status_code, a.text, b.status_code, b.text)
    return a, b


async def test_creating_a_role_naming_a_scope_being_deleted_is_never_a_server_error(
    client, database_url, monkeypatch
):
    headers = await admin_headers(client)
    assert (await client.post("/scopes", json={"name": "wiki:edit"}, headers=headers)).is_success

    created, deleted = await race(
        database_url,
        monkeypatch,
        lambda: client.post(
            "/roles", json={"name": "editor", "scopes": ["wiki:edit"]}, headers=headers
        ),
        lambda: client.delete("/scopes/wiki:edit", headers=headers),
    )

    assert created.status_code in (201, 404, 409), created.text
    assert deleted.status_code in (204, 404, 409), deleted.text
    role = await client.get("/roles/editor", headers=headers)
    if created.status_code == 201:
        # The role went first; the deletion then took the scope from it.
        assert role.json()["scopes"] == ([] if deleted.status_code == 204 else ["wiki:edit"])
    else:
        assert role.status_code == 404


async def test_changing_a_role_to_name_a_scope_being_deleted_is_never_a_server_error(
    client, database_url, monkeypatch
):
    headers = await admin_headers(client)
    assert (await client.post("/scopes", json={"name": "wiki:edit"}, headers=headers)).is_success
    assert (
        await client.post("/roles", json={"name": "editor", "scopes": []}, headers=headers)
    ).status_code == 201

    changed, deleted = await race(
        database_url,
        monkeypatch,
        lambda: client.patch("/roles/editor", json={"scopes": ["wiki:edit"]}, headers=headers),
        lambda: client.delete("/scopes/wiki:edit", headers=headers),
    )

    assert changed.status_code in (200, 404, 409), changed.text
    assert deleted.status_code in (204, 404, 409), deleted.text
    scopes = (await client.get("/roles/editor", headers=headers)).json()["scopes"]
    assert scopes == ([] if deleted.status_code == 204 else ["wiki:edit"])


async def test_assigning_a_role_being_deleted_never_answers_a_200_that_did_nothing(
    client, database_url, monkeypatch
):
    headers = await admin_headers(client)
    assert (
        await client.post(
            "/roles", json={"name": "viewer", "scopes": ["roles:read"]}, headers=headers
        )
    ).status_code == 201
    account, _ = await create_user(client)

    assigned, deleted = await race(
        database_url,
        monkeypatch,
        lambda: client.put(f"/accounts/{account['id']}/roles/viewer", headers=headers),
        lambda: client.delete("/roles/viewer", headers=headers),
    )

    assert assigned.status_code in (200, 404, 409), assigned.text
    assert deleted.status_code in (204, 404, 409), deleted.text
    if assigned.status_code == 200:
        assert "viewer" in assigned.json()["roles"], assigned.text
        assert "role.assign" in await audit_actions(client, headers)
