import uuid
from typing import Annotated

from fastapi import APIRouter, Query

from app.api.deps import AUTH_ERRORS, AuditRead, SessionDep
from app.schemas import AuditPublic, Page
from app.services import audit as audit_service

router = APIRouter(prefix="/audit", tags=["audit"])


@router.get("", response_model=Page[AuditPublic], responses=AUTH_ERRORS)
async def list_audit_events(
    _: AuditRead,
    session: SessionDep,
    limit: Annotated[int, Query(ge=1, le=100)] = 50,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
    actor: uuid.UUID | None = None,
    action: Annotated[str | None, Query(max_length=64, pattern=r"^[^\x00]*$")] = None,
) -> Page[AuditPublic]:
    """The audit log, newest first."""
    return await audit_service.list_events(
        session, limit=limit, cursor=cursor, actor=actor, action=action
    )
