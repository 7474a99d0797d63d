"""Personal access token request and response shapes. The token itself appears
once, in the answer to its creation; only its hash is stored."""

import uuid
from datetime import datetime
from typing import Annotated

from pydantic import AfterValidator, BaseModel, Field, StringConstraints

from app.core.schemas import Strict, refuse_unstorable
from app.roles.schemas import ScopeName

TokenName = Annotated[
    str, StringConstraints(min_length=1, max_length=100), AfterValidator(refuse_unstorable)
]


class PersonalTokenCreate(Strict):
    name: TokenName
    scopes: list[ScopeName] = Field(min_length=1, max_length=256)
    # 1 to GATEHOUSE_PAT_MAX_DAYS; that maximum when left out.
    expires_in_days: int | None = Field(default=None, ge=1)


class PersonalTokenPublic(BaseModel):
    id: uuid.UUID
    name: str
    scopes: list[str]
    created_at: datetime
    expires_at: datetime
    last_used_at: datetime | None


class PersonalTokenCreated(PersonalTokenPublic):
    token: str
