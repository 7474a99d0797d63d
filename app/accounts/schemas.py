"""Account request and response shapes. Tables are never returned: a hash cannot leak."""

import uuid
from datetime import datetime
from typing import Annotated

from pydantic import AfterValidator, BaseModel, EmailStr, Field, StringConstraints

from app.core.schemas import Strict, refuse_unstorable
from app.roles.schemas import RoleName

# Free text: length-bounded, and cleaned of what no database should store.
Username = Annotated[
    str, StringConstraints(min_length=1, max_length=64), AfterValidator(refuse_unstorable)
]
Password = Annotated[
    str, StringConstraints(min_length=1, max_length=1024), AfterValidator(refuse_unstorable)
]
Email = Annotated[EmailStr, AfterValidator(refuse_unstorable), StringConstraints(max_length=254)]


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
