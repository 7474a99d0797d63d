import uuid

from fastapi import Response, status

from app.authz.dependencies import AUTH_ERRORS, AccountsAdmin, AccountsRead, MeRead, MeWrite
from app.core.db import DbSession, transactional_router
from app.core.errors import answers
from app.personal_tokens import service as personal_tokens
from app.personal_tokens.schemas import (
    PersonalTokenCreate,
    PersonalTokenCreated,
    PersonalTokenPublic,
)
from app.state import SettingsDep

# Under /accounts, and included before the accounts router's `/{account_id}`
# routes, so that `/accounts/me/tokens` is never read as an account id.
router = transactional_router("/accounts", tag="personal access tokens", responses=AUTH_ERRORS)

NOT_FOUND = {404: "No such account or token"}


@router.get("/me/tokens")
async def list_own_tokens(principal: MeRead, db: DbSession) -> list[PersonalTokenPublic]:
    """The caller's personal access tokens (never the tokens themselves)."""
    return await personal_tokens.list_tokens(db, account_id=principal.account_id)


@router.post("/me/tokens", status_code=status.HTTP_201_CREATED)
async def create_own_token(
    body: PersonalTokenCreate,
    actor: MeWrite,
    db: DbSession,
    settings: SettingsDep,
    response: Response,
) -> PersonalTokenCreated:
    """Make a personal access token carrying some of the caller's scopes; the token
    is in this answer only. Needs a session's token (a personal access token gets 403)."""
    response.headers["Cache-Control"] = "no-store"
    return await personal_tokens.create_token(db, actor=actor, settings=settings, new=body)


@router.delete(
    "/me/tokens/{token_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=answers(NOT_FOUND),
)
async def revoke_own_token(token_id: uuid.UUID, actor: MeWrite, db: DbSession) -> Response:
    """Revoke one of the caller's tokens; it stops working at once."""
    await personal_tokens.revoke_token(
        db, actor=actor, account_id=actor.principal.account_id, token_id=token_id
    )
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/{account_id}/tokens", responses=answers(NOT_FOUND))
async def list_account_tokens(
    account_id: uuid.UUID, _: AccountsRead, db: DbSession
) -> list[PersonalTokenPublic]:
    """An account's personal access tokens."""
    return await personal_tokens.list_tokens(db, account_id=account_id, check_account=True)


@router.delete(
    "/{account_id}/tokens/{token_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=answers(NOT_FOUND),
)
async def revoke_account_token(
    account_id: uuid.UUID,
    token_id: uuid.UUID,
    actor: AccountsAdmin,
    db: DbSession,
) -> Response:
    """Revoke an account's token."""
    await personal_tokens.revoke_token(db, actor=actor, account_id=account_id, token_id=token_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
