"""Authorization codes (RFC 6749 §4.1.2), bound to everything the token request
must repeat or prove."""

import uuid
from datetime import datetime

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from app.core.models import UTCDateTime, utcnow


class AuthorizationCode(SQLModel, table=True):
    """One code, by SHA-256: single use (`used_at`), 60 seconds, bound to the
    client, the redirect URI and the PKCE challenge (RFC 7636 §4.4). The session
    its first use opened is kept, so that a second use can end it (§4.1.2)."""

    __tablename__ = "authorization_code"

    code_hash: str = Field(sa_column=sa.Column(sa.String(64), primary_key=True))
    client_id: str = Field(
        sa_column=sa.Column(
            sa.String(64),
            sa.ForeignKey("oauth_client.client_id", ondelete="CASCADE"),
            nullable=False,
            index=True,
        )
    )
    account_id: uuid.UUID = Field(
        sa_column=sa.Column(
            sa.Uuid, sa.ForeignKey("account.id", ondelete="CASCADE"), nullable=False, index=True
        )
    )
    browser_session_id: uuid.UUID | None = Field(
        default=None,
        sa_column=sa.Column(
            sa.Uuid, sa.ForeignKey("browser_session.id", ondelete="SET NULL"), index=True
        ),
    )
    redirect_uri: str = Field(sa_column=sa.Column(sa.Text, nullable=False))
    code_challenge: str = Field(sa_column=sa.Column(sa.String(128), nullable=False))
    # The granted scope, or ALL_HELD when the request named none.
    scope: str = Field(sa_column=sa.Column(sa.Text, nullable=False))
    nonce: str | None = Field(default=None, sa_column=sa.Column(sa.Text))
    auth_time: datetime = Field(sa_column=sa.Column(UTCDateTime(), nullable=False))
    created_at: datetime = Field(
        default_factory=utcnow, sa_column=sa.Column(UTCDateTime(), nullable=False)
    )
    expires_at: datetime = Field(sa_column=sa.Column(UTCDateTime(), nullable=False, index=True))
    used_at: datetime | None = Field(default=None, sa_column=sa.Column(UTCDateTime()))
    session_id: uuid.UUID | None = Field(
        default=None,
        sa_column=sa.Column(
            sa.Uuid, sa.ForeignKey("auth_session.id", ondelete="SET NULL"), index=True
        ),
    )
