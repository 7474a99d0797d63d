"""RFC 6749 §5.2 errors, one class per error code (as authlib's `rfc6749.errors`).

Rendered as `{"error", "error_description"}` with `Cache-Control: no-store`
(§5.1). Imports only `core`, so the services that enforce protocol rules (the
refresh token's) may raise them.
"""

from typing import Any, ClassVar

from app.core.errors import GatehouseError

NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


class OAuthError(GatehouseError):
    error: ClassVar[str]

    def __init__(self, description: str, *, headers: dict[str, str] | None = None):
        super().__init__(description, headers={**NO_STORE, **(headers or {})})

    def body(self) -> dict[str, Any]:
        return {"error": self.error, "error_description": self.detail}


class InvalidRequest(OAuthError):
    error = "invalid_request"


class InvalidGrant(OAuthError):
    error = "invalid_grant"


class UnsupportedGrantType(OAuthError):
    error = "unsupported_grant_type"


class InvalidScope(OAuthError):
    error = "invalid_scope"


class InvalidClient(OAuthError):
    """§5.2: client authentication failed (unknown client, wrong or missing secret,
    more than one method). 401, with a Basic challenge when Basic was tried."""

    status_code = 401
    error = "invalid_client"

    def __init__(self, description: str, *, basic: bool = False):
        super().__init__(
            description,
            headers={"WWW-Authenticate": 'Basic realm="gatehouse"'} if basic else None,
        )


class UnauthorizedClient(OAuthError):
    error = "unauthorized_client"
