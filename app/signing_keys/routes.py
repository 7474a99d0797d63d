from fastapi.responses import JSONResponse

from app.core.db import transactional_router
from app.state import KeyRingDep, SettingsDep

router = transactional_router("/.well-known", tag="discovery")


@router.get("/jwks.json")
async def jwks(keyring: KeyRingDep, settings: SettingsDep) -> JSONResponse:
    """Public keys for verifying access tokens (RFC 7517). Empty with HS256."""
    # Caches may keep it for a fraction of the refresh interval: a new key is
    # published at least one access-token lifetime before old keys retire.
    max_age = max(60, min(3600, settings.access_token_ttl_seconds // 3))
    return JSONResponse(
        keyring.public_jwks(), headers={"Cache-Control": f"public, max-age={max_age}"}
    )
