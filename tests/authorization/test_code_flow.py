"""The authorization code flow with PKCE, end to end over HTTP."""

import httpx

from tests.authorization.flow import (
    authorize_params,
    code_for,
    exchange,
    pkce,
    register_app,
)
from tests.factories import PASSWORD, admin_headers, bearer, signup


async def test_sign_in_and_exchange_gives_a_session(client: httpx.AsyncClient) -> None:
    app = await register_app(client, await admin_headers(client))
    account = await signup(client)
    verifier, challenge = pkce()
    params = authorize_params(app["client_id"], challenge, scope="me:read")
    code = await code_for(client, params, account["username"], PASSWORD)
    response = await exchange(client, code, verifier, app["client_id"])
    assert response.status_code == 200, response.text
    tokens = response.json()
    assert tokens["scope"] == "me:read"
    assert "id_token" not in tokens
    me = await client.get("/accounts/me", headers=bearer(tokens["access_token"]))
    assert me.json()["username"] == account["username"]
