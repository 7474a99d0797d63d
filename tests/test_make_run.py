"""`make run`'s script on a free port: the issuer follows the port, the admin's
credentials are the last thing printed before the server starts, and a second
start says how to recover a lost password instead of pointing at nothing."""

import os
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from tests.conftest import ROOT
from tests.servers import _stop, free_port

pytestmark = pytest.mark.slow
RUN_SH = ROOT / "scripts" / "run.sh"


def start(tmp_path: Path, port: int, log_path: Path) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GATEHOUSE_")}
    env.update(
        PORT=str(port),
        GATEHOUSE_DATA_DIR=str(tmp_path / "data"),
        # Cheap argon2: this test is about start-up, not hashing.
        GATEHOUSE_ARGON2_TIME_COST="1",
        GATEHOUSE_ARGON2_MEMORY_KIB="1024",
        GATEHOUSE_ARGON2_PARALLELISM="1",
    )
    env.pop("HOST", None)
    with log_path.open("wb") as log:
        return subprocess.Popen(
            [str(RUN_SH)], cwd=tmp_path, env=env, stdout=log, stderr=subprocess.STDOUT
        )


def wait_serving(process: subprocess.Popen[bytes], base: str, log_path: Path) -> str:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert process.poll() is None, log_path.read_text()
        try:
            if httpx.get(f"{base}/healthz", timeout=1, trust_env=False).status_code == 200:
                return log_path.read_text()
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise AssertionError(log_path.read_text())


def test_make_run_issuer_follows_the_port_and_prints_the_admin_last(tmp_path):
    if not (ROOT / ".venv" / "bin" / "gatehouse").exists():
        pytest.fail(".venv/bin/gatehouse is missing: run make install")
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    log_path = tmp_path / "run.log"
    process = start(tmp_path, port, log_path)
    try:
        output = wait_serving(process, base, log_path)
        metadata = httpx.get(f"{base}/.well-known/oauth-authorization-server").json()
        assert metadata["issuer"] == f"http://localhost:{port}"
        assert metadata["token_endpoint"] == f"http://localhost:{port}/auth/token"
        lines = [line for line in output.splitlines() if line.strip()]
        first_server_line = next(
            i for i, line in enumerate(lines) if "Started server process" in line
        )
        assert lines[first_server_line - 1].strip().startswith("password: ")
        password = lines[first_server_line - 1].split("password:", 1)[1].split()[0]
        assert lines[first_server_line - 2].strip() == "username: admin"
        token = httpx.post(
            f"{base}/auth/token",
            data={"grant_type": "password", "username": "admin", "password": password},
        ).json()["access_token"]
        claims = httpx.get(
            f"{base}/accounts/me", headers={"Authorization": f"Bearer {token}"}
        ).json()
        assert "admin" in claims["roles"]
    finally:
        _stop(process)

    again = tmp_path / "again.log"
    process = start(tmp_path, port, again)
    try:
        output = wait_serving(process, base, again)
    finally:
        _stop(process)
    assert "make reset-password USERNAME=admin" in output
    assert "password:" not in output
