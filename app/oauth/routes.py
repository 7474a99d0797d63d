"""The token endpoint (RFC 6749), revocation (RFC 7009), introspection (RFC 7662)
and the authorization server's metadata (RFC 8414)."""

from typing import Any

from fastapi import Response, status
from fastapi.responses import JSONResponse

from app.core.db import DbSession, transactional_router
from app.core.network import OriginDep
from app.oauth import introspection, revocation
from app.oauth.client_auth import IntrospectingClient, TokenClient
from app.oauth.errors import NO_STORE, InvalidRequest
from app.oauth.form import FormField, Presented, SingleValuedForm
from app.oauth.grants import TokenRequest, dispatch
from app.roles import service as roles_service
from app.sessions.schemas import TokenResponse
from app.state import SettingsDep, StateDep

router = transactional_router("/auth", tag="auth")
metadata_router = transactional_router("/.well-known", tag="discovery")
introspection_router = transactional_router("/oauth", tag="oauth")

OAUTH_ERRORS: dict[int | str, dict[str, str]] = {
    400: {
        "description": (
            "RFC 6749 error: invalid_request, invalid_grant, unauthorized_client, "
            "unsupported_grant_type or invalid_scope"
        )
    },
    401: {"description": "invalid_client: client authentication failed"},
    429: {"description": "Too many failed attempts; see Retry-After"},
    503: {"description": "Login capacity exhausted; see Retry-After"},
}
MAX_PARAM_LENGTH = 4096
# RFC 8414 §2 names; "none" is a public client sending its client_id alone.
CLIENT_AUTH_METHODS = ["client_secret_basic", "client_secret_post", "none"]


@router.post("/token", response_model_exclude_none=True, responses=OAUTH_ERRORS)
async def issue_token(
    db: DbSession,
    state: StateDep,
    origin: OriginDep,
    _form: SingleValuedForm,
    client: TokenClient,
    grant_type: FormField = None,
    username: FormField = None,
    password: FormField = None,
    refresh_token: FormField = None,
    scope: FormField = None,
    code: FormField = None,
    redirect_uri: FormField = None,
    code_verifier: FormField = None,
) -> TokenResponse:
    """OAuth 2.0 token endpoint (RFC 6749): `authorization_code` (with PKCE),
    `password`, `refresh_token` and `client_credentials` grants; clients
    authenticate by `client_secret_basic` or `client_secret_post`, public ones
    send `client_id` alone (or nothing, for the built-in `gatehouse` client)."""
    params = {
        name: value
        for name, value in (
            ("username", username),
            ("password", password),
            ("refresh_token", refresh_token),
            ("scope", scope),
            ("code", code),
            ("redirect_uri", redirect_uri),
            ("code_verifier", code_verifier),
        )
        if value is not None
    }
    for name, value in params.items():
        if "\x00" in value or len(value) > MAX_PARAM_LENGTH:
            raise InvalidRequest(f"Malformed {name}")
    return await dispatch(
        db, grant_type, TokenRequest(params=params, origin=origin, client=client), state
    )


@router.post(
    "/revoke",
    status_code=status.HTTP_200_OK,
    responses={401: {"description": "invalid_client: client authentication failed"}},
)
async def revoke_token(
    db: DbSession, state: StateDep, origin: OriginDep, presented: Presented, client: TokenClient
) -> Response:
    """RFC 7009 revocation of a token issued to the requesting client: a session's
    refresh or access token ends its session. Always 200."""
    if presented.token:
        await revocation.revoke(
            db,
            keyring=state.keyring,
            client_id=client.client.client_id,
            token=presented.token,
            hint=presented.hint,
            ip=origin.ip,
        )
    return Response(status_code=status.HTTP_200_OK)


@introspection_router.post(
    "/introspect",
    responses={
        400: {"description": "invalid_request: no token"},
        401: {"description": "invalid_client: not a client allowed to introspect"},
    },
)
async def introspect_token(
    db: DbSession, state: StateDep, presented: Presented, _: IntrospectingClient
) -> JSONResponse:
    """RFC 7662 introspection, for resource servers' clients holding
    `tokens:introspect`: `{"active": false}` for anything not live now."""
    answer = await introspection.introspect(db, state, token=presented.token)
    return JSONResponse(answer, headers=NO_STORE)


async def _discovery(db: DbSession, settings: SettingsDep) -> dict[str, Any]:
    """What both discovery documents carry (RFC 8414 §2, OpenID Connect Discovery
    §3): the endpoints, the live scope catalogue, and what the server supports."""
    issuer = settings.issuer.rstrip("/")
    scopes = await roles_service.list_scopes(db)
    return {
        "issuer": settings.issuer,
        "authorization_endpoint": f"{issuer}/oauth/authorize",
        "token_endpoint": f"{issuer}/auth/token",
        "revocation_endpoint": f"{issuer}/auth/revoke",
        "introspection_endpoint": f"{issuer}/oauth/introspect",
        "userinfo_endpoint": f"{issuer}/oauth/userinfo",
        "jwks_uri": f"{issuer}/.well-known/jwks.json",
        "scopes_supported": [s.name for s in scopes],
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": [
            "authorization_code",
            *(["password"] if settings.password_grant_enabled else []),
            "refresh_token",
            "client_credentials",
        ],
        # RFC 7636: S256 only; `plain` would hand the challenge's secret to whoever
        # sees the authorization request (OAuth 2.1 §4.1.1).
        "code_challenge_methods_supported": ["S256"],
        "token_endpoint_auth_methods_supported": CLIENT_AUTH_METHODS,
        "revocation_endpoint_auth_methods_supported": CLIENT_AUTH_METHODS,
        "introspection_endpoint_auth_methods_supported": CLIENT_AUTH_METHODS[:2],
        # RFC 9207: every authorization response carries `iss`.
        "authorization_response_iss_parameter_supported": True,
        "id_token_signing_alg_values_supported": [settings.signing_algorithm],
        "subject_types_supported": ["public"],
        "prompt_values_supported": ["none", "login", "consent"],
        "claims_supported": [
            "iss",
            "sub",
            "aud",
            "exp",
            "iat",
            "auth_time",
            "nonce",
            "sid",
            "at_hash",
            "preferred_username",
            "email",
            "email_verified",
        ],
    }


@metadata_router.get("/oauth-authorization-server")
async def authorization_server_metadata(db: DbSession, settings: SettingsDep) -> dict[str, Any]:
    """RFC 8414 authorization server metadata."""
    return await _discovery(db, settings)


@metadata_router.get("/openid-configuration")
async def openid_configuration(db: DbSession, settings: SettingsDep) -> dict[str, Any]:
    """OpenID Connect Discovery 1.0 §3: the provider's configuration."""
    return await _discovery(db, settings)
