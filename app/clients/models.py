"""OAuth clients (RFC 6749 §2) and the roles a confidential client holds for the
client-credentials grant."""

from datetime import datetime

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from app.core.models import UTCDateTime, belongs_to, utcnow


class OAuthClient(SQLModel, table=True):
    __tablename__ = "oauth_client"

    client_id: str = Field(sa_column=sa.Column(sa.String(64), primary_key=True))
    name: str = Field(sa_column=sa.Column(sa.String(128), nullable=False))
    type: str = Field(sa_column=sa.Column(sa.String(16), nullable=False))
    redirect_uris: list[str] = Field(
        default_factory=list, sa_column=sa.Column(sa.JSON, nullable=False)
    )
    grant_types: list[str] = Field(
        default_factory=list, sa_column=sa.Column(sa.JSON, nullable=False)
    )
    # The most a user's token through this client may carry; empty = no cap.
    allowed_scopes: list[str] = Field(
        default_factory=list, sa_column=sa.Column(sa.JSON, nullable=False)
    )
    first_party: bool = Field(default=False, sa_column=sa.Column(sa.Boolean, nullable=False))
    is_active: bool = Field(default=True, sa_column=sa.Column(sa.Boolean, nullable=False))
    builtin: bool = Field(default=False, sa_column=sa.Column(sa.Boolean, nullable=False))
    # Bumped whenever what the client's own tokens may do changes (roles, grant
    # types, secret, disabling): its client-credentials tokens carry it and are
    # refused once it moves, as accounts' tokens are.
    authz_version: int = Field(default=1, sa_column=sa.Column(sa.Integer, nullable=False))
    # SHA-256 of the current secret (confidential clients), and of the one it
    # replaced while that still works (rotation with an overlap window).
    secret_hash: str | None = Field(default=None, sa_column=sa.Column(sa.String(64)))
    previous_secret_hash: str | None = Field(default=None, sa_column=sa.Column(sa.String(64)))
    previous_secret_expires_at: datetime | None = Field(
        default=None, sa_column=sa.Column(UTCDateTime(), nullable=True)
    )
    created_at: datetime = Field(
        default_factory=utcnow, sa_column=sa.Column(UTCDateTime(), nullable=False)
    )
    updated_at: datetime = Field(
        default_factory=utcnow, sa_column=sa.Column(UTCDateTime(), nullable=False)
    )


class ClientRole(SQLModel, table=True):
    __tablename__ = "client_role"

    client_id: str = belongs_to("oauth_client.client_id", primary_key=True)
    role_name: str = belongs_to("role.name", primary_key=True, index=True)
