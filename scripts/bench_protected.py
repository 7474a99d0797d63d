"""Section 2: what the per-request liveness check costs a protected endpoint (issue 4).

Served by `scripts.bench_app` (the real app plus token-only twins of
`GET /accounts/me`), so the full check and its baselines share one process,
one database and one run:

- `/accounts/me`: token verified, session and account looked up (liveness), handler.
- `/bench/me-token-only`: the same handler, token verified, no liveness lookup.
- `/bench/token-only`: token verified, nothing else.
- `/healthz`: no token, no database.

Throughput is closed-loop at a fixed concurrency; the sequential medians give
the per-request latency the lookup adds when nothing else is waiting.
"""

import os
import statistics

from scripts.bench_load import run_load
from scripts.bench_report import Section, ms, pct, rate, ratio, statuses, us
from scripts.bench_server import BenchConfig, login, seed, temp_database, uvicorn_server
from scripts.bench_tokens import time_algorithm
from scripts.seed_accounts import DEFAULT_PASSWORD, bench_username

CONCURRENCY = 16
ENDPOINTS = (
    ("full", "/accounts/me", "verify + liveness lookup + handler (3 queries)"),
    ("me-token-only", "/bench/me-token-only", "verify + same handler, no liveness"),
    ("token-only", "/bench/token-only", "verify only, no database"),
    ("healthz", "/healthz", "bare: no token, no database"),
)


def _median(values: list[float]) -> float:
    return statistics.median(values) if values else 0.0


async def run(config: BenchConfig) -> Section:
    rounds = config.pick(3, 1)
    section = Section(
        "protected",
        f"2. Protected endpoint throughput (closed loop, concurrency {CONCURRENCY}, "
        f"median of {rounds} interleaved round{'s' if rounds > 1 else ''})",
        [
            "endpoint",
            "does",
            "req/s",
            "p50",
            "p99",
            "seq. median",
            "server CPU",
            "PG CPU",
            "client CPU",
            "machine busy",
        ],
    )
    samples: dict[str, dict[str, list[float]]] = {
        key: {m: [] for m in ("rps", "p50", "p99", "server", "db", "client", "machine")}
        for key, _, _ in ENDPOINTS
    }
    async with temp_database(config.backend, config.workdir) as db:
        await seed(db, 1)
        async with uvicorn_server(db, config.workdir, app="scripts.bench_app:app") as server:
            token = await login(server.base_url, bench_username(1), DEFAULT_PASSWORD)
            auth = {"Authorization": f"Bearer {token}"}
            requests = {
                key: {"label": key, "path": path, "headers": auth} for key, path, _ in ENDPOINTS
            }
            # Rounds alternate the endpoints, so a burst of outside load on this
            # shared machine skews all four alike instead of one.
            for _ in range(rounds):
                for key, path, _ in ENDPOINTS:
                    load = await run_load(
                        {
                            "base_url": server.base_url,
                            "mode": "closed",
                            "concurrency": CONCURRENCY,
                            "warmup": config.pick(0.7, 0.5),
                            "duration": config.pick(2.5, 1.5),
                            "requests": [requests[key]],
                        }
                    )
                    stats = load["labels"].get(key, {"status": {}, "latency_ms": None})
                    ok = stats["status"].get("200", 0)
                    if ok != sum(stats["status"].values()):
                        section.problems.append(f"{path}: statuses {statuses(stats['status'])}")
                    lat = stats["latency_ms"] or {}
                    into = samples[key]
                    into["rps"].append(ok / load["seconds"])
                    into["p50"].append(lat.get("p50", 0.0))
                    into["p99"].append(lat.get("p99", 0.0))
                    into["server"].append(server.sampler.cpu_share(*load["window"]) or 0.0)
                    into["client"].append(load["client_cpu"])
                    into["db"].append(server.sampler.database_share(*load["window"]) or 0.0)
                    into["machine"].append(server.sampler.machine_share(*load["window"]) or 0.0)
            # Sequential latency, the four interleaved request by request.
            one = await run_load(
                {
                    "base_url": server.base_url,
                    "mode": "sequential",
                    "count": config.pick(400, 100) * len(ENDPOINTS),
                    "warmup_count": 20,
                    "requests": [requests[key] for key, _, _ in ENDPOINTS],
                }
            )
            section.problems.extend(server.problems())
    throughput = {key: _median(v["rps"]) for key, v in samples.items()}
    sequential: dict[str, float | None] = {
        key: (one["labels"][key]["latency_ms"] or {}).get("p50") for key, _, _ in ENDPOINTS
    }
    for key, path, does in ENDPOINTS:
        v = samples[key]
        section.add(
            path,
            does,
            rate(throughput[key]),
            ms(_median(v["p50"])),
            ms(_median(v["p99"])),
            ms(sequential[key]),
            pct(_median(v["server"])),
            pct(_median(v["db"])) if config.backend == "postgresql" else "-",
            pct(_median(v["client"])),
            pct(_median(v["machine"])),
        )
    verify = time_algorithm("RS256", config.pick(1.0, 0.3)).verify_seconds
    full, twin, bare = throughput["full"], throughput["me-token-only"], throughput["token-only"]
    issue4 = full / twin if twin else None
    brief = full / bare if bare else None
    per_request = (1 / full - 1 / twin) if full and twin else None
    seq_full, seq_twin = sequential["full"], sequential["me-token-only"]
    added = seq_full - seq_twin if seq_full is not None and seq_twin is not None else None
    section.notes += [
        f"/accounts/me vs the same endpoint verifying the token alone: {ratio(issue4)} the "
        f"requests/s (liveness check ~ {us(per_request) if per_request else '-'} of server time "
        f"per request at saturation; +{ms(added)} sequential latency).",
        f"/accounts/me vs a route that only verifies the token: {ratio(brief)} the requests/s; "
        f"RS256 verification in-process: {us(verify)} per token.",
        "CPU columns in % of one core: server (one uvicorn worker), PG (the backends serving "
        "this database), client (the load generator), machine (all processes, of "
        f"{os.cpu_count()} cores; busy beyond the sum of the others is outside load). The "
        "database-free rows are bounded by the client as much as the server.",
    ]
    section.summary.append(
        f"protected: /accounts/me {rate(full, ' req/s')} = {ratio(issue4)} of the same endpoint "
        f"token-only ({rate(twin, ' req/s')}); {ratio(brief)} of verify-only "
        f"({rate(bare, ' req/s')}); /healthz {rate(throughput['healthz'], ' req/s')}; "
        f"liveness adds {ms(added)} sequential"
    )
    return section
