"""Two real uvicorn processes on one PostgreSQL database: what one instance ends,
the other refuses on the very next request, and a refresh token is single-use
across both."""

import asyncio
import secrets
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from tests.conftest import ADMIN_PASSWORD, ADMIN_USERNAME, migrate, unique_name
from tests.factories import PASSWORD, bearer
from tests.servers import serve, server_env

pytestmark = pytest.mark.postgres_only

REQUEST_TIMEOUT_SECONDS = 10


@pytest.fixture(scope="module")
def instances(
    pg_database_factory: Callable[[], str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[str, str]]:
    """Base URLs of instances A and B, sharing one freshly migrated database and
    one secret. B starts once A is up, as in a rolling deployment."""
    url = pg_database_factory()
    migrate(url)
    tmp = tmp_path_factory.mktemp("instances")
    env = server_env(url, tmp / "data", GATEHOUSE_SECRET_KEY=secrets.token_urlsafe(36)[:48])
    with (
        serve(env, log_path=tmp / "a.log") as url_a,
        serve(env, log_path=tmp / "b.log") as url_b,
    ):
        yield url_a, url_b


def _http(base_url: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=base_url, timeout=REQUEST_TIMEOUT_SECONDS, trust_env=False)


async def _signup_and_login(http: httpx.AsyncClient) -> dict[str, Any]:
    username = unique_name()
    signed_up = await http.post("/auth/signup", json={"username": username, "password": PASSWORD})
    assert signed_up.status_code == 201, signed_up.text
    return await _login(http, username, PASSWORD)


async def _login(http: httpx.AsyncClient, username: str, password: str) -> dict[str, Any]:
    response = await http.post(
        "/auth/token",
        data={"grant_type": "password", "username": username, "password": password},
    )
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


async def _refresh(http: httpx.AsyncClient, refresh_token: str) -> httpx.Response:
    return await http.post(
        "/auth/token", data={"grant_type": "refresh_token", "refresh_token": refresh_token}
    )


def _assert_invalid_grant(response: httpx.Response) -> None:
    assert response.status_code == 400, response.text
    assert response.json()["error"] == "invalid_grant"


def _assert_invalid_token(response: httpx.Response) -> None:
    assert response.status_code == 401, response.text
    assert 'error="invalid_token"' in response.headers["www-authenticate"]


async def test_a_token_issued_by_one_instance_is_honoured_by_the_other(
    instances: tuple[str, str],
) -> None:
    url_a, url_b = instances
    async with _http(url_a) as a, _http(url_b) as b:
        tokens = await _signup_and_login(a)

        response = await b.get("/accounts/me", headers=bearer(tokens["access_token"]))

        assert response.status_code == 200, response.text
        assert response.json()["scopes"] == ["me:read", "me:write"]


async def test_logout_on_one_instance_is_honoured_by_the_other_on_the_next_request(
    instances: tuple[str, str],
) -> None:
    url_a, url_b = instances
    async with _http(url_a) as a, _http(url_b) as b:
        tokens = await _signup_and_login(a)
        headers = bearer(tokens["access_token"])
        assert (await b.get("/accounts/me", headers=headers)).status_code == 200

        logout = await a.post("/auth/logout", headers=headers)
        assert logout.status_code == 204, logout.text

        _assert_invalid_token(await b.get("/accounts/me", headers=headers))


async def test_disabling_an_account_on_one_instance_is_honoured_by_the_other(
    instances: tuple[str, str],
) -> None:
    url_a, url_b = instances
    async with _http(url_a) as a, _http(url_b) as b:
        tokens = await _signup_and_login(a)
        headers = bearer(tokens["access_token"])
        me = await b.get("/accounts/me", headers=headers)
        assert me.status_code == 200, me.text
        admin = await _login(a, ADMIN_USERNAME, ADMIN_PASSWORD)

        disabled = await a.patch(
            f"/accounts/{me.json()['id']}",
            json={"is_active": False},
            headers=bearer(admin["access_token"]),
        )
        assert disabled.status_code == 200, disabled.text

        _assert_invalid_token(await b.get("/accounts/me", headers=headers))


async def test_refresh_on_one_instance_of_a_token_issued_by_the_other_works(
    instances: tuple[str, str],
) -> None:
    url_a, url_b = instances
    async with _http(url_a) as a, _http(url_b) as b:
        tokens = await _signup_and_login(a)

        response = await _refresh(b, tokens["refresh_token"])

        assert response.status_code == 200, response.text
        rotated = response.json()
        assert rotated["refresh_token"] != tokens["refresh_token"]
        me = await a.get("/accounts/me", headers=bearer(rotated["access_token"]))
        assert me.status_code == 200, me.text


async def test_reuse_on_one_instance_of_a_token_spent_on_the_other_ends_the_session(
    instances: tuple[str, str],
) -> None:
    url_a, url_b = instances
    async with _http(url_a) as a, _http(url_b) as b:
        tokens = await _signup_and_login(a)
        rotated = (await _refresh(b, tokens["refresh_token"])).json()

        _assert_invalid_grant(await _refresh(a, tokens["refresh_token"]))

        _assert_invalid_grant(await _refresh(b, rotated["refresh_token"]))
        _assert_invalid_token(await b.get("/accounts/me", headers=bearer(rotated["access_token"])))


async def test_reuse_across_instances_is_recorded_in_the_audit_log(
    instances: tuple[str, str],
) -> None:
    url_a, url_b = instances
    async with _http(url_a) as a, _http(url_b) as b:
        tokens = await _signup_and_login(a)
        me = (await a.get("/accounts/me", headers=bearer(tokens["access_token"]))).json()
        await _refresh(b, tokens["refresh_token"])
        await _refresh(a, tokens["refresh_token"])
        admin = await _login(b, ADMIN_USERNAME, ADMIN_PASSWORD)

        response = await b.get(
            "/audit",
            params={"action": "auth.refresh_reuse"},
            headers=bearer(admin["access_token"]),
        )

        assert response.status_code == 200, response.text
        assert me["id"] in [entry["target"] for entry in response.json()["items"]]


async def test_concurrent_refreshes_of_one_token_on_both_instances_give_one_success(
    instances: tuple[str, str],
) -> None:
    url_a, url_b = instances
    async with _http(url_a) as a, _http(url_b) as b:
        tokens = await _signup_and_login(a)

        responses = await asyncio.gather(
            *(_refresh(http, tokens["refresh_token"]) for http in (a, b) * 5)
        )

        assert sorted(r.status_code for r in responses) == [200] + [400] * 9, [
            r.text for r in responses
        ]
        assert {r.json()["error"] for r in responses if r.status_code == 400} == {"invalid_grant"}


async def _admin_headers(http: httpx.AsyncClient) -> dict[str, str]:
    return bearer((await _login(http, ADMIN_USERNAME, ADMIN_PASSWORD))["access_token"])


async def test_a_disabled_clients_token_is_refused_by_the_other_instance_on_the_next_request(
    instances,
):
    url_a, url_b = instances
    async with _http(url_a) as a, _http(url_b) as b:
        admin = await _admin_headers(a)
        role = await a.post(
            "/roles",
            json={"name": unique_name("reader"), "scopes": ["accounts:read"]},
            headers=admin,
        )
        created = await a.post(
            "/clients",
            json={
                "name": "reporting",
                "type": "confidential",
                "grant_types": ["client_credentials"],
                "roles": [role.json()["name"]],
            },
            headers=admin,
        )
        assert created.status_code == 201, created.text
        client = created.json()
        issued = await b.post(
            "/auth/token",
            data={"grant_type": "client_credentials"},
            auth=(client["client_id"], client["client_secret"]),
        )
        assert issued.status_code == 200, issued.text
        headers = bearer(issued.json()["access_token"])
        assert (await b.get("/accounts", headers=headers)).status_code == 200

        disabled = await a.patch(
            f"/clients/{client['client_id']}", json={"is_active": False}, headers=admin
        )
        assert disabled.status_code == 200, disabled.text

        _assert_invalid_token(await b.get("/accounts", headers=headers))


async def test_a_personal_access_token_revoked_on_one_instance_is_refused_by_the_other(instances):
    url_a, url_b = instances
    async with _http(url_a) as a, _http(url_b) as b:
        tokens = await _signup_and_login(a)
        created = await a.post(
            "/accounts/me/tokens",
            json={"name": "ci", "scopes": ["me:read"]},
            headers=bearer(tokens["access_token"]),
        )
        assert created.status_code == 201, created.text
        pat = created.json()
        assert (await b.get("/accounts/me", headers=bearer(pat["token"]))).status_code == 200

        revoked = await a.delete(
            f"/accounts/me/tokens/{pat['id']}", headers=bearer(tokens["access_token"])
        )
        assert revoked.status_code == 204

        _assert_invalid_token(await b.get("/accounts/me", headers=bearer(pat["token"])))
