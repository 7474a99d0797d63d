import uuid

from fastapi import Response, status

from app.authz.dependencies import AUTH_ERRORS, AnyToken, MeRead, MeWrite
from app.core.db import DbSession, transactional_router
from app.core.errors import answers
from app.core.network import OriginDep
from app.sessions import service as sessions_service
from app.sessions.schemas import SessionPublic
from app.state import SettingsDep

router = transactional_router("/auth", tag="auth", responses=AUTH_ERRORS)


@router.post("/logout", status_code=status.HTTP_204_NO_CONTENT)
async def logout(principal: AnyToken, db: DbSession, origin: OriginDep) -> Response:
    """End the current session."""
    await sessions_service.logout(
        db, account_id=principal.account_id, session_id=principal.session_id, ip=origin.ip
    )
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/sessions")
async def list_sessions(
    principal: MeRead, db: DbSession, settings: SettingsDep
) -> list[SessionPublic]:
    """The caller's live sessions."""
    return await sessions_service.list_sessions(
        db, settings=settings, account_id=principal.account_id, current=principal.session_id
    )


@router.delete(
    "/sessions/{session_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=answers({404: "Not one of the caller's live sessions"}),
)
async def end_session(
    session_id: uuid.UUID,
    actor: MeWrite,
    db: DbSession,
    settings: SettingsDep,
) -> Response:
    """End one of the caller's sessions."""
    await sessions_service.end_own_session(
        db,
        settings=settings,
        account_id=actor.principal.account_id,
        session_id=session_id,
        ip=actor.ip,
    )
    return Response(status_code=status.HTTP_204_NO_CONTENT)
