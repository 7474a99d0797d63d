from fastapi import APIRouter, Path, Response, status

from app.authz.dependencies import AUTH_ERRORS, MeRead, MeWrite
from app.consents import service as consents_service
from app.consents.schemas import ConsentPublic
from app.core.db import DbSession
from app.core.network import OriginDep

# Under /accounts, included before the accounts router's `/{account_id}` routes.
router = APIRouter(prefix="/accounts", tags=["consents"])


@router.get("/me/consents", response_model=list[ConsentPublic], responses=AUTH_ERRORS)
async def list_own_consents(principal: MeRead, db: DbSession) -> list[ConsentPublic]:
    """The clients the caller allowed on a consent page, and the scopes allowed."""
    return await consents_service.list_consents(db, account_id=principal.account_id)


@router.delete(
    "/me/consents/{client_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses={**AUTH_ERRORS, 404: {"description": "No consent for that client"}},
)
async def revoke_own_consent(
    principal: MeWrite,
    db: DbSession,
    origin: OriginDep,
    client_id: str = Path(max_length=64),
) -> Response:
    """Withdraw a consent; every session of the caller through that client ends."""
    await consents_service.revoke(
        db, account_id=principal.account_id, client_id=client_id, ip=origin.ip
    )
    return Response(status_code=status.HTTP_204_NO_CONTENT)
