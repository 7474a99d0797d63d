"""The token endpoint (RFC 6749), revocation (RFC 7009) and the authorization
server's metadata (RFC 8414)."""

from typing import Annotated, Any

from fastapi import APIRouter, Form, Response, status

from app.core.db import DbSession
from app.core.network import OriginDep
from app.oauth.errors import InvalidRequest
from app.oauth.form import SingleValuedForm
from app.oauth.grants import TokenRequest, grant_for
from app.roles import service as roles_service
from app.sessions import service as sessions_service
from app.sessions.schemas import TokenResponse
from app.state import SettingsDep, StateDep

router = APIRouter(prefix="/auth", tags=["auth"])
metadata_router = APIRouter(prefix="/.well-known", tags=["discovery"])

OAUTH_ERRORS: dict[int | str, dict[str, str]] = {
    400: {
        "description": (
            "RFC 6749 error: invalid_request, invalid_grant, "
            "unsupported_grant_type or invalid_scope"
        )
    },
    429: {"description": "Too many failed attempts; see Retry-After"},
    503: {"description": "Login capacity exhausted; see Retry-After"},
}
FormField = Annotated[str | None, Form()]
MAX_PARAM_LENGTH = 4096


@router.post("/token", response_model=TokenResponse, responses=OAUTH_ERRORS)
async def issue_token(
    db: DbSession,
    state: StateDep,
    origin: OriginDep,
    _form: SingleValuedForm,
    grant_type: FormField = None,
    username: FormField = None,
    password: FormField = None,
    refresh_token: FormField = None,
    scope: FormField = None,
    client_id: FormField = None,
) -> TokenResponse:
    """OAuth 2.0 token endpoint (RFC 6749): `password` and `refresh_token` grants."""
    params = {
        name: value
        for name, value in (
            ("username", username),
            ("password", password),
            ("refresh_token", refresh_token),
            ("scope", scope),
        )
        if value is not None
    }
    for name, value in params.items():
        if "\x00" in value or len(value) > MAX_PARAM_LENGTH:
            raise InvalidRequest(f"Malformed {name}")
    grant = grant_for(grant_type)
    return await grant(db, TokenRequest(params=params, origin=origin), state)


@router.post("/revoke", status_code=status.HTTP_200_OK)
async def revoke_token(
    db: DbSession,
    state: StateDep,
    origin: OriginDep,
    token: FormField = None,
    token_type_hint: FormField = None,
) -> Response:
    """RFC 7009 revocation: ends the session of a refresh or access token. Always 200."""
    if token and len(token) <= 8192 and "\x00" not in token:
        await sessions_service.revoke(
            db, keyring=state.keyring, token=token, hint=token_type_hint, ip=origin.ip
        )
    return Response(status_code=status.HTTP_200_OK)


@metadata_router.get("/oauth-authorization-server")
async def authorization_server_metadata(db: DbSession, settings: SettingsDep) -> dict[str, Any]:
    """RFC 8414 authorization server metadata."""
    issuer = settings.issuer.rstrip("/")
    scopes = await roles_service.list_scopes(db)
    return {
        "issuer": settings.issuer,
        "token_endpoint": f"{issuer}/auth/token",
        "revocation_endpoint": f"{issuer}/auth/revoke",
        "scopes_supported": [s.name for s in scopes],
        "grant_types_supported": ["password", "refresh_token"],
        "response_types_supported": [],
        "token_endpoint_auth_methods_supported": ["none"],
        "revocation_endpoint_auth_methods_supported": ["none"],
        "jwks_uri": f"{issuer}/.well-known/jwks.json",
    }
