"""Consents: an account's Allow on a third-party client's consent page, kept per
account, client and scopes, so the page is not shown again for what was already
allowed. Withdrawing one ends that client's sessions for the account: what the
client was given stops with the permission to have it."""

import uuid
from typing import Any, cast

from sqlalchemy import CursorResult, delete, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from app.audit import service as audit
from app.authz.catalogue import format_scope, parse_scope
from app.clients.models import OAuthClient
from app.consents.models import Consent
from app.consents.schemas import ConsentPublic
from app.core.db import inserted
from app.core.errors import NotFound
from app.core.models import utcnow
from app.sessions import service as sessions_service


async def covers(
    db: AsyncSession, *, account_id: uuid.UUID, client_id: str, scopes: set[str]
) -> bool:
    """Whether the account already allowed the client every scope in `scopes`."""
    allowed = await db.scalar(
        select(col(Consent.scope)).where(
            col(Consent.account_id) == account_id, col(Consent.client_id) == client_id
        )
    )
    return allowed is not None and scopes <= set(parse_scope(allowed))


async def grant(
    db: AsyncSession,
    *,
    account_id: uuid.UUID,
    client_id: str,
    scopes: set[str],
    ip: str | None,
) -> None:
    """Remember that the account allowed `scopes` (added to what it allowed
    before); audited as `consent.grant`."""
    now = utcnow()
    row = Consent(
        account_id=account_id,
        client_id=client_id,
        scope=format_scope(scopes),
        granted_at=now,
        updated_at=now,
    )
    if not await inserted(db, row):
        existing = await db.scalar(
            select(Consent)
            .where(col(Consent.account_id) == account_id, col(Consent.client_id) == client_id)
            .with_for_update()
        )
        if existing is not None:
            existing.scope = format_scope(set(parse_scope(existing.scope)) | scopes)
            existing.updated_at = now
            await db.flush()
    await audit.record(
        db,
        action="consent.grant",
        actor=account_id,
        target=client_id,
        ip=ip,
        detail={"scope": format_scope(scopes)},
    )


async def list_consents(db: AsyncSession, *, account_id: uuid.UUID) -> list[ConsentPublic]:
    rows = (
        await db.execute(
            select(Consent, col(OAuthClient.name))
            .join(OAuthClient, col(OAuthClient.client_id) == col(Consent.client_id))
            .where(col(Consent.account_id) == account_id)
            .order_by(col(Consent.granted_at), col(Consent.client_id))
        )
    ).all()
    return [
        ConsentPublic(
            client_id=consent.client_id,
            client_name=name,
            scopes=parse_scope(consent.scope),
            granted_at=consent.granted_at,
            updated_at=consent.updated_at,
        )
        for consent, name in rows
    ]


async def revoke(
    db: AsyncSession, *, account_id: uuid.UUID, client_id: str, ip: str | None
) -> None:
    """Withdraw the consent and end every session the account has through that
    client (404 when there is no such consent)."""
    result = cast(
        "CursorResult[Any]",
        await db.execute(
            delete(Consent)
            .where(col(Consent.account_id) == account_id, col(Consent.client_id) == client_id)
            .execution_options(synchronize_session=False)
        ),
    )
    if not result.rowcount:
        raise NotFound("No consent for that client")
    await sessions_service.end_account_client_sessions(
        db, account_id, client_id, reason="consent_revoked"
    )
    await audit.record(
        db, action="consent.revoke", actor=account_id, target=client_id, ip=ip, detail={}
    )
