"""The `Security` dependencies every protected route declares its scopes with."""

from typing import Annotated

from fastapi import Depends, Security
from fastapi.openapi.models import OAuth2 as OAuth2Model
from fastapi.openapi.models import (
    OAuthFlowAuthorizationCode,
    OAuthFlowPassword,
)
from fastapi.openapi.models import OAuthFlows as OAuthFlowsModel
from fastapi.security import OAuth2PasswordBearer, SecurityScopes

from app.authz import bearer
from app.authz.catalogue import BUILTIN_SCOPES, AccountPrincipal, Principal
from app.core.db import DbSession
from app.core.errors import InsufficientScope, InvalidToken, NotAuthenticated
from app.state import StateDep


class PasswordOrCodeBearer(OAuth2PasswordBearer):
    """Reads the token as `OAuth2PasswordBearer` does, from the Authorization
    header only (RFC 6750 §2.1: a token in the query string or a form field
    counts as none), and documents both ways to get one: the password flow and
    the authorization code flow with PKCE (what Swagger UI's Authorize offers)."""

    def __init__(self, *, token_url: str, authorization_url: str, scopes: dict[str, str]):
        # The scheme keeps the name the OpenAPI document always gave it.
        super().__init__(
            tokenUrl=token_url,
            scopes=scopes,
            auto_error=False,
            scheme_name="OAuth2PasswordBearer",
        )
        self.model = OAuth2Model(
            flows=OAuthFlowsModel(
                password=OAuthFlowPassword(tokenUrl=token_url, scopes=scopes),
                authorizationCode=OAuthFlowAuthorizationCode(
                    authorizationUrl=authorization_url, tokenUrl=token_url, scopes=scopes
                ),
            )
        )


oauth2_scheme = PasswordOrCodeBearer(
    token_url="/auth/token",  # noqa: S106 - a path, not a password
    authorization_url="/oauth/authorize",
    scopes=BUILTIN_SCOPES,
)


async def require_scopes(
    security_scopes: SecurityScopes,
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


AnyToken = Annotated[AccountPrincipal, Security(require_account, scopes=[])]
MeRead = Annotated[AccountPrincipal, Security(require_account, scopes=["me:read"])]
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
