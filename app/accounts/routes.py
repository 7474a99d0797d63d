import uuid
from typing import Annotated

from fastapi import APIRouter, Query, Response, status

from app.accounts import service as accounts_service
from app.accounts.models import Account
from app.accounts.schemas import (
    AccountCreate,
    AccountPublic,
    AccountUpdate,
    PasswordChange,
    SignupRequest,
)
from app.authz.catalogue import USER_ROLE
from app.authz.dependencies import (
    AUTH_ERRORS,
    AccountsRead,
    AccountsWrite,
    MeAccount,
    MeWrite,
)
from app.core.db import DbSession
from app.core.network import OriginDep
from app.core.pagination import PageQuery
from app.core.schemas import NO_NUL, Page
from app.state import HasherDep, SettingsDep, StateDep

router = APIRouter(prefix="/accounts", tags=["accounts"])
signup_router = APIRouter(prefix="/auth", tags=["auth"])

NOT_FOUND: dict[int | str, dict[str, str]] = {404: {"description": "No such account or role"}}
CONFLICT: dict[int | str, dict[str, str]] = {
    409: {"description": "Conflict (taken, or the last admin)"}
}


async def public(db: DbSession, account: Account) -> AccountPublic:
    return (await accounts_service.to_public(db, [account]))[0]


@signup_router.post(
    "/signup",
    status_code=status.HTTP_201_CREATED,
    response_model=AccountPublic,
    responses={
        403: {"description": "Self-signup is off"},
        409: {"description": "Username or email taken"},
        429: {"description": "Too many signups"},
    },
)
async def signup(
    body: SignupRequest,
    db: DbSession,
    settings: SettingsDep,
    hasher: HasherDep,
    origin: OriginDep,
) -> AccountPublic:
    """Create an account holding the `user` role."""
    account = await accounts_service.signup(
        db,
        settings=settings,
        hasher=hasher,
        username=body.username,
        password=body.password,
        email=body.email,
        origin=origin,
    )
    return await public(db, account)


@router.get("/me", response_model=AccountPublic, responses=AUTH_ERRORS)
async def read_own_account(me: MeAccount, db: DbSession) -> AccountPublic:
    """The caller's own account."""
    if me.account is not None:  # a session's token: its liveness check read it all
        return accounts_service.live_public(me.account)
    return await public(db, await accounts_service.get_account(db, me.principal.account_id))


@router.post(
    "/me/password",
    status_code=status.HTTP_204_NO_CONTENT,
    responses={**AUTH_ERRORS, 400: {"description": "Current password wrong"}},
)
async def change_own_password(
    body: PasswordChange, principal: MeWrite, db: DbSession, state: StateDep, origin: OriginDep
) -> Response:
    """Change the caller's password; every other session ends."""
    await accounts_service.change_password(
        db,
        settings=state.settings,
        hasher=state.hasher,
        slots=state.login_slots,
        account_id=principal.account_id,
        session_id=principal.session_id,
        current_password=body.current_password,
        new_password=body.new_password,
        origin=origin,
    )
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("", response_model=Page[AccountPublic], responses=AUTH_ERRORS)
async def list_accounts(
    _: AccountsRead,
    db: DbSession,
    page: PageQuery,
    q: Annotated[str | None, Query(max_length=64, pattern=NO_NUL)] = None,
    role: Annotated[str | None, Query(max_length=64, pattern=NO_NUL)] = None,
    is_active: bool | None = None,
) -> Page[AccountPublic]:
    """Accounts in creation order, a page at a time."""
    return await accounts_service.list_accounts(
        db, limit=page.limit, cursor=page.cursor, q=q, role=role, is_active=is_active
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
    db: DbSession,
    hasher: HasherDep,
    origin: OriginDep,
) -> AccountPublic:
    """Create an account with the given roles (default: `user`)."""
    account = await accounts_service.create_account(
        db,
        hasher=hasher,
        actor=principal.account_id,
        actor_scopes=principal.scopes,
        username=body.username,
        password=body.password,
        email=body.email,
        roles=body.roles if body.roles is not None else [USER_ROLE],
        origin=origin,
    )
    return await public(db, account)


@router.get("/{account_id}", response_model=AccountPublic, responses={**AUTH_ERRORS, **NOT_FOUND})
async def read_account(account_id: uuid.UUID, _: AccountsRead, db: DbSession) -> AccountPublic:
    """One account."""
    return await public(db, await accounts_service.get_account(db, account_id))


@router.patch(
    "/{account_id}",
    response_model=AccountPublic,
    responses={**AUTH_ERRORS, **NOT_FOUND, **CONFLICT},
)
async def update_account(
    account_id: uuid.UUID,
    body: AccountUpdate,
    principal: AccountsWrite,
    db: DbSession,
    origin: OriginDep,
) -> AccountPublic:
    """Enable or disable an account, or change its email. Disabling ends its sessions."""
    account = await accounts_service.update_account(
        db,
        actor=principal.account_id,
        ip=origin.ip,
        account_id=account_id,
        is_active=body.is_active,
        email=body.email,
        email_given="email" in body.model_fields_set,
    )
    return await public(db, account)


@router.delete(
    "/{account_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses={**AUTH_ERRORS, **NOT_FOUND, **CONFLICT},
)
async def delete_account(
    account_id: uuid.UUID, principal: AccountsWrite, db: DbSession, origin: OriginDep
) -> Response:
    """Delete an account and end its sessions."""
    await accounts_service.delete_account(
        db, actor=principal.account_id, ip=origin.ip, account_id=account_id
    )
    return Response(status_code=status.HTTP_204_NO_CONTENT)
