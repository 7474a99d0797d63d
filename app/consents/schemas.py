"""What `GET /accounts/me/consents` lists."""

from datetime import datetime

from pydantic import BaseModel


class ConsentPublic(BaseModel):
    client_id: str
    client_name: str
    scopes: list[str]
    granted_at: datetime
    updated_at: datetime
