"""Swagger UI in a real browser (issue 3): Debian's chromium, driven by Playwright,
authorises with the admin through the password flow, calls GET /accounts/me and
sees the admin, while the page asks nothing of any host but 127.0.0.1."""

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import pytest

from tests.browser import CHROMIUM_ARGS, chromium_or_skip, swagger_reads_own_account
from tests.conftest import ADMIN_PASSWORD, ADMIN_USERNAME, migrate
from tests.servers import serve, server_env

if TYPE_CHECKING:
    from playwright.sync_api import Request

pytestmark = [pytest.mark.browser, pytest.mark.slow]

SCREENSHOT = Path("/tmp/gatehouse-docs.png")  # noqa: S108 - a fixed place to look at it
SCOPES = ["me:read", "accounts:read"]


@contextlib.contextmanager
def served_app(tmp_path: Path) -> Iterator[str]:
    """A migrated SQLite database and the app on it as a real uvicorn process."""
    database_url = f"sqlite+aiosqlite:///{tmp_path / 'gatehouse.db'}"
    migrate(database_url)
    env = server_env(database_url, tmp_path / "data")
    with serve(env, log_path=tmp_path / "uvicorn.log") as base:
        yield base


def test_swagger_ui_authorises_with_the_admin_and_reads_its_account(tmp_path: Path) -> None:
    executable = chromium_or_skip()
    sync_api = pytest.importorskip("playwright.sync_api")
    foreign: list[str] = []
    failed: list[str] = []

    with served_app(tmp_path) as base, sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 1400})
            page.set_default_timeout(15_000)

            def on_request(request: "Request") -> None:
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
            # The password flow's part of the dialog (the code flow is beside it).
            flow = dialog.locator(".auth-container").filter(has_text="Flow: password")
            flow.locator("#oauth_username").fill(ADMIN_USERNAME)
            flow.locator("#oauth_password").fill(ADMIN_PASSWORD)
            for scope in SCOPES:
                box = flow.locator(f'input[type="checkbox"][data-value="{scope}"]')
                flow.locator(f'label[for="{box.get_attribute("id")}"]').click()
                assert box.is_checked(), scope
            with page.expect_response(lambda r: r.url.endswith("/auth/token")) as token_info:
                flow.locator(".auth-btn-wrapper button.authorize").click()
            assert token_info.value.status == 200
            flow.locator("button.btn-done").click()
            assert dialog.count() == 0

            body = swagger_reads_own_account(page)
            assert f'"username": "{ADMIN_USERNAME}"' in body, body
            page.screenshot(path=str(SCREENSHOT))
        finally:
            browser.close()

    assert foreign == [], foreign
    assert failed == [], failed


def test_swagger_authorize_dialog_offers_a_custom_scope_made_after_start(tmp_path):
    """The Authorize dialog lists the live catalogue: a scope an admin creates
    while the server runs is offered on the next page load, without a restart."""
    import httpx

    executable = chromium_or_skip()
    sync_api = pytest.importorskip("playwright.sync_api")
    with served_app(tmp_path) as base, sync_api.sync_playwright() as playwright:
        with httpx.Client(base_url=base, trust_env=False, timeout=10) as http:
            login = {"grant_type": "password", "username": ADMIN_USERNAME}
            token = http.post("/auth/token", data={**login, "password": ADMIN_PASSWORD}).json()
            created = http.post(
                "/scopes",
                json={"name": "orders:read", "description": "Read the orders service"},
                headers={"Authorization": f"Bearer {token['access_token']}"},
            )
            assert created.status_code == 201, created.text
        browser = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 1400})
            page.set_default_timeout(15_000)
            page.goto(f"{base}/docs", wait_until="networkidle")
            page.locator("button.authorize").first.click()
            dialog = page.locator(".modal-ux")
            # Both flows (password, and authorization code) offer it.
            for kind in ("password", "authorizationCode"):
                flow = dialog.locator(".auth-container").filter(has_text=f"Flow: {kind}")
                box = flow.locator('input[type="checkbox"][data-value="orders:read"]')
                box.wait_for(state="attached")
                assert "Read the orders service" in flow.inner_text()
                assert flow.locator('input[type="checkbox"][data-value="me:read"]').count() == 1
        finally:
            browser.close()
