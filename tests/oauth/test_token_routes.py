"""POST /auth/token with the password grant (RFC 6749 §4.3, §5), and the bearer
challenges of GET /accounts/me (RFC 6750 §3)."""

import time
import uuid
from typing import Any

import httpx
import jwt as pyjwt
import pytest

from tests.conftest import app_state
from tests.factories import PASSWORD, admin_login, bearer, create_user, login, signup


async def token_request(client: httpx.AsyncClient, **form: str) -> httpx.Response:
    return await client.post("/auth/token", data=form)


async def password_grant(
    client: httpx.AsyncClient, username: str, password: str = PASSWORD, **form: str
) -> httpx.Response:
    return await token_request(
        client, grant_type="password", username=username, password=password, **form
    )


def assert_oauth_error(response: httpx.Response, error: str) -> None:
    assert response.status_code == 400, response.text
    body = response.json()
    assert set(body) == {"error", "error_description"}
    assert body["error"] == error
    assert isinstance(body["error_description"], str)


def claims_of(token: str) -> dict[str, Any]:
    return pyjwt.decode(token, options={"verify_signature": False})


# --- success -----------------------------------------------------------------


async def test_password_grant_answers_the_rfc_6749_token_response(
    client: httpx.AsyncClient,
) -> None:
    account = await signup(client)
    response = await password_grant(client, account["username"])
    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == {"access_token", "token_type", "expires_in", "refresh_token", "scope"}
    assert body["token_type"] == "bearer"
    assert body["expires_in"] == 900
    assert body["scope"] == "me:read me:write"
    assert len(body["refresh_token"]) >= 43  # 256 bits, base64url
    assert body["refresh_token"] != body["access_token"]


async def test_token_response_is_not_cacheable(client: httpx.AsyncClient) -> None:
    account = await signup(client)
    response = await password_grant(client, account["username"])
    assert response.headers["cache-control"] == "no-store"


async def test_access_token_header_names_the_signing_key_and_type(
    client: httpx.AsyncClient,
) -> None:
    _, issued = await create_user(client)
    signer = app_state(client).keyring.signer
    header = pyjwt.get_unverified_header(issued["access_token"])
    assert header["alg"] == signer.alg
    assert header["kid"] == signer.kid
    assert header["typ"] == "at+jwt"


async def test_access_token_carries_the_contract_claims(client: httpx.AsyncClient) -> None:
    settings = app_state(client).settings
    before = int(time.time())
    account, issued = await create_user(client)
    claims = claims_of(issued["access_token"])
    assert {"iss", "aud", "sub", "sid", "jti", "iat", "exp", "scope"} <= set(claims)
    assert claims["iss"] == settings.issuer
    assert claims["aud"] == settings.audience
    assert claims["sub"] == account["id"]
    assert before - 1 <= claims["iat"] <= int(time.time()) + 1
    assert claims["exp"] == claims["iat"] + 900
    assert claims["scope"] == "me:read me:write"
    assert isinstance(claims["jti"], str) and claims["jti"]


async def test_access_token_sid_is_the_session_id(client: httpx.AsyncClient) -> None:
    _, issued = await create_user(client)
    sessions = await client.get("/auth/sessions", headers=bearer(issued["access_token"]))
    assert sessions.status_code == 200, sessions.text
    [current] = [s for s in sessions.json() if s["current"]]
    sid = claims_of(issued["access_token"])["sid"]
    assert isinstance(sid, str)
    assert sid == current["id"]
    assert uuid.UUID(sid)


async def test_every_login_starts_its_own_session(client: httpx.AsyncClient) -> None:
    account, first = await create_user(client)
    second = await login(client, account["username"])
    assert claims_of(first["access_token"])["sid"] != claims_of(second["access_token"])["sid"]
    assert claims_of(first["access_token"])["jti"] != claims_of(second["access_token"])["jti"]


async def test_issued_token_reads_the_own_account(client: httpx.AsyncClient) -> None:
    account, issued = await create_user(client)
    response = await client.get("/accounts/me", headers=bearer(issued["access_token"]))
    assert response.status_code == 200, response.text
    assert response.json() == account


async def test_username_is_matched_regardless_of_case_and_width(
    client: httpx.AsyncClient,
) -> None:
    account = await signup(client, "dora")
    response = await password_grant(client, "ＤＯＲＡ")
    assert response.status_code == 200, response.text
    assert claims_of(response.json()["access_token"])["sub"] == account["id"]


async def test_the_builtin_client_id_is_accepted_and_lands_in_the_token(
    client: httpx.AsyncClient,
) -> None:
    account = await signup(client)
    response = await password_grant(client, account["username"], client_id="gatehouse")
    assert response.status_code == 200, response.text
    assert claims_of(response.json()["access_token"])["client_id"] == "gatehouse"


async def test_an_unknown_client_id_is_invalid_client(client: httpx.AsyncClient) -> None:
    account = await signup(client)
    response = await password_grant(client, account["username"], client_id="any-app")
    assert response.status_code == 401, response.text
    assert response.json()["error"] == "invalid_client"
    assert "www-authenticate" not in response.headers


# --- scope -------------------------------------------------------------------


async def test_scope_parameter_narrows_the_grant(client: httpx.AsyncClient) -> None:
    account = await signup(client)
    response = await password_grant(client, account["username"], scope="me:read")
    assert response.status_code == 200, response.text
    assert response.json()["scope"] == "me:read"
    assert claims_of(response.json()["access_token"])["scope"] == "me:read"


async def test_admin_without_scope_parameter_gets_every_scope_it_holds(
    client: httpx.AsyncClient,
) -> None:
    issued = await admin_login(client)
    assert issued["scope"].split() == sorted(
        ["me:read", "me:write", "accounts:read", "accounts:write"]
        + ["roles:read", "roles:write", "audit:read", "metrics:read"]
        + ["clients:read", "clients:write", "tokens:introspect"]
    )


async def test_unknown_scope_answers_invalid_scope(client: httpx.AsyncClient) -> None:
    account = await signup(client)
    response = await password_grant(client, account["username"], scope="me:read launch:missiles")
    assert_oauth_error(response, "invalid_scope")


async def test_known_scope_not_held_is_silently_not_granted(client: httpx.AsyncClient) -> None:
    account = await signup(client)
    response = await password_grant(client, account["username"], scope="me:read accounts:read")
    assert response.status_code == 200, response.text
    assert response.json()["scope"] == "me:read"
    assert claims_of(response.json()["access_token"])["scope"] == "me:read"


# --- failures ----------------------------------------------------------------


def comparable(response: httpx.Response) -> tuple[int, bytes, dict[str, str]]:
    # Date and X-Request-ID differ between any two requests, whatever their outcome.
    headers = {
        k: v for k, v in response.headers.items() if k.lower() not in ("date", "x-request-id")
    }
    return response.status_code, response.content, headers


async def test_wrong_password_answers_invalid_grant(client: httpx.AsyncClient) -> None:
    account = await signup(client)
    assert_oauth_error(
        await password_grant(client, account["username"], "wrong password"), "invalid_grant"
    )


async def test_wrong_password_unknown_user_and_disabled_account_answer_identically(
    client: httpx.AsyncClient,
) -> None:
    account = await signup(client)
    disabled = await signup(client)
    admin = await admin_login(client)
    patched = await client.patch(
        f"/accounts/{disabled['id']}",
        json={"is_active": False},
        headers=bearer(admin["access_token"]),
    )
    assert patched.status_code == 200, patched.text

    wrong_password = await password_grant(client, account["username"], "wrong password")
    unknown_user = await password_grant(client, "nobody-by-this-name")
    disabled_account = await password_grant(client, disabled["username"])

    assert_oauth_error(wrong_password, "invalid_grant")
    assert comparable(unknown_user) == comparable(wrong_password)
    assert comparable(disabled_account) == comparable(wrong_password)


async def test_missing_grant_type_answers_invalid_request(client: httpx.AsyncClient) -> None:
    response = await token_request(client, username="admin", password=PASSWORD)
    assert_oauth_error(response, "invalid_request")


@pytest.mark.parametrize("missing", ["username", "password"])
async def test_password_grant_without_a_credential_answers_invalid_request(
    client: httpx.AsyncClient, missing: str
) -> None:
    form = {"grant_type": "password", "username": "admin", "password": PASSWORD}
    del form[missing]
    assert_oauth_error(await token_request(client, **form), "invalid_request")


@pytest.mark.parametrize(
    "grant_type", ["implicit", "urn:ietf:params:oauth:grant-type:device_code", "PASSWORD"]
)
async def test_other_grant_type_answers_unsupported_grant_type(
    client: httpx.AsyncClient, grant_type: str
) -> None:
    response = await token_request(
        client, grant_type=grant_type, username="admin", password=PASSWORD
    )
    assert_oauth_error(response, "unsupported_grant_type")


async def test_json_body_answers_400(client: httpx.AsyncClient) -> None:
    account = await signup(client)
    response = await client.post(
        "/auth/token",
        json={"grant_type": "password", "username": account["username"], "password": PASSWORD},
    )
    assert_oauth_error(response, "invalid_request")


async def test_error_response_is_not_cacheable(client: httpx.AsyncClient) -> None:
    response = await token_request(client, grant_type="client_credentials")
    assert response.headers["cache-control"] == "no-store"


# --- bearer challenges on GET /accounts/me -----------------------------------


async def test_no_token_answers_401_with_a_bare_challenge(client: httpx.AsyncClient) -> None:
    response = await client.get("/accounts/me")
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == 'Bearer scope="me:read"'
    assert list(response.json()) == ["detail"]


async def test_token_in_the_query_string_counts_as_no_token(client: httpx.AsyncClient) -> None:
    _, issued = await create_user(client)
    response = await client.get("/accounts/me", params={"access_token": issued["access_token"]})
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == 'Bearer scope="me:read"'


async def test_token_in_a_form_field_counts_as_no_token(client: httpx.AsyncClient) -> None:
    _, issued = await create_user(client)
    response = await client.post("/auth/logout", data={"access_token": issued["access_token"]})
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"


async def test_token_under_another_scheme_counts_as_no_token(client: httpx.AsyncClient) -> None:
    _, issued = await create_user(client)
    response = await client.get(
        "/accounts/me", headers={"Authorization": f"Token {issued['access_token']}"}
    )
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == 'Bearer scope="me:read"'


async def test_token_lacking_the_scope_answers_403_insufficient_scope(
    client: httpx.AsyncClient,
) -> None:
    account = await signup(client)
    issued = await login(client, account["username"], scope="me:write")
    response = await client.get("/accounts/me", headers=bearer(issued["access_token"]))
    assert response.status_code == 403, response.text
    assert (
        response.headers["www-authenticate"] == 'Bearer error="insufficient_scope", scope="me:read"'
    )
    assert list(response.json()) == ["detail"]
