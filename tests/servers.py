"""The app as a real uvicorn process, for the tests that need one: `serve` starts
`app.main:app` on a free port of 127.0.0.1 with the environment it is given, waits
(bounded) until GET /healthz answers 200, yields the base URL and stops the
process when the block ends."""

import contextlib
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from pathlib import Path

import httpx

from tests.conftest import ADMIN_PASSWORD, ADMIN_USERNAME, ROOT, TEST_SECRET

HOST = "127.0.0.1"


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def server_env(database_url: str, data_dir: Path, **overrides: str) -> dict[str, str]:
    """This process's environment plus what a served test app runs with: development,
    the test secret and admin, cheap argon2. `overrides` are whole variable names
    (`GATEHOUSE_...="value"`) and win."""
    return {
        **os.environ,
        "GATEHOUSE_ENV": "development",
        "GATEHOUSE_DATABASE_URL": database_url,
        "GATEHOUSE_DATA_DIR": str(data_dir),
        "GATEHOUSE_SECRET_KEY": TEST_SECRET,
        "GATEHOUSE_ADMIN_USERNAME": ADMIN_USERNAME,
        "GATEHOUSE_ADMIN_PASSWORD": ADMIN_PASSWORD,
        "GATEHOUSE_ARGON2_TIME_COST": "1",
        "GATEHOUSE_ARGON2_MEMORY_KIB": "1024",
        "GATEHOUSE_ARGON2_PARALLELISM": "1",
        **overrides,
    }


@contextlib.contextmanager
def serve(
    env: Mapping[str, str],
    *,
    log_path: Path,
    startup_timeout: float = 30,
    access_log: bool = False,
    port: int | None = None,
) -> Iterator[str]:
    """`uvicorn app.main:app` with exactly `env` (see `server_env`), run from the
    project root, its output in `log_path` (with uvicorn's access log when
    `access_log`, as scripts/run.sh and the Dockerfile run it). Yields
    `http://127.0.0.1:<port>` once /healthz answers 200; fails with the log if the
    process exits first or is not healthy within `startup_timeout` seconds.
    `port` (default: a free one) is for a caller that must name the address in
    `env` beforehand, as `GATEHOUSE_ISSUER`. Terminates it (kills it if it
    lingers) when the block ends."""
    port = free_port() if port is None else port
    base = f"http://{HOST}:{port}"
    command = [
        sys.executable,
        "-m",
        "uvicorn",
        "app.main:app",
        "--host",
        HOST,
        "--port",
        str(port),
        # As deployed (Dockerfile, scripts/run.sh): the client address is the TCP
        # peer, X-Forwarded-For is the app's to judge, and no Server header.
        "--no-proxy-headers",
        "--no-server-header",
    ]
    if not access_log:
        command.append("--no-access-log")
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            command, cwd=ROOT, env=dict(env), stdout=log, stderr=subprocess.STDOUT
        )
    try:
        _wait_healthy(process, base, log_path, startup_timeout)
        yield base
    finally:
        _stop(process)


def _wait_healthy(
    process: subprocess.Popen[bytes], base: str, log_path: Path, timeout: float
) -> None:
    deadline = time.monotonic() + timeout
    with httpx.Client(base_url=base, timeout=2, trust_env=False) as http:
        while True:
            code = process.poll()
            if code is not None:
                raise AssertionError(
                    f"uvicorn exited with code {code} before {base}/healthz answered 200; "
                    f"{log_path}:\n{_tail(log_path)}"
                )
            with contextlib.suppress(httpx.HTTPError):
                if http.get("/healthz").status_code == 200:
                    return
            if time.monotonic() >= deadline:
                raise AssertionError(
                    f"uvicorn did not start within {timeout:g} s ({base}); "
                    f"{log_path}:\n{_tail(log_path)}"
                )
            time.sleep(0.1)


def _tail(log_path: Path, chars: int = 5000) -> str:
    return log_path.read_text(errors="replace")[-chars:]


def _stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()  # a no-op if it has already exited
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=10)
