"""What a client-credentials call, an introspection call and a request made with
a personal access token cost: medians of sequential requests (one at a time, so
each figure is the latency itself, not queueing) against one uvicorn worker on a
fresh PostgreSQL database (SQLite when PostgreSQL does not answer).

    .venv/bin/python -m scripts.bench.clients [--requests 200]

A session's access token on the same endpoint and /healthz are measured in the
same run as baselines, the rows taken in turn so that outside load falls on each
alike.
"""

import argparse
import asyncio
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import httpx

from scripts.bench.server import (
    ADMIN_PASSWORD,
    ADMIN_USERNAME,
    login,
    pg_reachable,
    temp_database,
    uvicorn_server,
)

WARM_UP = 20


async def _timed(
    count: int, calls: dict[str, Callable[[], Awaitable[httpx.Response]]]
) -> dict[str, list[float]]:
    """`count` timings of each call, taken in turn (one of each, then again), so
    that load from elsewhere on the machine falls on every row alike."""
    times: dict[str, list[float]] = {name: [] for name in calls}
    for round_ in range(WARM_UP + count):
        for name, call in calls.items():
            start = time.perf_counter()
            response = await call()
            elapsed = (time.perf_counter() - start) * 1000
            if response.status_code != 200:
                raise RuntimeError(f"{name}: {response.status_code} {response.text}")
            if round_ >= WARM_UP:
                times[name].append(elapsed)
    return times


async def resource_server_client(
    http: httpx.AsyncClient, admin_headers: dict[str, str], scopes: list[str]
) -> tuple[str, str]:
    """A confidential client for client credentials whose role carries `scopes`
    (a resource server's, when they hold `tokens:introspect`): its id and secret."""
    role = await http.post(
        "/roles",
        json={"name": "resource-server", "scopes": scopes},
        headers=admin_headers,
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
        headers=admin_headers,
    )
    created.raise_for_status()
    client = created.json()
    return client["client_id"], client["client_secret"]


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
            auth = await resource_server_client(
                http, headers, ["tokens:introspect", "accounts:read"]
            )
            pat = await http.post(
                "/accounts/me/tokens",
                json={"name": "bench", "scopes": ["me:read"]},
                headers=headers,
            )
            pat.raise_for_status()
            pat_token = pat.json()["token"]

            rows = await _timed(
                count,
                {
                    "POST /auth/token (client_credentials, Basic)": lambda: http.post(
                        "/auth/token", data={"grant_type": "client_credentials"}, auth=auth
                    ),
                    "POST /oauth/introspect (a PAT)": lambda: http.post(
                        "/oauth/introspect", data={"token": pat_token}, auth=auth
                    ),
                    "POST /oauth/introspect (a session access token)": lambda: http.post(
                        "/oauth/introspect", data={"token": admin}, auth=auth
                    ),
                    "GET /accounts/me with a PAT": lambda: http.get(
                        "/accounts/me", headers={"Authorization": f"Bearer {pat_token}"}
                    ),
                    "GET /accounts/me with a session access token (baseline)": lambda: http.get(
                        "/accounts/me", headers=headers
                    ),
                    "GET /healthz (no token, no database)": lambda: http.get("/healthz"),
                },
            )
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
