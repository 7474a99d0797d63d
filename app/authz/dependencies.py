"""The `Security` dependency every protected route declares its scopes with."""

import uuid
from typing import Annotated

from fastapi import Depends, Security
from fastapi.security import OAuth2PasswordBearer, SecurityScopes

from app.authz.catalogue import BUILTIN_SCOPES, Principal, parse_scope
from app.core.db import DbSession
from app.core.errors import InsufficientScope, InvalidToken, NotAuthenticated
from app.crypto.jwt import TokenError
from app.sessions import service as sessions_service
from app.state import StateDep

# Reads the token from the Authorization header only (RFC 6750 §2.1); a token in
# the query string or a form field counts as none.
oauth2_scheme = OAuth2PasswordBearer(
    tokenUrl="/auth/token", scopes=BUILTIN_SCOPES, auto_error=False
)


async def require_scopes(
    security_scopes: SecurityScopes,
    state: StateDep,
    db: DbSession,
    token: str | None = Depends(oauth2_scheme),
) -> Principal:
    """Verify the bearer token, check its session is live, then its scopes.

    401 when the token is missing or not valid now, 403 when it lacks a scope;
    both with the RFC 6750 §3 challenge naming what the endpoint needs.
    """
    needed = security_scopes.scope_str
    if not token:
        raise NotAuthenticated(scope=needed)
    try:
        claims = await state.keyring.verify(token)
        principal = Principal(
            account_id=uuid.UUID(claims["sub"]),
            session_id=uuid.UUID(claims["sid"]),
            scopes=frozenset(parse_scope(claims["scope"])),
        )
        version = claims["ver"]
        if not isinstance(version, int) or isinstance(version, bool):
            raise TokenError("bad ver")
    except (TokenError, KeyError, ValueError, TypeError, AttributeError) as exc:
        raise InvalidToken(scope=needed) from exc
    if not await sessions_service.token_is_live(
        db,
        account_id=principal.account_id,
        session_id=principal.session_id,
        authz_version=version,
        idle_timeout=state.settings.session_idle_timeout_seconds,
    ):
        raise InvalidToken(scope=needed)
    if not set(security_scopes.scopes) <= principal.scopes:
        raise InsufficientScope(scope=needed)
    return principal


AnyToken = Annotated[Principal, Security(require_scopes, scopes=[])]
MeRead = Annotated[Principal, Security(require_scopes, scopes=["me:read"])]
MeWrite = Annotated[Principal, Security(require_scopes, scopes=["me:write"])]
AccountsRead = Annotated[Principal, Security(require_scopes, scopes=["accounts:read"])]
AccountsWrite = Annotated[Principal, Security(require_scopes, scopes=["accounts:write"])]
RolesRead = Annotated[Principal, Security(require_scopes, scopes=["roles:read"])]
RolesWrite = Annotated[Principal, Security(require_scopes, scopes=["roles:write"])]
AuditRead = Annotated[Principal, Security(require_scopes, scopes=["audit:read"])]
MetricsRead = Annotated[Principal, Security(require_scopes, scopes=["metrics:read"])]

# Error answers every protected route can give, for the OpenAPI document.
AUTH_ERRORS: dict[int | str, dict[str, str]] = {
    401: {"description": "Missing, invalid, expired or revoked token"},
    403: {"description": "The token lacks a needed scope"},
}
