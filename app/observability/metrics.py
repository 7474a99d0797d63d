"""The Prometheus metrics, in a registry of their own.

Labels carry only bounded, impersonal values: the route *template*
(`/accounts/{account_id}`, never the path), the method, the status, an outcome.
No account name, token or address is ever a label value.
"""

import math
from bisect import bisect_left
from collections.abc import Iterator

from prometheus_client import CollectorRegistry, Counter, ProcessCollector, disable_created_metrics
from prometheus_client.core import (
    CounterMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

# `*_created` series double the output and are of no use to a scraper.
disable_created_metrics()  # type: ignore[no-untyped-call]
REGISTRY = CollectorRegistry()
ProcessCollector(registry=REGISTRY)

METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
UNMATCHED = "unmatched"  # the route label of a path no route matched (404)

SIGN_INS = Counter(
    "gatehouse_sign_ins",
    "Password sign-ins by outcome (success, failure); throttled and shed attempts "
    "are the 429 and 503 answers of the token endpoint",
    ["outcome"],
    registry=REGISTRY,
)
REFRESHES = Counter(
    "gatehouse_refreshes", "Refresh tokens exchanged for a new pair", registry=REGISTRY
)
REFRESH_REUSE = Counter(
    "gatehouse_refresh_reuse",
    "Spent refresh tokens presented again (each ended its session)",
    registry=REGISTRY,
)
LOCKOUTS = Counter(
    "gatehouse_lockouts",
    "Throttle lockouts, by what was locked (account or address)",
    ["by"],
    registry=REGISTRY,
)
for outcome in ("success", "failure"):
    SIGN_INS.labels(outcome)
for by in ("account", "address"):
    LOCKOUTS.labels(by)


class RequestStats(Collector):
    """Request counts and latency histograms by (method, route, status), kept in
    plain lists and turned into Prometheus families only when scraped.

    On the hot path this is a dictionary lookup, a bisection and two additions:
    no lock and no allocation once a series exists (prometheus_client's own
    metrics take a lock per increment). Only the event loop's thread updates it."""

    BOUNDS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

    def __init__(self) -> None:
        # Per series: a count per bucket (the last one past every bound), then the sum.
        self.series: dict[tuple[str, str, int], list[float]] = {}

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        if method not in METHODS:
            method = "OTHER"  # arbitrary methods must not grow the label set
        key = (method, route, status)
        row = self.series.get(key)
        if row is None:
            row = self.series[key] = [0.0] * (len(self.BOUNDS) + 2)
        row[bisect_left(self.BOUNDS, seconds)] += 1
        row[-1] += seconds

    def collect(self) -> Iterator[Metric]:
        labels = ["method", "route", "status"]
        requests = CounterMetricFamily(
            "gatehouse_http_requests",
            "HTTP requests answered, by method, route template and status",
            labels=labels,
        )
        latency = HistogramMetricFamily(
            "gatehouse_http_request_duration_seconds",
            "Time from request to the end of the response, by method, route template and status",
            labels=labels,
        )
        for (method, route, status), row in list(self.series.items()):
            values = [method, route, str(status)]
            cumulative, buckets = 0.0, []
            for bound, count in zip((*self.BOUNDS, math.inf), row[:-1], strict=True):
                cumulative += count
                buckets.append((floatToGoString(bound), cumulative))  # type: ignore[no-untyped-call]
            requests.add_metric(values, cumulative)
            latency.add_metric(values, buckets, row[-1])
        yield requests
        yield latency


REQUEST_STATS = RequestStats()
REGISTRY.register(REQUEST_STATS)
observe_request = REQUEST_STATS.observe


def count_event(action: str, by: str | None) -> None:
    """Count a committed audit event (see `observability.events`)."""
    if action == "auth.login":
        SIGN_INS.labels("success").inc()
    elif action == "auth.login_failed":
        SIGN_INS.labels("failure").inc()
    elif action == "auth.refresh":
        REFRESHES.inc()
    elif action == "auth.refresh_reuse":
        REFRESH_REUSE.inc()
    elif action == "auth.lockout" and by in ("account", "address"):
        LOCKOUTS.labels(by).inc()
