from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from app.api.deps import KeyRingDep, SessionDep, SettingsDep
from app.services import roles as roles_service

router = APIRouter(prefix="/.well-known", tags=["discovery"])


@router.get("/jwks.json")
async def jwks(keyring: KeyRingDep, settings: SettingsDep) -> JSONResponse:
    """Public keys for verifying access tokens (RFC 7517). Empty with HS256."""
    # Caches may keep it for a fraction of the refresh interval: a new key is
    # published at least one access-token lifetime before old keys retire.
    max_age = max(60, min(3600, settings.access_token_ttl_seconds // 3))
    return JSONResponse(
        keyring.public_jwks(), headers={"Cache-Control": f"public, max-age={max_age}"}
    )


@router.get("/oauth-authorization-server")
async def authorization_server_metadata(
    session: SessionDep, settings: SettingsDep
) -> dict[str, Any]:
    """RFC 8414 authorization server metadata."""
    issuer = settings.issuer.rstrip("/")
    scopes = await roles_service.list_scopes(session)
    metadata: dict[str, Any] = {
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
    return metadata
