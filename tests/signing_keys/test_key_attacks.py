"""Tokens built to fool the verifier: algorithm confusion, hostile `kid`s, and
headers that point at outside keys. Each gets 401 `invalid_token`, never 500,
and the service never fetches anything."""

import asyncio
import base64
import json
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import httpx
import jwt
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from app.core.models import utcnow
from tests.conftest import AppFactory
from tests.factories import bearer, create_user
from tests.signing_keys.forgery import (
    b64url,
    claims_of,
    header_of,
    hs256_token,
    signed_with_real_key,
)
from tests.signing_keys.keyset import private_pem

pytestmark = pytest.mark.usefixtures("restore_signing_keys")


def assert_invalid_token(response: httpx.Response) -> None:
    assert response.status_code == 401, response.text
    assert 'error="invalid_token"' in response.headers["www-authenticate"]
    assert set(response.json()) == {"detail"}


async def real_token(client: httpx.AsyncClient) -> str:
    account, issued = await create_user(client)
    token: str = issued["access_token"]
    return token


def public_key_forms(jwk: dict[str, Any]) -> dict[str, bytes]:
    """The published key as an attacker might feed it to HMAC."""
    public = jwt.PyJWK(jwk).key
    spki = serialization.PublicFormat.SubjectPublicKeyInfo
    return {
        "pem": public.public_bytes(serialization.Encoding.PEM, spki),
        "pem-without-newline": public.public_bytes(serialization.Encoding.PEM, spki).strip(),
        "der": public.public_bytes(serialization.Encoding.DER, spki),
        "jwk-json": json.dumps(jwk).encode(),
        "jwk-json-compact": json.dumps(jwk, separators=(",", ":"), sort_keys=True).encode(),
    }


# Controls: the forging tools make tokens the service accepts when given the real key,
# so the 401s below come from the defence, not from a broken forgery.


async def test_control_hmac_forgery_with_the_real_hs256_secret_is_accepted(
    make_client: AppFactory, database_url: str
) -> None:
    async with make_client(signing_algorithm="HS256") as client:
        token = await real_token(client)
        secret = await private_pem(database_url, header_of(token)["kid"])
        forged = hs256_token(header_of(token), claims_of(token), secret)
        response = await client.get("/accounts/me", headers=bearer(forged))
    assert response.status_code == 200


async def test_control_token_re_signed_with_the_real_key_is_accepted(
    client: httpx.AsyncClient, database_url: str
) -> None:
    token = await signed_with_real_key(database_url, await real_token(client), extra_header={})
    response = await client.get("/accounts/me", headers=bearer(token))
    assert response.status_code == 200


@pytest.mark.parametrize("algorithm", ["RS256", "ES256"])
@pytest.mark.parametrize(
    "form", ["pem", "pem-without-newline", "der", "jwk-json", "jwk-json-compact"]
)
async def test_hs256_token_keyed_with_the_published_public_key_is_rejected(
    make_client: AppFactory, algorithm: str, form: str
) -> None:
    async with make_client(signing_algorithm=algorithm) as client:
        token = await real_token(client)
        kid = header_of(token)["kid"]
        jwks = (await client.get("/.well-known/jwks.json")).json()
        jwk = next(k for k in jwks["keys"] if k["kid"] == kid)
        key = public_key_forms(jwk)[form]
        forged = hs256_token({"alg": "HS256", "typ": "at+jwt", "kid": kid}, claims_of(token), key)
        response = await client.get("/accounts/me", headers=bearer(forged))
    assert_invalid_token(response)


@pytest.mark.parametrize("algorithm", ["RS384", "RS512", "PS256"])
async def test_real_key_used_with_another_algorithm_is_rejected(
    client: httpx.AsyncClient, database_url: str, algorithm: str
) -> None:
    token = await real_token(client)
    header = header_of(token)
    pem = await private_pem(database_url, header["kid"])
    other = jwt.encode(
        claims_of(token), pem, algorithm=algorithm, headers={"kid": header["kid"], "typ": "at+jwt"}
    )
    response = await client.get("/accounts/me", headers=bearer(other))
    assert_invalid_token(response)


async def test_unsigned_token_is_rejected(client: httpx.AsyncClient) -> None:
    token = await real_token(client)
    header = {**header_of(token), "alg": "none"}
    unsigned = f"{b64url(json.dumps(header).encode())}.{token.split('.')[1]}."
    response = await client.get("/accounts/me", headers=bearer(unsigned))
    assert_invalid_token(response)


@pytest.mark.parametrize("typ", ["JWT", "id_token+jwt", None])
async def test_token_of_another_type_signed_by_the_real_key_is_rejected(
    client: httpx.AsyncClient, database_url: str, typ: str | None
) -> None:
    # RFC 9068 §4: `typ` keeps other JWTs from the same issuer from passing as access tokens
    token = await real_token(client)
    header = header_of(token)
    pem = await private_pem(database_url, header["kid"])
    headers = {"kid": header["kid"]} if typ is None else {"kid": header["kid"], "typ": typ}
    other = jwt.encode(claims_of(token), pem, algorithm=header["alg"], headers=headers)
    if typ is None:
        assert "typ" in jwt.get_unverified_header(other)  # PyJWT adds "JWT" itself
    response = await client.get("/accounts/me", headers=bearer(other))
    assert_invalid_token(response)


HOSTILE_KIDS = {
    "unknown": "no-such-key",
    "empty": "",
    "path-traversal": "../../etc/passwd",
    "absolute-path": "/dev/zero",
    "sql": "' OR 1=1 --",
    "sql-union": "x' UNION SELECT private_key FROM signing_key --",
    "nul-byte": "abc\x00def",
    "long-5kb": "k" * 5_000,
    "long-10kb": "k" * 10_240,
    "integer": 123,
    "null": None,
    "list": ["a"],
    "object": {"$ne": ""},
    "boolean": True,
}


@pytest.mark.parametrize("case", HOSTILE_KIDS)
async def test_hostile_kid_is_rejected(client: httpx.AsyncClient, case: str) -> None:
    token = await real_token(client)
    head, body, signature = token.split(".")
    header = {**header_of(token), "kid": HOSTILE_KIDS[case]}
    forged = f"{b64url(json.dumps(header).encode())}.{body}.{signature}"
    response = await client.get("/accounts/me", headers=bearer(forged))
    assert_invalid_token(response)


async def test_missing_kid_is_rejected(client: httpx.AsyncClient) -> None:
    token = await real_token(client)
    header = {k: v for k, v in header_of(token).items() if k != "kid"}
    forged = hs256_token(header, claims_of(token), b"whatever")
    response = await client.get("/accounts/me", headers=bearer(forged))
    assert_invalid_token(response)


@pytest.fixture
async def listener() -> AsyncIterator[tuple[str, list[str]]]:
    """A local HTTP port that records every connection made to it."""
    connections: list[str] = []

    async def record(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connections.append(writer.get_extra_info("peername")[0])
        writer.close()

    server = await asyncio.start_server(record, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    yield f"http://127.0.0.1:{port}/jwks.json", connections
    server.close()
    await server.wait_closed()


def attacker_key() -> tuple[rsa.RSAPrivateKey, dict[str, Any], list[str]]:
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "attacker")])
    now = utcnow()
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(private.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + timedelta(days=1))
        .sign(private, hashes.SHA256())
    )
    jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(private.public_key()))
    x5c = [base64.b64encode(cert.public_bytes(serialization.Encoding.DER)).decode()]
    return private, jwk, x5c


@pytest.mark.parametrize("member", ["jku", "x5u", "jwk", "x5c"])
@pytest.mark.parametrize("signed_by", ["attacker", "service"])
async def test_header_pointing_at_an_outside_key_is_rejected_without_fetching(
    client: httpx.AsyncClient,
    database_url: str,
    listener: tuple[str, list[str]],
    member: str,
    signed_by: str,
) -> None:
    url, connections = listener
    private, jwk, x5c = attacker_key()
    value = {"jku": url, "x5u": url, "jwk": {**jwk, "x5u": url}, "x5c": x5c}[member]
    token = await real_token(client)
    if signed_by == "service":
        forged = await signed_with_real_key(database_url, token, extra_header={member: value})
    else:
        kid = header_of(token)["kid"]
        forged = jwt.encode(
            claims_of(token),
            private,
            algorithm="RS256",
            headers={"kid": kid, "typ": "at+jwt", member: value},
        )
    response = await client.get("/accounts/me", headers=bearer(forged))
    await asyncio.sleep(0.05)
    assert_invalid_token(response)
    assert connections == []
