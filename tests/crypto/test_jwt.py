"""Access tokens: app.security.tokens itself, and every way a forged or odd token
reaches it through HTTP (GET /accounts/me): always 401 invalid_token, never 500."""

import base64
import hashlib
import hmac
import json
import secrets
import time
from collections.abc import Callable
from functools import lru_cache
from typing import Any

import httpx
import jwt as pyjwt
import pytest

from app.crypto import jwt as tokens
from app.crypto.jwt import KeyPair, TokenError
from app.crypto.sealing import generate_private_key
from tests.conftest import app_state
from tests.factories import admin_login, bearer, create_user, refresh

INVALID_TOKEN = 'Bearer error="invalid_token", scope="me:read"'
ISSUER = "https://issuer.test"
AUDIENCE = "gatehouse-test"


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def segment(value: Any) -> str:
    return b64(json.dumps(value).encode())


def forge(pair: KeyPair, header: dict[str, Any], claims: dict[str, Any]) -> str:
    """A token with exactly this header and these claims, signed by `pair`."""
    signing_input = f"{segment(header)}.{segment(claims)}"
    return f"{signing_input}.{b64(pair.signer.sign(signing_input.encode()))}"


def our_header(pair: KeyPair, **changes: Any) -> dict[str, Any]:
    return {"alg": pair.alg, "kid": pair.kid, "typ": "at+jwt", **changes}


@lru_cache
def other_key(alg: str, kid: str) -> KeyPair:
    """A key the service never saw, under a `kid` it knows."""
    raw = generate_private_key(alg)
    return tokens.load_key(kid, alg, raw if alg == "HS256" else raw.decode())


def unsigned_claims(token: str) -> dict[str, Any]:
    return pyjwt.decode(token, options={"verify_signature": False})


async def read_me(client: httpx.AsyncClient, token: str) -> httpx.Response:
    return await client.get("/accounts/me", headers=bearer(token))


def assert_invalid_token(response: httpx.Response) -> None:
    assert response.status_code == 401, response.text
    assert response.headers["www-authenticate"] == INVALID_TOKEN
    assert list(response.json()) == ["detail"]
    assert isinstance(response.json()["detail"], str)


@pytest.fixture
def pair(client: httpx.AsyncClient) -> KeyPair:
    return app_state(client).keyring.signer


@pytest.fixture
async def claims(client: httpx.AsyncClient) -> dict[str, Any]:
    """The claims of a live user's access token: forgeries change one thing only."""
    _, issued = await create_user(client)
    return unsigned_claims(issued["access_token"])


# --- app.security.tokens, without HTTP ---------------------------------------


def sample_claims(**changes: Any) -> dict[str, Any]:
    now = int(time.time())
    values = {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": "00000000-0000-7000-8000-000000000001",
        "sid": "00000000-0000-7000-8000-000000000002",
        "jti": secrets.token_urlsafe(16),
        "iat": now,
        "exp": now + 60,
        "scope": "me:read",
        "ver": 1,
    }
    values.update(changes)
    return {k: v for k, v in values.items() if v is not None}


def verify(token: str, pair: KeyPair, **options: Any) -> dict[str, Any]:
    return tokens.verify(token, pair, issuer=ISSUER, audience=AUDIENCE, **options)


@pytest.mark.parametrize("alg", ["RS256", "ES256", "HS256"])
def test_signed_token_verifies_back_to_its_claims(alg: str) -> None:
    pair = other_key(alg, f"kid-{alg}")
    claims = sample_claims()
    assert verify(tokens.sign(claims, pair), pair) == claims


@pytest.mark.parametrize("alg", ["RS256", "ES256", "HS256"])
def test_signed_token_header_names_the_algorithm_key_and_access_token_type(alg: str) -> None:
    pair = other_key(alg, f"kid-{alg}")
    header = pyjwt.get_unverified_header(tokens.sign(sample_claims(), pair))
    assert header == {"alg": alg, "kid": f"kid-{alg}", "typ": "at+jwt"}


def test_asymmetric_key_publishes_only_its_public_half() -> None:
    pair = other_key("RS256", "kid-public")
    assert pair.public_jwk is not None
    assert pair.public_jwk["kid"] == "kid-public"
    assert pair.public_jwk["alg"] == "RS256"
    assert pair.public_jwk["use"] == "sig"
    assert not {"d", "p", "q", "dp", "dq", "qi"} & pair.public_jwk.keys()


def test_hmac_key_publishes_nothing() -> None:
    assert other_key("HS256", "kid-hmac").public_jwk is None


def test_verify_refuses_a_token_signed_by_another_key_with_the_same_kid() -> None:
    ours, theirs = other_key("RS256", "shared"), other_key("RS256", "shared-2")
    forged = forge(theirs, our_header(ours), sample_claims())
    with pytest.raises(TokenError):
        verify(forged, ours)


def test_verify_refuses_a_token_whose_kid_names_another_key() -> None:
    pair = other_key("RS256", "kid-a")
    token = forge(pair, our_header(pair, kid="kid-b"), sample_claims())
    with pytest.raises(TokenError):
        verify(token, pair)


def test_verify_refuses_an_expired_token() -> None:
    pair = other_key("RS256", "kid-expiry")
    now = int(time.time())
    token = tokens.sign(sample_claims(iat=now - 100, exp=now - 30), pair)
    with pytest.raises(TokenError):
        verify(token, pair)


def test_verify_may_accept_an_expired_token_when_told_to() -> None:
    pair = other_key("RS256", "kid-expiry")
    now = int(time.time())
    claims = sample_claims(iat=now - 100, exp=now - 30)
    assert verify(tokens.sign(claims, pair), pair, allow_expired=True) == claims


def test_verify_checks_the_signature_of_an_expired_token_it_is_told_to_accept() -> None:
    pair = other_key("RS256", "kid-expiry")
    now = int(time.time())
    token = tokens.sign(sample_claims(iat=now - 100, exp=now - 30), pair)
    header, payload, _ = token.split(".")
    with pytest.raises(TokenError):
        verify(f"{header}.{payload}.{b64(b'x' * 256)}", pair, allow_expired=True)


def test_verify_refuses_a_token_without_exp_even_when_expiry_is_allowed() -> None:
    pair = other_key("RS256", "kid-expiry")
    token = tokens.sign({k: v for k, v in sample_claims().items() if k != "exp"}, pair)
    with pytest.raises(TokenError):
        verify(token, pair, allow_expired=True)


@pytest.mark.parametrize("value", [None, b"a.b.c", 42, ["a", "b", "c"]])
def test_unverified_header_refuses_what_is_not_a_string(value: Any) -> None:
    with pytest.raises(TokenError):
        tokens.unverified_header(value)


def test_unverified_header_refuses_a_token_longer_than_the_limit() -> None:
    pair = other_key("RS256", "kid-long")
    token = tokens.sign(sample_claims(pad="x" * tokens.MAX_TOKEN_LENGTH), pair)
    with pytest.raises(TokenError):
        tokens.unverified_header(token)


# --- through HTTP: a live user's claims, changed one way at a time ------------


async def test_resigned_token_with_unchanged_claims_is_accepted(
    client: httpx.AsyncClient, pair: KeyPair, claims: dict[str, Any]
) -> None:
    response = await read_me(client, tokens.sign(claims, pair))
    assert response.status_code == 200, response.text
    assert response.json()["id"] == claims["sub"]


async def test_token_expired_within_the_five_second_leeway_is_accepted(
    client: httpx.AsyncClient, pair: KeyPair, claims: dict[str, Any]
) -> None:
    now = int(time.time())
    response = await read_me(client, tokens.sign({**claims, "exp": now - 2}, pair))
    assert response.status_code == 200, response.text


async def test_token_expired_beyond_the_five_second_leeway_is_refused(
    client: httpx.AsyncClient, pair: KeyPair, claims: dict[str, Any]
) -> None:
    now = int(time.time())
    assert_invalid_token(await read_me(client, tokens.sign({**claims, "exp": now - 8}, pair)))


async def test_revoking_an_expired_access_token_ends_its_session(
    client: httpx.AsyncClient, pair: KeyPair
) -> None:
    _, issued = await create_user(client)
    claims = unsigned_claims(issued["access_token"])
    now = int(time.time())
    expired = tokens.sign({**claims, "iat": now - 120, "exp": now - 60}, pair)
    revoked = await client.post("/auth/revoke", data={"token": expired})
    assert revoked.status_code == 200
    response = await refresh(client, issued["refresh_token"])
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_grant"


def _without(name: str) -> Callable[[dict[str, Any]], dict[str, Any]]:
    return lambda c: {k: v for k, v in c.items() if k != name}


def _with(**changes: Any) -> Callable[[dict[str, Any]], dict[str, Any]]:
    return lambda c: {**c, **changes}


CLAIM_CHANGES: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
    "no exp": _without("exp"),
    "no iat": _without("iat"),
    "no sub": _without("sub"),
    "no jti": _without("jti"),
    "no iss": _without("iss"),
    "no aud": _without("aud"),
    "no sid": _without("sid"),
    "no scope": _without("scope"),
    "no ver": _without("ver"),
    "another issuer": _with(iss="https://attacker.example"),
    "another audience": _with(aud="another-service"),
    "audience list without ours": _with(aud=["another-service", "third"]),
    "audience as object": _with(aud={"gatehouse": True}),
    "sub as int": _with(sub=12345),
    "sub not a uuid": _with(sub="admin"),
    "sub as null": _with(sub=None),
    "sid as int": _with(sid=12345),
    "sid not a uuid": _with(sid="current"),
    "sid as list": _with(sid=["a"]),
    "scope as list": lambda c: {**c, "scope": c["scope"].split()},
    "scope as int": _with(scope=7),
    "scope as object": _with(scope={"me:read": True}),
    "ver as string": _with(ver="1"),
    "ver as bool": _with(ver=True),
    "ver as float": _with(ver=1.0),
    "ver as null": _with(ver=None),
    "ver from the future": _with(ver=2),
    "exp as string": _with(exp="tomorrow"),
    "exp as list": _with(exp=[1]),
    "exp as null": _with(exp=None),
    "iat as string": _with(iat="now"),
    "iat as object": _with(iat={}),
    "jti as int": _with(jti=5),
}


@pytest.mark.parametrize("change", CLAIM_CHANGES.values(), ids=CLAIM_CHANGES.keys())
async def test_validly_signed_token_with_bad_claims_is_refused(
    client: httpx.AsyncClient,
    pair: KeyPair,
    claims: dict[str, Any],
    change: Callable[[dict[str, Any]], dict[str, Any]],
) -> None:
    assert_invalid_token(await read_me(client, tokens.sign(change(claims), pair)))


async def test_token_naming_another_account_than_its_session_is_refused(
    client: httpx.AsyncClient, pair: KeyPair, claims: dict[str, Any]
) -> None:
    admin_sub = unsigned_claims((await admin_login(client))["access_token"])["sub"]
    assert_invalid_token(await read_me(client, tokens.sign({**claims, "sub": admin_sub}, pair)))


HEADER_CHANGES: dict[str, dict[str, Any]] = {
    "typ JWT": {"typ": "JWT"},
    "no typ": {"typ": None},
    "typ as int": {"typ": 1},
    "typ refresh": {"typ": "refresh+jwt"},
    "jku": {"jku": "https://attacker.example/jwks.json"},
    "x5u": {"x5u": "https://attacker.example/cert.pem"},
    "x5c": {"x5c": ["MIIB"]},
    "crit": {"crit": ["exp"], "exp": 1},
    "unknown kid": {"kid": "no-such-key"},
    "kid as int": {"kid": 1},
    "kid as list": {"kid": ["a"]},
    "kid as object": {"kid": {}},
    "no kid": {"kid": None},
    "kid path traversal": {"kid": "../../../../dev/null"},
    "huge kid": {"kid": "k" * 4000},
    "alg RS512": {"alg": "RS512"},
    "alg as list": {"alg": ["RS256"]},
    "no alg": {"alg": None},
}


@pytest.mark.parametrize("change", HEADER_CHANGES.values(), ids=HEADER_CHANGES.keys())
async def test_validly_signed_token_with_bad_header_is_refused(
    client: httpx.AsyncClient, pair: KeyPair, claims: dict[str, Any], change: dict[str, Any]
) -> None:
    header = {k: v for k, v in our_header(pair, **change).items() if v is not None}
    assert_invalid_token(await read_me(client, forge(pair, header, claims)))


async def test_validly_signed_token_carrying_our_own_jwk_is_refused(
    client: httpx.AsyncClient, pair: KeyPair, claims: dict[str, Any]
) -> None:
    header = our_header(pair, jwk=pair.public_jwk)
    assert_invalid_token(await read_me(client, forge(pair, header, claims)))


@pytest.mark.parametrize("alg", ["none", "None", "NONE", "nOnE"])
async def test_unsigned_alg_none_token_is_refused(
    client: httpx.AsyncClient, pair: KeyPair, claims: dict[str, Any], alg: str
) -> None:
    token = f"{segment(our_header(pair, alg=alg))}.{segment(claims)}."
    assert_invalid_token(await read_me(client, token))


async def test_token_with_signature_stripped_is_refused(
    client: httpx.AsyncClient, pair: KeyPair, claims: dict[str, Any]
) -> None:
    header, payload, _ = tokens.sign(claims, pair).split(".")
    assert_invalid_token(await read_me(client, f"{header}.{payload}."))


async def test_token_with_tampered_payload_is_refused(
    client: httpx.AsyncClient, pair: KeyPair, claims: dict[str, Any]
) -> None:
    header, _, signature = tokens.sign(claims, pair).split(".")
    widened = segment({**claims, "scope": "me:read me:write accounts:read accounts:write"})
    assert_invalid_token(await read_me(client, f"{header}.{widened}.{signature}"))


async def test_token_with_another_tokens_signature_is_refused(
    client: httpx.AsyncClient, pair: KeyPair, claims: dict[str, Any]
) -> None:
    header, payload, _ = tokens.sign(claims, pair).split(".")
    admin_signature = (await admin_login(client))["access_token"].split(".")[2]
    assert_invalid_token(await read_me(client, f"{header}.{payload}.{admin_signature}"))


async def test_token_signed_by_a_different_key_under_our_kid_is_refused(
    client: httpx.AsyncClient, pair: KeyPair, claims: dict[str, Any]
) -> None:
    stranger = other_key(pair.alg, "stranger")
    assert_invalid_token(await read_me(client, forge(stranger, our_header(pair), claims)))


async def test_hs256_token_signed_with_a_random_secret_is_refused(
    client: httpx.AsyncClient, pair: KeyPair, claims: dict[str, Any]
) -> None:
    stranger = other_key("HS256", "stranger-hmac")
    token = forge(stranger, our_header(pair, alg="HS256"), claims)
    assert_invalid_token(await read_me(client, token))


async def test_hs256_token_keyed_with_our_public_key_is_refused(
    client: httpx.AsyncClient, pair: KeyPair, claims: dict[str, Any]
) -> None:
    # The classic algorithm confusion: the public key used as an HMAC secret.
    public_pem = pair.verifier.to_pem()
    signing_input = f"{segment(our_header(pair, alg='HS256'))}.{segment(claims)}"
    mac = hmac.new(public_pem, signing_input.encode(), hashlib.sha256).digest()
    assert_invalid_token(await read_me(client, f"{signing_input}.{b64(mac)}"))


MALFORMED: dict[str, str] = {
    "one word": "not-a-jwt",
    "one dot": "abc.def",
    "three dots": "abc.def.ghi.jkl",
    "four dots": "abc.def.ghi.jkl.mno",
    "only dots": "..",
    "garbage base64": "!!!.@@@.###",
    "non-json header": f"{b64(b'not json at all')}.{segment({})}.{b64(b'sig')}",
    "json array header": f"{segment(['alg', 'RS256'])}.{segment({})}.{b64(b'sig')}",
    "json string header": f"{segment('RS256')}.{segment({})}.{b64(b'sig')}",
    "json number header": f"{segment(7)}.{segment({})}.{b64(b'sig')}",
    "json null header": f"{segment(None)}.{segment({})}.{b64(b'sig')}",
    "invalid utf-8 header": f"{b64(bytes([0xFF, 0xFE, 0xFD]))}.{segment({})}.{b64(b'sig')}",
    "deeply nested header": f"{b64(b'[' * 5000 + b']' * 5000)}.{segment({})}.{b64(b's')}",
    "padding in the middle": "eyJ=hbGciOiJSUzI1NiJ9.e30=.c2ln",
    "huge token": f"{segment({'alg': 'RS256', 'typ': 'at+jwt', 'kid': 'k'})}.{'A' * 100_000}.c2ln",
}


@pytest.mark.parametrize("token", MALFORMED.values(), ids=MALFORMED.keys())
async def test_malformed_token_is_refused(client: httpx.AsyncClient, token: str) -> None:
    assert_invalid_token(await read_me(client, token))


@pytest.mark.parametrize("part", [0, 1])
async def test_token_with_non_json_valid_base64_part_is_refused(
    client: httpx.AsyncClient, pair: KeyPair, claims: dict[str, Any], part: int
) -> None:
    parts = tokens.sign(claims, pair).split(".")
    parts[part] = b64(b"\x00\x01 definitely not json")
    assert_invalid_token(await read_me(client, ".".join(parts)))


async def test_validly_signed_token_whose_payload_is_not_an_object_is_refused(
    client: httpx.AsyncClient, pair: KeyPair
) -> None:
    signing_input = f"{segment(our_header(pair))}.{segment(['sub', 'sid'])}"
    token = f"{signing_input}.{b64(pair.signer.sign(signing_input.encode()))}"
    assert_invalid_token(await read_me(client, token))


async def test_token_with_non_ascii_bytes_is_refused(
    client: httpx.AsyncClient, pair: KeyPair, claims: dict[str, Any]
) -> None:
    header, payload, signature = tokens.sign(claims, pair).split(".")
    raw = f"Bearer {header}.{payload}\u00e9.{signature}".encode("latin-1")
    assert_invalid_token(await client.get("/accounts/me", headers={b"Authorization": raw}))
