from typing import Annotated

from fastapi import Path, Response, status

from app.authz.dependencies import AUTH_ERRORS, MeRead, MeWrite
from app.consents import service as consents_service
from app.consents.schemas import ConsentPublic
from app.core.db import DbSession, transactional_router
from app.core.errors import answers
from app.core.schemas import NO_NUL

# Under /accounts, included before the accounts router's `/{account_id}` routes.
router = transactional_router("/accounts", tag="consents", responses=AUTH_ERRORS)

ClientIdParam = Annotated[str, Path(max_length=64, pattern=NO_NUL)]


@router.get("/me/consents")
async def list_own_consents(principal: MeRead, db: DbSession) -> list[ConsentPublic]:
    """The clients the caller allowed on a consent page, and the scopes allowed."""
    return await consents_service.list_consents(db, account_id=principal.account_id)


@router.delete(
    "/me/consents/{client_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=answers({404: "No consent for that client"}),
)
async def revoke_own_consent(client_id: ClientIdParam, actor: MeWrite, db: DbSession) -> Response:
    """Withdraw a consent; every session of the caller through that client ends."""
    await consents_service.revoke(db, actor=actor, client_id=client_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
