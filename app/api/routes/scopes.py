from typing import Annotated

from fastapi import APIRouter, Path, Response, status

from app.api.deps import AUTH_ERRORS, ClientDep, RolesRead, RolesWrite, SessionDep
from app.schemas import ScopeCreate, ScopePublic
from app.services import audit
from app.services import roles as roles_service

router = APIRouter(prefix="/scopes", tags=["scopes"])


@router.get("", response_model=list[ScopePublic], responses=AUTH_ERRORS)
async def list_scopes(_: RolesRead, session: SessionDep) -> list[ScopePublic]:
    """The scope catalogue: built-in scopes and custom ones for other services."""
    return await roles_service.list_scopes(session)


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=ScopePublic,
    responses={**AUTH_ERRORS, 409: {"description": "Scope exists"}},
)
async def create_scope(
    body: ScopeCreate, principal: RolesWrite, session: SessionDep, client: ClientDep
) -> ScopePublic:
    """Add a custom scope."""
    scope = await roles_service.create_scope(session, name=body.name, description=body.description)
    await audit.record(
        session,
        action="scope.create",
        actor=principal.account_id,
        target=scope.name,
        ip=client.ip,
        detail={},
    )
    return scope


@router.delete(
    "/{name}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses={
        **AUTH_ERRORS,
        404: {"description": "No such scope"},
        409: {"description": "Built-in scope"},
    },
)
async def delete_scope(
    name: Annotated[str, Path(max_length=64, pattern=r"^[^\x00]*$")],
    principal: RolesWrite,
    session: SessionDep,
    client: ClientDep,
) -> Response:
    """Delete a custom scope; holders' tokens are refused from their next request."""
    await roles_service.delete_scope(session, actor=principal.account_id, name=name)
    await audit.record(
        session,
        action="scope.delete",
        actor=principal.account_id,
        target=name,
        ip=client.ip,
        detail={},
    )
    return Response(status_code=status.HTTP_204_NO_CONTENT)
