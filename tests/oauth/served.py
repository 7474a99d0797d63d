"""A served Gatehouse for the real-client tests of browser sign-in (issue 14): a
uvicorn process on a fresh migrated database, whose issuer is the address it
serves on (so the built-in `gatehouse` client's redirect URI, the discovery
documents and the tokens' `iss` all name the place a browser or client reaches),
with an admin token to set up accounts and clients, and PKCE helpers (RFC 7636)."""

import base64
import contextlib
import hashlib
import secrets
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest

from tests.conftest import ADMIN_PASSWORD, ADMIN_USERNAME, migrate
from tests.servers import HOST, free_port, serve, server_env

# The path of the clients' loopback redirect URIs (RFC 8252 §7.3). The plain-HTTP
# tests read the code from the redirect's Location and connect to nothing there;
# the browser tests run a listener at the URI.
CALLBACK_PATH = "/callback"


def pkce_pair() -> tuple[str, str]:
    """(code_verifier, code_challenge) for S256, RFC 7636 §4.1-4.2."""
    verifier = secrets.token_urlsafe(48)
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return verifier, base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


@dataclass
class Gatehouse:
    """The served app: its base URL (= issuer) and an admin's bearer header."""

    base: str
    admin_headers: dict[str, str]
    log_path: Path
    _counter: list[int] = field(default_factory=lambda: [0])

    def http(self) -> httpx.Client:
        return httpx.Client(base_url=self.base, timeout=15, trust_env=False)

    def unique(self, prefix: str) -> str:
        self._counter[0] += 1
        return f"{prefix}{self._counter[0]}_{secrets.token_hex(3)}"

    def signup(self) -> tuple[str, str]:
        """A fresh account holding `user` (`me:read me:write`): (username, password)."""
        username = self.unique("reader")
        password = secrets.token_urlsafe(12)
        with self.http() as http:
            created = http.post("/auth/signup", json={"username": username, "password": password})
        assert created.status_code == 201, created.text
        return username, password

    def register_client(self, **fields: Any) -> dict[str, Any]:
        """A client registered by the admin (POST /clients): a public client using the
        authorization code grant with a loopback redirect URI unless `fields` say more."""
        body: dict[str, Any] = {
            "name": self.unique("app"),
            "type": "public",
            "grant_types": ["authorization_code", "refresh_token"],
            "redirect_uris": [f"http://{HOST}:{free_port()}{CALLBACK_PATH}"],
            **fields,
        }
        with self.http() as http:
            created = http.post("/clients", json=body, headers=self.admin_headers)
        assert created.status_code == 201, created.text
        client: dict[str, Any] = created.json()
        return client


@contextlib.contextmanager
def served_gatehouse(database_url: str, tmp: Path, **env: str) -> Iterator[Gatehouse]:
    migrate(database_url)
    port = free_port()
    base = f"http://{HOST}:{port}"
    environment = server_env(database_url, tmp / "data", GATEHOUSE_ISSUER=base, **env)
    log_path = tmp / "server.log"
    with serve(environment, log_path=log_path, port=port) as served:
        assert served == base
        with httpx.Client(base_url=base, timeout=15, trust_env=False) as http:
            token = http.post(
                "/auth/token",
                data={
                    "grant_type": "password",
                    "username": ADMIN_USERNAME,
                    "password": ADMIN_PASSWORD,
                },
            )
            assert token.status_code == 200, token.text
        headers = {"Authorization": f"Bearer {token.json()['access_token']}"}
        yield Gatehouse(base=base, admin_headers=headers, log_path=log_path)


def database_factory(request: pytest.FixtureRequest, backend: str) -> Callable[[], str]:
    """conftest's factory of fresh databases for `backend` ("sqlite" or "postgresql");
    PostgreSQL's skips the test when it is not reachable, outside CI."""
    name = "pg_database_factory" if backend == "postgresql" else "sqlite_database_factory"
    factory: Callable[[], str] = request.getfixturevalue(name)
    return factory


def authorize_url(base: str, client_id: str, redirect_uri: str, **params: str) -> str:
    """GET /oauth/authorize for the code flow with S256 (RFC 6749 §4.1.1, RFC 7636
    §4.3); `params` carry scope, state, code_challenge, nonce, prompt."""
    query = {
        "response_type": "code",
        "client_id": client_id,
        "redirect_uri": redirect_uri,
        "code_challenge_method": "S256",
        **params,
    }
    return f"{base}/oauth/authorize?{urlencode(query)}"


def redeem(
    gatehouse: Gatehouse, client_id: str, code: str, redirect_uri: str, verifier: str
) -> dict[str, Any]:
    """The code exchanged at the token endpoint by a public client (RFC 6749 §4.1.3
    with the verifier of RFC 7636 §4.5): the token response."""
    with gatehouse.http() as http:
        token = http.post(
            "/auth/token",
            data={
                "grant_type": "authorization_code",
                "code": code,
                "redirect_uri": redirect_uri,
                "code_verifier": verifier,
                "client_id": client_id,
            },
        )
    assert token.status_code == 200, token.text
    body: dict[str, Any] = token.json()
    return body


def own_account(gatehouse: Gatehouse, access_token: str) -> dict[str, Any]:
    """GET /accounts/me with the token, which must answer 200."""
    with gatehouse.http() as http:
        me = http.get("/accounts/me", headers={"Authorization": f"Bearer {access_token}"})
    assert me.status_code == 200, me.text
    account: dict[str, Any] = me.json()
    return account
