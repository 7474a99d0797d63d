"""What every grant of the token endpoint receives, and the registry that routes
a request to its grant by `grant_type` (RFC 6749 §4): a new grant is one new
module that registers itself."""

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from app.core.network import RequestOrigin
from app.oauth.errors import InvalidRequest, UnsupportedGrantType
from app.sessions.schemas import TokenResponse
from app.state import State


@dataclass(frozen=True, slots=True)
class TokenRequest:
    """A token request's form parameters (RFC 6749 §3.2), and where it came from."""

    params: Mapping[str, str]
    origin: RequestOrigin

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


def grant_for(grant_type: str | None) -> Grant:
    """The grant registered under `grant_type`; RFC 6749 §5.2 `unsupported_grant_type`
    for any other (grant types are compared exactly, case included)."""
    if not grant_type:
        raise InvalidRequest("grant_type is required")
    handler = GRANTS.get(grant_type)
    if handler is None:
        raise UnsupportedGrantType(f"Supported grant types: {', '.join(sorted(GRANTS))}")
    return handler
