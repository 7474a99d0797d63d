"""An authorization request once checked, and the userinfo answer."""

from dataclasses import dataclass

from pydantic import BaseModel

from app.clients.models import OAuthClient


@dataclass(frozen=True, slots=True)
class AuthorizationRequest:
    """A checked RFC 6749 §4.1.1 request: the client, where to send the answer
    (`redirect_uri`, with `redirect_uri_given` saying whether the request named it,
    RFC 6749 §4.1.3), the PKCE challenge and what else the answer must carry."""

    client: OAuthClient
    redirect_uri: str
    redirect_uri_given: bool
    state: str | None
    # The requested scopes (an empty list when the request named none).
    scopes: list[str]
    code_challenge: str
    nonce: str | None
    prompt: frozenset[str]
    # The request's parameters as received, for the forms' hidden `request` field.
    encoded: str


class UserInfo(BaseModel):
    """OpenID Connect Core §5.3.2 (standard claims §5.1)."""

    sub: str
    preferred_username: str | None = None
    email: str | None = None
    email_verified: bool | None = None
