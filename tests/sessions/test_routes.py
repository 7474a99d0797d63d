"""Ending sessions: listing, deleting, logout, revocation, password change, purge."""

import base64
import json
import uuid
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select, update
from sqlmodel import col

from app.sessions import service as sessions_service
from app.tables import AuthSession, RefreshToken
from tests.conftest import AppFactory, app_state
from tests.factories import PASSWORD, admin_login, bearer, create_user, login, refresh, signup

NEW_PASSWORD = "another entirely fine passphrase"


def claims(access_token: str) -> dict[str, Any]:
    """The JWT's payload, read without verification (the server verifies it)."""
    payload = access_token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))  # type: ignore[no-any-return]


def sid(tokens: dict[str, Any]) -> str:
    return str(claims(tokens["access_token"])["sid"])


async def login_as(
    client: httpx.AsyncClient, username: str, user_agent: str, password: str = PASSWORD
) -> dict[str, Any]:
    response = await client.post(
        "/auth/token",
        data={"grant_type": "password", "username": username, "password": password},
        headers={"User-Agent": user_agent},
    )
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


async def assert_token_refused(client: httpx.AsyncClient, access_token: str) -> None:
    response = await client.get("/accounts/me", headers=bearer(access_token))
    assert response.status_code == 401, response.text
    assert 'error="invalid_token"' in response.headers["www-authenticate"]
    assert response.json() == {"detail": "Invalid or expired token"}


async def assert_token_works(client: httpx.AsyncClient, access_token: str) -> None:
    response = await client.get("/accounts/me", headers=bearer(access_token))
    assert response.status_code == 200, response.text


def assert_invalid_grant(response: httpx.Response) -> None:
    assert response.status_code == 400, response.text
    assert response.json()["error"] == "invalid_grant"


async def assert_session_ended(client: httpx.AsyncClient, tokens: dict[str, Any]) -> None:
    await assert_token_refused(client, tokens["access_token"])
    assert_invalid_grant(await refresh(client, tokens["refresh_token"]))


def parse_time(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


async def shift_session(
    client: httpx.AsyncClient, session_id: str, *, seconds: int, ended: bool = False
) -> None:
    """Move a session's clock back, as if it had been created and last used
    `seconds` earlier (and, with `ended`, ended then too)."""
    shift = timedelta(seconds=seconds)
    async with app_state(client).sessionmaker() as db, db.begin():
        row = (
            await db.execute(
                select(AuthSession).where(col(AuthSession.id) == uuid.UUID(session_id))
            )
        ).scalar_one()
        values: dict[str, Any] = {
            "created_at": row.created_at - shift,
            "last_used_at": row.last_used_at - shift,
            "expires_at": row.expires_at - shift,
        }
        if ended:
            values["ended_at"] = row.last_used_at - shift
            values["end_reason"] = "logout"
        await db.execute(update(AuthSession).where(col(AuthSession.id) == row.id).values(**values))


async def surviving_sessions(client: httpx.AsyncClient) -> set[str]:
    async with app_state(client).sessionmaker() as db:
        return {str(i) for i in (await db.scalars(select(col(AuthSession.id)))).all()}


# --- GET /auth/sessions -----------------------------------------------------


async def test_session_list_shows_each_live_session_with_its_details(
    make_client: AppFactory,
) -> None:
    async with make_client(refresh_token_ttl_seconds=7200) as client:
        account = await signup(client)
        phone = await login_as(client, account["username"], "phone-browser/1.0")
        laptop = await login_as(client, account["username"], "laptop-browser/2.0")

        response = await client.get("/auth/sessions", headers=bearer(laptop["access_token"]))

        assert response.status_code == 200, response.text
        listed = {s["id"]: s for s in response.json()}
        assert set(listed) == {sid(phone), sid(laptop)}
        for session in listed.values():
            assert set(session) == {
                "id",
                "created_at",
                "last_used_at",
                "expires_at",
                "user_agent",
                "ip",
                "current",
            }
            assert session["ip"] == "127.0.0.1"
            created = parse_time(session["created_at"])
            assert parse_time(session["expires_at"]) - created == timedelta(seconds=7200)
            assert parse_time(session["last_used_at"]) >= created
        assert listed[sid(phone)]["user_agent"] == "phone-browser/1.0"
        assert listed[sid(laptop)]["user_agent"] == "laptop-browser/2.0"


async def test_session_list_marks_exactly_the_calling_session_current(
    client: httpx.AsyncClient,
) -> None:
    account = await signup(client)
    first = await login(client, account["username"])
    second = await login(client, account["username"])
    await login(client, account["username"])

    response = await client.get("/auth/sessions", headers=bearer(second["access_token"]))

    assert response.status_code == 200, response.text
    current = [s["id"] for s in response.json() if s["current"]]
    assert current == [sid(second)]
    assert sid(first) in {s["id"] for s in response.json()}


async def test_session_list_leaves_out_ended_sessions_and_other_accounts(
    client: httpx.AsyncClient,
) -> None:
    account = await signup(client)
    ended = await login(client, account["username"])
    live = await login(client, account["username"])
    await create_user(client)
    assert (await client.post("/auth/logout", headers=bearer(ended["access_token"]))).is_success

    response = await client.get("/auth/sessions", headers=bearer(live["access_token"]))

    assert response.status_code == 200, response.text
    assert [s["id"] for s in response.json()] == [sid(live)]


async def test_session_list_needs_a_token(client: httpx.AsyncClient) -> None:
    response = await client.get("/auth/sessions")

    assert response.status_code == 401
    assert "error=" not in response.headers["www-authenticate"]


# --- DELETE /auth/sessions/{id} ---------------------------------------------


async def test_deleting_an_own_session_ends_it(client: httpx.AsyncClient) -> None:
    account = await signup(client)
    other = await login(client, account["username"])
    caller = await login(client, account["username"])

    response = await client.delete(
        f"/auth/sessions/{sid(other)}", headers=bearer(caller["access_token"])
    )

    assert response.status_code == 204, response.text
    assert response.content == b""
    await assert_session_ended(client, other)


async def test_deleting_another_session_leaves_the_calling_session_live(
    client: httpx.AsyncClient,
) -> None:
    account = await signup(client)
    other = await login(client, account["username"])
    caller = await login(client, account["username"])

    await client.delete(f"/auth/sessions/{sid(other)}", headers=bearer(caller["access_token"]))

    await assert_token_works(client, caller["access_token"])
    assert (await refresh(client, caller["refresh_token"])).status_code == 200


async def test_deleting_the_calling_session_ends_it(client: httpx.AsyncClient) -> None:
    _, tokens = await create_user(client)

    response = await client.delete(
        f"/auth/sessions/{sid(tokens)}", headers=bearer(tokens["access_token"])
    )

    assert response.status_code == 204, response.text
    await assert_session_ended(client, tokens)


async def test_deleting_another_accounts_session_is_404_and_leaves_it_live(
    client: httpx.AsyncClient,
) -> None:
    _, victim = await create_user(client)
    _, attacker = await create_user(client)

    response = await client.delete(
        f"/auth/sessions/{sid(victim)}", headers=bearer(attacker["access_token"])
    )

    assert response.status_code == 404, response.text
    assert response.json() == {"detail": "Session not found"}
    await assert_token_works(client, victim["access_token"])


async def test_deleting_an_unknown_session_id_is_404(client: httpx.AsyncClient) -> None:
    _, tokens = await create_user(client)

    response = await client.delete(
        f"/auth/sessions/{uuid.uuid4()}", headers=bearer(tokens["access_token"])
    )

    assert response.status_code == 404, response.text
    assert response.json() == {"detail": "Session not found"}


async def test_deleting_an_already_ended_session_is_404(client: httpx.AsyncClient) -> None:
    account = await signup(client)
    other = await login(client, account["username"])
    caller = await login(client, account["username"])
    await client.post("/auth/logout", headers=bearer(other["access_token"]))

    response = await client.delete(
        f"/auth/sessions/{sid(other)}", headers=bearer(caller["access_token"])
    )

    assert response.status_code == 404, response.text


async def test_deleting_a_session_id_that_is_not_a_uuid_is_422(client: httpx.AsyncClient) -> None:
    _, tokens = await create_user(client)

    response = await client.delete(
        "/auth/sessions/not-a-uuid", headers=bearer(tokens["access_token"])
    )

    assert response.status_code == 422, response.text
    assert response.json()["detail"][0]["loc"] == ["path", "session_id"]


# --- POST /auth/logout ------------------------------------------------------


async def test_logout_answers_204(client: httpx.AsyncClient) -> None:
    _, tokens = await create_user(client)

    response = await client.post("/auth/logout", headers=bearer(tokens["access_token"]))

    assert response.status_code == 204, response.text
    assert response.content == b""


async def test_logout_ends_the_access_token(client: httpx.AsyncClient) -> None:
    _, tokens = await create_user(client)
    await client.post("/auth/logout", headers=bearer(tokens["access_token"]))

    await assert_token_refused(client, tokens["access_token"])


async def test_logout_ends_the_refresh_token(client: httpx.AsyncClient) -> None:
    _, tokens = await create_user(client)
    await client.post("/auth/logout", headers=bearer(tokens["access_token"]))

    assert_invalid_grant(await refresh(client, tokens["refresh_token"]))


async def test_logout_leaves_the_accounts_other_sessions_live(client: httpx.AsyncClient) -> None:
    account = await signup(client)
    other = await login(client, account["username"])
    tokens = await login(client, account["username"])

    await client.post("/auth/logout", headers=bearer(tokens["access_token"]))

    await assert_token_works(client, other["access_token"])


async def test_logout_twice_with_the_same_token_is_401_the_second_time(
    client: httpx.AsyncClient,
) -> None:
    _, tokens = await create_user(client)
    await client.post("/auth/logout", headers=bearer(tokens["access_token"]))

    response = await client.post("/auth/logout", headers=bearer(tokens["access_token"]))

    assert response.status_code == 401
    assert 'error="invalid_token"' in response.headers["www-authenticate"]


# --- POST /auth/revoke ------------------------------------------------------


async def revoke(client: httpx.AsyncClient, **data: str) -> httpx.Response:
    response = await client.post("/auth/revoke", data=data)
    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store"
    return response


async def test_revoking_a_refresh_token_ends_its_session(client: httpx.AsyncClient) -> None:
    _, tokens = await create_user(client)

    await revoke(client, token=tokens["refresh_token"])

    await assert_session_ended(client, tokens)


async def test_revoking_an_access_token_ends_its_session(client: httpx.AsyncClient) -> None:
    _, tokens = await create_user(client)

    await revoke(client, token=tokens["access_token"])

    await assert_session_ended(client, tokens)


async def test_revoking_a_rotated_out_refresh_token_ends_the_session(
    client: httpx.AsyncClient,
) -> None:
    _, tokens = await create_user(client)
    rotated = (await refresh(client, tokens["refresh_token"])).json()

    await revoke(client, token=tokens["refresh_token"])

    await assert_session_ended(client, rotated)


async def test_revoking_a_refresh_token_with_an_access_token_hint_still_ends_its_session(
    client: httpx.AsyncClient,
) -> None:
    _, tokens = await create_user(client)

    await revoke(client, token=tokens["refresh_token"], token_type_hint="access_token")

    await assert_session_ended(client, tokens)


async def test_revoking_an_access_token_with_a_refresh_token_hint_still_ends_its_session(
    client: httpx.AsyncClient,
) -> None:
    _, tokens = await create_user(client)

    await revoke(client, token=tokens["access_token"], token_type_hint="refresh_token")

    await assert_session_ended(client, tokens)


async def test_revoking_with_an_unknown_hint_still_ends_the_session(
    client: httpx.AsyncClient,
) -> None:
    _, tokens = await create_user(client)

    await revoke(client, token=tokens["refresh_token"], token_type_hint="id_token")

    await assert_session_ended(client, tokens)


async def test_revoking_a_token_leaves_the_accounts_other_sessions_live(
    client: httpx.AsyncClient,
) -> None:
    account = await signup(client)
    other = await login(client, account["username"])
    tokens = await login(client, account["username"])

    await revoke(client, token=tokens["refresh_token"])

    await assert_token_works(client, other["access_token"])


@pytest.mark.parametrize(
    "data",
    [
        pytest.param({"token": "not-a-token-we-ever-issued"}, id="unknown"),
        pytest.param({"token": "a.b.c"}, id="jwt-shaped"),
        pytest.param({"token": "x" * 10240}, id="10KB"),
        pytest.param({"token": ""}, id="empty"),
        pytest.param({}, id="no-token"),
        pytest.param({"token_type_hint": "refresh_token"}, id="hint-only"),
    ],
)
async def test_revoking_an_unknown_or_missing_token_is_200(
    client: httpx.AsyncClient, data: dict[str, str]
) -> None:
    response = await client.post("/auth/revoke", data=data)

    assert response.status_code == 200, response.text


async def test_revoking_an_unknown_token_ends_no_session(client: httpx.AsyncClient) -> None:
    _, tokens = await create_user(client)

    await revoke(client, token="not-a-token-we-ever-issued")

    await assert_token_works(client, tokens["access_token"])


async def test_revoking_an_already_revoked_token_is_200(client: httpx.AsyncClient) -> None:
    _, tokens = await create_user(client)
    await revoke(client, token=tokens["refresh_token"])

    await revoke(client, token=tokens["refresh_token"])


# --- POST /accounts/me/password ---------------------------------------------


async def change_password(
    client: httpx.AsyncClient, access_token: str, current: str, new: str
) -> httpx.Response:
    return await client.post(
        "/accounts/me/password",
        json={"current_password": current, "new_password": new},
        headers=bearer(access_token),
    )


async def test_password_change_answers_204(client: httpx.AsyncClient) -> None:
    _, tokens = await create_user(client)

    response = await change_password(client, tokens["access_token"], PASSWORD, NEW_PASSWORD)

    assert response.status_code == 204, response.text
    assert response.content == b""


async def test_password_change_ends_every_other_session(client: httpx.AsyncClient) -> None:
    account = await signup(client)
    others = [await login(client, account["username"]) for _ in range(2)]
    tokens = await login(client, account["username"])

    await change_password(client, tokens["access_token"], PASSWORD, NEW_PASSWORD)

    for other in others:
        await assert_session_ended(client, other)


async def test_password_change_keeps_the_changing_session_live(client: httpx.AsyncClient) -> None:
    account = await signup(client)
    await login(client, account["username"])
    tokens = await login(client, account["username"])

    await change_password(client, tokens["access_token"], PASSWORD, NEW_PASSWORD)

    await assert_token_works(client, tokens["access_token"])
    assert (await refresh(client, tokens["refresh_token"])).status_code == 200


async def test_password_change_makes_the_old_password_fail_and_the_new_one_work(
    client: httpx.AsyncClient,
) -> None:
    account, tokens = await create_user(client)

    await change_password(client, tokens["access_token"], PASSWORD, NEW_PASSWORD)

    old = await client.post(
        "/auth/token",
        data={"grant_type": "password", "username": account["username"], "password": PASSWORD},
    )
    assert old.status_code == 400
    assert old.json()["error"] == "invalid_grant"
    await login(client, account["username"], NEW_PASSWORD)


async def test_password_change_with_a_wrong_current_password_is_400(
    client: httpx.AsyncClient,
) -> None:
    _, tokens = await create_user(client)

    response = await change_password(
        client, tokens["access_token"], "not the current password", NEW_PASSWORD
    )

    assert response.status_code == 400, response.text
    assert response.json() == {"detail": "The current password is wrong"}


async def test_password_change_with_a_wrong_current_password_changes_nothing(
    client: httpx.AsyncClient,
) -> None:
    account = await signup(client)
    other = await login(client, account["username"])
    tokens = await login(client, account["username"])

    await change_password(client, tokens["access_token"], "not the current password", NEW_PASSWORD)

    await assert_token_works(client, other["access_token"])
    await login(client, account["username"], PASSWORD)


async def test_password_change_to_a_common_password_is_422(client: httpx.AsyncClient) -> None:
    _, tokens = await create_user(client)

    response = await change_password(client, tokens["access_token"], PASSWORD, "password1")

    assert response.status_code == 422, response.text
    assert response.json()["detail"][0]["loc"] == ["body", "new_password"]


async def test_password_change_to_a_common_password_changes_nothing(
    client: httpx.AsyncClient,
) -> None:
    account = await signup(client)
    other = await login(client, account["username"])
    tokens = await login(client, account["username"])

    await change_password(client, tokens["access_token"], PASSWORD, "password1")

    await assert_token_works(client, other["access_token"])
    await login(client, account["username"], PASSWORD)


async def test_password_change_needs_the_me_write_scope(client: httpx.AsyncClient) -> None:
    account = await signup(client)
    tokens = await login(client, account["username"], scope="me:read")

    response = await change_password(client, tokens["access_token"], PASSWORD, NEW_PASSWORD)

    assert response.status_code == 403, response.text
    assert 'error="insufficient_scope"' in response.headers["www-authenticate"]
    await login(client, account["username"], PASSWORD)


# --- disabled accounts ------------------------------------------------------


async def test_disabled_accounts_existing_access_token_is_refused_on_its_next_request(
    client: httpx.AsyncClient,
) -> None:
    account, tokens = await create_user(client)
    await assert_token_works(client, tokens["access_token"])
    admin = (await admin_login(client))["access_token"]

    disabled = await client.patch(
        f"/accounts/{account['id']}", json={"is_active": False}, headers=bearer(admin)
    )

    assert disabled.status_code == 200, disabled.text
    assert disabled.json()["is_active"] is False
    await assert_token_refused(client, tokens["access_token"])


# --- lifetimes on the access-token path --------------------------------------


async def test_access_token_of_a_session_past_its_absolute_lifetime_is_refused(
    make_client: AppFactory,
) -> None:
    async with make_client(
        refresh_token_ttl_seconds=60, session_idle_timeout_seconds=3600
    ) as client:
        _, tokens = await create_user(client)
        await assert_token_works(client, tokens["access_token"])
        await shift_session(client, sid(tokens), seconds=61)

        await assert_token_refused(client, tokens["access_token"])


async def test_access_token_of_an_idle_session_is_refused(make_client: AppFactory) -> None:
    async with make_client(
        refresh_token_ttl_seconds=3600, session_idle_timeout_seconds=60
    ) as client:
        _, tokens = await create_user(client)
        await assert_token_works(client, tokens["access_token"])
        await shift_session(client, sid(tokens), seconds=61)

        await assert_token_refused(client, tokens["access_token"])


async def test_session_list_leaves_out_expired_sessions(make_client: AppFactory) -> None:
    async with make_client(
        refresh_token_ttl_seconds=60, session_idle_timeout_seconds=3600
    ) as client:
        account = await signup(client)
        expired = await login(client, account["username"])
        live = await login(client, account["username"])
        await shift_session(client, sid(expired), seconds=61)

        response = await client.get("/auth/sessions", headers=bearer(live["access_token"]))

        assert response.status_code == 200, response.text
        assert [s["id"] for s in response.json()] == [sid(live)]


# --- purge ------------------------------------------------------------------


async def test_purge_removes_expired_idle_and_long_ended_sessions_only(
    make_client: AppFactory,
) -> None:
    day = 86400
    async with make_client(
        refresh_token_ttl_seconds=3 * day, session_idle_timeout_seconds=2 * day
    ) as client:
        account = await signup(client)
        past_lifetime = await login(client, account["username"])
        idle = await login(client, account["username"])
        ended_long_ago = await login(client, account["username"])
        ended_just_now = await login(client, account["username"])
        live = await login(client, account["username"])
        await shift_session(client, sid(past_lifetime), seconds=3 * day + 1)
        await shift_session(client, sid(idle), seconds=2 * day + 1)
        await shift_session(client, sid(ended_long_ago), seconds=day + 1, ended=True)
        await client.post("/auth/logout", headers=bearer(ended_just_now["access_token"]))

        async with app_state(client).sessionmaker() as db, db.begin():
            purged = await sessions_service.purge_expired(
                db,
                settings=app_state(client).settings,
            )

        assert purged == 3
        assert await surviving_sessions(client) == {sid(live), sid(ended_just_now)}


async def test_purge_removes_the_refresh_tokens_of_purged_sessions(make_client: AppFactory) -> None:
    async with make_client(refresh_token_ttl_seconds=60) as client:
        _, tokens = await create_user(client)
        await refresh(client, tokens["refresh_token"])
        await shift_session(client, sid(tokens), seconds=61)

        async with app_state(client).sessionmaker() as db, db.begin():
            await sessions_service.purge_expired(
                db,
                settings=app_state(client).settings,
            )

        async with app_state(client).sessionmaker() as db:
            left = await db.scalar(
                select(func.count())
                .select_from(RefreshToken)
                .where(col(RefreshToken.session_id) == uuid.UUID(sid(tokens)))
            )
        assert left == 0


async def test_purged_sessions_refresh_token_is_invalid_grant(make_client: AppFactory) -> None:
    async with make_client(refresh_token_ttl_seconds=60) as client:
        _, tokens = await create_user(client)
        await shift_session(client, sid(tokens), seconds=61)
        async with app_state(client).sessionmaker() as db, db.begin():
            await sessions_service.purge_expired(
                db,
                settings=app_state(client).settings,
            )

        assert_invalid_grant(await refresh(client, tokens["refresh_token"]))


async def test_ending_an_own_session_by_id_is_audited(client: httpx.AsyncClient) -> None:
    account, first = await create_user(client)
    second = await login(client, account["username"])
    listed = await client.get("/auth/sessions", headers=bearer(first["access_token"]))
    other = next(s for s in listed.json() if not s["current"])
    response = await client.delete(
        f"/auth/sessions/{other['id']}", headers=bearer(first["access_token"])
    )
    assert response.status_code == 204
    admin = await admin_login(client, scope="audit:read")
    entries = await client.get(
        "/audit", params={"action": "auth.logout"}, headers=bearer(admin["access_token"])
    )
    [entry] = entries.json()["items"]
    assert entry["actor"] == account["id"]
    assert entry["target"] == other["id"]
    assert entry["detail"] == {"via": "session_delete"}
    assert second["refresh_token"] not in entries.text
