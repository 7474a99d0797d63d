"""OAuth client request and response shapes. Neither a secret nor its hash is
ever part of a client's JSON; a new secret is returned once, on its own field."""

from datetime import datetime
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, Field, StringConstraints

from app.core.schemas import Strict, refuse_unstorable
from app.roles.schemas import RoleName, ScopeName

ClientType = Literal["public", "confidential"]
GrantType = Literal["authorization_code", "refresh_token", "password", "client_credentials"]
ClientName = Annotated[
    str, StringConstraints(min_length=1, max_length=128), AfterValidator(refuse_unstorable)
]
RedirectUri = Annotated[
    str, StringConstraints(min_length=1, max_length=2000), AfterValidator(refuse_unstorable)
]
# One week: long enough to roll a new secret out to every instance of a service.
MAX_SECRET_OVERLAP_SECONDS = 604_800


class ClientCreate(Strict):
    name: ClientName
    type: ClientType
    redirect_uris: list[RedirectUri] = Field(default_factory=list, max_length=20)
    grant_types: list[GrantType] = Field(min_length=1, max_length=4)
    allowed_scopes: list[ScopeName] = Field(default_factory=list, max_length=256)
    roles: list[RoleName] = Field(default_factory=list, max_length=64)
    first_party: bool = False


class ClientUpdate(Strict):
    name: ClientName | None = None
    redirect_uris: list[RedirectUri] | None = Field(default=None, max_length=20)
    grant_types: list[GrantType] | None = Field(default=None, min_length=1, max_length=4)
    allowed_scopes: list[ScopeName] | None = Field(default=None, max_length=256)
    roles: list[RoleName] | None = Field(default=None, max_length=64)
    first_party: bool | None = None
    is_active: bool | None = None


class SecretRotation(Strict):
    previous_valid_for_seconds: int = Field(default=0, ge=0, le=MAX_SECRET_OVERLAP_SECONDS)


class ClientPublic(BaseModel):
    client_id: str
    name: str
    type: ClientType
    redirect_uris: list[str]
    grant_types: list[str]
    allowed_scopes: list[str]
    roles: list[str]
    first_party: bool
    is_active: bool
    builtin: bool
    created_at: datetime


class ClientCreated(ClientPublic):
    # Shown this once (confidential clients); only its hash is stored.
    client_secret: str | None = None


class ClientSecret(BaseModel):
    client_secret: str
