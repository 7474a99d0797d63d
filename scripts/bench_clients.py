"""What a client-credentials call, an introspection call and a request made with
a personal access token cost: medians of sequential requests (one at a time, so
each figure is the latency itself, not queueing) against one uvicorn worker on a
fresh PostgreSQL database (SQLite when PostgreSQL does not answer).

    .venv/bin/python -m scripts.bench_clients [--requests 200]

A session's access token on the same endpoint and /healthz are measured in the
same run as baselines.
"""

import argparse
import asyncio
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import httpx

from scripts.bench_server import (
    ADMIN_PASSWORD,
    ADMIN_USERNAME,
    login,
    pg_reachable,
    temp_database,
    uvicorn_server,
)

WARM_UP = 20


async def _timed(
    count: int, call: Callable[[], Awaitable[httpx.Response]], expect: int = 200
) -> list[float]:
    for _ in range(WARM_UP):
        await call()
    times = []
    for _ in range(count):
        start = time.perf_counter()
        response = await call()
        times.append((time.perf_counter() - start) * 1000)
        if response.status_code != expect:
            raise RuntimeError(f"{response.status_code} {response.text}")
    return times


async def run(count: int) -> None:
    backend = "postgresql" if await pg_reachable() else "sqlite"
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        async with (
            temp_database(backend, workdir) as db,
            uvicorn_server(db, workdir) as server,
            httpx.AsyncClient(base_url=server.base_url, timeout=30, trust_env=False) as http,
        ):
            admin = await login(server.base_url, ADMIN_USERNAME, ADMIN_PASSWORD)
            headers = {"Authorization": f"Bearer {admin}"}
            role = await http.post(
                "/roles",
                json={"name": "resource-server", "scopes": ["tokens:introspect", "accounts:read"]},
                headers=headers,
            )
            role.raise_for_status()
            created = await http.post(
                "/clients",
                json={
                    "name": "bench",
                    "type": "confidential",
                    "grant_types": ["client_credentials"],
                    "roles": ["resource-server"],
                },
                headers=headers,
            )
            created.raise_for_status()
            client = created.json()
            auth = (client["client_id"], client["client_secret"])
            pat = await http.post(
                "/accounts/me/tokens",
                json={"name": "bench", "scopes": ["me:read"]},
                headers=headers,
            )
            pat.raise_for_status()
            pat_token = pat.json()["token"]

            rows = {
                "POST /auth/token (client_credentials, Basic)": await _timed(
                    count,
                    lambda: http.post(
                        "/auth/token", data={"grant_type": "client_credentials"}, auth=auth
                    ),
                ),
                "POST /oauth/introspect (a PAT)": await _timed(
                    count,
                    lambda: http.post("/oauth/introspect", data={"token": pat_token}, auth=auth),
                ),
                "POST /oauth/introspect (a session access token)": await _timed(
                    count,
                    lambda: http.post("/oauth/introspect", data={"token": admin}, auth=auth),
                ),
                "GET /accounts/me with a PAT": await _timed(
                    count,
                    lambda: http.get(
                        "/accounts/me", headers={"Authorization": f"Bearer {pat_token}"}
                    ),
                ),
                "GET /accounts/me with a session access token (baseline)": await _timed(
                    count, lambda: http.get("/accounts/me", headers=headers)
                ),
                "GET /healthz (no token, no database)": await _timed(
                    count, lambda: http.get("/healthz")
                ),
            }
    print(f"{count} sequential requests each, one uvicorn worker, {backend}:")
    print(f"{'request':58} {'median ms':>10} {'p90 ms':>8}")
    for name, times in rows.items():
        p90 = statistics.quantiles(times, n=10)[-1]
        print(f"{name:58} {statistics.median(times):10.2f} {p90:8.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=200)
    asyncio.run(run(parser.parse_args().requests))


if __name__ == "__main__":
    main()
