"""The `Security` dependencies every protected route declares its scopes with."""

from dataclasses import dataclass
from typing import Annotated, cast

from fastapi import Depends, Request, Security
from fastapi.openapi.models import OAuth2 as OAuth2Model
from fastapi.openapi.models import (
    OAuthFlowAuthorizationCode,
    OAuthFlowPassword,
)
from fastapi.openapi.models import OAuthFlows as OAuthFlowsModel
from fastapi.security import OAuth2PasswordBearer, SecurityScopes

from app.authz import bearer
from app.authz.catalogue import BUILTIN_SCOPES, AccountPrincipal, Actor, Principal
from app.core.db import get_db
from app.core.errors import InsufficientScope, InvalidToken, NotAuthenticated, answers
from app.core.network import client_ip
from app.sessions.service import LiveAccount
from app.state import state_of


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


_VERIFIED = "gatehouse.verified"  # the request's verified token, in its ASGI scope


async def verified_token(request: Request, token: str | None) -> bearer.Verified | None:
    """The request's bearer token, verified and checked live; None when there is
    none or it is not valid now. Kept on the request, so a route that needs it
    again (the account its liveness check read) does not repeat the statement."""
    scope = request.scope
    if _VERIFIED not in scope:
        verified = (
            await bearer.verify(await get_db(request), state_of(request), token) if token else None
        )
        scope[_VERIFIED] = verified
    return cast(bearer.Verified | None, scope[_VERIFIED])


async def _principal(
    security_scopes: SecurityScopes, request: Request, token: str | None
) -> Principal:
    """Verify the bearer token (a session's, a client's own, or a personal access
    token), check it is live, then its scopes.

    401 when the token is missing or not valid now, 403 when it lacks a scope;
    both with the RFC 6750 §3 challenge naming what the endpoint needs.
    """
    needed = security_scopes.scope_str
    if not token:
        raise NotAuthenticated(scope=needed)
    verified = await verified_token(request, token)
    if verified is None:
        raise InvalidToken(scope=needed)
    principal = verified.principal
    if not set(security_scopes.scopes) <= principal.scopes:
        raise InsufficientScope(scope=needed)
    return principal


class NoAccount(InsufficientScope):
    detail = "This endpoint acts as an account; a client's own token has none"


async def _account(
    security_scopes: SecurityScopes, request: Request, token: str | None
) -> AccountPrincipal:
    """As `_principal`, for routes that act as an account (its own data, or as
    the actor an admin change is checked against and recorded under): a client's
    own token, which speaks for no account, gets 403."""
    account = (await _principal(security_scopes, request, token)).as_account()
    if account is None:
        raise NoAccount(scope=security_scopes.scope_str)
    return account


# The gates. Each is one dependency with the bearer scheme under it, rather than
# a chain of `Security` dependencies each wrapping the last: FastAPI resolves
# every node of the tree on every request (`solve_dependencies` is among the top
# entries of issue 15's profile of a protected request).


async def require_scopes(
    security_scopes: SecurityScopes, request: Request, token: str | None = Depends(oauth2_scheme)
) -> Principal:
    """An account or a client, through any kind of token, holding the scopes."""
    return await _principal(security_scopes, request, token)


async def require_account(
    security_scopes: SecurityScopes, request: Request, token: str | None = Depends(oauth2_scheme)
) -> AccountPrincipal:
    """An account, through a session's token or a personal access token."""
    return await _account(security_scopes, request, token)


async def acting_account(
    security_scopes: SecurityScopes, request: Request, token: str | None = Depends(oauth2_scheme)
) -> Actor[AccountPrincipal]:
    """An account making a change: the scopes come from the `Security` that uses it."""
    return Actor(await _account(security_scopes, request, token), client_ip(request))


async def acting(
    security_scopes: SecurityScopes, request: Request, token: str | None = Depends(oauth2_scheme)
) -> Actor[Principal]:
    """An account or a client (through its own token) making a change."""
    return Actor(await _principal(security_scopes, request, token), client_ip(request))


@dataclass(frozen=True, slots=True)
class OwnAccount:
    """The caller, and its account as the token's liveness check read it (roles
    and scopes included) when the token is a session's; None for a personal
    access token, whose check reads the account without its roles."""

    principal: AccountPrincipal
    account: LiveAccount | None


async def require_own_account(
    security_scopes: SecurityScopes, request: Request, token: str | None = Depends(oauth2_scheme)
) -> OwnAccount:
    principal = await _account(security_scopes, request, token)
    verified = await verified_token(request, token)
    return OwnAccount(principal, verified.account if verified else None)


# What the route tests look for: every non-public route depends on one of these.
GATES = frozenset({require_scopes, require_account, acting_account, acting, require_own_account})

AnyToken = Annotated[AccountPrincipal, Security(require_account, scopes=[])]
MeRead = Annotated[AccountPrincipal, Security(require_account, scopes=["me:read"])]
MeAccount = Annotated[OwnAccount, Security(require_own_account, scopes=["me:read"])]
MeWrite = Annotated[Actor[AccountPrincipal], Security(acting_account, scopes=["me:write"])]
AccountsRead = Annotated[Principal, Security(require_scopes, scopes=["accounts:read"])]
AccountsWrite = Annotated[
    Actor[AccountPrincipal], Security(acting_account, scopes=["accounts:write"])
]
# Revoking another account's personal access token needs no acting account.
AccountsAdmin = Annotated[Actor[Principal], Security(acting, scopes=["accounts:write"])]
RolesRead = Annotated[Principal, Security(require_scopes, scopes=["roles:read"])]
RolesWrite = Annotated[Actor[AccountPrincipal], Security(acting_account, scopes=["roles:write"])]
AuditRead = Annotated[Principal, Security(require_scopes, scopes=["audit:read"])]
MetricsRead = Annotated[Principal, Security(require_scopes, scopes=["metrics:read"])]
ClientsRead = Annotated[Principal, Security(require_scopes, scopes=["clients:read"])]
# OpenID Connect userinfo (Core §5.3): an account's token that carries `openid`.
OpenId = Annotated[AccountPrincipal, Security(require_account, scopes=["openid"])]
ClientsWrite = Annotated[Actor[Principal], Security(acting, scopes=["clients:write"])]

# Error answers every protected route can give, for the OpenAPI document.
AUTH_ERRORS = answers(
    {401: "Missing, invalid, expired or revoked token", 403: "The token lacks a needed scope"}
)
