"""A browser session ends with its logout, a password change, or the account's
disabling; while it lives, authorize skips the form."""

from typing import Any

import httpx

from tests.authorization.flow import (
    authorize_params,
    code_for,
    form_to,
    pkce,
    query_of,
    register_app,
)
from tests.factories import PASSWORD, admin_headers, bearer, login, signup


async def _signed_in(client: httpx.AsyncClient) -> tuple[dict[str, Any], dict[str, Any], str]:
    app = await register_app(client, await admin_headers(client))
    account = await signup(client)
    _, challenge = pkce()
    await code_for(
        client, authorize_params(app["client_id"], challenge), account["username"], PASSWORD
    )
    return app, account, challenge


async def _skips_form(client: httpx.AsyncClient, app: dict[str, Any], challenge: str) -> bool:
    response = await client.get(
        "/oauth/authorize", params=authorize_params(app["client_id"], challenge)
    )
    if response.status_code == 302:
        assert "code" in query_of(response.headers["location"])
        return True
    assert response.status_code == 200
    assert 'autocomplete="current-password"' in response.text
    return False


async def test_logout_ends_the_browser_session(client: httpx.AsyncClient) -> None:
    app, account, challenge = await _signed_in(client)
    assert await _skips_form(client, app, challenge)
    page = await client.get(
        "/oauth/authorize", params=authorize_params(app["client_id"], challenge, prompt="login")
    )
    fields = form_to(page.text, "/oauth/logout")
    response = await client.post("/oauth/logout", data=fields)
    assert response.status_code == 303
    assert response.headers["location"] == "/oauth/signed-out"
    signed_out = await client.get(response.headers["location"])
    assert signed_out.status_code == 200
    assert "Signed out" in signed_out.text
    assert not await _skips_form(client, app, challenge)
    audit = await client.get(
        "/audit", params={"action": "auth.logout"}, headers=await admin_headers(client)
    )
    assert [e["detail"] for e in audit.json()["items"]] == [{"via": "browser"}]


async def test_the_logged_out_cookie_no_longer_works_if_replayed(
    client: httpx.AsyncClient,
) -> None:
    app, _, challenge = await _signed_in(client)
    stolen = client.cookies.get("gatehouse_session")
    assert stolen
    page = await client.get(
        "/oauth/authorize", params=authorize_params(app["client_id"], challenge, prompt="login")
    )
    await client.post("/oauth/logout", data=form_to(page.text, "/oauth/logout"))
    client.cookies.set("gatehouse_session", stolen)
    assert not await _skips_form(client, app, challenge)


async def test_a_password_change_ends_the_browser_session(client: httpx.AsyncClient) -> None:
    app, account, challenge = await _signed_in(client)
    own = await login(client, account["username"])
    changed = await client.post(
        "/accounts/me/password",
        json={"current_password": PASSWORD, "new_password": "another fine passphrase"},
        headers=bearer(own["access_token"]),
    )
    assert changed.status_code == 204, changed.text
    assert not await _skips_form(client, app, challenge)


async def test_disabling_the_account_ends_the_browser_session(client: httpx.AsyncClient) -> None:
    app, account, challenge = await _signed_in(client)
    headers = await admin_headers(client)
    await client.patch(f"/accounts/{account['id']}", json={"is_active": False}, headers=headers)
    await client.patch(f"/accounts/{account['id']}", json={"is_active": True}, headers=headers)
    assert not await _skips_form(client, app, challenge)


async def test_the_cookie_holds_no_stored_value(client: httpx.AsyncClient) -> None:
    from sqlalchemy import text

    from tests.conftest import app_state

    await _signed_in(client)
    cookie = client.cookies.get("gatehouse_session")
    assert cookie and len(cookie) >= 43
    async with app_state(client).sessionmaker() as db:
        rows = (await db.execute(text("SELECT token_hash FROM browser_session"))).all()
    assert len(rows) == 1
    assert cookie not in rows[0][0]


async def test_an_idle_browser_session_ends(make_client: Any) -> None:
    from datetime import timedelta

    from sqlalchemy import text

    from app.core.models import utcnow
    from tests.conftest import app_state

    async with make_client(session_idle_timeout_seconds=600) as client:
        app, _, challenge = await _signed_in(client)
        long_ago = utcnow() - timedelta(seconds=601)
        async with app_state(client).sessionmaker() as db, db.begin():
            if db.get_bind().dialect.name == "sqlite":
                long_ago = long_ago.replace(tzinfo=None)
            await db.execute(text("UPDATE browser_session SET last_used_at = :t"), {"t": long_ago})
        assert not await _skips_form(client, app, challenge)


async def test_a_password_reset_ends_the_browser_session(
    make_client: Any, database_url: str, tmp_path: Any
) -> None:
    from tests.cli.helpers import gatehouse
    from tests.conftest import TEST_SECRET

    async with make_client() as client:
        app, account, challenge = await _signed_in(client)
        cookie = client.cookies.get("gatehouse_session")
        assert await _skips_form(client, app, challenge)
    result = gatehouse(
        tmp_path,
        "reset-password",
        account["username"],
        GATEHOUSE_DATABASE_URL=database_url,
        GATEHOUSE_SECRET_KEY=TEST_SECRET,
        GATEHOUSE_ARGON2_TIME_COST="1",
        GATEHOUSE_ARGON2_MEMORY_KIB="1024",
        GATEHOUSE_ARGON2_PARALLELISM="1",
    )
    assert result.returncode == 0, result.stderr
    async with make_client() as client:
        client.cookies.set("gatehouse_session", cookie or "")
        assert not await _skips_form(client, app, challenge)
