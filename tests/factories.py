"""Plain async factories that act the way a client would: over HTTP."""

import base64
from typing import Any
from urllib.parse import quote_plus

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


def basic_auth(client_id: str, secret: str) -> dict[str, str]:
    """`client_secret_basic` done right (RFC 6749 §2.3.1): id and secret are
    form-url-encoded before the Basic encoding."""
    pair = f"{quote_plus(client_id)}:{quote_plus(secret)}"
    return {"Authorization": "Basic " + base64.b64encode(pair.encode()).decode()}


async def admin_headers(client: httpx.AsyncClient, scope: str | None = None) -> dict[str, str]:
    return bearer((await admin_login(client, scope))["access_token"])


async def create_scope_and_role(
    client: httpx.AsyncClient, headers: dict[str, str], role: str, scopes: list[str]
) -> None:
    """A role carrying `scopes`, creating those that are not in the catalogue yet."""
    for scope in scopes:
        await client.post("/scopes", json={"name": scope}, headers=headers)
    response = await client.post("/roles", json={"name": role, "scopes": scopes}, headers=headers)
    assert response.status_code == 201, response.text


async def register_client(
    client: httpx.AsyncClient, headers: dict[str, str], **body: Any
) -> dict[str, Any]:
    """POST /clients; by default a confidential client for client_credentials."""
    payload: dict[str, Any] = {
        "name": unique_name("client"),
        "type": "confidential",
        "grant_types": ["client_credentials"],
        **body,
    }
    response = await client.post("/clients", json=payload, headers=headers)
    assert response.status_code == 201, response.text
    return response.json()  # type: ignore[no-any-return]


async def client_credentials(
    client: httpx.AsyncClient,
    client_id: str,
    secret: str,
    *,
    scope: str | None = None,
    method: str = "basic",
) -> httpx.Response:
    data = {"grant_type": "client_credentials"}
    if scope is not None:
        data["scope"] = scope
    if method == "basic":
        return await client.post("/auth/token", data=data, headers=basic_auth(client_id, secret))
    data |= {"client_id": client_id, "client_secret": secret}
    return await client.post("/auth/token", data=data)


async def client_token(
    client: httpx.AsyncClient, client_id: str, secret: str, scope: str | None = None
) -> str:
    response = await client_credentials(client, client_id, secret, scope=scope)
    assert response.status_code == 200, response.text
    return response.json()["access_token"]  # type: ignore[no-any-return]


async def introspector(client: httpx.AsyncClient, headers: dict[str, str]) -> dict[str, Any]:
    """A confidential client whose role holds `tokens:introspect` (a resource server's)."""
    response = await client.post(
        "/roles",
        json={"name": unique_name("introspector"), "scopes": ["tokens:introspect"]},
        headers=headers,
    )
    assert response.status_code == 201, response.text
    return await register_client(client, headers, roles=[response.json()["name"]])


async def introspect(
    client: httpx.AsyncClient, resource_server: dict[str, Any], token: str
) -> httpx.Response:
    return await client.post(
        "/oauth/introspect",
        data={"token": token},
        headers=basic_auth(resource_server["client_id"], resource_server["client_secret"]),
    )


async def create_pat(
    client: httpx.AsyncClient,
    headers: dict[str, str],
    scopes: list[str],
    name: str = "ci",
    **extra: Any,
) -> dict[str, Any]:
    response = await client.post(
        "/accounts/me/tokens", json={"name": name, "scopes": scopes, **extra}, headers=headers
    )
    assert response.status_code == 201, response.text
    return response.json()  # type: ignore[no-any-return]
