"""The attacks issue 14 names, each with the answer it must get: PKCE missing,
plain or wrong; code replay; redirect URI tricks; CSRF on the form; framing;
throttling through the form; a code of another client; an expired code."""

from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from app.core.models import utcnow
from tests.authorization.flow import (
    REDIRECT_URI,
    authorize_params,
    code_for,
    exchange,
    form_to,
    forms,
    pkce,
    query_of,
    register_app,
    sign_in,
)
from tests.conftest import app_state
from tests.factories import PASSWORD, admin_headers, bearer, signup


async def _app(client: httpx.AsyncClient, **body: Any) -> dict[str, Any]:
    return await register_app(client, await admin_headers(client), **body)


def _assert_error_redirect(response: httpx.Response, error: str, state: str) -> None:
    assert response.status_code == 302, response.text
    location = response.headers["location"]
    assert location.startswith(REDIRECT_URI + "?")
    query = query_of(location)
    assert query["error"] == error
    assert query["state"] == state
    assert query["iss"]
    assert query["error_description"]


def _assert_error_page(response: httpx.Response) -> None:
    assert response.status_code == 400, response.text
    assert "location" not in response.headers
    assert response.headers["content-type"].startswith("text/html")
    assert response.headers["x-frame-options"] == "DENY"


# --- PKCE ----------------------------------------------------------------------


async def test_a_request_without_a_code_challenge_is_refused(client: httpx.AsyncClient) -> None:
    app = await _app(client)
    params = authorize_params(app["client_id"], "unused")
    del params["code_challenge"], params["code_challenge_method"]
    response = await client.get("/oauth/authorize", params=params)
    _assert_error_redirect(response, "invalid_request", params["state"])


@pytest.mark.parametrize("method", ["plain", None, "s256", "S512"])
async def test_a_challenge_method_other_than_s256_is_refused(
    client: httpx.AsyncClient, method: str | None
) -> None:
    app = await _app(client)
    _, challenge = pkce()
    params = authorize_params(app["client_id"], challenge)
    if method is None:
        del params["code_challenge_method"]
    else:
        params["code_challenge_method"] = method
    response = await client.get("/oauth/authorize", params=params)
    _assert_error_redirect(response, "invalid_request", params["state"])


async def test_the_builtin_client_needs_pkce_too(client: httpx.AsyncClient) -> None:
    metadata = (await client.get("/.well-known/oauth-authorization-server")).json()
    uri = metadata["issuer"].rstrip("/") + "/docs/oauth2-redirect"
    params = authorize_params("gatehouse", "x", redirect_uri=uri)
    del params["code_challenge"]
    response = await client.get("/oauth/authorize", params=params)
    assert query_of(response.headers["location"])["error"] == "invalid_request"


@pytest.mark.parametrize("verifier", ["wrong", "", None, "a" * 43, "é" * 50])
async def test_a_wrong_or_missing_verifier_gets_no_tokens(
    client: httpx.AsyncClient, verifier: str | None
) -> None:
    app = await _app(client)
    account = await signup(client)
    right, challenge = pkce()
    code = await code_for(
        client, authorize_params(app["client_id"], challenge), account["username"], PASSWORD
    )
    data = {"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT_URI}
    data["client_id"] = app["client_id"]
    if verifier is not None:
        data["code_verifier"] = verifier
    response = await client.post("/auth/token", data=data)
    assert response.status_code == 400
    assert response.json()["error"] in {"invalid_grant", "invalid_request"}
    # The rightful client still can: a wrong guess does not burn the code.
    assert (await exchange(client, code, right, app["client_id"])).status_code == 200


async def test_the_challenge_itself_is_not_a_verifier(client: httpx.AsyncClient) -> None:
    app = await _app(client)
    account = await signup(client)
    _, challenge = pkce()
    code = await code_for(
        client, authorize_params(app["client_id"], challenge), account["username"], PASSWORD
    )
    response = await exchange(client, code, challenge, app["client_id"])
    assert response.json()["error"] == "invalid_grant"


# --- codes -----------------------------------------------------------------------


async def test_a_replayed_code_is_refused_and_ends_the_first_session(
    client: httpx.AsyncClient,
) -> None:
    app = await _app(client)
    account = await signup(client)
    verifier, challenge = pkce()
    code = await code_for(
        client, authorize_params(app["client_id"], challenge), account["username"], PASSWORD
    )
    first = await exchange(client, code, verifier, app["client_id"])
    assert first.status_code == 200
    access = first.json()["access_token"]
    assert (await client.get("/accounts/me", headers=bearer(access))).status_code == 200

    second = await exchange(client, code, verifier, app["client_id"])
    assert (second.status_code, second.json()["error"]) == (400, "invalid_grant")
    assert (await client.get("/accounts/me", headers=bearer(access))).status_code == 401
    refreshed = await client.post(
        "/auth/token",
        data={
            "grant_type": "refresh_token",
            "refresh_token": first.json()["refresh_token"],
            "client_id": app["client_id"],
        },
    )
    assert refreshed.json()["error"] == "invalid_grant"
    audit = await client.get(
        "/audit", params={"action": "auth.code_reuse"}, headers=await admin_headers(client)
    )
    [entry] = audit.json()["items"]
    assert entry["target"] == account["id"]
    assert entry["detail"]["client_id"] == app["client_id"]


async def test_a_code_of_another_client_is_refused(client: httpx.AsyncClient) -> None:
    headers = await admin_headers(client)
    mine = await register_app(client, headers)
    other = await register_app(client, headers)
    account = await signup(client)
    verifier, challenge = pkce()
    code = await code_for(
        client, authorize_params(mine["client_id"], challenge), account["username"], PASSWORD
    )
    stolen = await exchange(client, code, verifier, other["client_id"])
    assert stolen.json()["error"] == "invalid_grant"
    # Another client's attempt neither uses nor burns the rightful client's code.
    assert (await exchange(client, code, verifier, mine["client_id"])).status_code == 200


async def test_an_expired_code_is_refused(client: httpx.AsyncClient) -> None:
    app = await _app(client)
    account = await signup(client)
    verifier, challenge = pkce()
    code = await code_for(
        client, authorize_params(app["client_id"], challenge), account["username"], PASSWORD
    )
    past = utcnow() - timedelta(seconds=1)
    async with app_state(client).sessionmaker() as db, db.begin():
        if db.get_bind().dialect.name == "sqlite":
            past = past.replace(tzinfo=None)
        await db.execute(text("UPDATE authorization_code SET expires_at = :t"), {"t": past})
    response = await exchange(client, code, verifier, app["client_id"])
    assert response.json()["error"] == "invalid_grant"


async def test_a_code_lives_sixty_seconds(client: httpx.AsyncClient) -> None:
    app = await _app(client)
    account = await signup(client)
    _, challenge = pkce()
    await code_for(
        client, authorize_params(app["client_id"], challenge), account["username"], PASSWORD
    )
    async with app_state(client).sessionmaker() as db:
        created, expires = (
            await db.execute(text("SELECT created_at, expires_at FROM authorization_code"))
        ).one()
    if isinstance(created, str):  # SQLite through a text query
        from datetime import datetime

        created, expires = datetime.fromisoformat(created), datetime.fromisoformat(expires)
    assert expires - created == timedelta(seconds=60)


async def test_the_redirect_uri_at_the_exchange_must_match(client: httpx.AsyncClient) -> None:
    other = "https://app.example/other"
    app = await _app(client, redirect_uris=[REDIRECT_URI, other])
    account = await signup(client)
    verifier, challenge = pkce()
    code = await code_for(
        client, authorize_params(app["client_id"], challenge), account["username"], PASSWORD
    )
    for uri in (other, None, REDIRECT_URI + "/"):
        response = await exchange(client, code, verifier, app["client_id"], redirect_uri=uri)
        assert response.json()["error"] == "invalid_grant"
    assert (await exchange(client, code, verifier, app["client_id"])).status_code == 200


async def test_an_unknown_code_is_invalid_grant(client: httpx.AsyncClient) -> None:
    app = await _app(client)
    verifier, _ = pkce()
    response = await exchange(client, "no-such-code", verifier, app["client_id"])
    assert (response.status_code, response.json()["error"]) == (400, "invalid_grant")


async def test_a_client_without_the_code_grant_is_unauthorized_client(
    client: httpx.AsyncClient,
) -> None:
    headers = await admin_headers(client)
    app = await register_app(client, headers, grant_types=["refresh_token"])
    _, challenge = pkce()
    params = authorize_params(app["client_id"], challenge)
    response = await client.get("/oauth/authorize", params=params)
    _assert_error_redirect(response, "unauthorized_client", params["state"])


# --- the authorization request ------------------------------------------------------


@pytest.mark.parametrize(
    "given",
    [
        "https://app.example/callbackx",  # prefix
        "https://app.example/callback/extra",  # extra path
        "https://app.example/callback?x=1",  # query
        "https://app.example/callback#frag",  # fragment
        "https://evil.example@app.example/callback",  # user@host
        "https://app.example@evil.example/callback",
        "https://app.example/callback/../callback",
        "https://app.example/%2E%2E/callback",  # encoded dots
        "https://app.example/callback%2F..%2F",
        "https://app.example:8443/callback",  # another port, not loopback
        "https://APP.example/callback",
        "http://app.example/callback",
        "https://app.example.evil.example/callback",
        "https://app.example/Callback",
        " https://app.example/callback",
        "",
    ],
)
async def test_a_redirect_uri_trick_gets_the_error_page(
    client: httpx.AsyncClient, given: str
) -> None:
    app = await _app(client)
    _, challenge = pkce()
    params = authorize_params(app["client_id"], challenge, redirect_uri=given)
    _assert_error_page(await client.get("/oauth/authorize", params=params))


@pytest.mark.parametrize(
    "given",
    [
        "http://127.0.0.1:9999/cb/extra",
        "http://127.0.0.1:9999/cb?x=1",
        "http://localhost:9999/cb",  # another loopback name is another URI
        "http://evil@127.0.0.1:9999/cb",
        "https://127.0.0.1:9999/cb",
        "http://127.0.0.1:99x/cb",
    ],
)
async def test_loopback_tolerates_the_port_and_nothing_else(
    client: httpx.AsyncClient, given: str
) -> None:
    app = await _app(client, redirect_uris=["http://127.0.0.1:8080/cb"])
    _, challenge = pkce()
    params = authorize_params(app["client_id"], challenge, redirect_uri=given)
    _assert_error_page(await client.get("/oauth/authorize", params=params))


async def test_an_unknown_client_gets_the_error_page(client: httpx.AsyncClient) -> None:
    _, challenge = pkce()
    for client_id in ("no-such-client", "", "x" * 500):
        params = authorize_params(client_id, challenge)
        _assert_error_page(await client.get("/oauth/authorize", params=params))


async def test_a_disabled_client_gets_the_error_page(client: httpx.AsyncClient) -> None:
    headers = await admin_headers(client)
    app = await register_app(client, headers)
    await client.patch(f"/clients/{app['client_id']}", json={"is_active": False}, headers=headers)
    _, challenge = pkce()
    params = authorize_params(app["client_id"], challenge)
    _assert_error_page(await client.get("/oauth/authorize", params=params))


async def test_duplicated_client_id_or_redirect_uri_gets_the_error_page(
    client: httpx.AsyncClient,
) -> None:
    app = await _app(client)
    _, challenge = pkce()
    params = list(authorize_params(app["client_id"], challenge).items())
    for name in ("client_id", "redirect_uri"):
        value = dict(params)[name]
        response = await client.get("/oauth/authorize", params=[*params, (name, value)])
        _assert_error_page(response)


async def test_a_missing_redirect_uri_with_several_registered_gets_the_error_page(
    client: httpx.AsyncClient,
) -> None:
    app = await _app(client, redirect_uris=[REDIRECT_URI, "https://app.example/two"])
    _, challenge = pkce()
    params = authorize_params(app["client_id"], challenge, redirect_uri=None)
    _assert_error_page(await client.get("/oauth/authorize", params=params))


@pytest.mark.parametrize(
    ("change", "error"),
    [
        ({"response_type": "token"}, "unsupported_response_type"),
        ({"response_type": None}, "unsupported_response_type"),
        ({"scope": "no:such-scope"}, "invalid_scope"),
        ({"prompt": "none login"}, "invalid_request"),
        ({"prompt": "select_account"}, "invalid_request"),
        ({"code_challenge": "short"}, "invalid_request"),
        ({"nonce": "n" * 5000}, "invalid_request"),
    ],
)
async def test_other_errors_redirect_with_state_and_iss(
    client: httpx.AsyncClient, change: dict[str, str | None], error: str
) -> None:
    app = await _app(client)
    _, challenge = pkce()
    params = authorize_params(app["client_id"], challenge)
    for name, value in change.items():
        if value is None:
            params.pop(name)
        else:
            params[name] = value
    response = await client.get("/oauth/authorize", params=params)
    _assert_error_redirect(response, error, params["state"])


async def test_a_parameter_sent_twice_is_invalid_request(client: httpx.AsyncClient) -> None:
    app = await _app(client)
    _, challenge = pkce()
    params = authorize_params(app["client_id"], challenge, scope="me:read")
    response = await client.get("/oauth/authorize", params=[*params.items(), ("scope", "me:write")])
    _assert_error_redirect(response, "invalid_request", params["state"])


# --- CSRF, framing ---------------------------------------------------------------------


async def _sign_in_fields(client: httpx.AsyncClient, app: dict[str, Any]) -> dict[str, str]:
    _, challenge = pkce()
    page = await client.get(
        "/oauth/authorize", params=authorize_params(app["client_id"], challenge)
    )
    return form_to(page.text, "/oauth/authorize")


async def test_a_post_without_a_csrf_token_is_refused(client: httpx.AsyncClient) -> None:
    app = await _app(client)
    account = await signup(client)
    fields = await _sign_in_fields(client, app)
    del fields["csrf_token"]
    fields |= {"username": account["username"], "password": PASSWORD}
    response = await client.post("/oauth/authorize", data=fields)
    _assert_error_page(response)
    assert "gatehouse_session" not in response.headers.get("set-cookie", "")


async def test_another_browsers_csrf_token_is_refused(make_client: Any) -> None:
    async with make_client() as browser, make_client() as attacker:
        app = await _app(browser)
        account = await signup(browser)
        victim_fields = await _sign_in_fields(browser, app)
        attacker_fields = await _sign_in_fields(attacker, app)
        assert attacker_fields["csrf_token"] != victim_fields["csrf_token"]
        forged = victim_fields | {
            "csrf_token": attacker_fields["csrf_token"],
            "username": account["username"],
            "password": PASSWORD,
        }
        response = await browser.post("/oauth/authorize", data=forged)
        _assert_error_page(response)


async def test_a_post_without_the_csrf_cookie_is_refused(make_client: Any) -> None:
    async with make_client() as browser, make_client() as fresh:
        app = await _app(browser)
        account = await signup(browser)
        fields = await _sign_in_fields(browser, app)
        fields |= {"username": account["username"], "password": PASSWORD}
        _assert_error_page(await fresh.post("/oauth/authorize", data=fields))


async def test_logout_without_a_csrf_token_is_refused(client: httpx.AsyncClient) -> None:
    app = await _app(client)
    account = await signup(client)
    _, challenge = pkce()
    await code_for(
        client, authorize_params(app["client_id"], challenge), account["username"], PASSWORD
    )
    response = await client.post("/oauth/logout", data={})
    _assert_error_page(response)
    again = await client.get(
        "/oauth/authorize", params=authorize_params(app["client_id"], challenge)
    )
    assert again.status_code == 302  # still signed in


async def test_pages_cannot_be_framed_nor_load_foreign_assets(client: httpx.AsyncClient) -> None:
    app = await _app(client)
    _, challenge = pkce()
    pages = [
        await client.get("/oauth/authorize", params=authorize_params(app["client_id"], challenge)),
        await client.get("/oauth/authorize", params={"client_id": "nope"}),
        await client.get("/oauth/signed-out"),
    ]
    for page in pages:
        csp = page.headers["content-security-policy"]
        directives = {d.split()[0]: d.split()[1:] for d in csp.split("; ")}
        assert directives["frame-ancestors"] == ["'none'"]
        assert directives["default-src"] == ["'none'"]
        assert directives["style-src"] == ["'self'"]
        assert "'self'" in directives["form-action"]
        assert "script-src" not in directives
        assert page.headers["x-frame-options"] == "DENY"
        assert page.headers["cache-control"] == "no-store"
    form_action = pages[0].headers["content-security-policy"].split("form-action ")[1]
    assert "https://app.example" in form_action.split(";")[0]


# --- the sign-in form ------------------------------------------------------------------


async def test_wrong_password_and_unknown_user_read_the_same(client: httpx.AsyncClient) -> None:
    app = await _app(client)
    account = await signup(client)
    _, challenge = pkce()
    params = authorize_params(app["client_id"], challenge) | {"state": "fixed"}
    wrong = await sign_in(client, params, account["username"], "not the password")
    unknown = await sign_in(client, params, "nobody_" + account["username"], "whatever pw")
    for response in (wrong, unknown):
        assert response.status_code == 200
        assert forms(response.text).alerts == ["Incorrect username or password."]
        assert "location" not in response.headers
    assert "gatehouse_session" not in wrong.headers.get("set-cookie", "")


async def test_a_disabled_accounts_right_password_reads_as_wrong(
    client: httpx.AsyncClient,
) -> None:
    headers = await admin_headers(client)
    app = await register_app(client, headers)
    account = await signup(client)
    await client.patch(f"/accounts/{account['id']}", json={"is_active": False}, headers=headers)
    _, challenge = pkce()
    response = await sign_in(
        client, authorize_params(app["client_id"], challenge), account["username"], PASSWORD
    )
    assert forms(response.text).alerts == ["Incorrect username or password."]


async def test_failed_sign_ins_are_audited(client: httpx.AsyncClient) -> None:
    app = await _app(client)
    account = await signup(client)
    _, challenge = pkce()
    await sign_in(client, authorize_params(app["client_id"], challenge), account["username"], "x")
    audit = await client.get(
        "/audit", params={"action": "auth.login_failed"}, headers=await admin_headers(client)
    )
    assert [e["target"] for e in audit.json()["items"]] == [account["id"]]


async def test_throttling_through_the_form_locks_the_account_as_the_token_endpoint_does(
    make_client: Any,
) -> None:
    async with make_client(login_max_failures=3) as client:
        app = await _app(client)
        account = await signup(client)
        _, challenge = pkce()
        params = authorize_params(app["client_id"], challenge)
        for _ in range(3):
            failed = await sign_in(client, params, account["username"], "wrong password")
            assert failed.status_code == 200
        locked = await sign_in(client, params, account["username"], PASSWORD)
        assert locked.status_code == 429
        assert int(locked.headers["retry-after"]) > 0
        assert "location" not in locked.headers
        token = await client.post(
            "/auth/token",
            data={"grant_type": "password", "username": account["username"], "password": PASSWORD},
        )
        assert token.status_code == 429


async def test_failures_at_the_token_endpoint_lock_the_form_too(make_client: Any) -> None:
    async with make_client(login_max_failures=2) as client:
        app = await _app(client)
        account = await signup(client)
        for _ in range(2):
            response = await client.post(
                "/auth/token",
                data={
                    "grant_type": "password",
                    "username": account["username"],
                    "password": "wrong password",
                },
            )
            assert response.status_code == 400
        _, challenge = pkce()
        locked = await sign_in(
            client, authorize_params(app["client_id"], challenge), account["username"], PASSWORD
        )
        assert locked.status_code == 429


@pytest.mark.parametrize(
    "fields",
    [
        {"request": "client_id=nope"},
        {"request": ""},
        {"request": "%%%"},
        {"decision": "maybe"},
        {"username": "\x00", "password": "x"},
    ],
)
async def test_odd_form_posts_never_fail_the_server(
    client: httpx.AsyncClient, fields: dict[str, str]
) -> None:
    app = await _app(client)
    base = await _sign_in_fields(client, app)
    response = await client.post("/oauth/authorize", data=base | fields)
    assert response.status_code in {200, 302, 400}
    assert response.headers["content-type"].startswith("text/html") or (response.status_code == 302)


async def test_racing_exchanges_of_one_code_give_one_session(client: httpx.AsyncClient) -> None:
    import asyncio

    app = await _app(client)
    account = await signup(client)
    verifier, challenge = pkce()
    code = await code_for(
        client, authorize_params(app["client_id"], challenge), account["username"], PASSWORD
    )
    answers = await asyncio.gather(
        *(exchange(client, code, verifier, app["client_id"]) for _ in range(4))
    )
    statuses = sorted(a.status_code for a in answers)
    assert statuses == [200, 400, 400, 400]
    # Whichever came after the winner counted as a reuse: the session ended.
    [won] = [a for a in answers if a.status_code == 200]
    me = await client.get("/accounts/me", headers=bearer(won.json()["access_token"]))
    assert me.status_code == 401
