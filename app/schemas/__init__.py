"""Request and response shapes. Tables are never returned: a hash cannot leak."""

import uuid
from datetime import datetime
from typing import Annotated, Any, Generic, TypeVar

from pydantic import AfterValidator, BaseModel, ConfigDict, EmailStr, Field, StringConstraints


def _clean(value: str) -> str:
    # NUL and lone surrogates are refused here, the same on PostgreSQL (which
    # cannot store NUL) and SQLite, before they reach a database.
    if "\x00" in value:
        raise ValueError("must not contain NUL characters")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("must be valid Unicode (no lone surrogates)") from None
    return value


# Free text: length-bounded, and cleaned of what no database should store.
Username = Annotated[str, StringConstraints(min_length=1, max_length=64), AfterValidator(_clean)]
Password = Annotated[str, StringConstraints(min_length=1, max_length=1024), AfterValidator(_clean)]
Email = Annotated[EmailStr, AfterValidator(_clean), StringConstraints(max_length=254)]
ScopeName = Annotated[
    str,
    StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:/\-]{0,63}$"),
]
RoleName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}$")]
Description = Annotated[
    str, StringConstraints(min_length=0, max_length=255), AfterValidator(_clean)
]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SignupRequest(Strict):
    username: Username
    password: Password
    email: Email | None = None


class AccountCreate(SignupRequest):
    roles: list[RoleName] | None = Field(default=None, max_length=64)


class AccountUpdate(Strict):
    is_active: bool | None = None
    email: Email | None = None


class PasswordChange(Strict):
    current_password: Password
    new_password: Password


class AccountPublic(BaseModel):
    id: uuid.UUID
    username: str
    email: str | None
    is_active: bool
    roles: list[str]
    scopes: list[str]
    created_at: datetime


T = TypeVar("T")


class Page(BaseModel, Generic[T]):
    items: list[T]
    next_cursor: str | None


class RoleCreate(Strict):
    name: RoleName
    description: Description = ""
    scopes: list[ScopeName] = Field(max_length=256)


class RoleUpdate(Strict):
    description: Description | None = None
    scopes: list[ScopeName] | None = Field(default=None, max_length=256)


class RolePublic(BaseModel):
    name: str
    description: str
    scopes: list[str]
    builtin: bool


class ScopeCreate(Strict):
    name: ScopeName
    description: Description = ""


class ScopePublic(BaseModel):
    name: str
    description: str
    builtin: bool


class SessionPublic(BaseModel):
    id: uuid.UUID
    created_at: datetime
    last_used_at: datetime
    expires_at: datetime
    user_agent: str | None
    ip: str | None
    current: bool


class AuditPublic(BaseModel):
    id: int
    time: datetime
    actor: uuid.UUID | None
    action: str
    target: str | None
    ip: str | None
    detail: dict[str, Any]


class TokenResponse(BaseModel):
    access_token: str
    token_type: str = "bearer"  # noqa: S105 - the RFC 6749 token type, not a secret
    expires_in: int
    refresh_token: str
    scope: str


class Status(BaseModel):
    status: str
