"""The authorization code grant (RFC 6749 §4.1.3) with PKCE (RFC 7636 §4.5):
the code from the hosted sign-in, exchanged for a session's tokens, and an ID
token when `openid` was granted (OpenID Connect Core §3.1.3)."""

from sqlalchemy.ext.asyncio import AsyncSession

from app.authorization import service as authorization_service
from app.oauth.grants.base import TokenRequest, grant
from app.sessions.schemas import TokenResponse
from app.state import State


@grant("authorization_code")
async def authorization_code_grant(
    db: AsyncSession, request: TokenRequest, state: State
) -> TokenResponse:
    (code,) = request.require("code")
    return await authorization_service.exchange(
        db,
        settings=state.settings,
        keyring=state.keyring,
        client=request.client.client,
        code=code,
        redirect_uri=request.params.get("redirect_uri"),
        code_verifier=request.params.get("code_verifier"),
        origin=request.origin,
    )
