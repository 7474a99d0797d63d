"""Database outage (issue 7): a PostgreSQL server this test starts itself (its own
initdb data folder and port, never the shared server) is stopped under a real
uvicorn process; requests answer 503 with JSON in time, and service resumes by
itself, with nothing lost, once the server is back."""

import glob
import os
import pwd
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import ADMIN_PASSWORD, ADMIN_USERNAME, migrate
from tests.servers import free_port, serve, server_env

pytestmark = pytest.mark.slow

DEADLINE_SECONDS = 10.0
PG_BIN_CANDIDATES = sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True)
PG_BIN = Path(PG_BIN_CANDIDATES[0]) if PG_BIN_CANDIDATES else None
USER_PASSWORD = "a perfectly fine passphrase"


def as_postgres(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """Run a PostgreSQL binary as the `postgres` OS user (it refuses to run as root)."""
    command = list(args)
    if os.geteuid() == 0:
        command = ["runuser", "-u", "postgres", "--", *command]
    return subprocess.run(command, check=True, capture_output=True, text=True, timeout=timeout)


@dataclass
class PrivatePostgres:
    """A throwaway PostgreSQL cluster on 127.0.0.1 and a port of its own."""

    root: Path
    port: int

    @property
    def data(self) -> Path:
        return self.root / "data"

    @property
    def url(self) -> str:
        return f"postgresql+asyncpg://postgres@127.0.0.1:{self.port}/gatehouse"

    def start(self) -> None:
        assert PG_BIN is not None
        as_postgres(
            str(PG_BIN / "pg_ctl"),
            "-D",
            str(self.data),
            "-l",
            str(self.root / "server.log"),
            "-o",
            f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.root}",
            "-w",
            "-t",
            "30",
            "start",
        )

    def stop(self, mode: str = "fast") -> None:
        assert PG_BIN is not None
        as_postgres(str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "stop")

    def is_running(self) -> bool:
        assert PG_BIN is not None
        command = [str(PG_BIN / "pg_ctl"), "-D", str(self.data), "status"]
        if os.geteuid() == 0:
            command = ["runuser", "-u", "postgres", "--", *command]
        return subprocess.run(command, capture_output=True, timeout=30).returncode == 0


@pytest.fixture
def private_postgres() -> Iterator[PrivatePostgres]:
    if PG_BIN is None or not (PG_BIN / "initdb").exists():
        pytest.skip(
            "initdb not found under /usr/lib/postgresql/*/bin; cannot start a private server"
        )
    if os.geteuid() == 0:
        try:
            owner = pwd.getpwnam("postgres")
        except KeyError:
            pytest.skip("running as root but there is no `postgres` OS user to run PostgreSQL as")
    # Not under pytest's tmp_path: its parents are root-only, and postgres must reach it.
    root = Path(tempfile.mkdtemp(prefix="gatehouse-fault-pg-"))
    if os.geteuid() == 0:
        os.chown(root, owner.pw_uid, owner.pw_gid)
    server = PrivatePostgres(root=root, port=free_port())
    try:
        as_postgres(
            str(PG_BIN / "initdb"),
            "-D",
            str(server.data),
            "-U",
            "postgres",
            "--auth=trust",
            "-E",
            "UTF8",
            "--no-sync",
        )
        server.start()
        as_postgres(
            str(PG_BIN / "createdb"),
            "-h",
            "127.0.0.1",
            "-p",
            str(server.port),
            "-U",
            "postgres",
            "gatehouse",
        )
        migrate(server.url)
        yield server
    finally:
        if server.data.exists() and server.is_running():
            server.stop("immediate")
        shutil.rmtree(root, ignore_errors=True)


def timed(
    call: Callable[..., httpx.Response], *args: Any, **kwargs: Any
) -> tuple[httpx.Response, float]:
    started = time.monotonic()
    response = call(*args, timeout=DEADLINE_SECONDS + 5, **kwargs)
    return response, time.monotonic() - started


def assert_unavailable(response: httpx.Response, elapsed: float) -> None:
    assert response.status_code == 503, (response.status_code, response.text)
    assert elapsed <= DEADLINE_SECONDS, elapsed
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert isinstance(body, dict) and body
    assert "Traceback" not in response.text
    assert "asyncpg" not in response.text.lower()


def token_form(username: str, password: str) -> dict[str, str]:
    return {"grant_type": "password", "username": username, "password": password}


def test_a_database_outage_answers_503_and_service_resumes_with_nothing_lost(
    private_postgres: PrivatePostgres, tmp_path: Path
) -> None:
    env = server_env(private_postgres.url, tmp_path, GATEHOUSE_DB_TIMEOUT_SECONDS="2")
    with (
        serve(env, log_path=tmp_path / "uvicorn.log") as base,
        httpx.Client(base_url=base) as http,
    ):
        # Before the outage: an admin token, and data written through the API.
        admin = http.post("/auth/token", data=token_form(ADMIN_USERNAME, ADMIN_PASSWORD))
        assert admin.status_code == 200, admin.text
        headers = {"Authorization": f"Bearer {admin.json()['access_token']}"}
        created = http.post(
            "/accounts",
            json={"username": "carol", "password": USER_PASSWORD, "email": "carol@example.com"},
            headers=headers,
        )
        assert created.status_code == 201, created.text
        role = http.post(
            "/roles",
            json={"name": "auditor", "description": "reads the log", "scopes": ["audit:read"]},
            headers=headers,
        )
        assert role.status_code == 201, role.text
        assert http.get("/readyz").status_code == 200

        private_postgres.stop("fast")

        assert_unavailable(*timed(http.get, "/readyz"))
        assert_unavailable(*timed(http.get, "/accounts/me", headers=headers))
        assert_unavailable(*timed(http.get, "/accounts", headers=headers))
        assert_unavailable(*timed(http.post, "/auth/token", data=token_form("carol", "x" * 12)))
        assert_unavailable(
            *timed(http.post, "/auth/signup", json={"username": "dave", "password": USER_PASSWORD})
        )
        assert http.get("/healthz").status_code == 200  # the process itself still serves

        private_postgres.start()
        restarted = time.monotonic()
        while http.get("/readyz", timeout=DEADLINE_SECONDS).status_code != 200:
            assert time.monotonic() - restarted <= DEADLINE_SECONDS, "not ready again in 10 s"
            time.sleep(0.2)
        me = http.get("/accounts/me", headers=headers)
        assert me.status_code == 200, me.text
        assert time.monotonic() - restarted <= DEADLINE_SECONDS

        # Nothing lost: the account logs in, the role and the admin's session are there.
        carol = http.post("/auth/token", data=token_form("carol", USER_PASSWORD))
        assert carol.status_code == 200, carol.text
        assert http.get("/roles/auditor", headers=headers).json()["scopes"] == ["audit:read"]
        listed = http.get("/accounts", params={"q": "carol"}, headers=headers).json()["items"]
        assert [a["email"] for a in listed] == ["carol@example.com"]
        # The signup attempted during the outage left no half-made account behind.
        again = http.post("/auth/signup", json={"username": "dave", "password": USER_PASSWORD})
        assert again.status_code == 201, again.text
