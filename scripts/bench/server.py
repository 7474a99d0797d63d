"""Throwaway databases and uvicorn processes for the benchmarks.

Every benchmark gets a fresh database (PostgreSQL on 127.0.0.1:5432 when it
answers, else a temporary SQLite file) migrated by Alembic exactly as a
deployment is, and a real `uvicorn` process with one worker and the service's
default settings: real argon2 costs, plus a fixed secret and a bootstrap admin.
One exception: the failed-login limit is raised out of the way, because every
benchmark request comes from 127.0.0.1 and the address would otherwise be locked
out within seconds (the saturation section also runs one scenario without it).
"""

import asyncio
import contextlib
import os
import secrets
import signal
import socket
import subprocess
import threading
import time
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

import asyncpg
import httpx
import psutil
from sqlalchemy import text

from app.core.config import Settings
from app.core.db import create_engine
from scripts.seed_accounts import DEFAULT_PASSWORD, SeedResult
from scripts.seed_accounts import seed as seed_accounts

T = TypeVar("T")
ROOT = Path(__file__).resolve().parents[2]
BIN = ROOT / ".venv" / "bin"
PG_HOST, PG_PORT, PG_USER = "127.0.0.1", 5432, "postgres"
ADMIN_USERNAME = "bench_admin"
ADMIN_PASSWORD = "bench-admin-" + secrets.token_urlsafe(12)
SECRET_KEY = secrets.token_urlsafe(48)
STARTUP_TIMEOUT = 60.0
# Where the Gatehouse under test is served and migrated from: this checkout, or
# (`python -m scripts.bench --app-root DIR`) another one, say `git archive` of an
# older commit, so "before" and "after" figures come from one bench and one run.
APP_ROOT = ROOT
PROBLEM_MARKERS = ("Traceback", "unhandled", "ERROR", "CRITICAL")


@dataclass(frozen=True, slots=True)
class BenchConfig:
    """What every section is told: how long to run, on what, where to put files."""

    quick: bool
    backend: str  # "postgresql" or "sqlite"
    workdir: Path

    def pick(self, full: T, quick: T) -> T:
        return quick if self.quick else full


@dataclass(frozen=True, slots=True)
class Database:
    url: str
    backend: str  # "postgresql" or "sqlite"


async def pg_reachable() -> bool:
    try:
        conn = await asyncpg.connect(
            host=PG_HOST, port=PG_PORT, user=PG_USER, database="postgres", timeout=3
        )
    except (OSError, asyncpg.PostgresError, TimeoutError):
        return False
    await conn.close()
    return True


async def pg_admin(sql: str) -> None:
    conn = await asyncpg.connect(host=PG_HOST, port=PG_PORT, user=PG_USER, database="postgres")
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


async def migrate(url: str) -> None:
    """`alembic upgrade head`, the deployment path, not a metadata.create_all shortcut."""
    process = await asyncio.create_subprocess_exec(
        str(BIN / "alembic"),
        "upgrade",
        "head",
        cwd=APP_ROOT,
        env={**clean_environ(), "GATEHOUSE_DATABASE_URL": url},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await process.communicate()
    if process.returncode != 0:
        raise RuntimeError(f"alembic upgrade head failed:\n{out.decode()[-3000:]}")


@contextlib.asynccontextmanager
async def temp_database(backend: str, workdir: Path) -> AsyncIterator[Database]:
    """A migrated database of `backend`, dropped (or deleted) afterwards."""
    if backend == "postgresql":
        name = f"gatehouse_bench_{secrets.token_hex(6)}"
        await pg_admin(f'CREATE DATABASE "{name}"')
        try:
            url = f"postgresql+asyncpg://{PG_USER}@{PG_HOST}:{PG_PORT}/{name}"
            await migrate(url)
            yield Database(url, backend)
        finally:
            await pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        return
    path = workdir / f"bench-{secrets.token_hex(4)}.db"
    try:
        url = f"sqlite+aiosqlite:///{path}"
        await migrate(url)
        yield Database(url, backend)
    finally:
        for suffix in ("", "-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)


def clean_environ() -> dict[str, str]:
    """The caller's environment minus every GATEHOUSE_ setting, so that only what a
    benchmark states applies (and a developer's shell cannot skew the figures)."""
    return {k: v for k, v in os.environ.items() if not k.startswith("GATEHOUSE_")}


def server_environ(
    db: Database, data_dir: Path, extra: dict[str, str] | None = None
) -> dict[str, str]:
    return {
        **clean_environ(),
        "GATEHOUSE_ENV": "development",
        "GATEHOUSE_DATA_DIR": str(data_dir),
        "GATEHOUSE_DATABASE_URL": db.url,
        "GATEHOUSE_SECRET_KEY": SECRET_KEY,
        "GATEHOUSE_ADMIN_USERNAME": ADMIN_USERNAME,
        "GATEHOUSE_ADMIN_PASSWORD": ADMIN_PASSWORD,
        "GATEHOUSE_LOGIN_MAX_FAILURES": "1000000000",
        **(extra or {}),
    }


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Sample:
    wall: float
    cpu: float  # the server process's CPU seconds so far
    rss: int
    machine: float  # busy CPU seconds of the whole machine, all cores
    database: float  # CPU seconds of the PostgreSQL backends serving our database


@dataclass
class ProcessSampler:
    """Samples the server's CPU time and resident memory, its PostgreSQL backends'
    CPU time and the machine's, in a thread, so figures can be cut to exactly a
    load generator's window. On a shared machine the machine-wide figure shows
    when someone else's work is in the numbers."""

    pid: int
    database: str | None = None  # PostgreSQL database name whose backends to follow
    interval: float = 0.05
    samples: list[Sample] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None
    _backends: dict[int, float] = field(default_factory=dict)

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="sampler", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join()

    def _database_cpu(self) -> float:
        # Backend titles read "postgres: <cluster>: <user> <database> <client> <state>";
        # a backend that exits keeps the CPU it last showed.
        if self.database:
            marker = f" {self.database} "
            for process in psutil.process_iter(["cmdline", "cpu_times"]):
                cmdline = " ".join(process.info["cmdline"] or [])
                times = process.info["cpu_times"]
                if marker in f"{cmdline} " and times is not None:
                    self._backends[process.pid] = times.user + times.system
        return sum(self._backends.values())

    def _run(self) -> None:
        process = psutil.Process(self.pid)
        database = 0.0
        tick = 0
        while not self._stop.is_set():
            try:
                with process.oneshot():
                    times = process.cpu_times()
                    rss = process.memory_info().rss
            except psutil.Error:
                return
            machine = psutil.cpu_times()
            if tick % 5 == 0:
                database = self._database_cpu()
            tick += 1
            self.samples.append(
                Sample(
                    time.time(),
                    times.user + times.system,
                    rss,
                    sum(machine) - machine.idle - getattr(machine, "iowait", 0.0),
                    database,
                )
            )
            self._stop.wait(self.interval)

    def _between(self, start: float, end: float) -> list[Sample]:
        return [s for s in list(self.samples) if start <= s.wall <= end]

    def _share(self, start: float, end: float, attribute: str) -> float | None:
        window = self._between(start, end)
        if len(window) < 2:
            return None
        used = getattr(window[-1], attribute) - getattr(window[0], attribute)
        return float(used) / max(1e-9, window[-1].wall - window[0].wall)

    def cpu_share(self, start: float, end: float) -> float | None:
        """Server CPU seconds per wall second over [start, end] (1.0 = one core busy)."""
        return self._share(start, end, "cpu")

    def machine_share(self, start: float, end: float) -> float | None:
        """Busy cores of the whole machine over [start, end]."""
        return self._share(start, end, "machine")

    def database_share(self, start: float, end: float) -> float | None:
        """Cores used by this benchmark's PostgreSQL backends (None on SQLite)."""
        return self._share(start, end, "database") if self.database else None

    def peak_rss(self, start: float, end: float) -> int | None:
        window = self._between(start, end)
        return max(s.rss for s in window) if window else None

    def rss_now(self) -> int | None:
        return self.samples[-1].rss if self.samples else None


@dataclass
class Server:
    """One running uvicorn process."""

    process: subprocess.Popen[bytes]
    port: int
    log_path: Path
    sampler: ProcessSampler

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        return self.process.pid

    def problems(self) -> list[str]:
        """What in the server's log points at a bug (500s, tracebacks), counted:
        each distinct marked line, and the exception each traceback ended in."""
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        found: Counter[str] = Counter()
        in_traceback = False
        for line in text.splitlines():
            if line.startswith("Traceback"):
                in_traceback = True
                continue
            if in_traceback and line and not line[0].isspace():
                found[f"traceback ends: {line.strip()[:160]}"] += 1
                in_traceback = False
                continue
            if not in_traceback and any(m in line for m in PROBLEM_MARKERS):
                found[line.strip()[:160]] += 1
        return [f"{n}x {line}" for line, n in found.most_common()]

    async def wait_idle(self, *, below: float = 0.15, timeout: float = 30.0) -> float:
        """Wait until the server's CPU use falls below `below` cores (queued argon2
        work from abandoned requests drained); returns the seconds waited."""
        process = psutil.Process(self.pid)
        began = time.monotonic()
        process.cpu_percent(None)
        while time.monotonic() - began < timeout:
            await asyncio.sleep(0.5)
            if process.cpu_percent(None) / 100 < below:
                break
        return time.monotonic() - began


@dataclass(frozen=True, slots=True)
class Activity:
    wall: float
    connections: int  # backends connected to our database
    lock_waits: int  # of those, waiting on a lock held by another transaction
    hot_query: str  # what most lock waiters run


class PgActivity:
    """Polls pg_stat_activity for the benchmark's database, so a slowdown can be
    pinned on pool use or row-lock waits instead of guessed at."""

    def __init__(self, database: str | None, interval: float = 0.25):
        self.database = database
        self.interval = interval
        self.samples: list[Activity] = []
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> "PgActivity":
        if self.database:
            self._task = asyncio.create_task(self._poll())
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._task:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _poll(self) -> None:
        conn = await asyncpg.connect(host=PG_HOST, port=PG_PORT, user=PG_USER, database="postgres")
        try:
            while True:
                rows = await conn.fetch(
                    "SELECT wait_event_type = 'Lock' AS waiting, left(query, 48) AS query, "
                    "count(*) AS n FROM pg_stat_activity "
                    "WHERE datname = $1 AND pid <> pg_backend_pid() GROUP BY 1, 2",
                    self.database,
                )
                waits = sorted((r["n"], r["query"]) for r in rows if r["waiting"])
                self.samples.append(
                    Activity(
                        time.time(),
                        sum(r["n"] for r in rows),
                        sum(n for n, _ in waits),
                        waits[-1][1].split("(")[0].strip() if waits else "",
                    )
                )
                await asyncio.sleep(self.interval)
        finally:
            await conn.close()

    def peak(self, start: float, end: float) -> Activity | None:
        window = [a for a in self.samples if start <= a.wall <= end]
        return max(window, key=lambda a: (a.lock_waits, a.connections)) if window else None

    def peak_connections(self, start: float, end: float) -> int | None:
        window = [a.connections for a in self.samples if start <= a.wall <= end]
        return max(window) if window else None


async def _wait_ready(server: Server) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT
    async with httpx.AsyncClient(base_url=server.base_url, timeout=2) as client:
        while time.monotonic() < deadline:
            if server.process.poll() is not None:
                break
            try:
                if (await client.get("/healthz")).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            await asyncio.sleep(0.1)
    tail = server.log_path.read_text(errors="replace")[-3000:]
    raise RuntimeError(f"uvicorn did not become ready; its log ends:\n{tail}")


@contextlib.asynccontextmanager
async def uvicorn_server(
    db: Database,
    workdir: Path,
    *,
    app: str = "app.main:app",
    extra_env: dict[str, str] | None = None,
    uvicorn: Path | None = None,
    root: Path | None = None,
) -> AsyncIterator[Server]:
    """`uvicorn <app> --port <free> --no-access-log`, one worker with uvloop and
    httptools, until the block ends. `uvicorn` names another environment's (the
    peer's); apps are served from `root`, by default `APP_ROOT` (Gatehouse's)."""
    port = free_port()
    log_path = workdir / f"uvicorn-{port}.log"
    data_dir = workdir / f"data-{port}"
    data_dir.mkdir(parents=True, exist_ok=True)
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [
                str(uvicorn or BIN / "uvicorn"),
                app,
                "--loop",
                "uvloop",
                "--http",
                "httptools",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--no-access-log",
                "--log-level",
                "warning",
            ],
            cwd=root or APP_ROOT,
            env=server_environ(db, data_dir, extra_env),
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    database = db.url.rsplit("/", 1)[-1] if db.backend == "postgresql" else None
    server = Server(process, port, log_path, ProcessSampler(process.pid, database))
    try:
        await _wait_ready(server)
        server.sampler.start()
        yield server
    finally:
        server.sampler.stop()
        _terminate(process)


def _terminate(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


async def seed(db: Database, count: int, password: str = DEFAULT_PASSWORD) -> SeedResult:
    """Seed `count` accounts in-process (scripts.seed_accounts), with the settings the
    server runs with, so their hashes carry the server's argon2 parameters."""
    settings = Settings(database_url=db.url, secret_key=SECRET_KEY)
    engine = create_engine(settings)
    try:
        return await seed_accounts(engine, settings, count, password=password)
    finally:
        await engine.dispose()


async def execute(db: Database, sql: str) -> None:
    """One statement against the benchmark's database (setup between scenarios)."""
    engine = create_engine(Settings(database_url=db.url, secret_key=SECRET_KEY))
    try:
        async with engine.begin() as conn:
            await conn.execute(text(sql))
    finally:
        await engine.dispose()


async def login(base_url: str, username: str, password: str, scope: str | None = None) -> str:
    """A fresh access token (setup only; never timed)."""
    form = {"grant_type": "password", "username": username, "password": password}
    if scope:
        form["scope"] = scope
    async with httpx.AsyncClient(base_url=base_url, timeout=60) as client:
        response = await client.post("/auth/token", data=form)
    if response.status_code != 200:
        raise RuntimeError(f"login of {username} failed: {response.status_code} {response.text}")
    return str(response.json()["access_token"])
