"""The `Security` dependencies every protected route declares its scopes with."""

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request, Security
from fastapi.security import OAuth2PasswordBearer, SecurityScopes

from app.authz import bearer
from app.authz.catalogue import BUILTIN_SCOPES, AccountPrincipal, Principal
from app.core.db import DbSession
from app.core.errors import InsufficientScope, InvalidToken, NotAuthenticated
from app.sessions.service import LiveAccount
from app.state import StateDep

# Reads the token from the Authorization header only (RFC 6750 §2.1); a token in
# the query string or a form field counts as none.
oauth2_scheme = OAuth2PasswordBearer(
    tokenUrl="/auth/token", scopes=BUILTIN_SCOPES, auto_error=False
)


# Where `require_scopes` leaves the verified token for a later dependency of the
# same request (`require_own_account`), so the liveness statement is not repeated.
_VERIFIED = "gatehouse_verified_token"


async def require_scopes(
    security_scopes: SecurityScopes,
    request: Request,
    state: StateDep,
    db: DbSession,
    token: str | None = Depends(oauth2_scheme),
) -> Principal:
    """Verify the bearer token (a session's, a client's own, or a personal access
    token), check it is live, then its scopes.

    401 when the token is missing or not valid now, 403 when it lacks a scope;
    both with the RFC 6750 §3 challenge naming what the endpoint needs.
    """
    needed = security_scopes.scope_str
    if not token:
        raise NotAuthenticated(scope=needed)
    verified = await bearer.verify(db, state, token)
    if verified is None:
        raise InvalidToken(scope=needed)
    principal = verified.principal
    if not set(security_scopes.scopes) <= principal.scopes:
        raise InsufficientScope(scope=needed)
    setattr(request.state, _VERIFIED, verified)
    return principal


class NoAccount(InsufficientScope):
    detail = "This endpoint acts as an account; a client's own token has none"


async def require_account(
    security_scopes: SecurityScopes,
    principal: Annotated[Principal, Security(require_scopes)],
) -> AccountPrincipal:
    """As `require_scopes`, for routes that act as an account (its own data, or as
    the actor an admin change is checked against and recorded under): a client's
    own token, which speaks for no account, gets 403."""
    if principal.account_id is None:
        raise NoAccount(scope=security_scopes.scope_str)
    return AccountPrincipal(
        account_id=principal.account_id,
        session_id=principal.session_id,
        scopes=principal.scopes,
        client_id=principal.client_id,
        kind=principal.kind,
        token_id=principal.token_id,
    )


@dataclass(frozen=True, slots=True)
class OwnAccount:
    """The caller, and its account as the token's liveness check read it (roles
    and scopes included) when the token is a session's; None for a personal
    access token, whose check reads the account without its roles."""

    principal: AccountPrincipal
    account: LiveAccount | None


async def require_own_account(
    request: Request, principal: Annotated[AccountPrincipal, Security(require_account)]
) -> OwnAccount:
    verified: bearer.Verified = getattr(request.state, _VERIFIED)
    return OwnAccount(principal, verified.account)


AnyToken = Annotated[AccountPrincipal, Security(require_account, scopes=[])]
MeRead = Annotated[AccountPrincipal, Security(require_account, scopes=["me:read"])]
MeAccount = Annotated[OwnAccount, Security(require_own_account, scopes=["me:read"])]
MeWrite = Annotated[AccountPrincipal, Security(require_account, scopes=["me:write"])]
AccountsRead = Annotated[Principal, Security(require_scopes, scopes=["accounts:read"])]
AccountsWrite = Annotated[AccountPrincipal, Security(require_account, scopes=["accounts:write"])]
# Revoking another account's personal access token needs no acting account.
AccountsAdmin = Annotated[Principal, Security(require_scopes, scopes=["accounts:write"])]
RolesRead = Annotated[Principal, Security(require_scopes, scopes=["roles:read"])]
RolesWrite = Annotated[AccountPrincipal, Security(require_account, scopes=["roles:write"])]
AuditRead = Annotated[Principal, Security(require_scopes, scopes=["audit:read"])]
MetricsRead = Annotated[Principal, Security(require_scopes, scopes=["metrics:read"])]
ClientsRead = Annotated[Principal, Security(require_scopes, scopes=["clients:read"])]
ClientsWrite = Annotated[Principal, Security(require_scopes, scopes=["clients:write"])]

# Error answers every protected route can give, for the OpenAPI document.
AUTH_ERRORS: dict[int | str, dict[str, str]] = {
    401: {"description": "Missing, invalid, expired or revoked token"},
    403: {"description": "The token lacks a needed scope"},
}
