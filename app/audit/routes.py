import uuid
from typing import Annotated

from fastapi import Query

from app.audit import service as audit_service
from app.audit.schemas import AuditPublic
from app.authz.dependencies import AUTH_ERRORS, AuditRead
from app.core.db import DbSession, transactional_router
from app.core.pagination import PageQuery
from app.core.schemas import NO_NUL, Page

router = transactional_router("/audit", tag="audit", responses=AUTH_ERRORS)


@router.get("")
async def list_audit_events(
    _: AuditRead,
    db: DbSession,
    page: PageQuery,
    actor: uuid.UUID | None = None,
    action: Annotated[str | None, Query(max_length=64, pattern=NO_NUL)] = None,
) -> Page[AuditPublic]:
    """The audit log, newest first."""
    return await audit_service.list_events(
        db, limit=page.limit, cursor=page.cursor, actor=actor, action=action
    )
