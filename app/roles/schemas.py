"""Role and scope request and response shapes."""

from typing import Annotated

from pydantic import BaseModel, Field, StringConstraints

from app.authz.catalogue import NAME_PATTERN
from app.core.schemas import Description, Strict

# One syntax for both (CONTRACT.md, "Built-in scopes and roles"); 422 otherwise.
# Names stored before this rule stay readable and deletable by their path.
ScopeName = Annotated[str, StringConstraints(max_length=64, pattern=NAME_PATTERN)]
RoleName = Annotated[str, StringConstraints(max_length=64, pattern=NAME_PATTERN)]


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
