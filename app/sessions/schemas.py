"""Session listings and the token response (RFC 6749 §5.1)."""

import uuid
from datetime import datetime

from pydantic import BaseModel


class SessionPublic(BaseModel):
    id: uuid.UUID
    created_at: datetime
    last_used_at: datetime
    expires_at: datetime
    user_agent: str | None
    ip: str | None
    current: bool


class TokenResponse(BaseModel):
    access_token: str
    token_type: str = "bearer"  # noqa: S105 - the RFC 6749 token type, not a secret
    expires_in: int
    # None for the client-credentials grant (RFC 6749 §4.4.3), and then left out.
    refresh_token: str | None = None
    scope: str
    # OpenID Connect Core §3.1.3.3: when `openid` was granted by the code flow.
    id_token: str | None = None
