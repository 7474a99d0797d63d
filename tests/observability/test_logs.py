"""`gatehouse serve` logs one line per request and per security event, in text or
JSON, with request ids; no password, token or cookie reaches the log."""

import json
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from tests.cli.helpers import GATEHOUSE
from tests.conftest import ROOT, migrate
from tests.servers import _stop, free_port, server_env

pytestmark = pytest.mark.slow

PASSWORD = "correct horse battery staple 42"
WRONG_PASSWORD = "wrong-guess-Zq81mmPx"
COOKIE = "session=cookie-value-Hk2j9QpX"


def exercise(base: str) -> list[str]:
    """Requests carrying every kind of secret; returns the secrets sent."""
    secrets_sent = [PASSWORD, WRONG_PASSWORD, COOKIE.split("=")[1]]
    with httpx.Client(base_url=base, timeout=10, trust_env=False) as http:
        assert http.post(
            "/auth/signup", json={"username": "logged", "password": PASSWORD}
        ).is_success
        login = {"grant_type": "password", "username": "logged", "password": PASSWORD}
        tokens = http.post("/auth/token", data=login).json()
        secrets_sent += [tokens["access_token"], tokens["refresh_token"]]
        wrong = {**login, "password": WRONG_PASSWORD}
        assert http.post("/auth/token", data=wrong).status_code == 400
        auth = {"Authorization": f"Bearer {tokens['access_token']}", "Cookie": COOKIE}
        http.get("/accounts/me", headers={**auth, "X-Request-ID": "log-test-1"})
        http.get(f"/accounts/me?access_token={tokens['access_token']}&password={PASSWORD}")
        http.post(
            "/accounts/me/password",
            headers=auth,
            json={"current_password": WRONG_PASSWORD, "new_password": PASSWORD + "!"},
        )
        renewed = http.post(
            "/auth/token",
            data={"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]},
        ).json()
        secrets_sent.append(renewed["refresh_token"])
        http.post("/auth/revoke", data={"token": renewed["refresh_token"]})
    return secrets_sent


def serve_and_exercise(tmp_path: Path, log_format: str) -> tuple[str, list[str]]:
    """The log (stderr; the banner on stdout is not a log) and the secrets sent."""
    database_url = f"sqlite+aiosqlite:///{tmp_path / 'gatehouse.db'}"
    migrate(database_url)
    env = server_env(database_url, tmp_path / "data", GATEHOUSE_LOG_FORMAT=log_format)
    env["PYTHONPATH"] = str(ROOT)
    port = free_port()
    log_path, banner_path = tmp_path / "serve.log", tmp_path / "banner.txt"
    with log_path.open("wb") as log, banner_path.open("wb") as banner:
        process = subprocess.Popen(
            [*GATEHOUSE, "serve", "--port", str(port)],
            cwd=ROOT,
            env=env,
            stdout=banner,
            stderr=log,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            assert process.poll() is None, log_path.read_text()
            try:
                if httpx.get(f"{base}/healthz", timeout=1, trust_env=False).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, log_path.read_text()
            time.sleep(0.1)
        sent = exercise(base)
        time.sleep(0.3)
    finally:
        _stop(process)
    return log_path.read_text(), sent


@pytest.mark.parametrize("log_format", ["text", "json"])
def test_no_password_token_or_cookie_reaches_the_log(tmp_path, log_format):
    output, sent = serve_and_exercise(tmp_path, log_format)
    assert "/auth/token" in output  # the requests were logged
    for secret in sent:
        assert secret not in output
    assert "access_token=" not in output  # query strings are not logged


def test_json_lines_carry_request_fields_and_ids(tmp_path):
    output, _ = serve_and_exercise(tmp_path, "json")
    entries = [json.loads(line) for line in output.splitlines() if line.startswith("{")]
    assert len(entries) == len([line for line in output.splitlines() if line.strip()])
    requests = [e for e in entries if e["logger"] == "gatehouse.access"]
    me = [e for e in requests if e["request_id"] == "log-test-1"]
    assert me and me[0]["route"] == "/accounts/me" and me[0]["status"] == 200
    for entry in requests:
        assert {"time", "request_id", "method", "route", "status", "duration_ms", "client"} <= set(
            entry
        )
        assert entry["client"] == "127.0.0.1"
    events = {e["event"]: e for e in entries if e["logger"] == "gatehouse.audit"}
    assert {"account.create", "auth.login", "auth.login_failed", "auth.refresh"} <= set(events)
    assert events["auth.login"]["request_id"]
