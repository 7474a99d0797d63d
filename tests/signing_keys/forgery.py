"""Hand-made JWTs for the key and attack tests, built without python-jose."""

import base64
import hashlib
import hmac
import json
from typing import Any

import jwt

from tests.signing_keys.keyset import private_pem


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64decode(part: str) -> bytes:
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


def header_of(token: str) -> dict[str, Any]:
    return json.loads(b64decode(token.split(".")[0]))  # type: ignore[no-any-return]


def claims_of(token: str) -> dict[str, Any]:
    return json.loads(b64decode(token.split(".")[1]))  # type: ignore[no-any-return]


def hs256_token(header: dict[str, Any], claims: dict[str, Any], key: bytes) -> str:
    """An HS256 JWS with any header at all, whatever the HMAC key looks like."""
    signing_input = b64url(json.dumps(header).encode()) + "." + b64url(json.dumps(claims).encode())
    signature = hmac.new(key, signing_input.encode(), hashlib.sha256).digest()
    return signing_input + "." + b64url(signature)


async def signed_with_real_key(
    database_url: str, token: str, *, extra_header: dict[str, Any]
) -> str:
    """`token` re-signed by its own key with extra header members: valid but for them."""
    header = header_of(token)
    pem = await private_pem(database_url, header["kid"])
    return jwt.encode(
        claims_of(token),
        pem,
        algorithm=header["alg"],
        headers={"kid": header["kid"], "typ": header["typ"], **extra_header},
    )
