import uuid
from typing import Annotated

from fastapi import Path, Response, status

from app.accounts import service as accounts_service
from app.accounts.schemas import AccountPublic
from app.authz.dependencies import AUTH_ERRORS, RolesRead, RolesWrite
from app.core.db import DbSession, transactional_router
from app.core.errors import answers
from app.core.schemas import NO_NUL
from app.roles import service as roles_service
from app.roles.schemas import RoleCreate, RolePublic, RoleUpdate, ScopeCreate, ScopePublic

router = transactional_router("/roles", tag="roles", responses=AUTH_ERRORS)
scopes_router = transactional_router("/scopes", tag="scopes", responses=AUTH_ERRORS)
assignment_router = transactional_router("/accounts", tag="accounts", responses=AUTH_ERRORS)

NameParam = Annotated[str, Path(max_length=64, pattern=NO_NUL)]
ROLE_NOT_FOUND = {404: "No such role"}


@router.get("")
async def list_roles(_: RolesRead, db: DbSession) -> list[RolePublic]:
    """Every role with its scopes."""
    return await roles_service.list_roles(db)


@router.post("", status_code=status.HTTP_201_CREATED, responses=answers({409: "Role exists"}))
async def create_role(body: RoleCreate, actor: RolesWrite, db: DbSession) -> RolePublic:
    """Create a role. Needs every scope it carries."""
    return await roles_service.create_role(db, actor=actor, role=body)


@router.get("/{name}", responses=answers(ROLE_NOT_FOUND))
async def read_role(name: NameParam, _: RolesRead, db: DbSession) -> RolePublic:
    """One role."""
    return await roles_service.get_role(db, name)


@router.patch(
    "/{name}",
    responses=answers(ROLE_NOT_FOUND, {409: "The admin role's scopes are fixed"}),
)
async def update_role(
    name: NameParam, body: RoleUpdate, actor: RolesWrite, db: DbSession
) -> RolePublic:
    """Change a role's description or scopes; holders' tokens are refused from the next request."""
    return await roles_service.update_role(db, actor=actor, name=name, change=body)


@router.delete(
    "/{name}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=answers(ROLE_NOT_FOUND, {409: "Built-in role"}),
)
async def delete_role(name: NameParam, actor: RolesWrite, db: DbSession) -> Response:
    """Delete a custom role."""
    await roles_service.delete_role(db, actor=actor, name=name)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@scopes_router.get("")
async def list_scopes(_: RolesRead, db: DbSession) -> list[ScopePublic]:
    """The scope catalogue: built-in scopes and custom ones for other services."""
    return await roles_service.list_scopes(db)


@scopes_router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    responses=answers({409: "Scope exists"}),
)
async def create_scope(body: ScopeCreate, actor: RolesWrite, db: DbSession) -> ScopePublic:
    """Add a custom scope."""
    return await roles_service.create_scope(db, actor=actor, scope=body)


# A path converter: a custom scope stored before names were restricted (CONTRACT.md,
# "Built-in scopes and roles") may hold a "/", and must still be deletable.
@scopes_router.delete(
    "/{name:path}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=answers({404: "No such scope", 409: "Built-in scope"}),
)
async def delete_scope(name: NameParam, actor: RolesWrite, db: DbSession) -> Response:
    """Delete a custom scope; holders' tokens are refused from their next request."""
    await roles_service.delete_scope(db, actor=actor, name=name)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@assignment_router.put(
    "/{account_id}/roles/{role}",
    responses=answers({404: "No such account or role"}),
)
async def assign_role(
    account_id: uuid.UUID, role: NameParam, actor: RolesWrite, db: DbSession
) -> AccountPublic:
    """Give an account a role (idempotent). Needs every scope the role carries."""
    account = await roles_service.assign_role(db, actor=actor, account_id=account_id, role=role)
    return (await accounts_service.to_public(db, [account]))[0]


@assignment_router.delete(
    "/{account_id}/roles/{role}",
    responses=answers({404: "No such account or role", 409: "Conflict (taken, or the last admin)"}),
)
async def unassign_role(
    account_id: uuid.UUID, role: NameParam, actor: RolesWrite, db: DbSession
) -> AccountPublic:
    """Take a role from an account; its tokens are refused from the next request."""
    account = await roles_service.unassign_role(db, actor=actor, account_id=account_id, role=role)
    return (await accounts_service.to_public(db, [account]))[0]
