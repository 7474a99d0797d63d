"""Access-token signing and verification: the only importer of python-jose.

Verification is strict by construction: the key is chosen by `kid` from our own
key set and only that key's algorithm is accepted (no `alg` confusion, no
`none`); headers that point elsewhere for keys (`jku`, `x5u`, `jwk`, `x5c`) are
refused rather than ignored; `typ` must be `at+jwt` (RFC 9068 §4); `exp`, `iat`,
`iss`, `aud`, `sub` are required. Every failure, including python-jose's stray
TypeErrors and ValueErrors on odd input, becomes `TokenError`.
"""

import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, cast

from jose import jwk, jws, jwt
from jose.backends.base import Key

MAX_TOKEN_LENGTH = 8192
LEEWAY_SECONDS = 5
ACCESS_TOKEN_TYPES = frozenset({"at+jwt", "application/at+jwt"})
FORBIDDEN_HEADERS = frozenset({"jku", "x5u", "jwk", "x5c", "crit"})


class TokenError(Exception):
    """The token is not one of ours, or no longer valid."""


@dataclass(frozen=True, slots=True)
class KeyPair:
    """Parsed key objects, built once per key: parsing a PEM costs tens of ms."""

    kid: str
    alg: str
    signer: Key
    verifier: Key
    public_jwk: dict[str, Any] | None  # None for HMAC keys: they are never published


def load_key(kid: str, alg: str, material: str | bytes) -> KeyPair:
    """Parse a private key (PEM for RS256/ES256, raw bytes for HS256)."""
    signer = jwk.construct(material, alg)
    if alg.startswith("HS"):
        return KeyPair(kid, alg, signer, signer, None)
    verifier = signer.public_key()
    public = {**verifier.to_dict(), "kid": kid, "alg": alg, "use": "sig"}
    return KeyPair(kid, alg, signer, verifier, public)


def sign(claims: Mapping[str, Any], key: KeyPair, *, typ: str = "at+jwt") -> str:
    """Sign `claims`; `typ` says what the token is: `at+jwt` for access tokens
    (RFC 9068 §2.1), `JWT` for ID tokens (OpenID Connect Core §2), so that one
    can never be passed off as the other (verification accepts `at+jwt` only)."""
    # python-jose is untyped: `jwt.encode` returns Any, but always the compact JWS string.
    return cast(
        str,
        jwt.encode(
            dict(claims),
            key.signer,
            algorithm=key.alg,
            headers={"kid": key.kid, "typ": typ},
        ),
    )


def unverified_header(token: str) -> dict[str, Any]:
    """The header, checked for shape only; say nothing is trusted yet."""
    if not isinstance(token, str) or len(token) > MAX_TOKEN_LENGTH or token.count(".") != 2:
        raise TokenError("malformed")
    try:
        header = jws.get_unverified_header(token)
    except Exception as exc:  # jose raises JWSError, but also TypeError/ValueError
        raise TokenError("malformed header") from exc
    if not isinstance(header, dict):
        raise TokenError("malformed header")
    if FORBIDDEN_HEADERS & header.keys():
        raise TokenError("header names an outside key")
    if not isinstance(header.get("kid"), str) or not isinstance(header.get("alg"), str):
        raise TokenError("no kid or alg")
    typ = header.get("typ")
    if not isinstance(typ, str) or typ.lower() not in ACCESS_TOKEN_TYPES:
        raise TokenError("not an access token")
    return header


def unexpired(claims: Mapping[str, Any]) -> bool:
    """Whether verified `claims` are still within their `exp`, by the rule
    `verify` applies (python-jose's: whole seconds, `LEEWAY_SECONDS` of grace)."""
    exp = claims.get("exp")
    return isinstance(exp, int | float) and exp >= now() - LEEWAY_SECONDS


def now() -> int:
    """This second, as JWT times count (RFC 7519 §2 NumericDate)."""
    return int(time.time())


def verify(
    token: str, key: KeyPair, *, issuer: str, audience: str, allow_expired: bool = False
) -> dict[str, Any]:
    """Verify signature and registered claims with the one key the header named."""
    header = unverified_header(token)
    if header["kid"] != key.kid or header["alg"] != key.alg:
        raise TokenError("algorithm does not match the key")
    try:
        claims = jwt.decode(
            token,
            key.verifier,
            algorithms=[key.alg],
            audience=audience,
            issuer=issuer,
            options={
                # python-jose turns `require_exp` into `verify_exp`, so an expired
                # token is only accepted with both off; presence is checked below.
                "require_exp": not allow_expired,
                "require_iat": True,
                "require_iss": True,
                "require_aud": True,
                "require_sub": True,
                "require_jti": True,
                "leeway": LEEWAY_SECONDS,
                "verify_exp": not allow_expired,
            },
        )
    except Exception as exc:  # JWTError, ExpiredSignatureError, and odd-input TypeErrors
        raise TokenError("invalid") from exc
    if not isinstance(claims, dict) or "exp" not in claims:
        raise TokenError("invalid claims")
    return claims
