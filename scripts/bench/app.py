"""The service plus routes that verify the access token ALONE (no liveness lookup).

Issue 4 asks what the per-request revocation check costs against verifying the
token only. Served as `uvicorn scripts.bench.app:app`, this is the real app
(same middleware, same engine, same key ring) with two extra routes, so both
variants run in one process, side by side:

- `GET /bench/me-token-only`: what `GET /accounts/me` answers, behind a
  dependency that checks signature, claims and scope but skips the session and
  account lookup; the account and its roles are then read as the handler does
  for a token whose check read no account (a personal access token's). Against
  `/accounts/me`, whose liveness statement reads them itself, this shows what
  the check costs.
- `GET /bench/token-only`: verification and nothing else (no database at all).

It lives in scripts/ so that the service itself never carries a route that
honours revoked tokens.
"""

import uuid
from typing import Annotated

from fastapi import Depends, Request, Security
from fastapi.security import SecurityScopes

from app.accounts import service as accounts_service
from app.accounts.routes import public
from app.accounts.schemas import AccountPublic
from app.authz.catalogue import Principal, parse_scope
from app.authz.dependencies import oauth2_scheme
from app.core.db import DbSession
from app.core.errors import InsufficientScope, InvalidToken, NotAuthenticated
from app.crypto.jwt import TokenError
from app.main import create_app

app = create_app()


async def verify_token_only(
    security_scopes: SecurityScopes,
    request: Request,
    token: str | None = Depends(oauth2_scheme),
) -> Principal:
    """`require_scopes` minus `sessions_service.token_is_live`."""
    needed = security_scopes.scope_str
    if not token:
        raise NotAuthenticated(scope=needed)
    try:
        claims = await request.app.state.gatehouse.keyring.verify(token)
        principal = Principal(
            account_id=uuid.UUID(claims["sub"]),
            session_id=uuid.UUID(claims["sid"]),
            scopes=frozenset(parse_scope(claims["scope"])),
        )
    except (TokenError, KeyError, ValueError, TypeError, AttributeError) as exc:
        raise InvalidToken(scope=needed) from exc
    if not set(security_scopes.scopes) <= principal.scopes:
        raise InsufficientScope(scope=needed)
    return principal


TokenOnlyMeRead = Annotated[Principal, Security(verify_token_only, scopes=["me:read"])]


@app.get("/bench/me-token-only", response_model=AccountPublic, include_in_schema=False)
async def read_own_account_token_only(
    principal: TokenOnlyMeRead, session: DbSession
) -> AccountPublic:
    """`GET /accounts/me` with the token verified but its session not looked up."""
    return await public(session, await accounts_service.get_account(session, principal.account_id))


@app.get("/bench/token-only", include_in_schema=False)
async def token_only(principal: TokenOnlyMeRead) -> dict[str, str]:
    """Token verification and nothing else."""
    return {"sub": str(principal.account_id)}
