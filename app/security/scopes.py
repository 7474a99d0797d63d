"""The scope catalogue and the `Security` dependency that enforces it."""

import uuid
from dataclasses import dataclass

from fastapi import Depends, Request
from fastapi.security import OAuth2PasswordBearer, SecurityScopes
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.db import get_session
from app.core.errors import InsufficientScope, InvalidToken, NotAuthenticated
from app.security.tokens import TokenError

BUILTIN_SCOPES: dict[str, str] = {
    "me:read": "Read own account and own sessions",
    "me:write": "Change own password and email, end own sessions",
    "accounts:read": "List and read any account",
    "accounts:write": "Create, enable, disable and delete accounts",
    "roles:read": "List roles and the scope catalogue",
    "roles:write": "Create, change and delete roles and custom scopes; assign roles",
    "audit:read": "Read the audit log",
}
USER_ROLE = "user"
ADMIN_ROLE = "admin"
BUILTIN_ROLES: dict[str, tuple[str, frozenset[str]]] = {
    USER_ROLE: ("Every signed-up account", frozenset({"me:read", "me:write"})),
    ADMIN_ROLE: ("Administers accounts, roles and scopes", frozenset(BUILTIN_SCOPES)),
}

# Reads the token from the Authorization header only (RFC 6750 §2.1); a token in
# the query string or a form field counts as none.
oauth2_scheme = OAuth2PasswordBearer(
    tokenUrl="/auth/token", scopes=BUILTIN_SCOPES, auto_error=False
)


def parse_scope(value: str | None) -> list[str]:
    """RFC 6749 §3.3: space-delimited, order-free, duplicates meaningless."""
    return list(dict.fromkeys((value or "").split()))


def format_scope(scopes: set[str] | frozenset[str] | list[str]) -> str:
    return " ".join(sorted(set(scopes)))


def holds_all(held: set[str] | frozenset[str], wanted: set[str], *, is_admin: bool) -> bool:
    """Whether an account may grant `wanted`: admins count as holding every custom
    scope, never a built-in one they were not given."""
    missing = wanted - held
    if is_admin:
        missing &= BUILTIN_SCOPES.keys()
    return not missing


@dataclass(frozen=True, slots=True)
class Principal:
    """Who a verified, live access token speaks for."""

    account_id: uuid.UUID
    session_id: uuid.UUID
    scopes: frozenset[str]


async def require_scopes(
    security_scopes: SecurityScopes,
    request: Request,
    session: AsyncSession = Depends(get_session, scope="function"),
    token: str | None = Depends(oauth2_scheme),
) -> Principal:
    """Verify the bearer token, check its session is live, then its scopes.

    401 when the token is missing or not valid now, 403 when it lacks a scope;
    both with the RFC 6750 §3 challenge naming what the endpoint needs.
    """
    from app.services import sessions as sessions_service

    needed = security_scopes.scope_str
    if not token:
        raise NotAuthenticated(scope=needed)
    state = request.app.state
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
        session,
        account_id=principal.account_id,
        session_id=principal.session_id,
        authz_version=version,
        idle_timeout=state.settings.session_idle_timeout_seconds,
    ):
        raise InvalidToken(scope=needed)
    if not set(security_scopes.scopes) <= principal.scopes:
        raise InsufficientScope(scope=needed)
    request.state.principal = principal
    return principal
