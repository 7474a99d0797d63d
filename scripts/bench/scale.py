"""Section 5: do listing, login and role checks stay fast with many accounts? (issue 5)

One server, one database: seed 1,000 accounts, time the requests, seed up to
100,000 with the `scripts.seed_accounts` command (timed: it is a deliverable
too), time them again. Listing is keyset-paginated and searched through
indexes, login looks one username key up, so each 100k/1k ratio should stay
near 1.0; a ratio that grows with the table points at a scan. Each read runs
more than five times on the same pooled connections, as in production, so
PostgreSQL's generic plans for prepared statements (asyncpg prepares every
query) are what gets measured, not just the first custom plans.
"""

import asyncio
import sys
import time
from typing import Any

from scripts.bench.load import run_load
from scripts.bench.report import Section, ms, ratio, statuses
from scripts.bench.server import (
    ADMIN_PASSWORD,
    ADMIN_USERNAME,
    ROOT,
    BenchConfig,
    Database,
    clean_environ,
    login,
    seed,
    temp_database,
    uvicorn_server,
)
from scripts.seed_accounts import DEFAULT_PASSWORD, bench_username

SMALL = 1_000


def _requests(admin: str, user: str, accounts: int) -> list[dict[str, Any]]:
    # Prefixes matching 100 accounts each: the oldest hundred (early in id order, so
    # an id-ordered scan finds them at once) and the newest (found last by such a scan).
    newest = bench_username(accounts - 1)[:-2]

    def admin_get(label: str, path: str) -> dict[str, Any]:
        return {"label": label, "path": path, "headers": {"Authorization": f"Bearer {admin}"}}

    return [
        admin_get("GET /accounts?limit=50", "/accounts?limit=50"),
        admin_get("  ...&q=<oldest 100>", "/accounts?limit=50&q=bench_0000"),
        admin_get("  ...&q=<newest 100>", f"/accounts?limit=50&q={newest}"),
        admin_get("  ...&q=<no match>", "/accounts?limit=50&q=nobody_matches_this"),
        admin_get("  ...&role=user", "/accounts?limit=50&role=user"),
        admin_get("  ...&role=admin (1 match)", "/accounts?limit=50&role=admin"),
        {
            "label": "GET /accounts/me (role check)",
            "path": "/accounts/me",
            "headers": {"Authorization": f"Bearer {user}"},
        },
    ]


def _login(number: int) -> dict[str, Any]:
    return {
        "label": "one login",
        "method": "POST",
        "path": "/auth/token",
        "form": {
            "grant_type": "password",
            "username": bench_username(number),
            "password": DEFAULT_PASSWORD,
        },
    }


async def _seed_command(db: Database, count: int) -> tuple[float, str]:
    """`python -m scripts.seed_accounts COUNT`, as a user would run it."""
    began = time.perf_counter()
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "scripts.seed_accounts",
        str(count),
        cwd=ROOT,
        env={**clean_environ(), "GATEHOUSE_DATABASE_URL": db.url},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await process.communicate()
    if process.returncode != 0:
        raise RuntimeError(f"seed_accounts failed: {out.decode()[-2000:]}")
    return time.perf_counter() - began, out.decode().strip()


async def _measure(base_url: str, config: BenchConfig, accounts: int) -> dict[str, Any]:
    admin = await login(base_url, ADMIN_USERNAME, ADMIN_PASSWORD)
    user = await login(base_url, bench_username(1), DEFAULT_PASSWORD)
    requests = _requests(admin, user, accounts)
    reads = await run_load(
        {
            "base_url": base_url,
            "mode": "sequential",
            "count": config.pick(20, 10) * len(requests),
            "warmup_count": 2 * len(requests),
            "requests": requests,
        }
    )
    logins = await run_load(
        {
            "base_url": base_url,
            "mode": "sequential",
            "count": config.pick(5, 3),
            "warmup_count": 1,
            "requests": [_login(accounts // 2)],
        }
    )
    return {**reads["labels"], **logins["labels"]}


async def run(config: BenchConfig) -> Section:
    large = config.pick(100_000, 20_000)
    async with temp_database(config.backend, config.workdir) as db:
        began = time.perf_counter()
        await seed(db, SMALL)
        small_seconds = time.perf_counter() - began
        async with uvicorn_server(db, config.workdir) as server:
            small = await _measure(server.base_url, config, SMALL)
            seed_seconds, seed_output = await _seed_command(db, large - SMALL)
            big = await _measure(server.base_url, config, large)
            section_problems = server.problems()
    label_large = f"{large // 1000}k"
    section = Section(
        "scale",
        f"5. Scale: {SMALL // 1000}k vs {label_large} accounts (medians, sequential)",
        ["request", "1k accounts", f"{label_large} accounts", f"{label_large}/1k", "statuses"],
    )
    section.problems.extend(section_problems)
    ratios: dict[str, float | None] = {}
    for label in small:
        a, b = small[label], big[label]
        p50a = (a["latency_ms"] or {}).get("p50")
        p50b = (b["latency_ms"] or {}).get("p50")
        ratios[label] = p50b / p50a if p50a and p50b else None
        section.add(label, ms(p50a), ms(p50b), ratio(ratios[label]), statuses(b["status"]))
        if set(a["status"]) | set(b["status"]) != {"200"}:
            section.problems.append(
                f"{label}: statuses {statuses(a['status'])} / {statuses(b['status'])}"
            )
    section.notes += [
        f"Seeding {SMALL:,} in-process: {small_seconds:.1f} s. `python -m scripts.seed_accounts "
        f"{large - SMALL}` (process start included): {seed_seconds:.1f} s -> {seed_output}",
        f"Samples: {config.pick(20, 10)} per read, interleaved; {config.pick(5, 3)} logins "
        f"(user {bench_username(SMALL // 2)} at 1k, {bench_username(large // 2)} at "
        f"{label_large}).",
    ]

    def median(at: dict[str, Any], label: str) -> str:
        return ms((at[label]["latency_ms"] or {}).get("p50"))

    listing, me = "GET /accounts?limit=50", "GET /accounts/me (role check)"
    worst = max((r for k, r in ratios.items() if k.startswith("  ") and r), default=None)
    section.summary.append(
        f"scale: GET /accounts?limit=50 {median(small, listing)} at 1k vs "
        f"{median(big, listing)} at {label_large} ({ratio(ratios[listing])}); login "
        f"{median(small, 'one login')} vs {median(big, 'one login')} "
        f"({ratio(ratios['one login'])}); /accounts/me {ratio(ratios[me])}; worst list filter "
        f"{ratio(worst)}; seeded {large - SMALL:,} in {seed_seconds:.1f} s"
    )
    return section
