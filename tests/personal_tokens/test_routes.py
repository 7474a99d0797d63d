"""Personal access tokens (CONTRACT.md): made from a session, shown once, stored
as a hash, scoped at each use by what the account holds then, stopped at once
with the account, never minting another, and revocable by owner and admin."""

import re
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import bindparam, text
from sqlalchemy.ext.asyncio import create_async_engine

from app.core.models import UTCDateTime, utcnow
from app.personal_tokens.service import hash_token, looks_like_token
from tests.conftest import app_state
from tests.factories import (
    admin_headers,
    bearer,
    create_pat,
    create_scope_and_role,
    create_user,
    login,
)

TOKEN_FIELDS = {"id", "name", "scopes", "created_at", "expires_at", "last_used_at"}
PAT_SHAPE = re.compile(r"^gatehouse_pat_[0-9A-Za-z]{43}[0-9A-Za-z]{6}$")


async def user_headers(client: httpx.AsyncClient) -> tuple[dict[str, Any], dict[str, str]]:
    account, issued = await create_user(client)
    return account, bearer(issued["access_token"])


async def sql(client: httpx.AsyncClient, statement: str, **params: object) -> list[Any]:
    """Run SQL on the app's database; datetimes are bound as the app stores them."""
    query = text(statement).bindparams(
        *(bindparam(k, type_=UTCDateTime()) for k, v in params.items() if isinstance(v, datetime))
    )
    engine = create_async_engine(app_state(client).settings.database_url)
    async with engine.begin() as conn:
        result = await conn.execute(query, params)
        rows = list(result.all()) if result.returns_rows else []
    await engine.dispose()
    return rows


async def test_a_token_is_made_once_and_never_shown_again(client):
    _, headers = await user_headers(client)

    created = await create_pat(client, headers, ["me:read"], name="deploy")

    assert set(created) == TOKEN_FIELDS | {"token"}
    assert PAT_SHAPE.match(created["token"]) and looks_like_token(created["token"])
    assert created["scopes"] == ["me:read"] and created["last_used_at"] is None
    listed = await client.get("/accounts/me/tokens", headers=headers)
    assert [set(t) for t in listed.json()] == [TOKEN_FIELDS]
    assert created["token"] not in listed.text


async def test_it_is_stored_only_as_its_hash(client):
    _, headers = await user_headers(client)
    created = await create_pat(client, headers, ["me:read"])
    stored = await sql(client, "SELECT * FROM personal_access_token")
    assert created["token"] not in str(stored)
    assert hash_token(created["token"]) in str(stored)


async def test_the_checksum_catches_a_mistyped_token(client):
    _, headers = await user_headers(client)
    token = (await create_pat(client, headers, ["me:read"]))["token"]
    mistyped = token[:-1] + ("a" if token[-1] != "a" else "b")
    assert not looks_like_token(mistyped)
    assert (await client.get("/accounts/me", headers=bearer(mistyped))).status_code == 401


async def test_it_is_a_bearer_token_within_its_scopes(client):
    account, headers = await user_headers(client)
    token = (await create_pat(client, headers, ["me:read"]))["token"]

    me = await client.get("/accounts/me", headers=bearer(token))
    sessions = await client.post("/accounts/me/password", json={}, headers=bearer(token))

    assert me.status_code == 200 and me.json()["id"] == account["id"]
    assert sessions.status_code == 403
    assert 'error="insufficient_scope"' in sessions.headers["www-authenticate"]


async def test_a_pat_cannot_create_a_pat(client):
    """Attack: a token made for CI mints a longer-lived or broader one."""
    _, headers = await user_headers(client)
    token = (await create_pat(client, headers, ["me:read", "me:write"]))["token"]

    response = await client.post(
        "/accounts/me/tokens", json={"name": "child", "scopes": ["me:read"]}, headers=bearer(token)
    )

    assert response.status_code == 403
    assert len((await client.get("/accounts/me/tokens", headers=headers)).json()) == 1


async def test_scopes_the_account_does_not_hold_are_422(client):
    _, headers = await user_headers(client)
    for scopes in (["accounts:read"], ["no:such"], ["openid"]):
        response = await client.post(
            "/accounts/me/tokens", json={"name": "x", "scopes": scopes}, headers=headers
        )
        assert response.status_code == 422, (scopes, response.text)


async def test_a_narrowed_session_token_cannot_make_a_broader_pat(client):
    narrowed = await admin_headers(client, scope="me:write")
    response = await client.post(
        "/accounts/me/tokens", json={"name": "x", "scopes": ["accounts:write"]}, headers=narrowed
    )
    assert response.status_code == 403


@pytest.mark.parametrize("days", [0, 91, -1])
async def test_a_lifetime_outside_one_to_the_maximum_is_422(client, days):
    _, headers = await user_headers(client)
    response = await client.post(
        "/accounts/me/tokens",
        json={"name": "x", "scopes": ["me:read"], "expires_in_days": days},
        headers=headers,
    )
    assert response.status_code == 422


async def test_the_default_lifetime_is_the_maximum(make_client):
    async with make_client(pat_max_days=30) as client:
        _, headers = await user_headers(client)
        created = await create_pat(client, headers, ["me:read"])
        too_long = await client.post(
            "/accounts/me/tokens",
            json={"name": "x", "scopes": ["me:read"], "expires_in_days": 31},
            headers=headers,
        )
    lifetime = datetime.fromisoformat(created["expires_at"]) - datetime.fromisoformat(
        created["created_at"]
    )
    assert lifetime == timedelta(days=30)
    assert too_long.status_code == 422


async def test_an_expired_token_is_refused(client):
    _, headers = await user_headers(client)
    created = await create_pat(client, headers, ["me:read"], expires_in_days=1)
    await sql(
        client,
        "UPDATE personal_access_token SET expires_at = :t",
        t=utcnow() - timedelta(seconds=1),
    )
    assert (await client.get("/accounts/me", headers=bearer(created["token"]))).status_code == 401


async def test_a_role_taken_away_narrows_the_token_on_the_next_request(client):
    headers = await admin_headers(client)
    await create_scope_and_role(client, headers, "auditor", ["audit:read"])
    account, issued = await create_user(client)
    await client.put(f"/accounts/{account['id']}/roles/auditor", headers=headers)
    own = bearer((await login(client, account["username"]))["access_token"])
    token = (await create_pat(client, own, ["audit:read", "me:read"]))["token"]
    assert (await client.get("/audit", headers=bearer(token))).status_code == 200

    await client.delete(f"/accounts/{account['id']}/roles/auditor", headers=headers)

    assert (await client.get("/audit", headers=bearer(token))).status_code == 403
    assert (await client.get("/accounts/me", headers=bearer(token))).status_code == 200
    # Given back, the role's scope is usable again: the token keeps what it was made with.
    await client.put(f"/accounts/{account['id']}/roles/auditor", headers=headers)
    assert (await client.get("/audit", headers=bearer(token))).status_code == 200


async def test_a_disabled_accounts_tokens_stop_at_once(client):
    account, headers = await user_headers(client)
    token = (await create_pat(client, headers, ["me:read"]))["token"]
    admin = await admin_headers(client)

    await client.patch(f"/accounts/{account['id']}", json={"is_active": False}, headers=admin)

    assert (await client.get("/accounts/me", headers=bearer(token))).status_code == 401


async def test_a_deleted_accounts_tokens_stop_at_once(client):
    account, headers = await user_headers(client)
    token = (await create_pat(client, headers, ["me:read"]))["token"]
    await client.delete(f"/accounts/{account['id']}", headers=await admin_headers(client))
    assert (await client.get("/accounts/me", headers=bearer(token))).status_code == 401


async def test_the_owner_revokes_a_token_and_it_stops_at_once(client):
    _, headers = await user_headers(client)
    created = await create_pat(client, headers, ["me:read"])

    response = await client.delete(f"/accounts/me/tokens/{created['id']}", headers=headers)

    assert response.status_code == 204
    assert (await client.get("/accounts/me", headers=bearer(created["token"]))).status_code == 401
    assert (await client.get("/accounts/me/tokens", headers=headers)).json() == []


async def test_another_accounts_token_id_is_404_to_the_owner_route(client):
    _, headers = await user_headers(client)
    created = await create_pat(client, headers, ["me:read"])
    _, other = await user_headers(client)
    response = await client.delete(f"/accounts/me/tokens/{created['id']}", headers=other)
    assert response.status_code == 404
    assert (await client.get("/accounts/me", headers=bearer(created["token"]))).status_code == 200


async def test_an_admin_lists_and_revokes_anyones_tokens(client):
    account, headers = await user_headers(client)
    created = await create_pat(client, headers, ["me:read"])
    admin = await admin_headers(client)

    listed = await client.get(f"/accounts/{account['id']}/tokens", headers=admin)
    revoked = await client.delete(
        f"/accounts/{account['id']}/tokens/{created['id']}", headers=admin
    )

    assert [t["id"] for t in listed.json()] == [created["id"]]
    assert revoked.status_code == 204
    assert (await client.get("/accounts/me", headers=bearer(created["token"]))).status_code == 401
    entries = (await client.get("/audit", params={"limit": 10}, headers=admin)).json()["items"]
    actions = [e["action"] for e in entries if e["target"] == created["id"]]
    assert actions == ["token.revoke", "token.create"]
    assert created["token"] not in str(entries)


async def test_the_admin_routes_answer_404_for_an_unknown_account_or_token(client):
    admin = await admin_headers(client)
    unknown = "00000000-0000-7000-8000-000000000000"
    assert (await client.get(f"/accounts/{unknown}/tokens", headers=admin)).status_code == 404
    account, _ = await user_headers(client)
    response = await client.delete(f"/accounts/{account['id']}/tokens/{unknown}", headers=admin)
    assert response.status_code == 404


async def test_reading_anothers_tokens_needs_accounts_read(client):
    account, headers = await user_headers(client)
    response = await client.get(f"/accounts/{account['id']}/tokens", headers=headers)
    assert response.status_code == 403


async def test_a_token_can_revoke_itself_at_the_revocation_endpoint(client):
    _, headers = await user_headers(client)
    token = (await create_pat(client, headers, ["me:read"]))["token"]
    assert (await client.post("/auth/revoke", data={"token": token})).status_code == 200
    assert (await client.get("/accounts/me", headers=bearer(token))).status_code == 401


async def test_last_used_at_is_kept_to_the_minute_without_a_write_per_request(client):
    _, headers = await user_headers(client)
    created = await create_pat(client, headers, ["me:read"])
    for _ in range(3):
        assert (
            await client.get("/accounts/me", headers=bearer(created["token"]))
        ).status_code == 200
    [(first,)] = await sql(client, "SELECT last_used_at FROM personal_access_token")
    assert first is not None

    # Within the minute: no write (the value stays exactly as it was).
    await client.get("/accounts/me", headers=bearer(created["token"]))
    assert await sql(client, "SELECT last_used_at FROM personal_access_token") == [(first,)]

    # A minute on, the next use writes again.
    await sql(
        client,
        "UPDATE personal_access_token SET last_used_at = :t",
        t=utcnow() - timedelta(minutes=2),
    )
    await client.get("/accounts/me", headers=bearer(created["token"]))
    listed = (await client.get("/accounts/me/tokens", headers=headers)).json()
    used = datetime.fromisoformat(listed[0]["last_used_at"])
    assert utcnow() - used < timedelta(minutes=1)


async def test_logout_with_a_pat_is_403_and_ends_nothing(client):
    _, headers = await user_headers(client)
    token = (await create_pat(client, headers, ["me:read"]))["token"]
    response = await client.post("/auth/logout", headers=bearer(token))
    assert response.status_code == 403
    assert (await client.get("/accounts/me", headers=headers)).status_code == 200
