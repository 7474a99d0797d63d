"""Section 2: what the per-request liveness check costs a protected endpoint (issue 4).

Served by `scripts.bench.app` (the real app plus token-only twins of
`GET /accounts/me`), so the full check and its baselines share one process,
one database and one run:

- `/accounts/me`: token verified, then one statement: session live, account
  active and unchanged, and the account with its roles (what the handler shows).
- `/bench/me-token-only`: the same answer, token verified, no liveness lookup;
  account and roles read as for a personal access token (two queries).
- `/bench/token-only`: token verified, nothing else.
- `/healthz`: no token, no database.

Throughput is closed-loop at a fixed concurrency; the sequential medians give
the per-request latency the lookup adds when nothing else is waiting.

The throughput rows are driven by `wrk` when it is on PATH: the Python load
generator saturates its own core near 900 req/s, below what the database-free
rows reach, so with it those rows measure the client. Without wrk they fall back
to that generator (and say so). The sequential medians always come from it.
"""

import asyncio
import contextlib
import os
import re
import shutil
import signal
import statistics
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import httpx

from scripts.bench.load import run_load
from scripts.bench.report import Section, ms, pct, rate, ratio, statuses, us
from scripts.bench.server import BenchConfig, login, seed, temp_database, uvicorn_server
from scripts.bench.tokens import time_algorithm
from scripts.seed_accounts import DEFAULT_PASSWORD, bench_username

CONCURRENCY = 16
ENDPOINTS = (
    ("full", "/accounts/me", "verify + liveness reading account and roles (1 query)"),
    ("me-token-only", "/bench/me-token-only", "verify, no liveness; account + roles (2 queries)"),
    ("token-only", "/bench/token-only", "verify only, no database"),
    ("healthz", "/healthz", "bare: no token, no database"),
)


# wrk runs one thread: measured here, it spends ~15% of a core while the one
# uvicorn worker saturates its own, so one thread is plenty and leaves the rest
# of the machine to the server and PostgreSQL.
WRK_THREADS = 1
WRK_TIMEOUT = "2s"  # a request slower than this counts as a socket timeout (a PROBLEM)
# Not pinned with `taskset`: on the 2-core machine this was written on, wrk on
# core 0, on core 1 and unpinned gave the same req/s on every row (medians of 3
# within 2%, less than the spread between runs; see the note printed with the
# table), and unpinned the scheduler can move it away from outside load. Set to
# a CPU list ("1") to pin.
WRK_CPUS: str | None = None


@dataclass
class Run:
    """One closed-loop run of one endpoint, whichever generator drove it."""

    window: tuple[float, float]  # wall-clock start and end, for the CPU samplers
    ok_per_second: float  # 2xx answers per second
    p50: float | None  # latency, ms
    p99: float | None
    client_cpu: float  # the load generator's CPU, in cores
    problems: list[str] = field(default_factory=list)


@dataclass
class WrkResult:
    requests: int
    requests_per_second: float
    latency_ms: dict[str, float]  # "50%", "75%", "90%", "99%" -> ms
    non_2xx: int  # wrk's "Non-2xx or 3xx responses": in fact every status >= 400
    socket_errors: dict[str, int]  # connect, read, write, timeout


_UNIT_MS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3, "h": 3600e3}


def parse_wrk(output: str) -> WrkResult:
    """The figures of `wrk --latency` output; raises ValueError if they are missing."""
    requests = re.search(r"^\s*(\d+) requests in ", output, re.MULTILINE)
    per_second = re.search(r"^Requests/sec:\s+([\d.]+)", output, re.MULTILINE)
    if not requests or not per_second:
        raise ValueError(f"unexpected wrk output:\n{output[-2000:]}")
    latency: dict[str, float] = {}
    distribution = output.partition("Latency Distribution")[2]
    for share, value, unit in re.findall(
        r"^\s*(\d+%)\s+([\d.]+)(us|ms|s|m|h)\s*$", distribution, re.MULTILINE
    ):
        latency[share] = float(value) * _UNIT_MS[unit]
    non_2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", output)
    errors = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output
    )
    return WrkResult(
        requests=int(requests.group(1)),
        requests_per_second=float(per_second.group(1)),
        latency_ms=latency,
        non_2xx=int(non_2xx.group(1)) if non_2xx else 0,
        socket_errors=dict(
            zip(
                ("connect", "read", "write", "timeout"),
                (int(n) for n in errors.groups()) if errors else (0, 0, 0, 0),
                strict=True,
            )
        ),
    )


def _kill(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)


def spawn(
    argv: list[str], timeout: float, env: dict[str, str] | None = None
) -> tuple[str, int, float, tuple[float, float]]:
    """Run `argv` to completion: (stdout+stderr, exit code, CPU seconds, wall window).
    Reaped with wait4, so its CPU time is exact; killed if it outlives `timeout`.
    `env` adds to this process's environment (wrk's Lua scripts read theirs)."""
    with tempfile.TemporaryFile() as out:
        started = time.time()
        process = subprocess.Popen(
            argv, stdout=out, stderr=subprocess.STDOUT, env={**os.environ, **(env or {})}
        )
        # os.kill, not Popen.kill: that polls, and could reap the process under wait4.
        killer = threading.Timer(timeout, _kill, (process.pid,))
        killer.start()
        try:
            _, status, usage = os.wait4(process.pid, 0)
        finally:
            killer.cancel()
        ended = time.time()
        process.returncode = os.waitstatus_to_exitcode(status)  # reaped: Popen must not wait
        out.seek(0)
        output = out.read().decode(errors="replace")
    return output, process.returncode, usage.ru_utime + usage.ru_stime, (started, ended)


def wrk_version(wrk: str) -> str:
    try:
        output = subprocess.run(
            [wrk, "--version"], capture_output=True, text=True, timeout=5
        ).stdout
    except (OSError, subprocess.TimeoutExpired):
        return "wrk"
    return output.partition(" [")[0].strip() or "wrk"


async def _wrk(wrk: str, url: str, token: str, seconds: int) -> Run:
    argv = [
        wrk,
        f"-t{WRK_THREADS}",
        f"-c{CONCURRENCY}",
        f"-d{seconds}s",
        f"--timeout={WRK_TIMEOUT}",
        "--latency",
        "-H",
        f"Authorization: Bearer {token}",
        url,
    ]
    if WRK_CPUS and (taskset := shutil.which("taskset")):
        argv = [taskset, "-c", WRK_CPUS, *argv]
    output, code, cpu, window = await asyncio.to_thread(spawn, argv, seconds + 30.0)
    if code != 0:
        raise RuntimeError(f"wrk failed ({code}): {output[-2000:]}")
    result = parse_wrk(output)
    problems = []
    if result.non_2xx:
        problems.append(
            f"{result.non_2xx} of {result.requests} answers not 2xx (status >= 400, as wrk counts)"
        )
    if errors := {k: n for k, n in result.socket_errors.items() if n}:
        problems.append("socket errors " + " ".join(f"{k}:{n}" for k, n in errors.items()))
    ok = result.requests - result.non_2xx
    return Run(
        window=window,
        ok_per_second=result.requests_per_second * ok / result.requests if result.requests else 0,
        p50=result.latency_ms.get("50%"),
        p99=result.latency_ms.get("99%"),
        client_cpu=cpu / max(1e-9, window[1] - window[0]),
        problems=problems,
    )


async def _httpx(config: BenchConfig, base_url: str, request: dict[str, Any]) -> Run:
    load = await run_load(
        {
            "base_url": base_url,
            "mode": "closed",
            "concurrency": CONCURRENCY,
            "warmup": config.pick(0.7, 0.5),
            "duration": config.pick(2.5, 1.5),
            "requests": [request],
        }
    )
    stats = load["labels"].get(request["label"], {"status": {}, "latency_ms": None})
    ok = stats["status"].get("200", 0)
    problems = []
    if ok != sum(stats["status"].values()):
        problems.append(f"statuses {statuses(stats['status'])}")
    lat = stats["latency_ms"] or {}
    return Run(
        window=(load["window"][0], load["window"][1]),
        ok_per_second=ok / load["seconds"],
        p50=lat.get("p50"),
        p99=lat.get("p99"),
        client_cpu=load["client_cpu"],
        problems=problems,
    )


def _median(values: list[float]) -> float:
    return statistics.median(values) if values else 0.0


async def _preflight(base_url: str, token: str) -> list[str]:
    """wrk counts only statuses >= 400 as errors: check once that every row answers
    200 itself (not a redirect) before trusting its figures."""
    problems = []
    auth = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(base_url=base_url, timeout=10) as client:
        for _, path, _ in ENDPOINTS:
            response = await client.get(path, headers=auth)
            if response.status_code != 200:
                problems.append(f"{path}: preflight GET answered {response.status_code}")
    return problems


async def run(config: BenchConfig) -> Section:
    rounds = config.pick(3, 1)
    wrk = shutil.which("wrk")
    # wrk takes whole seconds; each measured run follows an unmeasured warm-up run.
    wrk_warmup, wrk_seconds = 1, config.pick(3, 1)
    generator = (
        f"{wrk_version(wrk)}, {WRK_THREADS} thread, {CONCURRENCY} connections"
        if wrk
        else f"the httpx load generator, {CONCURRENCY} workers"
    )
    section = Section(
        "protected",
        f"2. Protected endpoint throughput (closed loop, concurrency {CONCURRENCY}, "
        f"{'wrk' if wrk else 'httpx'}, "
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
        async with uvicorn_server(db, config.workdir, app="scripts.bench.app:app") as server:
            token = await login(server.base_url, bench_username(1), DEFAULT_PASSWORD)
            auth = {"Authorization": f"Bearer {token}"}
            requests = {
                key: {"label": key, "path": path, "headers": auth} for key, path, _ in ENDPOINTS
            }
            if wrk:
                section.problems.extend(await _preflight(server.base_url, token))
            # Rounds alternate the endpoints, so a burst of outside load on this
            # shared machine skews all four alike instead of one.
            for _ in range(rounds):
                for key, path, _ in ENDPOINTS:
                    if wrk:
                        url = server.base_url + path
                        await _wrk(wrk, url, token, wrk_warmup)
                        load = await _wrk(wrk, url, token, wrk_seconds)
                    else:
                        load = await _httpx(config, server.base_url, requests[key])
                    section.problems.extend(f"{path}: {p}" for p in load.problems)
                    into = samples[key]
                    into["rps"].append(load.ok_per_second)
                    into["p50"].append(load.p50 or 0.0)
                    into["p99"].append(load.p99 or 0.0)
                    into["server"].append(server.sampler.cpu_share(*load.window) or 0.0)
                    into["client"].append(load.client_cpu)
                    into["db"].append(server.sampler.database_share(*load.window) or 0.0)
                    into["machine"].append(server.sampler.machine_share(*load.window) or 0.0)
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
        f"{os.cpu_count()} cores; busy beyond the sum of the others is outside load).",
    ]
    busiest_client = max(_median(v["client"]) for v in samples.values())
    if wrk:
        pinned = (
            f"pinned to CPU {WRK_CPUS} with taskset"
            if WRK_CPUS and shutil.which("taskset")
            else "not pinned: measured on a 2-core machine, wrk under taskset -c 0, under "
            "taskset -c 1 and unpinned gave the same req/s on every row (medians of 3 within "
            "2%, less than the spread between runs), and unpinned the scheduler can move it "
            "off a core that outside load takes"
        )
        section.notes += [
            f"Throughput, p50 and p99 by {generator} ({wrk_warmup} s warm-up, then {wrk_seconds} s "
            f"measured per run; latency from its --latency distribution); wrk is {pinned}. "
            f"It used at most {pct(busiest_client)} of a core, so "
            + (
                "every row is bounded by the server, not the client."
                if busiest_client < 0.5
                else "it may share the bound with the server on the fastest rows."
            ),
            "Sequential medians by the httpx load generator (one request at a time; its "
            "client overhead is in all four alike). wrk counts statuses >= 400 as errors; a "
            "preflight GET checked each row answers 200 itself.",
        ]
    else:
        section.notes.append(
            f"Throughput by {generator}: wrk was not found on PATH (Debian package `wrk`). "
            f"The client saturated at up to {pct(busiest_client)} of a core, so the "
            "database-free rows are bounded by the client as much as the server; install wrk "
            "to measure the server."
        )
    section.summary.append(
        f"protected: /accounts/me {rate(full, ' req/s')} = {ratio(issue4)} of the same endpoint "
        f"token-only ({rate(twin, ' req/s')}); {ratio(brief)} of verify-only "
        f"({rate(bare, ' req/s')}); /healthz {rate(throughput['healthz'], ' req/s')}; "
        f"liveness adds {ms(added)} sequential; load by {'wrk' if wrk else 'httpx'}"
    )
    return section
