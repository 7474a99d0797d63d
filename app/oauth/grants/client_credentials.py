"""The client credentials grant (RFC 6749 §4.4): a confidential client gets an
access token for itself. Its scopes come from its roles through the same role ->
scope model as an account's, never the account scopes `me:*`; the requested ones
it holds, or all it holds when none were requested. No refresh token (§4.4.3)."""

from sqlalchemy.ext.asyncio import AsyncSession

from app.authz.catalogue import parse_scope
from app.clients import service as clients_service
from app.oauth.errors import UnauthorizedClient
from app.oauth.grants.base import TokenRequest, grant
from app.oauth.scopes import check_catalogue
from app.sessions.schemas import TokenResponse
from app.state import State


@grant("client_credentials")
async def client_credentials_grant(
    db: AsyncSession, request: TokenRequest, state: State
) -> TokenResponse:
    client = request.client.client
    if client.type != clients_service.CONFIDENTIAL:  # registration refuses it; kept as a check
        raise UnauthorizedClient("Only a confidential client may use client_credentials")
    requested = parse_scope(request.params.get("scope"))
    await check_catalogue(db, requested)
    held = clients_service.own_scopes(set(request.client.scopes))
    return await clients_service.issue_client_token(
        db,
        settings=state.settings,
        keyring=state.keyring,
        client=client,
        scopes=(set(requested) & held) if requested else held,
        ip=request.origin.ip,
    )
