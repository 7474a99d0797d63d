"""Section 0: the hot paths against their ceiling and their peer (issue 15).

Three servers run side by side, one uvicorn worker each (uvloop, httptools):

- the ceiling, `scripts.bench.ceiling`: a bare FastAPI endpoint verifying the
  very RS256 access token Gatehouse issued, with python-jose, no database;
- the peer, `scripts.bench.peer`: fastapi-users' `GET /users/me` (JWT strategy,
  SQLAlchemy adapter), from `.venv-bench`, on its own database of the same server;
- Gatehouse: `GET /accounts/me`, the refresh grant (independent rotation chains,
  each token used once), client credentials, and introspection of a live
  session access token.

wrk drives every row (16 connections; the refresh chains one connection per
chain, since a chain cannot have two requests in flight), rows alternating
within each round so outside load on a shared machine falls on all alike; the
figure is the median of the rounds. Targets are ratios inside one run. The same
rows then run on SQLite (the embedded default), reported without targets.
"""

import asyncio
import base64
import contextlib
import json
import secrets
import shutil
import statistics
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from jose import jwt

from scripts.bench.clients import resource_server_client
from scripts.bench.protected import parse_wrk, spawn, wrk_version
from scripts.bench.report import Section, Target, at_least, ms, pct, rate, ratio, us
from scripts.bench.server import (
    ADMIN_PASSWORD,
    ADMIN_USERNAME,
    PG_HOST,
    PG_PORT,
    PG_USER,
    ROOT,
    BenchConfig,
    Database,
    Server,
    login,
    pg_admin,
    seed,
    temp_database,
    uvicorn_server,
)
from scripts.seed_accounts import DEFAULT_PASSWORD, bench_username

CONNECTIONS = 16
REFRESH_CHAINS = 4
WRK_TIMEOUT = "2s"
PEER_UVICORN = ROOT / ".venv-bench" / "bin" / "uvicorn"
PEER_EMAIL = "peer@bench.example"
FORM = "application/x-www-form-urlencoded"

# A POST with a fixed form body and Authorization header, both from the environment.
LUA_POST = """
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
wrk.headers["Authorization"] = os.getenv("BENCH_AUTHORIZATION")
wrk.body = os.getenv("BENCH_BODY")
"""
# One rotation chain per wrk thread (one connection each): every answer's new
# refresh token is the next request's, so each token is presented exactly once.
LUA_REFRESH = """
local tokens = {}
for t in string.gmatch(os.getenv("BENCH_TOKENS"), "[^,]+") do tokens[#tokens + 1] = t end
local started = 0
function setup(thread)
  started = started + 1
  thread:set("token", tokens[started])
end
function request()
  return wrk.format("POST", nil, {["Content-Type"] = "application/x-www-form-urlencoded"},
    "grant_type=refresh_token&refresh_token=" .. token)
end
function response(status, headers, body)
  local next_token = body:match('"refresh_token":"([^"]+)"')
  if next_token then token = next_token end
end
"""


@dataclass
class Row:
    key: str
    label: str
    url: str
    headers: dict[str, str] = field(default_factory=dict)
    body: str | None = None  # a POST with this form body
    refresh_from: Server | None = None  # rotation chains, fresh logins per run
    rps: list[float] = field(default_factory=list)
    p50: list[float] = field(default_factory=list)
    p99: list[float] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)
    cpu_per_request: list[float] = field(default_factory=list)  # server CPU seconds
    server: Server | None = None
    problems: list[str] = field(default_factory=list)

    def median(self, values: list[float]) -> float | None:
        return statistics.median(values) if values else None


@contextlib.asynccontextmanager
async def empty_database(backend: str, workdir: Path) -> AsyncIterator[str]:
    """An empty database for the peer (it creates its own table), dropped afterwards."""
    if backend == "postgresql":
        name = f"gatehouse_bench_peer_{secrets.token_hex(6)}"
        await pg_admin(f'CREATE DATABASE "{name}"')
        try:
            yield f"postgresql+asyncpg://{PG_USER}@{PG_HOST}:{PG_PORT}/{name}"
        finally:
            await pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        return
    path = workdir / f"peer-{secrets.token_hex(4)}.db"
    try:
        yield f"sqlite+aiosqlite:///{path}"
    finally:
        for suffix in ("", "-wal", "-shm", "-journal"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)


def _basic(client_id: str, secret: str) -> str:
    raw = f"{client_id}:{secret}".encode()
    return "Basic " + base64.b64encode(raw).decode()


async def _refresh_tokens(server: Server, count: int) -> list[str]:
    """`count` fresh sessions of the bench account: the heads of new rotation chains."""
    form = {
        "grant_type": "password",
        "username": bench_username(1),
        "password": DEFAULT_PASSWORD,
    }
    async with httpx.AsyncClient(base_url=server.base_url, timeout=60) as client:
        answers = await asyncio.gather(
            *(client.post("/auth/token", data=form) for _ in range(count))
        )
    for answer in answers:
        if answer.status_code != 200:
            raise RuntimeError(f"login for a refresh chain: {answer.status_code} {answer.text}")
    return [str(a.json()["refresh_token"]) for a in answers]


async def _gatehouse_setup(server: Server) -> dict[str, str]:
    """An introspecting confidential client with client credentials, and a user's
    access token: what the Gatehouse rows present."""
    admin = await login(server.base_url, ADMIN_USERNAME, ADMIN_PASSWORD)
    user = await login(server.base_url, bench_username(1), DEFAULT_PASSWORD)
    headers = {"Authorization": f"Bearer {admin}"}
    async with httpx.AsyncClient(base_url=server.base_url, timeout=30) as http:
        client_id, client_secret = await resource_server_client(
            http, headers, ["tokens:introspect"]
        )
        jwks = (await http.get("/.well-known/jwks.json")).json()
    claims = jwt.get_unverified_claims(user)
    return {
        "user_token": user,
        "client_auth": _basic(client_id, client_secret),
        "jwks": json.dumps(jwks),
        "issuer": str(claims["iss"]),
        "audience": str(claims["aud"]),
    }


async def _peer_token(server: Server) -> str:
    password = secrets.token_urlsafe(16)
    async with httpx.AsyncClient(base_url=server.base_url, timeout=60) as http:
        created = await http.post(
            "/auth/register", json={"email": PEER_EMAIL, "password": password}
        )
        if created.status_code != 201:
            raise RuntimeError(f"peer register: {created.status_code} {created.text}")
        answer = await http.post(
            "/auth/jwt/login", data={"username": PEER_EMAIL, "password": password}
        )
        if answer.status_code != 200:
            raise RuntimeError(f"peer login: {answer.status_code} {answer.text}")
    return str(answer.json()["access_token"])


async def _run_wrk(wrk: str, row: Row, seconds: int, workdir: Path) -> None:
    """One wrk run of `row`; recorded unless `seconds` is the warm-up's 0 marker."""
    env: dict[str, str] = {}
    if row.refresh_from is not None:
        tokens = await _refresh_tokens(row.refresh_from, REFRESH_CHAINS)
        script, threads, connections = LUA_REFRESH, REFRESH_CHAINS, REFRESH_CHAINS
        env["BENCH_TOKENS"] = ",".join(tokens)
    elif row.body is not None:
        script, threads, connections = LUA_POST, 1, CONNECTIONS
        env["BENCH_AUTHORIZATION"] = row.headers.get("Authorization", "")
        env["BENCH_BODY"] = row.body
    else:
        script, threads, connections = "", 1, CONNECTIONS
    argv = [
        wrk,
        f"-t{threads}",
        f"-c{connections}",
        f"-d{max(1, seconds)}s",
        f"--timeout={WRK_TIMEOUT}",
        "--latency",
    ]
    if script:
        path = workdir / f"{row.key}.lua"
        path.write_text(script)
        argv += ["-s", str(path)]
    else:
        for name, value in row.headers.items():
            argv += ["-H", f"{name}: {value}"]
    argv.append(row.url)
    output, code, _, window = await asyncio.to_thread(spawn, argv, max(1, seconds) + 30.0, env)
    if code != 0:
        raise RuntimeError(f"wrk failed ({code}) on {row.label}: {output[-2000:]}")
    if seconds == 0:
        return
    result = parse_wrk(output)
    ok = result.requests - result.non_2xx
    if result.non_2xx:
        row.problems.append(f"{result.non_2xx} of {result.requests} answers not 2xx")
    if errors := {k: n for k, n in result.socket_errors.items() if n}:
        row.problems.append("socket errors " + " ".join(f"{k}:{n}" for k, n in errors.items()))
    row.rps.append(result.requests_per_second * ok / result.requests if result.requests else 0)
    row.p50.append(result.latency_ms.get("50%", 0.0))
    row.p99.append(result.latency_ms.get("99%", 0.0))
    if row.server is not None:
        cpu = row.server.sampler.cpu_share(*window) or 0.0
        row.cpu.append(cpu)
        if row.rps[-1]:
            row.cpu_per_request.append(cpu / row.rps[-1])


async def _preflight(row: Row) -> None:
    """wrk counts statuses >= 400 only: check once that the row answers 200 itself."""
    if row.refresh_from is not None:
        return
    async with httpx.AsyncClient(timeout=10) as http:
        if row.body is not None:
            headers = {**row.headers, "Content-Type": FORM}
            answer = await http.post(row.url, content=row.body, headers=headers)
        else:
            answer = await http.get(row.url, headers=row.headers)
    if answer.status_code != 200:
        raise RuntimeError(f"{row.label}: preflight answered {answer.status_code} {answer.text}")


async def measure(config: BenchConfig, backend: str, wrk: str) -> dict[str, Row]:
    """Every row on `backend`, median of the interleaved rounds."""
    rounds = config.pick(3, 1)
    seconds = config.pick(10, 2)
    workdir = config.workdir
    peer_ready = PEER_UVICORN.exists()
    async with contextlib.AsyncExitStack() as stack:
        db: Database = await stack.enter_async_context(temp_database(backend, workdir))
        await seed(db, 1)
        gatehouse = await stack.enter_async_context(uvicorn_server(db, workdir))
        setup = await _gatehouse_setup(gatehouse)
        ceiling = await stack.enter_async_context(
            uvicorn_server(
                db,
                workdir,
                app="scripts.bench.ceiling:app",
                root=ROOT,
                extra_env={
                    "BENCH_JWKS": setup["jwks"],
                    "BENCH_ISSUER": setup["issuer"],
                    "BENCH_AUDIENCE": setup["audience"],
                },
            )
        )
        bearer = {"Authorization": f"Bearer {setup['user_token']}"}
        rows = [Row("ceiling", "bare FastAPI, verify RS256 (python-jose), no DB", "", bearer)]
        rows[0].url, rows[0].server = ceiling.base_url + "/me", ceiling
        if peer_ready:
            peer_url = await stack.enter_async_context(empty_database(backend, workdir))
            peer = await stack.enter_async_context(
                uvicorn_server(
                    db,
                    workdir,
                    app="scripts.bench.peer:app",
                    uvicorn=PEER_UVICORN,
                    root=ROOT,
                    extra_env={"PEER_DATABASE_URL": peer_url},
                )
            )
            token = await _peer_token(peer)
            rows.append(
                Row(
                    "peer",
                    "fastapi-users GET /users/me (JWT, SQLAlchemy)",
                    peer.base_url + "/users/me",
                    {"Authorization": f"Bearer {token}"},
                    server=peer,
                )
            )
        url = gatehouse.base_url
        client = {"Authorization": setup["client_auth"]}
        rows += [
            Row("me", "Gatehouse GET /accounts/me", url + "/accounts/me", bearer),
            Row(
                "refresh",
                f"Gatehouse refresh grant ({REFRESH_CHAINS} rotation chains)",
                url + "/auth/token",
                refresh_from=gatehouse,
            ),
            Row(
                "cc",
                "Gatehouse client credentials (Basic)",
                url + "/auth/token",
                client,
                body="grant_type=client_credentials",
            ),
            Row(
                "introspect",
                "Gatehouse introspection, live access token",
                url + "/oauth/introspect",
                client,
                body="token=" + setup["user_token"],
            ),
        ]
        for row in rows:
            row.server = row.server or gatehouse
            await _preflight(row)
        for _ in range(rounds):
            for row in rows:
                await _run_wrk(wrk, row, 0, workdir)  # warm-up, not recorded
                await _run_wrk(wrk, row, seconds, workdir)
        for server in {id(r.server): r.server for r in rows if r.server}.values():
            for problem in server.problems():
                rows[0].problems.append(f"server log: {problem}")
    return {row.key: row for row in rows}


def _targets(rows: dict[str, Row]) -> list[Target]:
    def rps(key: str) -> float | None:
        row = rows.get(key)
        return row.median(row.rps) if row else None

    ceiling, peer = rps("ceiling"), rps("peer")

    def share(key: str) -> float | None:
        value = rps(key)
        return value / ceiling if value is not None and ceiling else None

    me = rps("me")
    vs_peer = me / peer if me is not None and peer else None
    targets = [
        at_least(
            "GET /accounts/me vs fastapi-users /users/me",
            vs_peer,
            5.0,
            f"{ratio(vs_peer)} ({rate(me, ' req/s')} vs {rate(peer, ' req/s')})",
            "5x",
        )
    ]
    for key, name, bound in (
        ("me", "GET /accounts/me vs the bare endpoint", 0.50),
        ("refresh", "refresh grant vs the bare endpoint", 0.12),
        ("cc", "client credentials vs the bare endpoint", 0.20),
        ("introspect", "introspection (live access token) vs the bare endpoint", 0.40),
    ):
        value = share(key)
        targets.append(
            at_least(
                name,
                value,
                bound,
                f"{pct(value)} ({rate(rps(key), ' req/s')} vs {rate(ceiling, ' req/s')})",
                f"{bound * 100:.0f}%",
            )
        )
    return targets


def _table(section: Section, backend: str, rows: dict[str, Row]) -> None:
    ceiling = rows["ceiling"].median(rows["ceiling"].rps)
    ceiling_cpu = rows["ceiling"].median(rows["ceiling"].cpu_per_request)
    for row in rows.values():
        value = row.median(row.rps)
        cpu = row.median(row.cpu_per_request)
        section.add(
            backend,
            row.label,
            rate(value),
            pct(value / ceiling) if value is not None and ceiling else "-",
            ms(row.median(row.p50)),
            ms(row.median(row.p99)),
            pct(row.median(row.cpu)),
            us(cpu) if cpu else "-",
            pct(ceiling_cpu / cpu) if cpu and ceiling_cpu else "-",
        )
        section.problems.extend(f"{backend}, {row.label}: {p}" for p in row.problems)


async def run(config: BenchConfig) -> Section:
    section = Section(
        "hotpaths",
        "0. Hot paths vs the bare-FastAPI ceiling and fastapi-users (issue 15)",
        [
            "database",
            "endpoint",
            "req/s",
            "of ceiling",
            "p50",
            "p99",
            "server CPU",
            "CPU/request",
            "ceiling's CPU/req / this",
        ],
    )
    wrk = shutil.which("wrk")
    if wrk is None:
        section.problems.append(
            "wrk is not on PATH (Debian package `wrk`; `make bench` installs it as root): "
            "these rows need it, the Python load generator saturates below the ceiling"
        )
        section.targets += _targets({})
        return section
    backends = [config.backend] + (["sqlite"] if config.backend == "postgresql" else [])
    results = {backend: await measure(config, backend, wrk) for backend in backends}
    for backend, rows in results.items():
        _table(section, backend, rows)
    section.targets += _targets(results[config.backend])
    if not PEER_UVICORN.exists():
        section.notes.append(
            "fastapi-users is not installed: `make bench` builds .venv-bench from "
            "scripts/bench/peer-requirements.txt (its SQLAlchemy adapter pins SQLAlchemy "
            "< 2.1, which .venv is past)."
        )
    rounds, seconds = config.pick(3, 1), config.pick(10, 2)
    section.notes += [
        f"{wrk_version(wrk)}: {CONNECTIONS} connections, one thread; the refresh row "
        f"{REFRESH_CHAINS} threads of one connection, one rotation chain each (fresh logins "
        f"per run). Each run {seconds} s after a 1 s warm-up; rows interleaved, median of "
        f"{rounds} round{'s' if rounds > 1 else ''}.",
        "CPU/request: the serving process's CPU time per answered request (database "
        "servers excluded); on a machine shared with other work it moves less than req/s, "
        "and its ratio to the ceiling's is the load-independent reading of the targets.",
        "Targets are for PostgreSQL; SQLite (one pooled connection, the embedded default) "
        "is reported alongside without them.",
    ]
    for backend, rows in results.items():
        figures = "; ".join(f"{row.key} {rate(row.median(row.rps), '/s')}" for row in rows.values())
        section.summary.append(f"hotpaths ({backend}): {figures}")
    return section
