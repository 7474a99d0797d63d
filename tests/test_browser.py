"""Swagger UI in a real browser (issue 3): Debian's chromium, driven by Playwright,
authorises with the admin through the password flow, calls GET /accounts/me and
sees the admin, while the page asks nothing of any host but 127.0.0.1."""

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

from tests.conftest import ADMIN_PASSWORD, ADMIN_USERNAME, IN_CI, ROOT, TEST_SECRET, migrate

pytestmark = [pytest.mark.browser, pytest.mark.slow]

CHROMIUM = "/usr/bin/chromium"
SCREENSHOT = Path("/tmp/gatehouse-docs.png")  # noqa: S108 - a fixed place to look at it
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
SCOPES = ["me:read", "accounts:read"]


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def chromium_or_skip() -> str:
    """The browser, installed with apt-get when missing and allowed; outside CI a
    browser that cannot be had skips the test, in CI it fails it."""
    if not Path(CHROMIUM).exists() and os.geteuid() == 0 and shutil.which("apt-get"):
        with contextlib.suppress(subprocess.SubprocessError, OSError):
            subprocess.run(["apt-get", "update", "-qq"], check=True, timeout=300)
            subprocess.run(
                ["apt-get", "install", "-y", "-qq", "chromium"],
                check=True,
                timeout=600,
                env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"},
            )
    if not Path(CHROMIUM).exists():
        reason = f"{CHROMIUM} is missing and could not be installed (apt-get install chromium)"
        if IN_CI:
            pytest.fail(reason)
        pytest.skip(reason)
    return CHROMIUM


@contextlib.contextmanager
def served_app(tmp_path: Path) -> Iterator[str]:
    """A migrated SQLite database and the app on it as a real uvicorn process."""
    database_url = f"sqlite+aiosqlite:///{tmp_path / 'gatehouse.db'}"
    migrate(database_url)
    port = free_port()
    env = {
        **os.environ,
        "GATEHOUSE_ENV": "development",
        "GATEHOUSE_DATABASE_URL": database_url,
        "GATEHOUSE_DATA_DIR": str(tmp_path / "data"),
        "GATEHOUSE_SECRET_KEY": TEST_SECRET,
        "GATEHOUSE_ADMIN_USERNAME": ADMIN_USERNAME,
        "GATEHOUSE_ADMIN_PASSWORD": ADMIN_PASSWORD,
        "GATEHOUSE_ARGON2_TIME_COST": "1",
        "GATEHOUSE_ARGON2_MEMORY_KIB": "1024",
        "GATEHOUSE_ARGON2_PARALLELISM": "1",
    }
    log_path = tmp_path / "uvicorn.log"
    with log_path.open("w") as log:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "uvicorn",
                "app.main:app",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
            ],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        base = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 30
            while True:
                assert process.poll() is None, log_path.read_text()
                with contextlib.suppress(httpx.HTTPError):
                    if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                        break
                assert time.monotonic() < deadline, "uvicorn did not start within 30 s"
                time.sleep(0.1)
            yield base
        finally:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)


def test_swagger_ui_authorises_with_the_admin_and_reads_its_account(tmp_path):
    executable = chromium_or_skip()
    sync_api = pytest.importorskip("playwright.sync_api")
    foreign: list[str] = []
    failed: list[str] = []

    with served_app(tmp_path) as base, sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 1400})
            page.set_default_timeout(15_000)

            def on_request(request) -> None:
                url = urlsplit(request.url)
                if url.scheme in ("data", "blob", "about"):
                    return
                if url.hostname != "127.0.0.1":
                    foreign.append(request.url)

            page.on("request", on_request)
            page.on("requestfailed", lambda r: failed.append(r.url))

            page.goto(f"{base}/docs", wait_until="networkidle")
            page.locator("button.authorize").first.click()

            dialog = page.locator(".modal-ux")
            dialog.locator("#oauth_username").fill(ADMIN_USERNAME)
            dialog.locator("#oauth_password").fill(ADMIN_PASSWORD)
            for scope in SCOPES:
                box = dialog.locator(f'input[type="checkbox"][data-value="{scope}"]')
                dialog.locator(f'label[for="{box.get_attribute("id")}"]').click()
                assert box.is_checked(), scope
            with page.expect_response(lambda r: r.url.endswith("/auth/token")) as token_info:
                dialog.locator(".auth-btn-wrapper button.authorize").click()
            assert token_info.value.status == 200
            dialog.locator("button.btn-done").click()
            assert dialog.count() == 0

            # FastAPI's operation id: read_own_account_accounts_me_get.
            operation = page.locator('[id^="operations-accounts-read_own_account"]')
            operation.locator(".opblock-summary").click()
            operation.locator("button.try-out__btn").click()
            with page.expect_response(lambda r: r.url.endswith("/accounts/me")) as me_info:
                operation.locator("button.execute").click()
            assert me_info.value.status == 200

            live = operation.locator(".live-responses-table")
            status = live.locator("tr.response td.response-col_status").first
            status.wait_for()
            assert status.inner_text().strip() == "200"
            body = live.locator("tr.response .response-col_description pre").first.inner_text()
            assert f'"username": "{ADMIN_USERNAME}"' in body, body
            live.scroll_into_view_if_needed()
            page.screenshot(path=str(SCREENSHOT))
        finally:
            browser.close()

    assert foreign == [], foreign
    assert failed == [], failed
