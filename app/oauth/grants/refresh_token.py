"""The refresh token grant (RFC 6749 §6): rotation with reuse detection, in
`sessions.service.refresh`."""

from sqlalchemy.ext.asyncio import AsyncSession

from app.authz.catalogue import parse_scope
from app.oauth.grants.base import TokenRequest, grant
from app.oauth.scopes import check_catalogue
from app.sessions import service as sessions_service
from app.sessions.schemas import TokenResponse
from app.state import State


@grant("refresh_token")
async def refresh_token_grant(
    db: AsyncSession, request: TokenRequest, state: State
) -> TokenResponse:
    (token,) = request.require("refresh_token")
    requested = parse_scope(request.params.get("scope"))
    await check_catalogue(db, requested)
    client = request.client.client
    return await sessions_service.refresh(
        db,
        settings=state.settings,
        keyring=state.keyring,
        refresh_token=token,
        requested=requested,
        ip=request.origin.ip,
        client_id=client.client_id,
        scope_cap=set(client.allowed_scopes) if client.allowed_scopes else None,
    )
