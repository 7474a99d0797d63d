"""The key ring remembers tokens that verified (issue 15): the same text verifies
to the same claims without the signature check, but never past its expiry, never
after its key is retired, and never for a token that did not verify."""

from datetime import timedelta
from typing import Any

import httpx
import pytest
from jose import jwt as jose_jwt

from app.core.models import utcnow
from app.crypto import jwt as tokens
from app.crypto.jwt import TokenError
from app.signing_keys import service as keys_service
from tests.conftest import app_state
from tests.factories import admin_headers
from tests.signing_keys.keyset import set_retire_at

pytestmark = pytest.mark.usefixtures("restore_signing_keys")


def _access_token(headers: dict[str, str]) -> str:
    return headers["Authorization"].removeprefix("Bearer ")


def _counting(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Count the signature checks the key ring makes."""
    checked: list[str] = []
    verify = tokens.verify

    def counted(token: str, *args: Any, **kwargs: Any) -> dict[str, Any]:
        checked.append(token)
        return verify(token, *args, **kwargs)

    monkeypatch.setattr(tokens, "verify", counted)  # the module the key ring calls into
    return checked


async def test_a_token_presented_again_is_not_checked_again(
    client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    token = _access_token(await admin_headers(client))
    keyring = app_state(client).keyring
    checked = _counting(monkeypatch)
    first = await keyring.verify(token)
    second = await keyring.verify(token)
    assert first == second
    assert checked == [token]
    second["scope"] = "mutated"  # each caller gets its own copy
    assert (await keyring.verify(token))["scope"] == first["scope"]


async def test_a_remembered_token_is_refused_once_expired(
    client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    token = _access_token(await admin_headers(client))
    keyring = app_state(client).keyring
    claims = await keyring.verify(token)
    later = claims["exp"] + tokens.LEEWAY_SECONDS + 1
    # Our clock and python-jose's, both past the token's expiry.
    monkeypatch.setattr(tokens, "now", lambda: later)
    monkeypatch.setattr(jose_jwt, "timegm", lambda _: later)
    assert not tokens.unexpired(claims)
    checked = _counting(monkeypatch)
    with pytest.raises(TokenError):
        await keyring.verify(token)
    assert checked == [token]  # the memory did not answer; the full check refused


async def test_a_remembered_token_is_refused_once_its_key_is_retired(
    client: httpx.AsyncClient, database_url: str
) -> None:
    headers = await admin_headers(client)
    token = _access_token(headers)
    keyring = app_state(client).keyring
    await keyring.verify(token)
    await set_retire_at(database_url, keyring.signer.kid, utcnow() - timedelta(seconds=1))
    await keyring.reload()
    with pytest.raises(TokenError):
        await keyring.verify(token)
    assert (await client.get("/accounts/me", headers=headers)).status_code == 401


async def test_a_tampered_copy_of_a_remembered_token_is_still_checked(
    client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    token = _access_token(await admin_headers(client))
    keyring = app_state(client).keyring
    await keyring.verify(token)
    checked = _counting(monkeypatch)
    head, payload, signature = token.split(".")
    tampered = f"{head}.{payload}.{signature[:-2]}{'AA' if signature[-2:] != 'AA' else 'BB'}"
    with pytest.raises(TokenError):
        await keyring.verify(tampered)
    assert checked == [tampered]
    with pytest.raises(TokenError):  # and a failure is not remembered either
        await keyring.verify(tampered)
    assert checked == [tampered, tampered]


async def test_the_memory_is_bounded(
    client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(keys_service, "VERIFIED_CACHE_SIZE", 2)
    keyring = app_state(client).keyring
    signed = [
        keyring.sign(
            {**(await keyring.verify(_access_token(await admin_headers(client)))), "jti": f"j{i}"}
        )
        for i in range(4)
    ]
    for token in signed:
        await keyring.verify(token)
    checked = _counting(monkeypatch)
    await keyring.verify(signed[0])  # evicted: checked again
    await keyring.verify(signed[3])  # still remembered
    assert checked == [signed[0]]


async def test_a_revoked_session_is_refused_although_its_token_is_remembered(
    client: httpx.AsyncClient,
) -> None:
    headers = await admin_headers(client)
    assert (await client.get("/accounts/me", headers=headers)).status_code == 200
    assert (await client.post("/auth/logout", headers=headers)).status_code in (200, 204)
    assert (await client.get("/accounts/me", headers=headers)).status_code == 401
