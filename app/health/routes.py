from fastapi.responses import JSONResponse
from sqlalchemy import text

from app.core.db import transactional_router
from app.core.schemas import Status
from app.state import StateDep

router = transactional_router(tag="health")


@router.get("/healthz")
async def healthz() -> Status:
    """Liveness: 200 while the process serves."""
    return Status(status="ok")


@router.get("/readyz", response_model=Status, responses={503: {"model": Status}})
async def readyz(state: StateDep) -> JSONResponse:
    """Readiness: 200 when the database answers, else 503."""
    try:
        async with state.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
    except Exception:
        return JSONResponse({"status": "unavailable"}, status_code=503)
    return JSONResponse({"status": "ok"})
