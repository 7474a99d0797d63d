"""The refresh grant: rotation, reuse detection, races, scope, lifetimes, bad input."""

import asyncio
import base64
import json
import uuid
from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import select, update
from sqlmodel import col

from app.tables import AuthSession
from tests.conftest import AppFactory, app_state
from tests.factories import admin_login, bearer, create_user, login, refresh, signup


def claims(access_token: str) -> dict[str, Any]:
    """The JWT's payload, read without verification (the server verifies it)."""
    payload = access_token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))  # type: ignore[no-any-return]


async def age_session(client: httpx.AsyncClient, session_id: str, seconds: int) -> None:
    """Move a session's clock back, as if it had been created and last used
    `seconds` earlier: the server's own expiry checks then decide."""
    shift = timedelta(seconds=seconds)
    async with app_state(client).sessionmaker() as db, db.begin():
        row = (
            await db.execute(
                select(
                    col(AuthSession.created_at),
                    col(AuthSession.last_used_at),
                    col(AuthSession.expires_at),
                ).where(col(AuthSession.id) == uuid.UUID(session_id))
            )
        ).one()
        await db.execute(
            update(AuthSession)
            .where(col(AuthSession.id) == uuid.UUID(session_id))
            .values(
                created_at=row.created_at - shift,
                last_used_at=row.last_used_at - shift,
                expires_at=row.expires_at - shift,
            )
        )


def assert_invalid_grant(response: httpx.Response) -> None:
    assert response.status_code == 400, response.text
    assert response.json()["error"] == "invalid_grant"
    assert response.headers["cache-control"] == "no-store"


async def assert_token_refused(client: httpx.AsyncClient, access_token: str) -> None:
    response = await client.get("/accounts/me", headers=bearer(access_token))
    assert response.status_code == 401, response.text
    assert 'error="invalid_token"' in response.headers["www-authenticate"]


async def test_refresh_returns_a_new_refresh_token_and_a_working_access_token(
    client: httpx.AsyncClient,
) -> None:
    account, tokens = await create_user(client)

    response = await refresh(client, tokens["refresh_token"])

    assert response.status_code == 200, response.text
    body = response.json()
    assert body["token_type"] == "bearer"
    assert body["refresh_token"] != tokens["refresh_token"]
    assert body["access_token"] != tokens["access_token"]
    assert body["scope"] == "me:read me:write"
    assert response.headers["cache-control"] == "no-store"
    me = await client.get("/accounts/me", headers=bearer(body["access_token"]))
    assert me.status_code == 200
    assert me.json()["id"] == account["id"]


async def test_refreshed_access_token_belongs_to_the_same_session(
    client: httpx.AsyncClient,
) -> None:
    _, tokens = await create_user(client)

    body = (await refresh(client, tokens["refresh_token"])).json()

    assert claims(body["access_token"])["sid"] == claims(tokens["access_token"])["sid"]


async def test_a_refresh_token_cannot_be_used_twice(client: httpx.AsyncClient) -> None:
    _, tokens = await create_user(client)
    assert (await refresh(client, tokens["refresh_token"])).status_code == 200

    assert_invalid_grant(await refresh(client, tokens["refresh_token"]))


async def test_reused_refresh_token_ends_the_session(client: httpx.AsyncClient) -> None:
    _, tokens = await create_user(client)
    rotated = (await refresh(client, tokens["refresh_token"])).json()
    assert (await client.get("/accounts/me", headers=bearer(rotated["access_token"]))).is_success

    assert_invalid_grant(await refresh(client, tokens["refresh_token"]))

    assert_invalid_grant(await refresh(client, rotated["refresh_token"]))
    await assert_token_refused(client, rotated["access_token"])


async def test_reused_refresh_token_is_recorded_in_the_audit_log(client: httpx.AsyncClient) -> None:
    account, tokens = await create_user(client)
    await refresh(client, tokens["refresh_token"])
    await refresh(client, tokens["refresh_token"])

    admin = await admin_login(client)
    response = await client.get(
        "/audit", params={"action": "auth.refresh_reuse"}, headers=bearer(admin["access_token"])
    )

    assert response.status_code == 200, response.text
    items = response.json()["items"]
    assert len(items) == 1
    entry = items[0]
    assert entry["target"] == account["id"]
    assert entry["ip"] == "127.0.0.1"
    assert entry["detail"]["session_id"] == claims(tokens["access_token"])["sid"]
    assert tokens["refresh_token"] not in json.dumps(entry)


async def test_twenty_concurrent_refreshes_of_one_token_give_exactly_one_success(
    client: httpx.AsyncClient,
) -> None:
    _, tokens = await create_user(client)

    responses = await asyncio.gather(*(refresh(client, tokens["refresh_token"]) for _ in range(20)))

    statuses = sorted(r.status_code for r in responses)
    assert statuses == [200] + [400] * 19, [r.text for r in responses]
    assert {r.json()["error"] for r in responses if r.status_code == 400} == {"invalid_grant"}


async def test_refresh_with_a_narrower_scope_grants_only_that_scope(
    client: httpx.AsyncClient,
) -> None:
    _, tokens = await create_user(client)

    response = await refresh(client, tokens["refresh_token"], scope="me:read")

    assert response.status_code == 200, response.text
    body = response.json()
    assert body["scope"] == "me:read"
    assert claims(body["access_token"])["scope"] == "me:read"
    headers = bearer(body["access_token"])
    assert (await client.get("/accounts/me", headers=headers)).status_code == 200
    denied = await client.delete(f"/auth/sessions/{uuid.uuid4()}", headers=headers)
    assert denied.status_code == 403
    assert 'error="insufficient_scope"' in denied.headers["www-authenticate"]


async def test_refresh_asking_for_a_wider_scope_is_invalid_scope(client: httpx.AsyncClient) -> None:
    account = await signup(client)
    tokens = await login(client, account["username"], scope="me:read")

    response = await refresh(client, tokens["refresh_token"], scope="me:read me:write")

    assert response.status_code == 400, response.text
    assert response.json()["error"] == "invalid_scope"


async def test_refresh_token_refused_for_a_wider_scope_is_still_usable(
    client: httpx.AsyncClient,
) -> None:
    account = await signup(client)
    tokens = await login(client, account["username"], scope="me:read")
    await refresh(client, tokens["refresh_token"], scope="me:read me:write")

    response = await refresh(client, tokens["refresh_token"])

    assert response.status_code == 200, response.text
    assert response.json()["scope"] == "me:read"


async def test_refresh_asking_for_an_unknown_scope_is_invalid_scope(
    client: httpx.AsyncClient,
) -> None:
    _, tokens = await create_user(client)

    response = await refresh(client, tokens["refresh_token"], scope="me:read no-such:scope")

    assert response.status_code == 400, response.text
    assert response.json()["error"] == "invalid_scope"


async def test_refresh_token_refused_for_an_unknown_scope_is_still_usable(
    client: httpx.AsyncClient,
) -> None:
    _, tokens = await create_user(client)
    await refresh(client, tokens["refresh_token"], scope="no-such:scope")

    response = await refresh(client, tokens["refresh_token"])

    assert response.status_code == 200, response.text
    assert response.json()["scope"] == "me:read me:write"


async def test_refresh_after_a_role_is_unassigned_lacks_its_scopes(
    client: httpx.AsyncClient,
) -> None:
    admin = (await admin_login(client))["access_token"]
    created = await client.post(
        "/scopes",
        json={"name": "reports:read", "description": "Read reports"},
        headers=bearer(admin),
    )
    assert created.status_code == 201, created.text
    role = await client.post(
        "/roles", json={"name": "reporter", "scopes": ["reports:read"]}, headers=bearer(admin)
    )
    assert role.status_code == 201, role.text
    account = await signup(client)
    assigned = await client.put(f"/accounts/{account['id']}/roles/reporter", headers=bearer(admin))
    assert assigned.status_code == 200, assigned.text
    tokens = await login(client, account["username"])
    assert tokens["scope"] == "me:read me:write reports:read"
    unassigned = await client.delete(
        f"/accounts/{account['id']}/roles/reporter", headers=bearer(admin)
    )
    assert unassigned.status_code == 200, unassigned.text

    response = await refresh(client, tokens["refresh_token"])

    assert response.status_code == 200, response.text
    assert response.json()["scope"] == "me:read me:write"
    assert claims(response.json()["access_token"])["scope"] == "me:read me:write"


async def test_refresh_of_a_session_past_its_absolute_lifetime_is_invalid_grant(
    make_client: AppFactory,
) -> None:
    async with make_client(
        refresh_token_ttl_seconds=60, session_idle_timeout_seconds=3600
    ) as client:
        _, tokens = await create_user(client)
        await age_session(client, claims(tokens["access_token"])["sid"], 61)

        assert_invalid_grant(await refresh(client, tokens["refresh_token"]))


async def test_refresh_of_a_session_just_inside_its_absolute_lifetime_succeeds(
    make_client: AppFactory,
) -> None:
    async with make_client(
        refresh_token_ttl_seconds=60, session_idle_timeout_seconds=3600
    ) as client:
        _, tokens = await create_user(client)
        await age_session(client, claims(tokens["access_token"])["sid"], 50)

        response = await refresh(client, tokens["refresh_token"])

        assert response.status_code == 200, response.text


async def test_refresh_of_an_idle_session_is_invalid_grant(make_client: AppFactory) -> None:
    async with make_client(
        refresh_token_ttl_seconds=3600, session_idle_timeout_seconds=60
    ) as client:
        _, tokens = await create_user(client)
        await age_session(client, claims(tokens["access_token"])["sid"], 61)

        assert_invalid_grant(await refresh(client, tokens["refresh_token"]))


async def test_each_refresh_restarts_the_idle_timeout(make_client: AppFactory) -> None:
    async with make_client(
        refresh_token_ttl_seconds=3600, session_idle_timeout_seconds=60
    ) as client:
        _, tokens = await create_user(client)
        sid = claims(tokens["access_token"])["sid"]
        await age_session(client, sid, 50)
        rotated = (await refresh(client, tokens["refresh_token"])).json()
        await age_session(client, sid, 50)

        response = await refresh(client, rotated["refresh_token"])

        assert response.status_code == 200, response.text


@pytest.mark.parametrize(
    ("token", "errors"),
    [
        pytest.param("garbage", {"invalid_grant"}, id="garbage"),
        pytest.param("", {"invalid_request"}, id="empty"),
        pytest.param("A" * 10240, {"invalid_request", "invalid_grant"}, id="10KB"),
        pytest.param("\u00e9\u2603\U0001f600" * 50, {"invalid_grant"}, id="non-ascii"),
        pytest.param("a.b.c", {"invalid_grant"}, id="jwt-shaped"),
    ],
)
async def test_malformed_refresh_token_is_a_400_not_a_500(
    client: httpx.AsyncClient, token: str, errors: set[str]
) -> None:
    response = await refresh(client, token)

    assert response.status_code == 400, response.text
    assert response.json()["error"] in errors


async def test_refresh_token_with_a_nul_byte_is_a_400_not_a_500(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/auth/token",
        content=b"grant_type=refresh_token&refresh_token=ab%00cd",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )

    assert response.status_code == 400, response.text
    assert response.json()["error"] in {"invalid_request", "invalid_grant"}


async def test_refresh_token_with_invalid_utf8_is_a_400_not_a_500(
    client: httpx.AsyncClient,
) -> None:
    response = await client.post(
        "/auth/token",
        content=b"grant_type=refresh_token&refresh_token=%ff%fe%c3",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )

    assert response.status_code == 400, response.text
    assert response.json()["error"] in {"invalid_request", "invalid_grant"}


async def test_refresh_of_a_disabled_account_is_invalid_grant(client: httpx.AsyncClient) -> None:
    account, tokens = await create_user(client)
    admin = (await admin_login(client))["access_token"]
    disabled = await client.patch(
        f"/accounts/{account['id']}", json={"is_active": False}, headers=bearer(admin)
    )
    assert disabled.status_code == 200, disabled.text

    assert_invalid_grant(await refresh(client, tokens["refresh_token"]))


async def test_refresh_of_a_disabled_then_re_enabled_account_stays_invalid_grant(
    client: httpx.AsyncClient,
) -> None:
    account, tokens = await create_user(client)
    admin = (await admin_login(client))["access_token"]
    for active in (False, True):
        changed = await client.patch(
            f"/accounts/{account['id']}", json={"is_active": active}, headers=bearer(admin)
        )
        assert changed.status_code == 200, changed.text

    assert_invalid_grant(await refresh(client, tokens["refresh_token"]))


async def test_refresh_after_a_role_is_assigned_carries_its_scopes(
    client: httpx.AsyncClient,
) -> None:
    admin = (await admin_login(client))["access_token"]
    created = await client.post(
        "/scopes",
        json={"name": "reports:read", "description": "Read reports"},
        headers=bearer(admin),
    )
    assert created.status_code == 201, created.text
    role = await client.post(
        "/roles", json={"name": "reporter", "scopes": ["reports:read"]}, headers=bearer(admin)
    )
    assert role.status_code == 201, role.text
    account, tokens = await create_user(client)
    assigned = await client.put(f"/accounts/{account['id']}/roles/reporter", headers=bearer(admin))
    assert assigned.status_code == 200, assigned.text
    await assert_token_refused(client, tokens["access_token"])

    response = await refresh(client, tokens["refresh_token"])

    assert response.status_code == 200, response.text
    assert response.json()["scope"] == "me:read me:write reports:read"


async def test_refresh_of_a_login_that_named_its_scopes_gains_no_role_assigned_later(
    client: httpx.AsyncClient,
) -> None:
    admin = (await admin_login(client))["access_token"]
    await client.post(
        "/scopes",
        json={"name": "reports:read", "description": "Read reports"},
        headers=bearer(admin),
    )
    await client.post(
        "/roles", json={"name": "reporter", "scopes": ["reports:read"]}, headers=bearer(admin)
    )
    account = await signup(client)
    tokens = await login(client, account["username"], scope="me:read")
    assigned = await client.put(f"/accounts/{account['id']}/roles/reporter", headers=bearer(admin))
    assert assigned.status_code == 200, assigned.text

    response = await refresh(client, tokens["refresh_token"])

    assert response.status_code == 200, response.text
    assert response.json()["scope"] == "me:read"
