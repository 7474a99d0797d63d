"""A FastAPI service that accepts Gatehouse access tokens, knowing only the JWKS URL.

Run it next to Gatehouse, from the repository root (same GATEHOUSE_ISSUER and
GATEHOUSE_AUDIENCE as Gatehouse's; the defaults match `make run`):

    GATEHOUSE_URL=http://127.0.0.1:8000 .venv/bin/uvicorn --app-dir docs resource_server_example:app --port 8001

Needs `fastapi` and `pyjwt[crypto]`; no Gatehouse code and no shared secret.
"""

import os
from typing import Annotated, Any

import jwt
from fastapi import Depends, FastAPI, HTTPException, Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer, SecurityScopes

ACCESS_TOKEN_TYPES = {"at+jwt", "application/at+jwt"}  # RFC 9068 §4
ASYMMETRIC = {"RS256", "ES256"}


class GatehouseAuth:
    """A `Security` dependency: verifies the bearer token, then the endpoint's scopes."""

    def __init__(self, gatehouse_url: str, *, issuer: str, audience: str) -> None:
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

    # A plain `def`: FastAPI runs it in a thread, so the blocking JWKS fetch never
    # stalls the event loop.
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
        if not set(security_scopes.scopes) <= set(str(claims["scope"]).split()):
            raise self._challenge(403, "insufficient_scope", needed)
        return claims

    @staticmethod
    def _challenge(status: int, error: str | None, scope: str) -> HTTPException:
        params = ([f'error="{error}"'] if error else []) + ([f'scope="{scope}"'] if scope else [])
        value = "Bearer " + ", ".join(params) if params else "Bearer"
        detail = {401: "Not authenticated", 403: "Not enough permissions"}[status]
        return HTTPException(status, detail, headers={"WWW-Authenticate": value})


def create_app(gatehouse_url: str, *, issuer: str, audience: str = "gatehouse") -> FastAPI:
    auth = GatehouseAuth(gatehouse_url, issuer=issuer, audience=audience)
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
)
