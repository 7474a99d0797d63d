"""The authorization code flow with PKCE, end to end over HTTP: sign-in page,
code, exchange, ID token, userinfo, prompts, state and redirect URIs."""

import base64
import hashlib
from typing import Any

import httpx
import jwt as pyjwt
import pytest

from tests.authorization.flow import (
    REDIRECT_URI,
    authorize_params,
    code_for,
    exchange,
    form_to,
    pkce,
    query_of,
    register_app,
    sign_in,
)
from tests.factories import PASSWORD, admin_headers, bearer, refresh, signup


async def _app(client: httpx.AsyncClient, **body: Any) -> dict[str, Any]:
    return await register_app(client, await admin_headers(client), **body)


def _verified_id_token(jwks: dict[str, Any], token: str, audience: str) -> dict[str, Any]:
    header = pyjwt.get_unverified_header(token)
    key = next(k for k in jwks["keys"] if k["kid"] == header["kid"])
    claims: dict[str, Any] = pyjwt.decode(
        token,
        pyjwt.PyJWK(key).key,
        algorithms=[header["alg"]],
        audience=audience,
        options={"require": ["iss", "sub", "aud", "exp", "iat"]},
    )
    return claims


async def test_sign_in_and_exchange_gives_an_ordinary_session(client: httpx.AsyncClient) -> None:
    app = await _app(client)
    account = await signup(client)
    verifier, challenge = pkce()
    params = authorize_params(app["client_id"], challenge, scope="me:read")
    code = await code_for(client, params, account["username"], PASSWORD)
    response = await exchange(client, code, verifier, app["client_id"])
    assert response.status_code == 200, response.text
    tokens = response.json()
    assert tokens["scope"] == "me:read"
    assert tokens["token_type"] == "bearer"
    assert "id_token" not in tokens
    assert response.headers["cache-control"] == "no-store"
    access = pyjwt.decode(tokens["access_token"], options={"verify_signature": False})
    assert access["client_id"] == app["client_id"]
    sessions = await client.get("/auth/sessions", headers=bearer(tokens["access_token"]))
    assert [s["id"] for s in sessions.json()] == [access["sid"]]
    refreshed = await client.post(
        "/auth/token",
        data={
            "grant_type": "refresh_token",
            "refresh_token": tokens["refresh_token"],
            "client_id": app["client_id"],
        },
    )
    assert refreshed.status_code == 200, refreshed.text


async def test_the_redirect_carries_code_state_and_iss(client: httpx.AsyncClient) -> None:
    app = await _app(client)
    account = await signup(client)
    _, challenge = pkce()
    params = authorize_params(app["client_id"], challenge)
    response = await sign_in(client, params, account["username"], PASSWORD)
    assert response.status_code == 302
    location = response.headers["location"]
    assert location.startswith(REDIRECT_URI + "?")
    query = query_of(location)
    assert set(query) == {"code", "state", "iss"}
    metadata = (await client.get("/.well-known/oauth-authorization-server")).json()
    assert query["iss"] == metadata["issuer"]


async def test_openid_gives_an_id_token_that_verifies_against_the_jwks(
    client: httpx.AsyncClient,
) -> None:
    app = await _app(client)
    account = await signup(client, email="someone@example.com")
    verifier, challenge = pkce()
    params = authorize_params(
        app["client_id"], challenge, scope="openid profile email me:read", nonce="n-0S6_WzA2Mj"
    )
    code = await code_for(client, params, account["username"], PASSWORD)
    tokens = (await exchange(client, code, verifier, app["client_id"])).json()
    assert set(tokens["scope"].split()) == {"openid", "profile", "email", "me:read"}
    jwks = (await client.get("/.well-known/jwks.json")).json()
    claims = _verified_id_token(jwks, tokens["id_token"], app["client_id"])
    access = pyjwt.decode(tokens["access_token"], options={"verify_signature": False})
    metadata = (await client.get("/.well-known/openid-configuration")).json()
    assert claims["iss"] == metadata["issuer"]
    assert claims["sub"] == account["id"]
    assert claims["aud"] == app["client_id"]
    assert claims["nonce"] == "n-0S6_WzA2Mj"
    assert claims["sid"] == access["sid"]
    assert isinstance(claims["auth_time"], int)
    assert claims["auth_time"] <= claims["iat"]
    assert pyjwt.get_unverified_header(tokens["id_token"])["typ"] == "JWT"
    digest = hashlib.sha256(tokens["access_token"].encode()).digest()[:16]
    assert claims["at_hash"] == base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


async def test_an_id_token_is_not_accepted_as_an_access_token(client: httpx.AsyncClient) -> None:
    app = await _app(client)
    account = await signup(client)
    verifier, challenge = pkce()
    params = authorize_params(app["client_id"], challenge, scope="openid me:read")
    code = await code_for(client, params, account["username"], PASSWORD)
    tokens = (await exchange(client, code, verifier, app["client_id"])).json()
    response = await client.get("/accounts/me", headers=bearer(tokens["id_token"]))
    assert response.status_code == 401


async def test_userinfo_answers_for_a_token_with_openid(client: httpx.AsyncClient) -> None:
    app = await _app(client)
    account = await signup(client, email="ui@example.com")
    verifier, challenge = pkce()
    params = authorize_params(app["client_id"], challenge, scope="openid email")
    code = await code_for(client, params, account["username"], PASSWORD)
    tokens = (await exchange(client, code, verifier, app["client_id"])).json()
    info = await client.get("/oauth/userinfo", headers=bearer(tokens["access_token"]))
    assert info.status_code == 200, info.text
    assert info.json() == {
        "sub": account["id"],
        "preferred_username": account["username"],
        "email": "ui@example.com",
        "email_verified": False,
    }


async def test_userinfo_needs_openid(client: httpx.AsyncClient) -> None:
    app = await _app(client)
    account = await signup(client)
    verifier, challenge = pkce()
    params = authorize_params(app["client_id"], challenge, scope="me:read")
    code = await code_for(client, params, account["username"], PASSWORD)
    tokens = (await exchange(client, code, verifier, app["client_id"])).json()
    info = await client.get("/oauth/userinfo", headers=bearer(tokens["access_token"]))
    assert info.status_code == 403
    assert 'scope="openid"' in info.headers["www-authenticate"]


async def test_openid_survives_a_refresh(client: httpx.AsyncClient) -> None:
    app = await _app(client)
    account = await signup(client)
    verifier, challenge = pkce()
    params = authorize_params(app["client_id"], challenge, scope="openid me:read")
    code = await code_for(client, params, account["username"], PASSWORD)
    tokens = (await exchange(client, code, verifier, app["client_id"])).json()
    refreshed = await client.post(
        "/auth/token",
        data={
            "grant_type": "refresh_token",
            "refresh_token": tokens["refresh_token"],
            "client_id": app["client_id"],
        },
    )
    assert set(refreshed.json()["scope"].split()) == {"openid", "me:read"}


async def test_a_live_browser_session_skips_the_form(client: httpx.AsyncClient) -> None:
    app = await _app(client)
    account = await signup(client)
    verifier, challenge = pkce()
    await code_for(
        client, authorize_params(app["client_id"], challenge), account["username"], PASSWORD
    )
    again = authorize_params(app["client_id"], challenge)
    response = await client.get("/oauth/authorize", params=again)
    assert response.status_code == 302
    query = query_of(response.headers["location"])
    assert query["state"] == again["state"]
    assert (await exchange(client, query["code"], verifier, app["client_id"])).status_code == 200


async def test_the_browser_session_cookie_is_httponly_and_lax(client: httpx.AsyncClient) -> None:
    app = await _app(client)
    account = await signup(client)
    _, challenge = pkce()
    response = await sign_in(
        client, authorize_params(app["client_id"], challenge), account["username"], PASSWORD
    )
    cookie = next(
        c for c in response.headers.get_list("set-cookie") if c.startswith("gatehouse_session=")
    )
    attributes = {part.strip().lower() for part in cookie.split(";")}
    assert "httponly" in attributes
    assert "samesite=lax" in attributes
    assert "path=/" in attributes
    # The test issuer is http on loopback: no Secure, no __Host- prefix.
    assert "secure" not in attributes


async def test_a_secure_issuer_makes_host_prefixed_secure_cookies(make_client: Any) -> None:
    async with make_client(issuer="https://auth.example") as client:
        app = await _app(client)
        _, challenge = pkce()
        page = await client.get(
            "/oauth/authorize", params=authorize_params(app["client_id"], challenge)
        )
        cookies = page.headers.get_list("set-cookie")
        assert cookies and all(c.startswith("__Host-") for c in cookies)
        assert all("secure" in c.lower() for c in cookies)


async def test_prompt_none_without_a_session_is_login_required(client: httpx.AsyncClient) -> None:
    app = await _app(client)
    _, challenge = pkce()
    params = authorize_params(app["client_id"], challenge, prompt="none")
    response = await client.get("/oauth/authorize", params=params)
    assert response.status_code == 302
    query = query_of(response.headers["location"])
    assert query["error"] == "login_required"
    assert query["state"] == params["state"]
    assert "iss" in query


async def test_prompt_none_with_a_session_redirects_with_a_code(client: httpx.AsyncClient) -> None:
    app = await _app(client)
    account = await signup(client)
    _, challenge = pkce()
    await code_for(
        client, authorize_params(app["client_id"], challenge), account["username"], PASSWORD
    )
    response = await client.get(
        "/oauth/authorize", params=authorize_params(app["client_id"], challenge, prompt="none")
    )
    assert "code" in query_of(response.headers["location"])


async def test_prompt_login_shows_the_form_with_signed_in_as(client: httpx.AsyncClient) -> None:
    app = await _app(client)
    account = await signup(client)
    verifier, challenge = pkce()
    await code_for(
        client, authorize_params(app["client_id"], challenge), account["username"], PASSWORD
    )
    params = authorize_params(app["client_id"], challenge, prompt="login")
    page = await client.get("/oauth/authorize", params=params)
    assert page.status_code == 200
    assert f"Signed in as <strong>{account['username']}</strong>" in page.text
    assert form_to(page.text, "/oauth/logout")["csrf_token"]
    fields = form_to(page.text, "/oauth/authorize") | {
        "username": account["username"],
        "password": PASSWORD,
    }
    response = await client.post("/oauth/authorize", data=fields)
    assert response.status_code == 302
    code = query_of(response.headers["location"])["code"]
    assert (await exchange(client, code, verifier, app["client_id"])).status_code == 200


async def test_prompt_login_with_a_wrong_password_gives_no_code(client: httpx.AsyncClient) -> None:
    app = await _app(client)
    account = await signup(client)
    _, challenge = pkce()
    await code_for(
        client, authorize_params(app["client_id"], challenge), account["username"], PASSWORD
    )
    params = authorize_params(app["client_id"], challenge, prompt="login")
    response = await sign_in(client, params, account["username"], "not the password")
    assert response.status_code == 200
    assert "Incorrect username or password" in response.text


@pytest.mark.parametrize(
    "state",
    [
        "plain",
        "a b+c&d=e%20f/g?h#i",
        "ünïcødé ☃ 雪 🙂",
        "'\"<script>alert(1)</script>",
        "%2F%252F..%2F",
        "~!*()';:@$,[]",
    ],
)
async def test_state_round_trips_exactly(client: httpx.AsyncClient, state: str) -> None:
    app = await _app(client)
    account = await signup(client)
    _, challenge = pkce()
    params = authorize_params(app["client_id"], challenge) | {"state": state}
    response = await sign_in(client, params, account["username"], PASSWORD)
    assert response.status_code == 302
    assert query_of(response.headers["location"])["state"] == state


async def test_state_round_trips_on_an_error_redirect(client: httpx.AsyncClient) -> None:
    app = await _app(client)
    state = "x y&z=☃"
    params = authorize_params(app["client_id"], "x" * 43, code_challenge_method="plain")
    response = await client.get("/oauth/authorize", params=params | {"state": state})
    query = query_of(response.headers["location"])
    assert (query["error"], query["state"]) == ("invalid_request", state)


async def test_a_redirect_uri_with_a_query_keeps_it(client: httpx.AsyncClient) -> None:
    uri = "https://app.example/cb?tenant=a%20b&x=1"
    app = await _app(client, redirect_uris=[uri])
    account = await signup(client)
    verifier, challenge = pkce()
    params = authorize_params(app["client_id"], challenge, redirect_uri=uri)
    response = await sign_in(client, params, account["username"], PASSWORD)
    location = response.headers["location"]
    assert location.startswith(uri + "&code=")
    query = query_of(location)
    assert (query["tenant"], query["x"]) == ("a b", "1")
    exchanged = await exchange(client, query["code"], verifier, app["client_id"], redirect_uri=uri)
    assert exchanged.status_code == 200


async def test_redirect_uri_may_be_left_out_when_one_is_registered(
    client: httpx.AsyncClient,
) -> None:
    app = await _app(client)
    account = await signup(client)
    verifier, challenge = pkce()
    params = authorize_params(app["client_id"], challenge, redirect_uri=None)
    response = await sign_in(client, params, account["username"], PASSWORD)
    assert response.headers["location"].startswith(REDIRECT_URI + "?")
    code = query_of(response.headers["location"])["code"]
    exchanged = await exchange(client, code, verifier, app["client_id"], redirect_uri=None)
    assert exchanged.status_code == 200, exchanged.text


@pytest.mark.parametrize(
    "given",
    ["http://127.0.0.1:51234/cb", "http://127.0.0.1/cb", "http://127.0.0.1:8080/cb"],
)
async def test_a_loopback_redirect_uri_matches_on_any_port(
    client: httpx.AsyncClient, given: str
) -> None:
    app = await _app(client, redirect_uris=["http://127.0.0.1:8080/cb"])
    account = await signup(client)
    verifier, challenge = pkce()
    params = authorize_params(app["client_id"], challenge, redirect_uri=given)
    response = await sign_in(client, params, account["username"], PASSWORD)
    assert response.status_code == 302
    assert response.headers["location"].startswith(given + "?")
    code = query_of(response.headers["location"])["code"]
    exchanged = await exchange(client, code, verifier, app["client_id"], redirect_uri=given)
    assert exchanged.status_code == 200


async def test_a_confidential_client_authenticates_at_the_exchange(
    client: httpx.AsyncClient,
) -> None:
    app = await _app(client, confidential=True)
    account = await signup(client)
    verifier, challenge = pkce()
    params = authorize_params(app["client_id"], challenge)
    code = await code_for(client, params, account["username"], PASSWORD)
    without = await exchange(client, code, verifier, app["client_id"])
    assert without.status_code == 401
    with_secret = await exchange(
        client, code, verifier, app["client_id"], client_secret=app["client_secret"]
    )
    assert with_secret.status_code == 200, with_secret.text


async def test_the_login_is_audited_with_the_client(client: httpx.AsyncClient) -> None:
    app = await _app(client)
    account = await signup(client)
    verifier, challenge = pkce()
    code = await code_for(
        client, authorize_params(app["client_id"], challenge), account["username"], PASSWORD
    )
    await exchange(client, code, verifier, app["client_id"])
    audit = await client.get(
        "/audit", params={"actor": account["id"]}, headers=await admin_headers(client)
    )
    entries = {e["action"]: e for e in audit.json()["items"]}
    assert entries["auth.sign_in"]["detail"]["client_id"] == app["client_id"]
    assert entries["auth.login"]["detail"]["client_id"] == app["client_id"]


async def test_swagger_redirect_uri_of_the_builtin_client_is_accepted(
    client: httpx.AsyncClient,
) -> None:
    metadata = (await client.get("/.well-known/oauth-authorization-server")).json()
    _, challenge = pkce()
    for base in (metadata["issuer"].rstrip("/"), "http://127.0.0.1:8000"):
        params = authorize_params(
            "gatehouse", challenge, redirect_uri=f"{base}/docs/oauth2-redirect"
        )
        page = await client.get("/oauth/authorize", params=params)
        assert page.status_code == 200, page.text
        assert form_to(page.text, "/oauth/authorize")["request"]


@pytest.mark.parametrize("path", ["oauth-authorization-server", "openid-configuration"])
async def test_discovery_documents_describe_the_code_flow(
    client: httpx.AsyncClient, path: str
) -> None:
    document = (await client.get(f"/.well-known/{path}")).json()
    issuer = document["issuer"].rstrip("/")
    assert document["authorization_endpoint"] == f"{issuer}/oauth/authorize"
    assert document["userinfo_endpoint"] == f"{issuer}/oauth/userinfo"
    assert document["code_challenge_methods_supported"] == ["S256"]
    assert document["response_types_supported"] == ["code"]
    assert document["authorization_response_iss_parameter_supported"] is True
    assert "authorization_code" in document["grant_types_supported"]
    assert document["id_token_signing_alg_values_supported"] == ["RS256"]
    assert document["subject_types_supported"] == ["public"]
    for key in ("token_endpoint", "revocation_endpoint", "introspection_endpoint", "jwks_uri"):
        assert document[key].startswith(issuer)
    assert {"openid", "profile", "email", "me:read"} <= set(document["scopes_supported"])


async def test_the_sign_in_page_is_accessible_html(client: httpx.AsyncClient) -> None:
    app = await _app(client)
    _, challenge = pkce()
    page = await client.get(
        "/oauth/authorize", params=authorize_params(app["client_id"], challenge)
    )
    assert page.headers["content-type"].startswith("text/html")
    html = page.text
    assert '<html lang="en">' in html
    assert 'label for="username"' in html and 'label for="password"' in html
    assert 'autocomplete="username"' in html
    assert 'autocomplete="current-password"' in html
    assert '<button type="submit">Sign in</button>' in html
    assert '<link rel="stylesheet" href="/oauth/static/gatehouse.css">' in html
    assert "<script" not in html
    css = await client.get("/oauth/static/gatehouse.css")
    assert css.status_code == 200
    assert css.headers["content-type"].startswith("text/css")
    assert ":focus-visible" in css.text


async def test_a_disabled_account_cannot_exchange_its_code(client: httpx.AsyncClient) -> None:
    app = await _app(client)
    account = await signup(client)
    verifier, challenge = pkce()
    code = await code_for(
        client, authorize_params(app["client_id"], challenge), account["username"], PASSWORD
    )
    headers = await admin_headers(client)
    disabled = await client.patch(
        f"/accounts/{account['id']}", json={"is_active": False}, headers=headers
    )
    assert disabled.status_code == 200
    response = await exchange(client, code, verifier, app["client_id"])
    assert response.json()["error"] == "invalid_grant"


async def test_the_code_is_opaque_and_not_stored(client: httpx.AsyncClient) -> None:
    from sqlalchemy import text

    from tests.conftest import app_state

    app = await _app(client)
    account = await signup(client)
    _, challenge = pkce()
    code = await code_for(
        client, authorize_params(app["client_id"], challenge), account["username"], PASSWORD
    )
    async with app_state(client).sessionmaker() as db:
        stored = (await db.execute(text("SELECT code_hash FROM authorization_code"))).all()
    assert len(code) >= 43
    assert all(code not in row[0] for row in stored)
    assert len(stored) == 1


async def test_refresh_token_of_the_code_flow_works_only_for_its_client(
    client: httpx.AsyncClient,
) -> None:
    app = await _app(client)
    account = await signup(client)
    verifier, challenge = pkce()
    code = await code_for(
        client, authorize_params(app["client_id"], challenge), account["username"], PASSWORD
    )
    tokens = (await exchange(client, code, verifier, app["client_id"])).json()
    response = await refresh(client, tokens["refresh_token"])  # as the gatehouse client
    assert response.json()["error"] == "invalid_grant"


async def test_an_es256_service_signs_id_tokens_with_es256(make_client: Any) -> None:
    async with make_client(signing_algorithm="ES256") as client:
        app = await _app(client)
        account = await signup(client)
        verifier, challenge = pkce()
        params = authorize_params(app["client_id"], challenge, scope="openid")
        code = await code_for(client, params, account["username"], PASSWORD)
        tokens = (await exchange(client, code, verifier, app["client_id"])).json()
        jwks = (await client.get("/.well-known/jwks.json")).json()
        claims = _verified_id_token(jwks, tokens["id_token"], app["client_id"])
        assert pyjwt.get_unverified_header(tokens["id_token"])["alg"] == "ES256"
        assert claims["sub"] == account["id"]
        assert "nonce" not in claims
        document = (await client.get("/.well-known/openid-configuration")).json()
        assert document["id_token_signing_alg_values_supported"] == ["ES256"]
