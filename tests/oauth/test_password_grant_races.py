"""Logins racing the changes that must end them (CONTRACT.md, Guardrails): a
session is created only if, at that moment, the account is still active and its
password is the one that was verified. Each race is forced: the login is held
at a known point (tests/races.py) while the other request runs."""

import asyncio

import httpx
import pytest

from app.audit import service as audit_service
from tests.factories import PASSWORD, admin_login, bearer, create_user
from tests.races import HeldVerify, Pause, blocked_or_done

NEW_PASSWORD = "an entirely new passphrase"


def password_form(username: str, password: str = PASSWORD) -> dict[str, str]:
    return {"grant_type": "password", "username": username, "password": password}


def hold_password_checks(client: httpx.AsyncClient) -> HeldVerify:
    hasher = client.app.state.gatehouse.hasher  # type: ignore[attr-defined]
    held = HeldVerify(hasher)
    hasher.verify = held
    return held


async def is_live(client: httpx.AsyncClient, access_token: str) -> bool:
    response = await client.get("/auth/sessions", headers=bearer(access_token))
    assert response.status_code in (200, 401), response.text
    return response.status_code == 200


async def refreshes(client: httpx.AsyncClient, refresh_token: str) -> bool:
    data = {"grant_type": "refresh_token", "refresh_token": refresh_token}
    response = await client.post("/auth/token", data=data)
    assert response.status_code in (200, 400), response.text
    return response.status_code == 200


async def test_logins_checked_before_a_password_change_get_no_session(client):
    account, tokens = await create_user(client)
    held = hold_password_checks(client)
    logins = [
        asyncio.create_task(client.post("/auth/token", data=password_form(account["username"])))
        for _ in range(2)
    ]
    await held.until_held(2)
    held.holding = False

    changed = await client.post(
        "/accounts/me/password",
        json={"current_password": PASSWORD, "new_password": NEW_PASSWORD},
        headers=bearer(tokens["access_token"]),
    )
    held.release()
    answers = await asyncio.gather(*logins)

    assert changed.status_code == 204, changed.text
    for answer in answers:
        assert answer.status_code == 400, answer.text
        assert answer.json()["error"] == "invalid_grant"
    assert await is_live(client, tokens["access_token"])


async def test_a_login_checked_before_its_account_is_disabled_stays_dead_after_reenabling(
    client,
):
    admin = bearer((await admin_login(client))["access_token"])
    account, _ = await create_user(client)
    held = hold_password_checks(client)
    login = asyncio.create_task(client.post("/auth/token", data=password_form(account["username"])))
    await held.until_held(1)
    held.holding = False

    disabled = await client.patch(
        f"/accounts/{account['id']}", json={"is_active": False}, headers=admin
    )
    held.release()
    answer = await login
    enabled = await client.patch(
        f"/accounts/{account['id']}", json={"is_active": True}, headers=admin
    )

    assert disabled.status_code == 200, disabled.text
    assert enabled.status_code == 200, enabled.text
    if answer.status_code == 200:  # what the unfixed service answers; it must not live on
        tokens = answer.json()
        assert not await refreshes(client, tokens["refresh_token"])
    assert answer.status_code == 400, answer.text
    assert answer.json()["error"] == "invalid_grant"


async def test_a_login_checked_before_its_account_is_deleted_answers_invalid_grant(client):
    admin = bearer((await admin_login(client))["access_token"])
    account, _ = await create_user(client)
    held = hold_password_checks(client)
    login = asyncio.create_task(client.post("/auth/token", data=password_form(account["username"])))
    await held.until_held(1)
    held.holding = False

    deleted = await client.delete(f"/accounts/{account['id']}", headers=admin)
    held.release()
    answer = await login

    assert deleted.status_code == 204, deleted.text
    assert answer.status_code == 400, answer.text
    assert answer.json()["error"] == "invalid_grant"


def pause_at_login_audit(monkeypatch: pytest.MonkeyPatch) -> Pause:
    """Holds a login after its session row is written and before it commits."""
    pause = Pause(audit_service.record, when=lambda *a, **kw: kw.get("action") == "auth.login")
    monkeypatch.setattr(audit_service, "record", pause)
    return pause


@pytest.mark.parametrize("change", ["password", "disable"])
async def test_a_change_made_while_a_login_writes_its_session_ends_that_session(
    client, database_url, monkeypatch, change
):
    admin = bearer((await admin_login(client))["access_token"])
    account, tokens = await create_user(client)
    pause = pause_at_login_audit(monkeypatch)
    login = asyncio.create_task(client.post("/auth/token", data=password_form(account["username"])))
    await asyncio.wait_for(pause.reached.wait(), timeout=15)

    if change == "password":
        request = client.post(
            "/accounts/me/password",
            json={"current_password": PASSWORD, "new_password": NEW_PASSWORD},
            headers=bearer(tokens["access_token"]),
        )
    else:
        request = client.patch(
            f"/accounts/{account['id']}", json={"is_active": False}, headers=admin
        )
    changing = asyncio.create_task(request)
    await blocked_or_done(changing, database_url)
    waited = not changing.done()
    pause.release()
    answer, changed = await asyncio.gather(login, changing)

    # The change waited for the login to commit (its row lock on PostgreSQL, the
    # one connection on SQLite) rather than running beside it.
    assert waited
    assert changed.status_code in (200, 204), changed.text
    if change == "disable":
        enabled = await client.patch(
            f"/accounts/{account['id']}", json={"is_active": True}, headers=admin
        )
        assert enabled.status_code == 200, enabled.text
    if answer.status_code == 200:
        # The login won the race; the change that followed must have ended it.
        assert not await refreshes(client, answer.json()["refresh_token"])
    else:
        assert answer.status_code == 400, answer.text
