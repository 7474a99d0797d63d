from fastapi import APIRouter, Response
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from app.authz.dependencies import AUTH_ERRORS, MetricsRead
from app.observability import metrics
from app.state import StateDep

router = APIRouter(tags=["observability"])


@router.get(
    "/metrics",
    response_class=Response,
    responses={**AUTH_ERRORS, 200: {"content": {CONTENT_TYPE_LATEST: {}}}},
)
async def read_metrics(_: MetricsRead, state: StateDep) -> Response:
    """Prometheus text format: requests and latency by route and status, sign-ins,
    refreshes, refresh reuse, lockouts, hasher queue and database pool."""
    return Response(
        metrics.render(state),
        media_type=CONTENT_TYPE_LATEST,
        headers={"Cache-Control": "no-store"},
    )
