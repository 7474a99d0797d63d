"""What every grant of the token endpoint receives, and the registry that routes
a request to its grant by `grant_type` (RFC 6749 §4): a new grant is one new
module that registers itself."""

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from app.core.network import RequestOrigin
from app.oauth.client_auth import AuthenticatedClient
from app.oauth.errors import InvalidRequest, UnauthorizedClient, UnsupportedGrantType
from app.sessions.schemas import TokenResponse
from app.state import State


@dataclass(frozen=True, slots=True)
class TokenRequest:
    """A token request's form parameters (RFC 6749 §3.2), where it came from, and
    the client that made it (authenticated, or the public client it named)."""

    params: Mapping[str, str]
    origin: RequestOrigin
    client: AuthenticatedClient

    def require(self, *names: str) -> list[str]:
        """The named parameters, or `invalid_request` naming the first one missing."""
        missing = [name for name in names if not self.params.get(name)]
        if missing:
            raise InvalidRequest(
                f"{' and '.join(names)} {'is' if len(names) == 1 else 'are'} required"
            )
        return [self.params[name] for name in names]


Grant = Callable[[AsyncSession, TokenRequest, State], Awaitable[TokenResponse]]
GRANTS: dict[str, Grant] = {}


def grant(grant_type: str) -> Callable[[Grant], Grant]:
    """Register a grant function under its `grant_type`."""

    def register(handler: Grant) -> Grant:
        GRANTS[grant_type] = handler
        return handler

    return register


def grant_for(grant_type: str | None, *, password_grant_enabled: bool = True) -> Grant:
    """The grant registered under `grant_type`; RFC 6749 §5.2 `unsupported_grant_type`
    for any other, or for the password grant when it is switched off (grant types
    are compared exactly, case included)."""
    if not grant_type:
        raise InvalidRequest("grant_type is required")
    handler = GRANTS.get(grant_type)
    if handler is None or (grant_type == "password" and not password_grant_enabled):
        offered = sorted(g for g in GRANTS if g != "password" or password_grant_enabled)
        raise UnsupportedGrantType(f"Supported grant types: {', '.join(offered)}")
    return handler


async def dispatch(
    db: AsyncSession, grant_type: str | None, request: TokenRequest, state: State
) -> TokenResponse:
    """Run the grant, once the client may use it: `unsupported_grant_type` for a
    grant this server does not offer (or has switched off), `unauthorized_client`
    for one the client is not registered for (RFC 6749 §5.2)."""
    handler = grant_for(grant_type, password_grant_enabled=state.settings.password_grant_enabled)
    if grant_type not in request.client.client.grant_types:
        raise UnauthorizedClient(f"This client may not use the {grant_type} grant")
    return await handler(db, request, state)
