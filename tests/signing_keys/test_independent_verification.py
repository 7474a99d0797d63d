"""Another library, knowing only the published JWKS, accepts Gatehouse's tokens.

PyJWT shares no code with python-jose, which Gatehouse signs with; what it
accepts here any resource server following RFC 7517/9068 will accept too.
"""

import json
from typing import Any

import httpx
import jwt
import pytest

from app.core.config import Settings
from tests.conftest import AppFactory, app_state
from tests.factories import create_user, login
from tests.signing_keys.forgery import b64url, claims_of

pytestmark = pytest.mark.usefixtures("restore_signing_keys")

ALGORITHMS = ["RS256", "ES256"]


async def _token_and_jwks(
    client: httpx.AsyncClient, scope: str | None = None
) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    account, issued = await create_user(client)
    if scope is not None:
        issued = await login(client, account["username"], scope=scope)
    jwks = (await client.get("/.well-known/jwks.json")).json()
    return account, issued, jwks


def _verify(
    token: str, jwks: dict[str, Any], settings: Settings
) -> tuple[dict[str, Any], dict[str, Any]]:
    """What a resource server does: pick the key by kid, pin its algorithm, check claims."""
    header = jwt.get_unverified_header(token)
    key = jwt.PyJWKSet.from_dict(jwks)[header["kid"]]
    claims = jwt.decode(
        token,
        key,
        algorithms=[key.algorithm_name],
        audience=settings.audience,
        issuer=settings.issuer,
        leeway=5,
        options={"require": ["exp", "iat", "iss", "aud", "sub", "jti"]},
    )
    return header, claims


@pytest.mark.parametrize("algorithm", ALGORITHMS)
async def test_pyjwt_verifies_an_access_token_with_the_published_jwks(
    make_client: AppFactory, algorithm: str
) -> None:
    async with make_client(signing_algorithm=algorithm) as client:
        account, issued, jwks = await _token_and_jwks(client)
        settings = app_state(client).settings
    header, claims = _verify(issued["access_token"], jwks, settings)
    assert header["alg"] == algorithm
    assert header["typ"] == "at+jwt"
    assert claims["sub"] == account["id"]
    assert (claims["iss"], claims["aud"]) == (settings.issuer, settings.audience)
    assert claims["exp"] - claims["iat"] == settings.access_token_ttl_seconds
    assert claims["exp"] - claims["iat"] == issued["expires_in"]


@pytest.mark.parametrize("algorithm", ALGORITHMS)
async def test_pyjwt_sees_exactly_the_granted_scopes(
    make_client: AppFactory, algorithm: str
) -> None:
    async with make_client(signing_algorithm=algorithm) as client:
        account, issued, jwks = await _token_and_jwks(client, scope="me:read")
        settings = app_state(client).settings
    header, claims = _verify(issued["access_token"], jwks, settings)
    assert claims["scope"] == issued["scope"] == "me:read"


@pytest.mark.parametrize("algorithm", ALGORITHMS)
async def test_pyjwt_rejects_the_token_for_another_audience(
    make_client: AppFactory, algorithm: str
) -> None:
    async with make_client(signing_algorithm=algorithm) as client:
        account, issued, jwks = await _token_and_jwks(client)
        settings = app_state(client).settings.model_copy(update={"audience": "someone-else"})
    with pytest.raises(jwt.InvalidAudienceError):
        _verify(issued["access_token"], jwks, settings)


@pytest.mark.parametrize("algorithm", ALGORITHMS)
async def test_pyjwt_rejects_the_token_once_it_has_expired(
    make_client: AppFactory, algorithm: str
) -> None:
    async with make_client(signing_algorithm=algorithm) as client:
        account, issued, jwks = await _token_and_jwks(client)
        settings = app_state(client).settings
    header = jwt.get_unverified_header(issued["access_token"])
    key = jwt.PyJWKSet.from_dict(jwks)[header["kid"]]
    # A negative leeway moves the verifier's clock just past `exp` (and so before `iat`).
    with pytest.raises(jwt.ExpiredSignatureError):
        jwt.decode(
            issued["access_token"],
            key,
            algorithms=[key.algorithm_name],
            audience=settings.audience,
            issuer=settings.issuer,
            leeway=-(settings.access_token_ttl_seconds + 1),
            options={"verify_iat": False},
        )


@pytest.mark.parametrize("algorithm", ALGORITHMS)
async def test_pyjwt_rejects_a_token_whose_claims_were_changed(
    make_client: AppFactory, algorithm: str
) -> None:
    async with make_client(signing_algorithm=algorithm) as client:
        account, issued, jwks = await _token_and_jwks(client, scope="me:read")
        settings = app_state(client).settings
    head, _, signature = issued["access_token"].split(".")
    claims = {**claims_of(issued["access_token"]), "scope": "me:read accounts:write"}
    forged = f"{head}.{b64url(json.dumps(claims).encode())}.{signature}"
    with pytest.raises(jwt.InvalidSignatureError):
        _verify(forged, jwks, settings)
