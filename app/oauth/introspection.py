"""Token introspection (RFC 7662): whether a token is live now, and what it is.

One answer shape for a session's access token, a client's own token, a refresh
token and a personal access token; `{"active": false}` and nothing else for
anything not live (§2.2: an inactive token's answer must not tell why). Liveness
is judged exactly as Gatehouse's own endpoints judge a bearer (`authz.bearer`),
so a revocation shows here at once. Resource servers call this on every request:
after client authentication (one query) a token costs one more query.
"""

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from app.authz import bearer
from app.authz.catalogue import ALL_HELD, format_scope
from app.clients import service as clients_service
from app.clients.models import OAuthClient
from app.oauth.errors import InvalidRequest
from app.personal_tokens.service import PREFIX as PAT_PREFIX
from app.roles import service as roles_service
from app.sessions import service as sessions_service
from app.state import State

INACTIVE: dict[str, Any] = {"active": False}
MAX_TOKEN_LENGTH = 8192


async def _bearer_answer(db: AsyncSession, state: State, token: str) -> dict[str, Any] | None:
    verified = await bearer.verify(db, state, token)
    if verified is None:
        return None
    principal = verified.principal
    settings = state.settings
    answer: dict[str, Any] = {
        "active": True,
        "scope": format_scope(principal.scopes),
        "client_id": principal.client_id,
        "token_type": "Bearer",
        "iss": settings.issuer,
        "aud": settings.audience,
    }
    if verified.claims is not None:
        claims = verified.claims
        answer |= {
            "exp": claims["exp"],
            "iat": claims["iat"],
            "sub": claims["sub"],
            "jti": claims["jti"],
            "iss": claims["iss"],
            "aud": claims["aud"],
        }
        if "sid" in claims:
            answer["sid"] = claims["sid"]
    elif (row := verified.personal_token) is not None:
        answer |= {
            "exp": int(row.expires_at.timestamp()),
            "iat": int(row.created_at.timestamp()),
            "sub": str(row.account_id),
            "jti": str(row.id),
        }
    if verified.username is not None:
        answer["username"] = verified.username
    return answer


async def _refresh_answer(db: AsyncSession, state: State, token: str) -> dict[str, Any] | None:
    found = await sessions_service.live_refresh_token(db, settings=state.settings, token=token)
    if found is None:
        return None
    refresh_token, auth_session, account = found
    settings = state.settings
    if auth_session.scope == ALL_HELD:
        # A login that named no scope: the next refresh carries what the account
        # holds then, within the client's cap.
        held, _ = await roles_service.effective_scopes(db, account.id)
        client = await db.get(OAuthClient, auth_session.client_id)
        scope = format_scope(clients_service.user_scope_cap(client, held) if client else held)
    else:
        scope = auth_session.scope
    return {
        "active": True,
        "scope": scope,
        "client_id": auth_session.client_id,
        "username": account.username,
        "token_type": "refresh_token",
        "exp": int(sessions_service.session_expiry(auth_session, settings).timestamp()),
        "iat": int(refresh_token.created_at.timestamp()),
        "sub": str(account.id),
        "aud": settings.audience,
        "iss": settings.issuer,
        "jti": refresh_token.token_hash[:32],
        "sid": str(auth_session.id),
    }


async def introspect(db: AsyncSession, state: State, *, token: str | None) -> dict[str, Any]:
    if token is None:
        raise InvalidRequest("token is required")
    if not token or len(token) > MAX_TOKEN_LENGTH or "\x00" in token:
        return INACTIVE
    # A JWT or a personal access token is a bearer; anything else can only be a
    # refresh token (which never has either shape), so the hint is not needed (§2.1).
    if token.count(".") == 2 or token.startswith(PAT_PREFIX):
        answer = await _bearer_answer(db, state, token)
    else:
        answer = await _refresh_answer(db, state, token)
    return answer if answer is not None else INACTIVE
