from typing import Annotated

from fastapi import APIRouter, Path, Response, status

from app.api.deps import AUTH_ERRORS, ClientDep, RolesRead, RolesWrite, SessionDep
from app.schemas import RoleCreate, RolePublic, RoleUpdate
from app.services import audit
from app.services import roles as roles_service

router = APIRouter(prefix="/roles", tags=["roles"])

# PostgreSQL cannot compare text with NUL in it: refuse it here (422), not with a 500.
RoleParam = Annotated[str, Path(max_length=64, pattern=r"^[^\x00]*$")]
NOT_FOUND: dict[int | str, dict[str, str]] = {404: {"description": "No such role"}}


@router.get("", response_model=list[RolePublic], responses=AUTH_ERRORS)
async def list_roles(_: RolesRead, session: SessionDep) -> list[RolePublic]:
    """Every role with its scopes."""
    return await roles_service.list_roles(session)


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=RolePublic,
    responses={**AUTH_ERRORS, 409: {"description": "Role exists"}},
)
async def create_role(
    body: RoleCreate, principal: RolesWrite, session: SessionDep, client: ClientDep
) -> RolePublic:
    """Create a role. Needs every scope it carries."""
    role = await roles_service.create_role(
        session,
        actor=principal.account_id,
        name=body.name,
        description=body.description,
        scopes=body.scopes,
    )
    await audit.record(
        session,
        action="role.create",
        actor=principal.account_id,
        target=role.name,
        ip=client.ip,
        detail={"scopes": role.scopes},
    )
    return role


@router.get("/{name}", response_model=RolePublic, responses={**AUTH_ERRORS, **NOT_FOUND})
async def read_role(name: RoleParam, _: RolesRead, session: SessionDep) -> RolePublic:
    """One role."""
    return await roles_service.get_role(session, name)


@router.patch(
    "/{name}",
    response_model=RolePublic,
    responses={
        **AUTH_ERRORS,
        **NOT_FOUND,
        409: {"description": "The admin role's scopes are fixed"},
    },
)
async def update_role(
    name: RoleParam, body: RoleUpdate, principal: RolesWrite, session: SessionDep, client: ClientDep
) -> RolePublic:
    """Change a role's description or scopes; holders' tokens are refused from the next request."""
    role, changed = await roles_service.update_role(
        session,
        actor=principal.account_id,
        name=name,
        description=body.description,
        scopes=body.scopes,
    )
    if changed:
        await audit.record(
            session,
            action="role.update",
            actor=principal.account_id,
            target=name,
            ip=client.ip,
            detail=changed,
        )
    return role


@router.delete(
    "/{name}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses={**AUTH_ERRORS, **NOT_FOUND, 409: {"description": "Built-in role"}},
)
async def delete_role(
    name: RoleParam, principal: RolesWrite, session: SessionDep, client: ClientDep
) -> Response:
    """Delete a custom role."""
    await roles_service.delete_role(session, actor=principal.account_id, name=name)
    await audit.record(
        session,
        action="role.delete",
        actor=principal.account_id,
        target=name,
        ip=client.ip,
        detail={},
    )
    return Response(status_code=status.HTTP_204_NO_CONTENT)
