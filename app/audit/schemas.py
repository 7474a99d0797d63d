"""Audit log entries as the API shows them."""

import uuid
from datetime import datetime
from typing import Any

from pydantic import BaseModel


class AuditPublic(BaseModel):
    id: int
    time: datetime
    actor: uuid.UUID | None
    action: str
    target: str | None
    ip: str | None
    detail: dict[str, Any]
