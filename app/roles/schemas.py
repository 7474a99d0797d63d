"""Role and scope request and response shapes."""

from typing import Annotated

from pydantic import BaseModel, Field, StringConstraints

from app.core.schemas import Description, Strict

ScopeName = Annotated[
    str,
    StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:/\-]{0,63}$"),
]
RoleName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}$")]


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
