from collections.abc import Iterator

from fastapi import Response
from prometheus_client import CollectorRegistry
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.registry import Collector
from sqlalchemy.pool import QueuePool

from app.authz.dependencies import AUTH_ERRORS, MetricsRead
from app.core.db import transactional_router
from app.observability import metrics
from app.state import State, StateDep

router = transactional_router(tag="observability", responses=AUTH_ERRORS)


@router.get(
    "/metrics",
    response_class=Response,
    responses={200: {"content": {CONTENT_TYPE_LATEST: {}}}},
)
async def read_metrics(_: MetricsRead, state: StateDep) -> Response:
    """Prometheus text format: requests and latency by route and status, sign-ins,
    refreshes, refresh reuse, lockouts, hasher queue and database pool."""
    return Response(
        render(state),
        media_type=CONTENT_TYPE_LATEST,
        headers={"Cache-Control": "no-store"},
    )


class _StateCollector(Collector):
    """Gauges read from this app's state at scrape time."""

    def __init__(self, state: State):
        self.state = state

    def collect(self) -> Iterator[Metric]:
        hasher = self.state.hasher
        yield _gauge(
            "gatehouse_hasher_queue_depth",
            "Password hashes waiting for a worker",
            max(0, hasher.in_flight - hasher.workers),
        )
        yield _gauge(
            "gatehouse_hasher_in_flight", "Password hashes running or waiting", hasher.in_flight
        )
        yield _gauge("gatehouse_hasher_workers", "Password hashes that run at once", hasher.workers)
        yield _gauge(
            "gatehouse_hasher_capacity",
            "Hashes running or waiting beyond which logins are shed with 503",
            hasher.capacity,
        )
        pool = self.state.engine.sync_engine.pool
        if isinstance(pool, QueuePool):
            yield _gauge("gatehouse_db_pool_size", "Connections the pool keeps", pool.size())
            yield _gauge(
                "gatehouse_db_pool_in_use", "Connections checked out now", pool.checkedout()
            )
            yield _gauge(
                "gatehouse_db_pool_overflow",
                "Connections open beyond the pool size (negative: not yet opened)",
                pool.overflow(),
            )


def _gauge(name: str, documentation: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, documentation, value=value)


def render(state: State) -> bytes:
    """The Prometheus text exposition of every metric, this app's gauges included."""
    gauges = CollectorRegistry()
    gauges.register(_StateCollector(state))
    return generate_latest(metrics.REGISTRY) + generate_latest(gauges)
