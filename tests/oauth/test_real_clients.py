"""Off-the-shelf OAuth clients obtain client-credentials tokens from a real
uvicorn, on each database: authlib's OAuth2Client and requests-oauthlib's
BackendApplicationClient, each with client_secret_basic and client_secret_post;
PyJWT then verifies the tokens from the published JWKS alone."""

import warnings
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import jwt as pyjwt
import pytest
import requests
from oauthlib.oauth2 import BackendApplicationClient
from requests_oauthlib import OAuth2Session

from tests.conftest import ADMIN_PASSWORD, ADMIN_USERNAME, migrate
from tests.servers import serve, server_env

with warnings.catch_warnings():
    # authlib's httpx integration says it prefers the httpx2 package; httpx it is
    # here. Its warning module forces "always" for its category when imported, so
    # it is imported first and the "ignore" set after it.
    from authlib.deprecate import AuthlibDeprecationWarning

    warnings.simplefilter("ignore", AuthlibDeprecationWarning)
    from authlib.integrations.httpx_client import OAuth2Client

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def gatehouse(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, Any]]:
    """A served Gatehouse on a fresh database, and a confidential client of it
    whose role holds `accounts:read`."""
    factory: Callable[[], str] = request.getfixturevalue(
        "pg_database_factory" if request.param == "postgresql" else "sqlite_database_factory"
    )
    url = factory()
    migrate(url)
    tmp = tmp_path_factory.mktemp("real-clients")
    with serve(server_env(url, tmp / "data"), log_path=tmp / "server.log") as base:
        with httpx.Client(base_url=base, timeout=10, trust_env=False) as http:
            admin = http.post(
                "/auth/token",
                data={
                    "grant_type": "password",
                    "username": ADMIN_USERNAME,
                    "password": ADMIN_PASSWORD,
                },
            ).json()["access_token"]
            headers = {"Authorization": f"Bearer {admin}"}
            role = http.post(
                "/roles", json={"name": "reader", "scopes": ["accounts:read"]}, headers=headers
            )
            assert role.status_code == 201, role.text
            created = http.post(
                "/clients",
                json={
                    "name": "reporting",
                    "type": "confidential",
                    "grant_types": ["client_credentials"],
                    "roles": ["reader"],
                },
                headers=headers,
            )
            assert created.status_code == 201, created.text
            metadata = http.get("/.well-known/oauth-authorization-server").json()
        yield {"base": base, "client": created.json(), "metadata": metadata}


def verify_with_jwks(gatehouse: dict[str, Any], token: str) -> dict[str, Any]:
    metadata = gatehouse["metadata"]
    jwks = pyjwt.PyJWKClient(
        metadata["jwks_uri"].replace(metadata["issuer"].rstrip("/"), gatehouse["base"])
    )
    key = jwks.get_signing_key_from_jwt(token)
    return pyjwt.decode(
        token,
        key,
        algorithms=[key.algorithm_name],
        audience="gatehouse",
        issuer=metadata["issuer"],
        options={"require": ["exp", "iat", "iss", "aud", "sub", "client_id", "scope"]},
    )


def assert_usable(gatehouse: dict[str, Any], token: dict[str, Any]) -> None:
    client_id = gatehouse["client"]["client_id"]
    assert token["token_type"].lower() == "bearer"
    assert "refresh_token" not in token
    claims = verify_with_jwks(gatehouse, token["access_token"])
    assert claims["sub"] == claims["client_id"] == client_id
    assert claims["scope"] == "accounts:read"
    response = httpx.get(
        f"{gatehouse['base']}/accounts",
        headers={"Authorization": f"Bearer {token['access_token']}"},
        trust_env=False,
    )
    assert response.status_code == 200, response.text


@pytest.mark.parametrize("method", ["client_secret_basic", "client_secret_post"])
def test_authlib_gets_a_client_credentials_token(gatehouse, method):
    created = gatehouse["client"]
    with OAuth2Client(
        created["client_id"],
        created["client_secret"],
        token_endpoint_auth_method=method,
        trust_env=False,
    ) as oauth:
        token = oauth.fetch_token(
            f"{gatehouse['base']}/auth/token", grant_type="client_credentials"
        )
    assert_usable(gatehouse, dict(token))


@pytest.fixture
def loopback_http(monkeypatch: pytest.MonkeyPatch) -> None:
    """oauthlib insists on https; the test server is plain http on loopback."""
    monkeypatch.setenv("OAUTHLIB_INSECURE_TRANSPORT", "1")


@pytest.mark.parametrize("include_client_id", [False, True], ids=["basic", "post"])
def test_requests_oauthlib_gets_a_client_credentials_token(
    gatehouse, include_client_id, loopback_http
):
    created = gatehouse["client"]
    session = OAuth2Session(client=BackendApplicationClient(client_id=created["client_id"]))
    session.trust_env = False
    # requests-oauthlib sends Basic unless told to put the id (and secret) in the body.
    token = session.fetch_token(
        f"{gatehouse['base']}/auth/token",
        client_id=created["client_id"],
        client_secret=created["client_secret"],
        include_client_id=include_client_id,
    )
    assert_usable(gatehouse, dict(token))


def test_a_wrong_secret_is_refused_to_requests_oauthlib(gatehouse, loopback_http):
    created = gatehouse["client"]
    session = OAuth2Session(client=BackendApplicationClient(client_id=created["client_id"]))
    session.trust_env = False
    with pytest.raises(Exception, match="invalid_client"):
        session.fetch_token(
            f"{gatehouse['base']}/auth/token",
            client_id=created["client_id"],
            client_secret="wrong",
        )
    with requests.Session() as plain:
        plain.trust_env = False
        raw = plain.post(
            f"{gatehouse['base']}/auth/token",
            data={"grant_type": "client_credentials"},
            auth=(created["client_id"], "wrong"),
            timeout=10,
        )
    assert raw.status_code == 401
    assert raw.headers["WWW-Authenticate"].startswith("Basic")
