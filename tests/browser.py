"""What the real-browser tests share: Debian's chromium (installed with apt-get when
missing and allowed; Playwright's own browser download does not work offline),
launched by Playwright, and a guard that fails the test on any request the page
makes to a host other than this machine's loopback."""

import contextlib
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import pytest

from tests.conftest import IN_CI

if TYPE_CHECKING:
    from playwright.sync_api import (
        Browser,
        BrowserContext,
        ConsoleMessage,
        Page,
        Playwright,
        Request,
        Route,
    )

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
LOCAL_HOSTS = frozenset({"127.0.0.1", "localhost"})
# Schemes that name no host and so reach no network.
HOSTLESS_SCHEMES = frozenset({"data", "blob", "about"})
HTTP_ERROR_LOGGED = "Failed to load resource: the server responded with a status of"


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


def is_local(url: str) -> bool:
    parts = urlsplit(url)
    return parts.scheme in HOSTLESS_SCHEMES or parts.hostname in LOCAL_HOSTS


@contextlib.contextmanager
def playwright() -> Iterator["Playwright"]:
    """Playwright's synchronous API, skipping the test when the package is absent."""
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as driver:
        yield driver


@contextlib.contextmanager
def chromium() -> Iterator["Browser"]:
    """Debian's chromium, closed when the block ends."""
    executable = chromium_or_skip()
    with playwright() as driver:
        browser = driver.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


class LocalOnly:
    """Routes every request of a browser context: a request to a host other than
    127.0.0.1/localhost is aborted and recorded, and `check` fails the test with
    the list. Routing at the context covers pop-ups and requests made while
    JavaScript is off (a sub-resource, a form post, a redirect), which a page's
    "request" event alone would not show before the request had left. It records
    the console's errors too (a Content-Security-Policy violation is reported
    there: a page blocking its own style or script), and `check` fails on them,
    unless the test asked for them (`console`) to judge them itself."""

    def __init__(self, console: list[str] | None = None) -> None:
        self.foreign: list[str] = []
        self.documents: set[str] = set()
        self.console_errors: list[str] = [] if console is None else console
        self.console_is_the_tests = console is not None

    def install(self, context: "BrowserContext") -> None:
        context.route("**/*", self._route)
        context.on("request", self._request)
        context.on("console", self._console)
        context.on("weberror", lambda error: self.console_errors.append(str(error.error)))

    def _request(self, request: "Request") -> None:
        if request.is_navigation_request():
            self.documents.add(request.url)

    def _console(self, message: "ConsoleMessage") -> None:
        url = message.location.get("url", "")
        # A page served with an error status (a 400 error page) is logged as a
        # failed load; the tests judge the status of the pages they open.
        if url in self.documents and message.text.startswith(HTTP_ERROR_LOGGED):
            return
        if message.type == "error":
            self.console_errors.append(f"{url}: {message.text}")

    def _route(self, route: "Route") -> None:
        url = route.request.url
        if is_local(url):
            route.fallback()
        else:
            self.foreign.append(url)
            route.abort("blockedbyclient")

    def check(self) -> None:
        assert self.foreign == [], f"the page asked hosts other than loopback: {self.foreign}"
        if not self.console_is_the_tests:
            assert self.console_errors == [], f"errors in the console: {self.console_errors}"


@contextlib.contextmanager
def local_context(
    browser: "Browser", *, console: list[str] | None = None, **options: Any
) -> Iterator["BrowserContext"]:
    """A fresh browser context (its own cookies) that may reach loopback only;
    the test fails when the block ends if anything else was asked for, or if the
    console showed an error (collected in `console` instead, when given)."""
    guard = LocalOnly(console)
    context = browser.new_context(**options)
    context.set_default_timeout(15_000)
    guard.install(context)
    try:
        yield context
    finally:
        context.close()
    guard.check()


def swagger_reads_own_account(page: "Page") -> str:
    """In an authorised Swagger UI: "Try it out" on GET /accounts/me, execute, and
    the response body the page shows (after checking both the network answer and
    the page's status cell say 200). Scrolls it into view for a screenshot."""
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
    live.scroll_into_view_if_needed()
    return body
