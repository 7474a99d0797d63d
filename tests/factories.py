"""Plain async factories that act the way a client would: over HTTP."""

from typing import Any

import httpx

from tests.conftest import ADMIN_PASSWORD, ADMIN_USERNAME, unique_name

PASSWORD = "a perfectly fine passphrase"


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def signup(
    client: httpx.AsyncClient, username: str | None = None, password: str = PASSWORD, **extra: Any
) -> dict[str, Any]:
    response = await client.post(
        "/auth/signup", json={"username": username or unique_name(), "password": password, **extra}
    )
    assert response.status_code == 201, response.text
    return response.json()  # type: ignore[no-any-return]


async def login(
    client: httpx.AsyncClient, username: str, password: str = PASSWORD, scope: str | None = None
) -> dict[str, Any]:
    data = {"grant_type": "password", "username": username, "password": password}
    if scope is not None:
        data["scope"] = scope
    response = await client.post("/auth/token", data=data)
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


async def refresh(
    client: httpx.AsyncClient, refresh_token: str, scope: str | None = None
) -> httpx.Response:
    data = {"grant_type": "refresh_token", "refresh_token": refresh_token}
    if scope is not None:
        data["scope"] = scope
    return await client.post("/auth/token", data=data)


async def create_user(
    client: httpx.AsyncClient, username: str | None = None, password: str = PASSWORD
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Sign up and log in: (account, token response)."""
    account = await signup(client, username, password)
    return account, await login(client, account["username"], password)


async def admin_login(client: httpx.AsyncClient, scope: str | None = None) -> dict[str, Any]:
    return await login(client, ADMIN_USERNAME, ADMIN_PASSWORD, scope)
