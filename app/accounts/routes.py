import uuid
from typing import Annotated

from fastapi import Query, Response, status

from app.accounts import service as accounts_service
from app.accounts.models import Account
from app.accounts.schemas import (
    AccountCreate,
    AccountPublic,
    AccountUpdate,
    PasswordChange,
    SignupRequest,
)
from app.authz.dependencies import AUTH_ERRORS, AccountsRead, AccountsWrite, MeAccount, MeWrite
from app.core.db import DbSession, transactional_router
from app.core.errors import answers
from app.core.network import OriginDep
from app.core.pagination import PageQuery
from app.core.schemas import NO_NUL, Page
from app.state import HasherDep, SettingsDep, StateDep

router = transactional_router("/accounts", tag="accounts", responses=AUTH_ERRORS)
signup_router = transactional_router("/auth", tag="auth")

NOT_FOUND = {404: "No such account or role"}
CONFLICT = {409: "Conflict (taken, or the last admin)"}


async def public(db: DbSession, account: Account) -> AccountPublic:
    return (await accounts_service.to_public(db, [account]))[0]


@signup_router.post(
    "/signup",
    status_code=status.HTTP_201_CREATED,
    responses=answers(
        {403: "Self-signup is off", 409: "Username or email taken", 429: "Too many signups"}
    ),
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
        db, settings=settings, hasher=hasher, new=body, origin=origin
    )
    return await public(db, account)


@router.get("/me")
async def read_own_account(me: MeAccount, db: DbSession) -> AccountPublic:
    """The caller's own account."""
    if me.account is not None:  # a session's token: its liveness check read it all
        return accounts_service.live_public(me.account)
    return await public(db, await accounts_service.get_account(db, me.principal.account_id))


@router.post(
    "/me/password",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=answers({400: "Current password wrong"}),
)
async def change_own_password(
    body: PasswordChange, actor: MeWrite, db: DbSession, state: StateDep, origin: OriginDep
) -> Response:
    """Change the caller's password; every other session ends."""
    await accounts_service.change_password(
        db,
        settings=state.settings,
        hasher=state.hasher,
        slots=state.login_slots,
        account_id=actor.principal.account_id,
        session_id=actor.principal.session_id,
        current_password=body.current_password,
        new_password=body.new_password,
        origin=origin,
    )
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("")
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


@router.post("", status_code=status.HTTP_201_CREATED, responses=answers(NOT_FOUND, CONFLICT))
async def create_account(
    body: AccountCreate,
    actor: AccountsWrite,
    db: DbSession,
    hasher: HasherDep,
) -> AccountPublic:
    """Create an account with the given roles (default: `user`)."""
    account = await accounts_service.create_account(db, actor=actor, hasher=hasher, account=body)
    return await public(db, account)


@router.get("/{account_id}", responses=answers(NOT_FOUND))
async def read_account(account_id: uuid.UUID, _: AccountsRead, db: DbSession) -> AccountPublic:
    """One account."""
    return await public(db, await accounts_service.get_account(db, account_id))


@router.patch("/{account_id}", responses=answers(NOT_FOUND, CONFLICT))
async def update_account(
    account_id: uuid.UUID,
    body: AccountUpdate,
    actor: AccountsWrite,
    db: DbSession,
) -> AccountPublic:
    """Enable or disable an account, or change its email. Disabling ends its sessions."""
    account = await accounts_service.update_account(
        db, actor=actor, account_id=account_id, change=body
    )
    return await public(db, account)


@router.delete(
    "/{account_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=answers(NOT_FOUND, CONFLICT),
)
async def delete_account(account_id: uuid.UUID, actor: AccountsWrite, db: DbSession) -> Response:
    """Delete an account and end its sessions."""
    await accounts_service.delete_account(db, actor=actor, account_id=account_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
