"""The load generator: a process of its own, so the client's event loop and CPU
never hide inside the server's figures (and the two can be told apart).

`python -m scripts.bench.load` reads a JSON spec on stdin and prints a JSON
result on stdout; `run_load` is the orchestrator's side of that. Two modes:

- `closed`: `concurrency` workers each send the next request of the cycle as soon
  as their previous one answers, for `warmup + duration` seconds; only answers
  that arrive inside the `duration` window are counted (throughput, latency).
  At the end of the window requests still in flight are abandoned, so a run is
  bounded whatever the server does.
- `sequential`: one request at a time, `count` of them after `warmup_count`
  unmeasured ones, cycling through the requests (interleaving their labels).
"""

import asyncio
import itertools
import json
import statistics
import sys
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any

import httpx

MAX_DISTINCT_BODIES = 8
MAX_BODY_CHARS = 300


@dataclass
class LabelStats:
    """What one label (one kind of request) saw."""

    count: int = 0
    status: Counter[str] = field(default_factory=Counter)
    latencies: list[float] = field(default_factory=list)  # seconds, 2xx answers only
    answered: list[float] = field(default_factory=list)  # seconds, every HTTP answer
    # Non-2xx answers by (status, body): what an error really was (2xx bodies carry
    # tokens and timestamps, so they are all distinct and never kept).
    bodies: Counter[tuple[int, str]] = field(default_factory=Counter)

    def record(self, status: str, latency: float, body: tuple[int, str] | None) -> None:
        self.count += 1
        self.status[status] += 1
        if status.startswith("2"):
            self.latencies.append(latency)
        if not status.startswith("error"):
            self.answered.append(latency)
        if body is not None and not status.startswith("2"):
            if body in self.bodies or len(self.bodies) < MAX_DISTINCT_BODIES:
                self.bodies[body] += 1

    def to_json(self) -> dict[str, Any]:
        return {
            "count": self.count,
            "status": dict(self.status),
            "latency_ms": percentiles(self.latencies),
            "answered_ms": percentiles(self.answered),
            "bodies": [[status, body, n] for (status, body), n in self.bodies.most_common()],
        }


def percentiles(samples: list[float]) -> dict[str, float] | None:
    """Median, nearest-rank p90/p99, mean and max, in milliseconds."""
    if not samples:
        return None
    ordered = sorted(samples)

    def rank(p: float) -> float:
        return ordered[min(len(ordered) - 1, max(0, int(-(-p * len(ordered) // 1)) - 1))]

    return {
        "n": len(ordered),
        "p50": statistics.median(ordered) * 1000,
        "p90": rank(0.90) * 1000,
        "p99": rank(0.99) * 1000,
        "mean": statistics.fmean(ordered) * 1000,
        "max": ordered[-1] * 1000,
    }


async def _send(client: httpx.AsyncClient, request: dict[str, Any]) -> httpx.Response:
    return await client.request(
        request.get("method", "GET"),
        request["path"],
        headers=request.get("headers"),
        data=request.get("form"),
        json=request.get("json"),
    )


async def _timed(
    client: httpx.AsyncClient, request: dict[str, Any], keep_body: bool
) -> tuple[str, float, tuple[int, str] | None]:
    started = time.perf_counter()
    try:
        response = await _send(client, request)
    except httpx.HTTPError as exc:
        return f"error:{type(exc).__name__}", time.perf_counter() - started, None
    elapsed = time.perf_counter() - started
    body = (response.status_code, response.text[:MAX_BODY_CHARS]) if keep_body else None
    return str(response.status_code), elapsed, body


async def closed_loop(spec: dict[str, Any], client: httpx.AsyncClient) -> dict[str, Any]:
    requests: list[dict[str, Any]] = spec["requests"]
    warmup = float(spec.get("warmup", 0.0))
    duration = float(spec["duration"])
    keep_body = bool(spec.get("keep_bodies", False))
    stats: dict[str, LabelStats] = defaultdict(LabelStats)
    cycle = itertools.count()
    start = time.perf_counter()
    window_start = start + warmup
    window_end = window_start + duration

    pending: dict[int, tuple[str, float]] = {}  # worker -> (label, sent at)

    async def worker(slot: int) -> None:
        while time.perf_counter() < window_end:
            request = requests[next(cycle) % len(requests)]
            pending[slot] = (request["label"], time.perf_counter())
            status, latency, body = await _timed(client, request, keep_body)
            del pending[slot]
            if window_start <= time.perf_counter() <= window_end:
                stats[request["label"]].record(status, latency, body)

    workers = [asyncio.create_task(worker(i)) for i in range(int(spec["concurrency"]))]
    await asyncio.sleep(max(0.0, window_start - time.perf_counter()))
    cpu_start, wall_start = time.process_time(), time.time()
    await asyncio.sleep(max(0.0, window_end - time.perf_counter()))
    cpu_used, wall_end = time.process_time() - cpu_start, time.time()
    # Requests still unanswered when the window closes: their age is a lower bound
    # on latencies that the percentiles (answers only) cannot show.
    now = time.perf_counter()
    unanswered: dict[str, list[float]] = defaultdict(list)
    for label, sent in pending.values():
        unanswered[label].append(now - sent)
    for task in workers:
        task.cancel()
    await asyncio.gather(*workers, return_exceptions=True)
    return {
        "window": [wall_start, wall_end],
        "seconds": wall_end - wall_start,
        "client_cpu": cpu_used / max(1e-9, wall_end - wall_start),
        "labels": {label: s.to_json() for label, s in stats.items()},
        "unanswered_ms": {
            label: sorted((age * 1000 for age in ages), reverse=True)
            for label, ages in unanswered.items()
        },
    }


async def sequential(spec: dict[str, Any], client: httpx.AsyncClient) -> dict[str, Any]:
    requests: list[dict[str, Any]] = spec["requests"]
    keep_body = bool(spec.get("keep_bodies", False))
    for i in range(int(spec.get("warmup_count", 0))):
        await _timed(client, requests[i % len(requests)], False)
    stats: dict[str, LabelStats] = defaultdict(LabelStats)
    cpu_start, wall_start = time.process_time(), time.time()
    for i in range(int(spec["count"])):
        request = requests[i % len(requests)]
        status, latency, body = await _timed(client, request, keep_body)
        stats[request["label"]].record(status, latency, body)
    wall_end = time.time()
    return {
        "window": [wall_start, wall_end],
        "seconds": wall_end - wall_start,
        "client_cpu": (time.process_time() - cpu_start) / max(1e-9, wall_end - wall_start),
        "labels": {label: s.to_json() for label, s in stats.items()},
    }


async def generate(spec: dict[str, Any]) -> dict[str, Any]:
    connections = max(1, int(spec.get("concurrency", 1)))
    async with httpx.AsyncClient(
        base_url=spec["base_url"],
        limits=httpx.Limits(max_connections=connections, max_keepalive_connections=connections),
        timeout=httpx.Timeout(float(spec.get("timeout", 30.0))),
    ) as client:
        if spec["mode"] == "closed":
            return await closed_loop(spec, client)
        return await sequential(spec, client)


async def run_load(spec: dict[str, Any]) -> dict[str, Any]:
    """Run one load in a fresh `python -m scripts.bench.load` process."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "scripts.bench.load",
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await process.communicate(json.dumps(spec).encode())
    if process.returncode != 0:
        raise RuntimeError(f"load generator failed ({process.returncode}): {err.decode()[-2000:]}")
    result: dict[str, Any] = json.loads(out)
    return result


def main() -> None:
    spec = json.load(sys.stdin)
    try:
        import uvloop  # the client's loop overhead is part of what it costs to measure
    except ImportError:  # pragma: no cover - uvicorn[standard] brings it
        result = asyncio.run(generate(spec))
    else:
        result = uvloop.run(generate(spec))
    json.dump(result, sys.stdout)


if __name__ == "__main__":
    main()
