"""The key ring: keys encrypted at rest, parsed once, reloaded on unknown `kid`
at a bounded rate, and every supported algorithm signing and verifying end to end."""

import asyncio
import logging
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import load_pem_private_key
from sqlalchemy.ext.asyncio import create_async_engine

from app.core.db import create_sessionmaker
from app.core.models import utcnow
from app.crypto import jwt as tokens
from app.crypto.jwt import TokenError
from app.crypto.sealing import decrypt_private_key
from app.signing_keys.service import KeyRing, create_key
from tests.conftest import TEST_SECRET, AppFactory, app_state, make_settings
from tests.factories import bearer, create_user
from tests.signing_keys.forgery import b64decode, b64url, claims_of, header_of, hs256_token
from tests.signing_keys.keyset import set_retire_at, stored_key

pytestmark = pytest.mark.usefixtures("restore_signing_keys")

OTHER_SECRET = "another-secret-" + "Zq8Wm3Lp" * 5


async def test_stored_private_key_is_ciphertext_not_pem(
    client: httpx.AsyncClient, database_url: str
) -> None:
    row = await stored_key(database_url, app_state(client).keyring.signer.kid)
    assert row.private_key.startswith("v1.")
    assert "PRIVATE KEY" not in row.private_key
    assert "-----BEGIN" not in row.private_key


async def test_stored_private_key_decrypts_to_the_signing_key_with_the_right_secret(
    client: httpx.AsyncClient, database_url: str
) -> None:
    signer = app_state(client).keyring.signer
    row = await stored_key(database_url, signer.kid)
    pem = decrypt_private_key(TEST_SECRET.encode(), signer.kid, row.private_key)
    assert pem.startswith(b"-----BEGIN PRIVATE KEY-----")
    reloaded = tokens.load_key(signer.kid, signer.alg, pem.decode())
    assert reloaded.public_jwk == signer.public_jwk
    private = load_pem_private_key(pem, password=None)
    assert isinstance(private, rsa.RSAPrivateKey) and private.key_size == 2048


async def test_stored_private_key_does_not_decrypt_with_another_secret(
    client: httpx.AsyncClient, database_url: str
) -> None:
    kid = app_state(client).keyring.signer.kid
    row = await stored_key(database_url, kid)
    with pytest.raises(InvalidTag):
        decrypt_private_key(OTHER_SECRET.encode(), kid, row.private_key)


async def test_stored_private_key_is_bound_to_its_kid(
    client: httpx.AsyncClient, database_url: str
) -> None:
    kid = app_state(client).keyring.signer.kid
    row = await stored_key(database_url, kid)
    with pytest.raises(InvalidTag):
        decrypt_private_key(TEST_SECRET.encode(), "another-kid", row.private_key)


async def test_keyring_with_another_secret_logs_and_skips_the_key(
    client: httpx.AsyncClient, database_url: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    kid = app_state(client).keyring.signer.kid
    engine = create_async_engine(database_url)
    ring = KeyRing(
        make_settings(database_url, tmp_path, secret_key=OTHER_SECRET), create_sessionmaker(engine)
    )
    try:
        with caplog.at_level(logging.ERROR, logger="gatehouse.keys"):
            await ring.reload()
    finally:
        await engine.dispose()
    assert kid not in {k["kid"] for k in ring.public_jwks()["keys"]}
    assert any(kid in r.getMessage() for r in caplog.records if r.levelno == logging.ERROR)
    account, issued = await create_user(client)
    with pytest.raises(TokenError):
        await ring.verify(issued["access_token"])


async def test_instance_keeps_signing_when_the_newest_key_is_sealed_with_another_secret(
    client: httpx.AsyncClient, database_url: str, tmp_path: Path
) -> None:
    # e.g. a rotation run with the wrong GATEHOUSE_SECRET_KEY
    ring = app_state(client).keyring
    async with app_state(client).sessionmaker() as session, session.begin():
        await create_key(session, make_settings(database_url, tmp_path, secret_key=OTHER_SECRET))
    await ring.reload()
    account, issued = await create_user(client)
    response = await client.get("/accounts/me", headers=bearer(issued["access_token"]))
    assert response.status_code == 200


async def test_reload_does_not_parse_known_keys_again(
    client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    ring = app_state(client).keyring
    signer = ring.signer
    parsed: list[str] = []
    real_load_key = tokens.load_key

    def counting_load_key(kid: str, alg: str, material: str | bytes) -> tokens.KeyPair:
        parsed.append(kid)
        return real_load_key(kid, alg, material)

    monkeypatch.setattr(tokens, "load_key", counting_load_key)
    await ring.reload()
    await ring.reload()
    assert ring.signer is signer
    assert signer.kid not in parsed


async def test_flood_of_unknown_kids_reloads_the_key_set_at_most_once_per_interval(
    make_client: AppFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with make_client(key_reload_min_interval_seconds=1.0) as client:
        ring = app_state(client).keyring
        reloads = 0
        real_reload = ring.reload

        async def counting_reload() -> None:
            nonlocal reloads
            reloads += 1
            await real_reload()

        monkeypatch.setattr(ring, "reload", counting_reload)
        await asyncio.sleep(1.1)  # past the interval since the start-up load
        account, issued = await create_user(client)
        claims = claims_of(issued["access_token"])
        forged = [
            hs256_token({"alg": "HS256", "typ": "at+jwt", "kid": f"made-up-{i}"}, claims, b"k")
            for i in range(40)
        ]
        responses = await asyncio.gather(
            *(client.get("/accounts/me", headers=bearer(t)) for t in forged)
        )
        responses += [await client.get("/accounts/me", headers=bearer(t)) for t in forged]
    assert {r.status_code for r in responses} == {401}
    assert reloads == 1


@pytest.mark.parametrize(("algorithm", "kty"), [("RS256", "RSA"), ("ES256", "EC"), ("HS256", None)])
async def test_each_algorithm_signs_tokens_that_the_service_accepts(
    make_client: AppFactory, algorithm: str, kty: str | None
) -> None:
    async with make_client(signing_algorithm=algorithm) as client:
        signer = app_state(client).keyring.signer
        account, issued = await create_user(client)
        response = await client.get("/accounts/me", headers=bearer(issued["access_token"]))
    header = header_of(issued["access_token"])
    assert (header["alg"], header["kid"], header["typ"]) == (algorithm, signer.kid, "at+jwt")
    assert signer.alg == algorithm
    assert (signer.public_jwk or {}).get("kty") == kty
    assert response.status_code == 200
    assert response.json()["id"] == account["id"]


@pytest.mark.parametrize("algorithm", ["RS256", "ES256", "HS256"])
async def test_each_algorithm_rejects_a_token_with_a_tampered_signature(
    make_client: AppFactory, algorithm: str
) -> None:
    async with make_client(signing_algorithm=algorithm) as client:
        account, issued = await create_user(client)
        head, body, signature = issued["access_token"].split(".")
        raw = bytearray(b64decode(signature))
        raw[0] ^= 1
        response = await client.get(
            "/accounts/me", headers=bearer(f"{head}.{body}.{b64url(bytes(raw))}")
        )
    assert response.status_code == 401
    assert 'error="invalid_token"' in response.headers["www-authenticate"]


async def test_hs256_secret_is_never_published(make_client: AppFactory) -> None:
    async with make_client(signing_algorithm="HS256") as client:
        kid = app_state(client).keyring.signer.kid
        keys = (await client.get("/.well-known/jwks.json")).json()["keys"]
    assert kid not in {k["kid"] for k in keys}
    assert all(k["kty"] != "oct" and "k" not in k for k in keys)


async def test_jwks_is_empty_when_only_hs256_keys_are_live(
    make_client: AppFactory, database_url: str
) -> None:
    async with make_client(signing_algorithm="HS256") as client:
        ring = app_state(client).keyring
        for key in ring.public_jwks()["keys"]:  # asymmetric keys still retiring
            await set_retire_at(database_url, key["kid"], utcnow() - timedelta(seconds=1))
        await ring.reload()
        response = await client.get("/.well-known/jwks.json")
        account, issued = await create_user(client)
        me = await client.get("/accounts/me", headers=bearer(issued["access_token"]))
    assert response.status_code == 200
    assert response.json() == {"keys": []}
    assert me.status_code == 200
