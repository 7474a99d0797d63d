"""A FastAPI service that accepts Gatehouse tokens: access tokens (JWTs) verified
offline with the JWKS, and opaque tokens (personal access tokens) by asking
Gatehouse's introspection endpoint (RFC 7662).

Run it from the repository root, next to Gatehouse (same GATEHOUSE_ISSUER and
GATEHOUSE_AUDIENCE as Gatehouse's; the client id and secret are those of a
confidential client whose role holds `tokens:introspect`):

    GATEHOUSE_URL=http://127.0.0.1:8000 \\
    GATEHOUSE_CLIENT_ID=... GATEHOUSE_CLIENT_SECRET=... \\
    uvicorn docs.resource_server_example:app --port 8001

Without a client id and secret it verifies JWTs only. With GATEHOUSE_INTROSPECT_ALL=true
it introspects JWTs too, so a revocation (logout, disabled account, role change) is
seen on the very next request instead of at the token's `exp`.

Needs `fastapi` and `pyjwt[crypto]`; no Gatehouse code and no shared secret.
"""

import base64
import json
import os
import urllib.error
import urllib.parse
import urllib.request
from typing import Annotated, Any

import jwt
from fastapi import Depends, FastAPI, HTTPException, Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer, SecurityScopes

ACCESS_TOKEN_TYPES = {"at+jwt", "application/at+jwt"}  # RFC 9068 §4
ASYMMETRIC = {"RS256", "ES256"}


class GatehouseAuth:
    """A `Security` dependency: verifies the bearer token, then the endpoint's scopes."""

    def __init__(
        self,
        gatehouse_url: str,
        *,
        issuer: str,
        audience: str,
        client_id: str | None = None,
        client_secret: str | None = None,
        introspect_all: bool = False,
    ) -> None:
        # Keeps the key set for five minutes, and fetches it again when a token names
        # a kid it has not seen (Gatehouse rotated its key), at most every 5 seconds:
        # PyJWT's default 30 s cooldown would turn tokens from a brand-new key away.
        self.jwks = jwt.PyJWKClient(
            f"{gatehouse_url}/.well-known/jwks.json",
            cache_jwk_set=True,
            lifespan=300,
            cooldown_duration=5,
            timeout=5,
        )
        self.issuer = issuer
        self.audience = audience
        self.introspection_url = f"{gatehouse_url}/oauth/introspect"
        self.introspection_auth: str | None = None
        if client_id and client_secret:
            # RFC 6749 §2.3.1: form-url-encode id and secret, then Basic-encode.
            pair = f"{urllib.parse.quote_plus(client_id)}:{urllib.parse.quote_plus(client_secret)}"
            self.introspection_auth = "Basic " + base64.b64encode(pair.encode()).decode()
        self.introspect_all = introspect_all and self.introspection_auth is not None

    # A plain `def`: FastAPI runs it in a thread, so the blocking JWKS fetch or
    # introspection call never stalls the event loop.
    def __call__(
        self,
        security_scopes: SecurityScopes,
        credentials: Annotated[
            HTTPAuthorizationCredentials | None, Depends(HTTPBearer(auto_error=False))
        ],
    ) -> dict[str, Any]:
        needed = security_scopes.scope_str
        if credentials is None:  # RFC 6750 §3.1: no error code when no token was sent
            raise self._challenge(401, None, needed)
        token = credentials.credentials
        is_jwt = token.count(".") == 2
        if self.introspect_all or (not is_jwt and self.introspection_auth):
            claims = self._introspect(token, needed)
        else:
            claims = self._verify(token, needed)
        if not set(security_scopes.scopes) <= set(str(claims["scope"]).split()):
            raise self._challenge(403, "insufficient_scope", needed)
        return claims

    def _verify(self, token: str, needed: str) -> dict[str, Any]:
        """Offline, with the JWKS: cheap, but blind to revocation until `exp`."""
        try:
            header = jwt.get_unverified_header(token)
            if str(header.get("typ", "")).lower() not in ACCESS_TOKEN_TYPES:
                raise jwt.InvalidTokenError("not an access token")
            key = self.jwks.get_signing_key_from_jwt(token)
            if key.algorithm_name not in ASYMMETRIC:
                raise jwt.InvalidTokenError("unexpected key type")
            claims: dict[str, Any] = jwt.decode(
                token,
                key,
                algorithms=[key.algorithm_name],  # the key's own algorithm, nothing else
                audience=self.audience,
                issuer=self.issuer,
                leeway=5,
                options={"require": ["exp", "iat", "iss", "aud", "sub", "scope"]},
            )
        except jwt.PyJWKClientConnectionError as exc:
            raise HTTPException(503, "Cannot reach the token issuer") from exc
        except jwt.PyJWTError as exc:
            raise self._challenge(401, "invalid_token", needed) from exc
        return claims

    def _introspect(self, token: str, needed: str) -> dict[str, Any]:
        """Ask Gatehouse (RFC 7662): one round trip, and revocation shows at once."""
        if self.introspection_auth is None:
            raise RuntimeError("introspection needs GATEHOUSE_CLIENT_ID and _SECRET")
        request = urllib.request.Request(  # noqa: S310 - the configured Gatehouse URL
            self.introspection_url,
            data=urllib.parse.urlencode({"token": token}).encode(),
            headers={
                "Authorization": self.introspection_auth,
                "Content-Type": "application/x-www-form-urlencoded",
                "Accept": "application/json",
            },
        )
        try:
            with urllib.request.urlopen(request, timeout=5) as response:  # noqa: S310
                answer: dict[str, Any] = json.load(response)
        except (urllib.error.URLError, OSError, ValueError) as exc:
            # Unreachable, or our own client credentials refused (401 invalid_client).
            raise HTTPException(503, "Cannot ask the token issuer") from exc
        # A refresh token is live too, but it is no bearer token: only "Bearer" counts.
        if (
            answer.get("active") is not True
            or answer.get("token_type") != "Bearer"
            or answer.get("aud") != self.audience
            or answer.get("iss") != self.issuer
        ):
            raise self._challenge(401, "invalid_token", needed)
        return answer

    @staticmethod
    def _challenge(status: int, error: str | None, scope: str) -> HTTPException:
        params = ([f'error="{error}"'] if error else []) + ([f'scope="{scope}"'] if scope else [])
        value = "Bearer " + ", ".join(params) if params else "Bearer"
        detail = {401: "Not authenticated", 403: "Not enough permissions"}[status]
        return HTTPException(status, detail, headers={"WWW-Authenticate": value})


def create_app(
    gatehouse_url: str,
    *,
    issuer: str,
    audience: str = "gatehouse",
    client_id: str | None = None,
    client_secret: str | None = None,
    introspect_all: bool = False,
) -> FastAPI:
    auth = GatehouseAuth(
        gatehouse_url,
        issuer=issuer,
        audience=audience,
        client_id=client_id,
        client_secret=client_secret,
        introspect_all=introspect_all,
    )
    app = FastAPI(title="Orders")

    @app.get("/orders")
    def list_orders(
        claims: Annotated[dict[str, Any], Security(auth, scopes=["orders:read"])],
    ) -> dict[str, Any]:
        """The caller's orders; needs `orders:read`."""
        return {"account": claims["sub"], "orders": []}

    return app


GATEHOUSE_URL = os.environ.get("GATEHOUSE_URL", "http://127.0.0.1:8000")
app = create_app(
    GATEHOUSE_URL,
    issuer=os.environ.get("GATEHOUSE_ISSUER", "http://localhost:8000"),
    audience=os.environ.get("GATEHOUSE_AUDIENCE", "gatehouse"),
    client_id=os.environ.get("GATEHOUSE_CLIENT_ID"),
    client_secret=os.environ.get("GATEHOUSE_CLIENT_SECRET"),
    introspect_all=os.environ.get("GATEHOUSE_INTROSPECT_ALL", "").lower() == "true",
)
