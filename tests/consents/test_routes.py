"""Consent for third-party clients: the page, Allow, Deny, remembered consents,
and withdrawing one under /accounts/me/consents."""

from typing import Any

import httpx

from tests.authorization.flow import (
    authorize_params,
    exchange,
    form_to,
    pkce,
    query_of,
    register_app,
    sign_in,
)
from tests.factories import PASSWORD, admin_headers, bearer, login, signup


async def _third_party(client: httpx.AsyncClient) -> dict[str, Any]:
    return await register_app(client, await admin_headers(client), first_party=False)


async def _consent_page(
    client: httpx.AsyncClient, app: dict[str, Any], username: str, scope: str
) -> tuple[httpx.Response, dict[str, str], str]:
    verifier, challenge = pkce()
    params = authorize_params(app["client_id"], challenge, scope=scope)
    page = await sign_in(client, params, username, PASSWORD)
    return page, params, verifier


async def _decide(client: httpx.AsyncClient, page: httpx.Response, decision: str) -> httpx.Response:
    fields = form_to(page.text, "/oauth/authorize") | {"decision": decision}
    return await client.post("/oauth/authorize", data=fields)


async def test_a_third_party_client_shows_the_scopes_with_descriptions(
    client: httpx.AsyncClient,
) -> None:
    app = await _third_party(client)
    account = await signup(client)
    page, _, _ = await _consent_page(client, app, account["username"], "openid me:read")
    assert page.status_code == 200
    assert "Read own account and own sessions" in page.text
    assert "OpenID Connect: an ID token" in page.text
    assert app["name"] in page.text
    assert '<button type="submit" name="decision" value="allow">Allow</button>' in page.text
    assert 'name="decision" value="deny"' in page.text
    assert page.headers["x-frame-options"] == "DENY"


async def test_allow_issues_the_code_and_is_audited(client: httpx.AsyncClient) -> None:
    app = await _third_party(client)
    account = await signup(client)
    page, params, verifier = await _consent_page(client, app, account["username"], "me:read")
    allowed = await _decide(client, page, "allow")
    assert allowed.status_code == 302
    query = query_of(allowed.headers["location"])
    assert query["state"] == params["state"]
    tokens = await exchange(client, query["code"], verifier, app["client_id"])
    assert tokens.json()["scope"] == "me:read"
    audit = await client.get(
        "/audit", params={"action": "consent.grant"}, headers=await admin_headers(client)
    )
    [entry] = audit.json()["items"]
    assert (entry["actor"], entry["target"]) == (account["id"], app["client_id"])


async def test_deny_redirects_with_access_denied(client: httpx.AsyncClient) -> None:
    app = await _third_party(client)
    account = await signup(client)
    page, params, _ = await _consent_page(client, app, account["username"], "me:read")
    denied = await _decide(client, page, "deny")
    query = query_of(denied.headers["location"])
    assert (query["error"], query["state"]) == ("access_denied", params["state"])
    assert "code" not in query
    own = await login(client, account["username"])
    consents = await client.get("/accounts/me/consents", headers=bearer(own["access_token"]))
    assert consents.json() == []


async def test_a_remembered_consent_skips_the_page_for_the_same_scopes(
    client: httpx.AsyncClient,
) -> None:
    app = await _third_party(client)
    account = await signup(client)
    page, _, _ = await _consent_page(client, app, account["username"], "openid me:read")
    await _decide(client, page, "allow")
    _, challenge = pkce()
    again = await client.get(
        "/oauth/authorize",
        params=authorize_params(app["client_id"], challenge, scope="me:read openid"),
    )
    assert again.status_code == 302
    assert "code" in query_of(again.headers["location"])
    wider = await client.get(
        "/oauth/authorize",
        params=authorize_params(app["client_id"], challenge, scope="openid me:read me:write"),
    )
    assert wider.status_code == 200
    assert "Change own password" in wider.text


async def test_prompt_consent_asks_again(client: httpx.AsyncClient) -> None:
    app = await _third_party(client)
    account = await signup(client)
    page, _, _ = await _consent_page(client, app, account["username"], "me:read")
    await _decide(client, page, "allow")
    _, challenge = pkce()
    again = await client.get(
        "/oauth/authorize",
        params=authorize_params(app["client_id"], challenge, scope="me:read", prompt="consent"),
    )
    assert again.status_code == 200
    assert 'value="allow"' in again.text


async def test_prompt_none_without_consent_is_consent_required(client: httpx.AsyncClient) -> None:
    app = await _third_party(client)
    account = await signup(client)
    page, _, _ = await _consent_page(client, app, account["username"], "me:read")
    assert page.status_code == 200  # signed in, consent not given yet
    _, challenge = pkce()
    response = await client.get(
        "/oauth/authorize",
        params=authorize_params(app["client_id"], challenge, scope="me:read", prompt="none"),
    )
    assert query_of(response.headers["location"])["error"] == "consent_required"


async def test_a_first_party_client_asks_no_consent(client: httpx.AsyncClient) -> None:
    app = await register_app(client, await admin_headers(client), first_party=True)
    account = await signup(client)
    page, _, _ = await _consent_page(client, app, account["username"], "me:read")
    assert page.status_code == 302


async def test_consents_are_listed_and_withdrawn(client: httpx.AsyncClient) -> None:
    app = await _third_party(client)
    account = await signup(client)
    page, _, verifier = await _consent_page(client, app, account["username"], "openid me:read")
    allowed = await _decide(client, page, "allow")
    code = query_of(allowed.headers["location"])["code"]
    through_app = (await exchange(client, code, verifier, app["client_id"])).json()
    own = await login(client, account["username"])
    headers = bearer(own["access_token"])

    listed = await client.get("/accounts/me/consents", headers=headers)
    assert listed.status_code == 200
    [consent] = listed.json()
    assert consent["client_id"] == app["client_id"]
    assert consent["client_name"] == app["name"]
    assert set(consent["scopes"]) == {"openid", "me:read"}

    withdrawn = await client.delete(f"/accounts/me/consents/{app['client_id']}", headers=headers)
    assert withdrawn.status_code == 204
    assert (await client.get("/accounts/me/consents", headers=headers)).json() == []
    # That client's session for the account ended; the account's own did not.
    ended = await client.get("/accounts/me", headers=bearer(through_app["access_token"]))
    assert ended.status_code == 401
    assert (await client.get("/accounts/me", headers=headers)).status_code == 200
    audit = await client.get(
        "/audit", params={"action": "consent.revoke"}, headers=await admin_headers(client)
    )
    [entry] = audit.json()["items"]
    assert (entry["actor"], entry["target"]) == (account["id"], app["client_id"])
    _, challenge = pkce()
    again = await client.get(
        "/oauth/authorize", params=authorize_params(app["client_id"], challenge, scope="me:read")
    )
    assert again.status_code == 200  # the consent page again


async def test_withdrawing_a_consent_that_does_not_exist_is_404(client: httpx.AsyncClient) -> None:
    account = await signup(client)
    own = await login(client, account["username"])
    response = await client.delete(
        "/accounts/me/consents/no-such-client", headers=bearer(own["access_token"])
    )
    assert response.status_code == 404


async def test_consent_routes_need_their_scopes(client: httpx.AsyncClient) -> None:
    account = await signup(client)
    reader = await login(client, account["username"], scope="me:read")
    denied = await client.delete(
        "/accounts/me/consents/anything", headers=bearer(reader["access_token"])
    )
    assert denied.status_code == 403
    assert (await client.get("/accounts/me/consents")).status_code == 401


async def test_a_decision_without_a_browser_session_shows_the_sign_in_form(
    client: httpx.AsyncClient,
) -> None:
    app = await _third_party(client)
    account = await signup(client)
    page, _, _ = await _consent_page(client, app, account["username"], "me:read")
    client.cookies.delete("gatehouse_session")
    response = await _decide(client, page, "allow")
    assert response.status_code == 200
    assert 'autocomplete="current-password"' in response.text
