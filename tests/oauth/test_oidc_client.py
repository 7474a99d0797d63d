"""Off-the-shelf OpenID Connect relying parties against a served Gatehouse, on each
database (issue 14): authlib's OAuth2Client with code_challenge_method="S256" and
requests-oauthlib's OAuth2Session with pkce="S256" take every endpoint from
discovery, build the authorization request, and redeem the code; the sign-in
(and consent) form between them is driven with plain HTTP as a browser without
JavaScript would: a cookie jar and the form's own hidden fields. The id_token is
validated with authlib's OpenID Connect rules (CodeIDToken: iss, aud, exp, nonce,
at_hash) on the keys of the JWKS that discovery names, and again by PyJWT."""

import base64
import hashlib
import secrets
import warnings
from collections.abc import Iterator
from html.parser import HTMLParser
from typing import Any
from urllib.parse import parse_qs, urljoin, urlsplit

import httpx
import jwt as pyjwt
import pytest
from authlib.oidc.core import CodeIDToken
from joserfc import jwt as jose_jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet
from joserfc.jws import JWSRegistry

from tests.oauth.served import Gatehouse, database_factory, served_gatehouse

with warnings.catch_warnings():
    # authlib's httpx integration says it prefers the httpx2 package; httpx it is
    # here (as in tests/oauth/test_real_clients.py).
    from authlib.deprecate import AuthlibDeprecationWarning

    warnings.simplefilter("ignore", AuthlibDeprecationWarning)
    from authlib.integrations.httpx_client import OAuth2Client

pytestmark = pytest.mark.slow

SCOPE = "openid me:read"
# Seconds of clock leeway, as the service allows for its own tokens.
LEEWAY = 5


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def gatehouse(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Gatehouse]:
    url = database_factory(request, request.param)()
    with served_gatehouse(url, tmp_path_factory.mktemp("oidc-client")) as served:
        yield served


@pytest.fixture(scope="module")
def discovery(gatehouse: Gatehouse) -> dict[str, Any]:
    """/.well-known/openid-configuration, as a relying party reads it first."""
    with gatehouse.http() as http:
        answer = http.get("/.well-known/openid-configuration")
    assert answer.status_code == 200, answer.text
    document: dict[str, Any] = answer.json()
    return document


class Forms(HTMLParser):
    """The fields of each <form> of a page: hidden and text inputs with their values,
    and the submit buttons (name, value) apart, as a browser would send them."""

    def __init__(self) -> None:
        super().__init__()
        self.forms: list[dict[str, Any]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = {name: value or "" for name, value in attrs}
        if tag == "form":
            self.forms.append(
                {
                    "action": attributes.get("action", ""),
                    "method": attributes.get("method", "get").lower(),
                    "fields": {},
                    "buttons": [],
                }
            )
        elif self.forms and tag == "input" and "name" in attributes:
            if attributes.get("type", "text").lower() not in ("submit", "checkbox", "radio"):
                self.forms[-1]["fields"][attributes["name"]] = attributes.get("value", "")
        elif self.forms and tag == "button" and "name" in attributes:
            self.forms[-1]["buttons"].append((attributes["name"], attributes.get("value", "")))


def authorize_form(page: httpx.Response) -> dict[str, Any]:
    """The one form of a sign-in or consent page that posts to /oauth/authorize."""
    assert page.status_code == 200, page.text
    assert page.headers["content-type"].startswith("text/html")
    parser = Forms()
    parser.feed(page.text)
    forms = [f for f in parser.forms if urlsplit(f["action"]).path == "/oauth/authorize"]
    assert len(forms) == 1, parser.forms
    form = forms[0]
    assert form["method"] == "post"
    assert form["fields"].get("csrf_token"), form
    return form


def through_the_form(
    gatehouse: Gatehouse, authorization_url: str, username: str, password: str
) -> str:
    """Signs in on the hosted page (and allows on the consent page, when one comes)
    with plain HTTP and a cookie jar; returns the Location of the final redirect,
    which names the client's redirect URI."""
    with httpx.Client(timeout=15, trust_env=False) as browser:
        page = browser.get(authorization_url)
        form = authorize_form(page)
        fields = {**form["fields"], "username": username, "password": password}
        answer = browser.post(urljoin(str(page.url), form["action"]), data=fields)
        if answer.status_code == 200:
            consent = authorize_form(answer)
            assert ("decision", "allow") in consent["buttons"], consent
            answer = browser.post(
                urljoin(str(answer.url), consent["action"]),
                data={**consent["fields"], "decision": "allow"},
            )
        assert answer.status_code == 302, (answer.status_code, answer.text)
        return answer.headers["location"]


def authorization_response(location: str, redirect_uri: str) -> dict[str, str]:
    assert location.split("?", 1)[0] == redirect_uri, location
    query = parse_qs(urlsplit(location).query)
    assert all(len(v) == 1 for v in query.values()), query
    return {name: values[0] for name, values in query.items()}


def at_hash(access_token: str) -> str:
    """OpenID Connect Core §3.1.3.6 for RS256: the left half of SHA-256, base64url."""
    digest = hashlib.sha256(access_token.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest[:16]).rstrip(b"=").decode("ascii")


def validate_with_authlib(
    discovery: dict[str, Any], id_token: str, client_id: str, nonce: str, access_token: str
) -> dict[str, Any]:
    """What authlib's OpenID Connect client does with an id_token (joserfc decodes it
    on the JWKS, CodeIDToken checks the claims), with iss, aud, nonce, at_hash,
    sid and auth_time required rather than checked only when present."""
    jwks = httpx.get(discovery["jwks_uri"], timeout=15, trust_env=False)
    assert jwks.status_code == 200, jwks.text
    decoded = jose_jwt.decode(
        id_token,
        KeySet.import_key_set(jwks.json()),
        registry=JWSRegistry(algorithms=discovery["id_token_signing_alg_values_supported"]),
    )
    claims = CodeIDToken(
        decoded.claims,
        decoded.header,
        {
            "iss": {"essential": True, "value": discovery["issuer"]},
            "aud": {"essential": True, "value": client_id},
            "nonce": {"essential": True, "value": nonce},
            "at_hash": {"essential": True},
            "auth_time": {"essential": True},
            "sid": {"essential": True},
        },
        {"nonce": nonce, "client_id": client_id, "access_token": access_token},
    )
    claims.validate(leeway=LEEWAY)
    assert decoded.header["alg"] == "RS256"
    assert decoded.header.get("kid")
    return dict(claims)


def validate_with_pyjwt(
    discovery: dict[str, Any], id_token: str, client_id: str, nonce: str, access_token: str
) -> dict[str, Any]:
    """An independent verifier: PyJWT with the key the JWKS names by `kid`."""
    key = pyjwt.PyJWKClient(discovery["jwks_uri"]).get_signing_key_from_jwt(id_token)
    claims: dict[str, Any] = pyjwt.decode(
        id_token,
        key.key,
        algorithms=["RS256"],
        audience=client_id,
        issuer=discovery["issuer"],
        leeway=LEEWAY,
        options={"require": ["iss", "sub", "aud", "exp", "iat", "auth_time", "nonce", "sid"]},
    )
    assert claims["nonce"] == nonce
    assert claims["at_hash"] == at_hash(access_token)
    assert claims["iat"] <= claims["exp"]
    assert claims["auth_time"] <= claims["iat"] + LEEWAY
    return claims


def test_discovery_names_the_code_flow_and_its_endpoints(
    gatehouse: Gatehouse, discovery: dict[str, Any]
) -> None:
    """What a relying party configures itself from (OpenID Connect Discovery §3,
    RFC 8414 §2), the same in both documents, every endpoint on the issuer."""
    issuer = gatehouse.base
    assert discovery["issuer"] == issuer
    assert discovery["authorization_endpoint"] == f"{issuer}/oauth/authorize"
    assert discovery["token_endpoint"] == f"{issuer}/auth/token"
    assert discovery["userinfo_endpoint"] == f"{issuer}/oauth/userinfo"
    assert discovery["jwks_uri"] == f"{issuer}/.well-known/jwks.json"
    assert discovery["code_challenge_methods_supported"] == ["S256"]
    assert discovery["authorization_response_iss_parameter_supported"] is True
    assert "code" in discovery["response_types_supported"]
    assert "authorization_code" in discovery["grant_types_supported"]
    assert "RS256" in discovery["id_token_signing_alg_values_supported"]
    assert "public" in discovery["subject_types_supported"]
    assert {"openid", "profile", "email", "me:read"} <= set(discovery["scopes_supported"])
    assert "none" in discovery["token_endpoint_auth_methods_supported"]
    with gatehouse.http() as http:
        rfc8414 = http.get("/.well-known/oauth-authorization-server").json()
    for name in (
        "issuer",
        "authorization_endpoint",
        "token_endpoint",
        "revocation_endpoint",
        "introspection_endpoint",
        "userinfo_endpoint",
        "jwks_uri",
        "scopes_supported",
        "response_types_supported",
        "grant_types_supported",
        "code_challenge_methods_supported",
        "token_endpoint_auth_methods_supported",
        "authorization_response_iss_parameter_supported",
        "id_token_signing_alg_values_supported",
        "subject_types_supported",
    ):
        assert rfc8414[name] == discovery[name], name


@pytest.mark.parametrize("first_party", [True, False], ids=["first-party", "consent"])
def test_authlib_client_signs_in_and_validates_the_id_token(
    gatehouse: Gatehouse, discovery: dict[str, Any], first_party: bool
) -> None:
    username, password = gatehouse.signup()
    registered = gatehouse.register_client(first_party=first_party)
    client_id, redirect_uri = registered["client_id"], registered["redirect_uris"][0]
    nonce = secrets.token_urlsafe(16)
    verifier = secrets.token_urlsafe(48)

    with OAuth2Client(
        client_id=client_id,
        redirect_uri=redirect_uri,
        scope=SCOPE,
        code_challenge_method="S256",
        token_endpoint_auth_method="none",
        trust_env=False,
        timeout=15,
    ) as client:
        url, state = client.create_authorization_url(
            discovery["authorization_endpoint"], code_verifier=verifier, nonce=nonce
        )
        location = through_the_form(gatehouse, url, username, password)
        response = authorization_response(location, redirect_uri)
        assert response["state"] == state
        assert response["iss"] == discovery["issuer"]  # RFC 9207 §2.4

        token = client.fetch_token(
            discovery["token_endpoint"],
            authorization_response=location,
            code_verifier=verifier,
        )
        assert set(token["scope"].split()) == set(SCOPE.split())
        by_authlib = validate_with_authlib(
            discovery, token["id_token"], client_id, nonce, token["access_token"]
        )
        by_pyjwt = validate_with_pyjwt(
            discovery, token["id_token"], client_id, nonce, token["access_token"]
        )
        assert by_authlib == by_pyjwt
        # The same checks refuse a token that is not this request's answer.
        id_token, access_token = token["id_token"], token["access_token"]
        for wrong in (
            {"nonce": "another request's nonce"},
            {"client_id": "another-client"},
            {"access_token": token["refresh_token"]},  # at_hash binds the access token
        ):
            arguments = {"client_id": client_id, "nonce": nonce, "access_token": access_token}
            with pytest.raises(JoseError):
                validate_with_authlib(discovery, id_token, **{**arguments, **wrong})

        me = client.get(f"{gatehouse.base}/accounts/me")
        assert me.status_code == 200, me.text
        assert me.json()["username"] == username
        userinfo = client.get(discovery["userinfo_endpoint"])
        assert userinfo.status_code == 200, userinfo.text
        # OpenID Connect Core §5.3.2: the same sub as the id_token.
        assert userinfo.json()["sub"] == by_pyjwt["sub"] == me.json()["id"]
        assert userinfo.json()["preferred_username"] == username

        # The access token names the session the id_token's sid names.
        access = pyjwt.decode(token["access_token"], options={"verify_signature": False})
        assert access["sid"] == by_pyjwt["sid"]
        assert access["client_id"] == client_id

        # The session the code opened refreshes through the same client (rotation).
        refreshed = client.refresh_token(discovery["token_endpoint"])
        assert refreshed["refresh_token"] != token["refresh_token"]
        again = pyjwt.decode(refreshed["access_token"], options={"verify_signature": False})
        assert again["sid"] == access["sid"]
        assert client.token["access_token"] == refreshed["access_token"]
        assert client.get(f"{gatehouse.base}/accounts/me").status_code == 200


def test_requests_oauthlib_session_with_pkce_redeems_the_code(
    gatehouse: Gatehouse, discovery: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """requests-oauthlib's OAuth2Session(pkce="S256") against the same endpoints; the
    id_token it brings back passes PyJWT's checks."""
    from requests_oauthlib import OAuth2Session

    # oauthlib refuses http:// unless told; the server is on loopback http here.
    monkeypatch.setenv("OAUTHLIB_INSECURE_TRANSPORT", "1")
    username, password = gatehouse.signup()
    registered = gatehouse.register_client(first_party=True)
    client_id, redirect_uri = registered["client_id"], registered["redirect_uris"][0]
    nonce = secrets.token_urlsafe(16)

    with OAuth2Session(
        client_id, redirect_uri=redirect_uri, scope=SCOPE.split(), pkce="S256"
    ) as session:
        session.trust_env = False
        url, state = session.authorization_url(discovery["authorization_endpoint"], nonce=nonce)
        assert "code_challenge_method=S256" in url
        location = through_the_form(gatehouse, url, username, password)
        assert authorization_response(location, redirect_uri)["state"] == state
        token = session.fetch_token(
            discovery["token_endpoint"], authorization_response=location, include_client_id=True
        )
        validate_with_pyjwt(discovery, token["id_token"], client_id, nonce, token["access_token"])
        me = session.get(f"{gatehouse.base}/accounts/me", timeout=15)
        assert me.status_code == 200, me.text
        assert me.json()["username"] == username
