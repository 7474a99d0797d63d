import uuid
from typing import Annotated

from fastapi import APIRouter, Path, Query, Response, status

from app.api.deps import (
    AUTH_ERRORS,
    AccountsRead,
    AccountsWrite,
    ClientDep,
    HasherDep,
    LoginSlotsDep,
    MeRead,
    MeWrite,
    RolesWrite,
    SessionDep,
    SettingsDep,
)
from app.models import Account
from app.schemas import AccountCreate, AccountPublic, AccountUpdate, Page, PasswordChange
from app.security.scopes import USER_ROLE
from app.services import accounts as accounts_service
from app.services import audit
from app.services import auth as auth_service
from app.services import roles as roles_service

router = APIRouter(prefix="/accounts", tags=["accounts"])

NOT_FOUND: dict[int | str, dict[str, str]] = {404: {"description": "No such account or role"}}
CONFLICT: dict[int | str, dict[str, str]] = {
    409: {"description": "Conflict (taken, or the last admin)"}
}
# PostgreSQL cannot compare text with NUL in it: refuse it here (422), not with a 500.
NO_NUL = r"^[^\x00]*$"
RoleParam = Annotated[str, Path(max_length=64, pattern=NO_NUL)]


async def _public(session: SessionDep, account: Account) -> AccountPublic:
    return (await accounts_service.to_public(session, [account]))[0]


@router.get("/me", response_model=AccountPublic, responses=AUTH_ERRORS)
async def read_own_account(principal: MeRead, session: SessionDep) -> AccountPublic:
    """The caller's own account."""
    return await _public(session, await accounts_service.get_account(session, principal.account_id))


@router.post(
    "/me/password",
    status_code=status.HTTP_204_NO_CONTENT,
    responses={**AUTH_ERRORS, 400: {"description": "Current password wrong"}},
)
async def change_own_password(
    body: PasswordChange,
    principal: MeWrite,
    session: SessionDep,
    settings: SettingsDep,
    hasher: HasherDep,
    slots: LoginSlotsDep,
    client: ClientDep,
) -> Response:
    """Change the caller's password; every other session ends."""
    await auth_service.change_password(
        session,
        settings=settings,
        hasher=hasher,
        slots=slots,
        account_id=principal.account_id,
        session_id=principal.session_id,
        current_password=body.current_password,
        new_password=body.new_password,
        client=client,
    )
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("", response_model=Page[AccountPublic], responses=AUTH_ERRORS)
async def list_accounts(
    _: AccountsRead,
    session: SessionDep,
    limit: Annotated[int, Query(ge=1, le=100)] = 50,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
    q: Annotated[str | None, Query(max_length=64, pattern=NO_NUL)] = None,
    role: Annotated[str | None, Query(max_length=64, pattern=NO_NUL)] = None,
    is_active: bool | None = None,
) -> Page[AccountPublic]:
    """Accounts in creation order, a page at a time."""
    return await accounts_service.list_accounts(
        session, limit=limit, cursor=cursor, q=q, role=role, is_active=is_active
    )


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=AccountPublic,
    responses={**AUTH_ERRORS, **NOT_FOUND, **CONFLICT},
)
async def create_account(
    body: AccountCreate,
    principal: AccountsWrite,
    session: SessionDep,
    hasher: HasherDep,
    client: ClientDep,
) -> AccountPublic:
    """Create an account with the given roles (default: `user`)."""
    account = await auth_service.create_account_as_admin(
        session,
        hasher=hasher,
        actor=principal.account_id,
        username=body.username,
        password=body.password,
        email=body.email,
        roles=body.roles if body.roles is not None else [USER_ROLE],
        client=client,
    )
    return await _public(session, account)


@router.get("/{account_id}", response_model=AccountPublic, responses={**AUTH_ERRORS, **NOT_FOUND})
async def read_account(
    account_id: uuid.UUID, _: AccountsRead, session: SessionDep
) -> AccountPublic:
    """One account."""
    return await _public(session, await accounts_service.get_account(session, account_id))


@router.patch(
    "/{account_id}",
    response_model=AccountPublic,
    responses={**AUTH_ERRORS, **NOT_FOUND, **CONFLICT},
)
async def update_account(
    account_id: uuid.UUID,
    body: AccountUpdate,
    principal: AccountsWrite,
    session: SessionDep,
    client: ClientDep,
) -> AccountPublic:
    """Enable or disable an account, or change its email. Disabling ends its sessions."""
    account, changed = await accounts_service.update_account(
        session, account_id=account_id, changes=body.model_dump(exclude_unset=True)
    )
    if changed:
        await audit.record(
            session,
            action="account.update",
            actor=principal.account_id,
            target=str(account_id),
            ip=client.ip,
            detail=changed,
        )
    return await _public(session, account)


@router.delete(
    "/{account_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses={**AUTH_ERRORS, **NOT_FOUND, **CONFLICT},
)
async def delete_account(
    account_id: uuid.UUID, principal: AccountsWrite, session: SessionDep, client: ClientDep
) -> Response:
    """Delete an account and end its sessions."""
    account = await accounts_service.delete_account(session, account_id=account_id)
    await audit.record(
        session,
        action="account.delete",
        actor=principal.account_id,
        target=str(account_id),
        ip=client.ip,
        detail={"username": account.username},
    )
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.put(
    "/{account_id}/roles/{role}",
    response_model=AccountPublic,
    responses={**AUTH_ERRORS, **NOT_FOUND},
)
async def assign_role(
    account_id: uuid.UUID,
    role: RoleParam,
    principal: RolesWrite,
    session: SessionDep,
    client: ClientDep,
) -> AccountPublic:
    """Give an account a role (idempotent). Needs every scope the role carries."""
    account, changed = await roles_service.assign_role(
        session, actor=principal.account_id, account_id=account_id, role=role
    )
    if changed:
        await audit.record(
            session,
            action="role.assign",
            actor=principal.account_id,
            target=str(account_id),
            ip=client.ip,
            detail={"role": role},
        )
    return await _public(session, account)


@router.delete(
    "/{account_id}/roles/{role}",
    response_model=AccountPublic,
    responses={**AUTH_ERRORS, **NOT_FOUND, **CONFLICT},
)
async def unassign_role(
    account_id: uuid.UUID,
    role: RoleParam,
    principal: RolesWrite,
    session: SessionDep,
    client: ClientDep,
) -> AccountPublic:
    """Take a role from an account; its tokens are refused from the next request."""
    account, changed = await roles_service.unassign_role(
        session, actor=principal.account_id, account_id=account_id, role=role
    )
    if changed:
        await audit.record(
            session,
            action="role.unassign",
            actor=principal.account_id,
            target=str(account_id),
            ip=client.ip,
            detail={"role": role},
        )
    return await _public(session, account)
