"""Section 3: protected requests while logins saturate the hasher (issue 7).

Login floods are the cheapest way to hurt an auth service: each costs a quarter
of a second of CPU and 64 MiB of argon2 memory. The service bounds the hasher
(one thread per core, `GATEHOUSE_HASH_QUEUE_LIMIT` waiting) and should shed
the rest with 503 at once, while token-bearing requests keep their latency.

Scenarios, each against a server that is idle when it starts: no logins, 8
logins always in flight (the fastapi-users comparison point), 200 (far beyond
the hasher's bound), and 200 wrong-password attempts from one address with the
DEFAULT throttle (10 failures), the shape of a real attack. A login loader keeps
exactly N requests in flight (each answer, whatever it is, is replaced at once:
no back-off, as a flood would); meanwhile separate probe processes request
`GET /accounts/me` and, as an event-loop canary without a database, `/healthz`.
Memory is the uvicorn process's peak RSS.
"""

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import psutil

from scripts.bench.load import run_load
from scripts.bench.login import login_request
from scripts.bench.report import Section, Target, at_least, at_most, mib, ms, pct, rate, statuses
from scripts.bench.server import (
    BenchConfig,
    Database,
    PgActivity,
    Server,
    execute,
    login,
    seed,
    temp_database,
    uvicorn_server,
)
from scripts.seed_accounts import DEFAULT_PASSWORD, bench_username

LOGIN_USERS = 256
PROBE_CONCURRENCY = 4
STUCK_MS = 1000.0  # a probe request unanswered this long at the window's end is reported
WRONG_PASSWORD = "not-the-password-at-all"  # noqa: S105 - a deliberate failure
DEFAULT_MAX_FAILURES = "10"


@dataclass(frozen=True, slots=True)
class Scenario:
    key: str
    label: str
    logins: int
    wrong_password: bool = False
    default_throttle: bool = False


SCENARIOS = (
    Scenario("idle", "0", 0),
    Scenario("8", "8", 8),
    Scenario("200", "200", 200),
    Scenario("attack", "200 wrong pw, throttle 10", 200, True, True),
)


def _closed(
    base_url: str, concurrency: int, config: BenchConfig, requests: list[dict[str, Any]]
) -> dict[str, Any]:
    return {
        "base_url": base_url,
        "mode": "closed",
        "concurrency": concurrency,
        "warmup": config.pick(2.0, 1.0),
        "duration": config.pick(8.0, 3.0),
        "timeout": 60,
        "keep_bodies": True,  # a 503 from the hasher and one from the pool look alike
        "requests": requests,
    }


async def _scenario(
    config: BenchConfig, base_url: str, token: str, scenario: Scenario
) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any] | None]:
    """Probe /accounts/me and /healthz from separate processes (a stuck /me must not
    starve the canary) while the scenario's logins are kept in flight."""
    auth = {"Authorization": f"Bearer {token}"}
    me = [{"label": "me", "path": "/accounts/me", "headers": auth}]
    loads = [
        run_load(_closed(base_url, PROBE_CONCURRENCY, config, me)),
        run_load(
            _closed(base_url, PROBE_CONCURRENCY, config, [{"label": "hz", "path": "/healthz"}])
        ),
    ]
    if scenario.logins:
        password = WRONG_PASSWORD if scenario.wrong_password else DEFAULT_PASSWORD
        users = [login_request(n, password) for n in range(2, LOGIN_USERS + 1)]
        loads.append(run_load(_closed(base_url, scenario.logins, config, users)))
    results = await asyncio.gather(*loads)
    return results[0], results[1], results[2] if scenario.logins else None


@contextlib.asynccontextmanager
async def _server(
    config: BenchConfig, db: Database, default_throttle: bool
) -> AsyncIterator[tuple[Server, PgActivity]]:
    extra = {"GATEHOUSE_LOGIN_MAX_FAILURES": DEFAULT_MAX_FAILURES} if default_throttle else None
    database = db.url.rsplit("/", 1)[-1] if db.backend == "postgresql" else None
    async with (
        uvicorn_server(db, config.workdir, extra_env=extra) as server,
        PgActivity(database) as activity,
    ):
        yield server, activity


async def run(config: BenchConfig) -> Section:
    section = Section(
        "saturation",
        "3. GET /accounts/me while logins are in flight",
        [
            "logins in flight",
            "/me p50",
            "/me p99",
            "/me req/s",
            "/healthz p99",
            "logins/s (200)",
            "login statuses",
            "peak RSS",
            "server CPU",
            "machine busy",
            "PG conns",
            "PG lock waits",
        ],
    )
    hot_queries: set[str] = set()
    figures: dict[str, dict[str, Any]] = {}
    idle_rss = None
    async with temp_database(config.backend, config.workdir) as db:
        await seed(db, LOGIN_USERS)
        token = ""
        for default_throttle in (False, True):
            if default_throttle:
                # The attack starts from a clean slate, as it would against a fresh
                # address (the floods above leave counters behind; see the notes).
                await execute(db, "DELETE FROM login_throttle")
            async with _server(config, db, default_throttle) as (server, activity):
                if not token:
                    idle_rss = psutil.Process(server.pid).memory_info().rss
                    token = await login(server.base_url, bench_username(1), DEFAULT_PASSWORD)
                for scenario in SCENARIOS:
                    if scenario.default_throttle != default_throttle:
                        continue
                    figures[scenario.key] = await _measure(
                        config, section, server, activity, token, scenario, hot_queries
                    )
                    # Abandoned logins leave argon2 work queued; let it drain so the
                    # next scenario starts from an idle server.
                    await server.wait_idle()
                section.problems.extend(server.problems())
    _conclude(section, figures, idle_rss, hot_queries, config)
    return section


async def _measure(
    config: BenchConfig,
    section: Section,
    server: Server,
    activity: PgActivity,
    token: str,
    scenario: Scenario,
    hot_queries: set[str],
) -> dict[str, Any]:
    probed, canary, flooded = await _scenario(config, server.base_url, token, scenario)
    start, end = probed["window"]
    me = probed["labels"].get("me", {"status": {}, "latency_ms": None})
    ages = [a for a in probed["unanswered_ms"].get("me", []) if a >= STUCK_MS]
    stuck = {"count": len(ages), "oldest_ms": ages[0]} if ages else None
    me_lat = me["latency_ms"] or {}
    health_lat = canary["labels"].get("hz", {"latency_ms": None})["latency_ms"] or {}
    login_status: dict[str, int] = {}
    errors = [("/accounts/me", *b) for b in me.get("bodies", [])]
    ok_rate = None
    if flooded is not None:
        answers = flooded["labels"].get("login", {"status": {}, "bodies": []})
        login_status = answers["status"]
        errors += [("logins", *b) for b in answers["bodies"]]
        ok_rate = login_status.get("200", 0) / flooded["seconds"]
    if set(me["status"]) - {"200"}:
        section.problems.append(
            f"/accounts/me, {scenario.label} logins in flight: {statuses(me['status'])}"
        )
    if stuck:
        section.problems.append(
            f"/accounts/me, {scenario.label} logins in flight: {stuck['count']} of "
            f"{PROBE_CONCURRENCY} probe requests unanswered at the window's end, the oldest "
            f"after {ms(stuck['oldest_ms'])}"
        )
    peak = server.sampler.peak_rss(start, end)
    busiest = activity.peak(start, end)
    if busiest and busiest.lock_waits:
        hot_queries.add(busiest.hot_query)
    stuck_text = f" (+{stuck['count']} >{stuck['oldest_ms'] / 1000:.1f} s)" if stuck else ""
    section.add(
        scenario.label,
        ms(me_lat.get("p50")),
        ms(me_lat.get("p99")) + stuck_text,
        rate(me["status"].get("200", 0) / probed["seconds"]),
        ms(health_lat.get("p99")),
        rate(ok_rate),
        statuses(login_status),
        mib(peak),
        pct(server.sampler.cpu_share(start, end)),
        pct(server.sampler.machine_share(start, end)),
        activity.peak_connections(start, end) if activity.database else "-",
        busiest.lock_waits if busiest else "-",
    )
    for who, status, body, count in errors:
        if status >= 500:
            section.notes.append(f"{scenario.label} in flight, {who} got {count}x {status} {body}")
    return {
        "p50": me_lat.get("p50"),
        "p99": me_lat.get("p99"),
        "stuck": stuck_text,
        "rate": me["status"].get("200", 0) / probed["seconds"],
        "rss": peak,
        "status": login_status,
    }


def _mb(value: int | None) -> str:
    return "-" if value is None else f"{value / 1e6:.0f} MB ({mib(value)})"


def _conclude(
    section: Section,
    figures: dict[str, dict[str, Any]],
    idle_rss: int | None,
    hot_queries: set[str],
    config: BenchConfig,
) -> None:
    flood = figures["200"]
    shed = flood["status"].get("503", 0)
    total = sum(flood["status"].values())
    unexpected = {k: v for k, v in flood["status"].items() if k not in ("200", "503")}
    general = [
        f"RSS {mib(idle_rss)} after start-up. Statuses count answers inside the window. "
        f"/accounts/me and /healthz are probed by separate processes ({PROBE_CONCURRENCY} "
        "connections each); /healthz shows event-loop stalls without any database work. "
        "'(+n >t s)': n probe requests unanswered for over a second when the window closed, "
        "the oldest for t s (the percentiles count answers only).",
        f"With 200 in flight: {shed} of {total} login answers were 503 "
        f"({pct(shed / total if total else None)}; which 503 is which: see the bodies below), "
        f"{flood['status'].get('200', 0)} succeeded"
        + (f", UNEXPECTED: {statuses(unexpected)}" if unexpected else "")
        + ".",
    ]
    if config.backend == "postgresql":
        general.append(
            "PG conns / lock waits: peak backends on this database and, at the worst moment, "
            "how many waited on a row lock held by another transaction"
            + (f" (running: {'; '.join(sorted(hot_queries))})" if hot_queries else "")
            + ". The server's pool allows 20 (GATEHOUSE_DB_POOL_SIZE 10 + as many overflow)."
        )
    # General notes first; the 5xx bodies noted per scenario follow them.
    section.notes[:0] = general
    if unexpected:
        section.problems.append(
            f"200 concurrent logins answered {statuses(unexpected)}: expected only 200 and 503"
        )

    def latency(key: str) -> str:
        f = figures[key]
        return f"{ms(f['p50'])}/{ms(f['p99'])}{f['stuck']} at {rate(f['rate'], ' req/s')}"

    section.summary.append(
        f"saturation: /me p50/p99 idle {latency('idle')}; 8 logins {latency('8')}; "
        f"200 logins {latency('200')}; 200 wrong-pw attempts at the default throttle "
        f"{latency('attack')}"
    )
    idle, busy = figures["idle"], figures["8"]
    kept = busy["rate"] / idle["rate"] if idle["rate"] else None
    section.targets += [
        at_least(
            "/accounts/me throughput with 8 logins in flight vs idle",
            kept,
            0.70,
            f"{pct(kept)} ({rate(busy['rate'], ' req/s')} vs {rate(idle['rate'], ' req/s')})",
            "70%",
        ),
        # A request left unanswered for over a second fails it whatever the answers' p99.
        Target(
            "/accounts/me p99 with 8 logins in flight",
            ms(busy["p99"]) + busy["stuck"],
            "< 100 ms",
            None if busy["p99"] is None else busy["p99"] < 100 and not busy["stuck"],
        ),
        at_most(
            "idle resident memory",
            idle_rss,
            150e6,
            _mb(idle_rss),
            "150 MB",
        ),
        at_most(
            "resident memory with 200 logins in flight",
            flood["rss"],
            300e6,
            _mb(flood["rss"]),
            "300 MB",
        ),
    ]
    section.summary.append(
        f"saturation: peak RSS {mib(flood['rss'])} with 200 logins (after start-up "
        f"{mib(idle_rss)}); 200-login statuses {statuses(flood['status'])}; attack statuses "
        f"{statuses(figures['attack']['status'])}"
    )
