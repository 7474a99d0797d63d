"""Browser sign-in (issue 14) in a real browser: Debian's chromium, driven by
Playwright, against a served Gatehouse on each database. It signs in on the
hosted page with JavaScript on and off and with the keyboard alone, gives and
refuses consent, signs out, authorises Swagger UI on the code flow with PKCE,
tries to frame the sign-in page, and runs axe-core on every page a person
meets. No page may ask anything of a host but loopback, nor log an error to the
console (a Content-Security-Policy violation included): tests.browser's
local_context fails the test otherwise."""

import html
import secrets
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

import pytest

from tests.browser import chromium, local_context, swagger_reads_own_account
from tests.oauth.served import (
    CALLBACK_PATH,
    Gatehouse,
    authorize_url,
    database_factory,
    own_account,
    pkce_pair,
    redeem,
    served_gatehouse,
)
from tests.servers import HOST

if TYPE_CHECKING:
    from playwright.sync_api import BrowserContext, Page, ViewportSize

pytestmark = [pytest.mark.browser, pytest.mark.slow]

INCORRECT = "Incorrect username or password"
PHONE: "ViewportSize" = {"width": 390, "height": 844}
DESKTOP: "ViewportSize" = {"width": 1280, "height": 800}


def screenshot(name: str) -> str:
    return str(Path("/tmp") / f"gatehouse-{name}.png")  # noqa: S108 - a fixed place to look


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def gatehouse(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Gatehouse]:
    url = database_factory(request, request.param)()
    with served_gatehouse(url, tmp_path_factory.mktemp("browser-sign-in")) as served:
        yield served


class Callback:
    """A client's loopback redirect URI (RFC 8252 §7.3) with a real listener behind
    it, a tiny HTTP server on 127.0.0.1 that answers every request with a small page
    and records its URL: the code is read exactly as the client would receive it.
    (Playwright's routing would not do: it sees only the first URL of a redirect
    chain, and the redirect to the client is the point.)"""

    def __init__(self) -> None:
        self.urls: list[str] = []
        urls = self.urls
        origin: list[str] = []  # set once the server is bound

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - the name http.server calls
                urls.append(origin[0] + self.path)
                body = b"<!doctype html><html lang=en><title>client</title><p>back at the client"
                self.send_response(200)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                """Quiet: the recorded URLs say what came."""

        # Port 0: the system's choice, bound at once (no race for a free port).
        self._server = ThreadingHTTPServer((HOST, 0), Handler)
        origin.append(f"http://{HOST}:{self._server.server_port}")
        self.redirect_uri = origin[0] + CALLBACK_PATH
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> "Callback":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=10)

    def wait(self, page: "Page") -> dict[str, str]:
        """The redirect's query once the page has arrived at the redirect URI; each
        parameter must appear once, and the listener must have been asked for it."""
        page.wait_for_url(lambda url: url.startswith(self.redirect_uri + "?"))
        assert self.urls and self.urls[-1] == page.url, (self.urls, page.url)
        query = parse_qs(urlsplit(page.url).query, keep_blank_values=True)
        assert all(len(values) == 1 for values in query.values()), query
        return {name: values[0] for name, values in query.items()}


@dataclass
class Flow:
    """One authorization request of a client: its PKCE pair, state and nonce."""

    gatehouse: Gatehouse
    client: dict[str, Any]
    scope: str = "openid me:read"
    state: str = field(default_factory=lambda: "st " + secrets.token_urlsafe(8) + " ü&=?")
    nonce: str = field(default_factory=lambda: secrets.token_urlsafe(12))
    pkce: tuple[str, str] = field(default_factory=pkce_pair)

    @property
    def redirect_uri(self) -> str:
        uri: str = self.client["redirect_uris"][0]
        return uri

    def url(self, **extra: str) -> str:
        return authorize_url(
            self.gatehouse.base,
            self.client["client_id"],
            self.redirect_uri,
            scope=self.scope,
            state=self.state,
            nonce=self.nonce,
            code_challenge=self.pkce[1],
            **extra,
        )

    def expect_code(self, query: dict[str, str]) -> str:
        """The success response, RFC 6749 §4.1.2 and RFC 9207: code, state, iss."""
        assert "error" not in query, query
        assert query["state"] == self.state
        assert query["iss"] == self.gatehouse.base
        return query["code"]

    def redeem(self, code: str) -> dict[str, Any]:
        return redeem(
            self.gatehouse, self.client["client_id"], code, self.redirect_uri, self.pkce[0]
        )


def sign_in(page: "Page", username: str, password: str) -> None:
    page.locator('input[name="username"]').fill(username)
    page.locator('input[name="password"]').fill(password)
    page.get_by_role("button", name="Sign in").click()


def assert_sign_in_page(page: "Page") -> None:
    """The form of the agreed interface, with labels a screen reader announces."""
    form = page.locator('form[method="post"][action="/oauth/authorize"]')
    assert form.count() == 1
    username = form.locator('input[name="username"]')
    password = form.locator('input[name="password"]')
    assert username.get_attribute("autocomplete") == "username"
    assert password.get_attribute("type") == "password"
    assert password.get_attribute("autocomplete") == "current-password"
    for field_ in (username, password):
        field_id = field_.get_attribute("id")
        assert field_id, "a field without an id has no <label for>"
        assert page.locator(f'label[for="{field_id}"]').count() == 1
    assert form.locator('input[type="hidden"][name="csrf_token"]').count() == 1


def assert_page_headers(headers: dict[str, str]) -> None:
    """Unframeable and own-assets-only (the interface's header rules)."""
    assert headers["content-type"].startswith("text/html")
    policy = headers["content-security-policy"]
    directives = {d.split()[0]: d.split()[1:] for d in policy.split(";") if d.strip()}
    assert directives["frame-ancestors"] == ["'none'"], policy
    assert directives["default-src"] in (["'self'"], ["'none'"]), policy
    assert headers["x-frame-options"].upper() == "DENY"


def assert_browser_session_cookie(context: "BrowserContext", base: str) -> None:
    cookies = [c for c in context.cookies(base) if c["name"] == "gatehouse_session"]
    assert len(cookies) == 1, context.cookies(base)
    cookie = cookies[0]
    assert cookie["httpOnly"] is True
    assert cookie["sameSite"] == "Lax"
    assert cookie["path"] == "/"
    # Served on loopback http, so not Secure (a Secure cookie would never come back).
    assert cookie["secure"] is False


@pytest.mark.parametrize("javascript", [True, False], ids=["js-on", "js-off"])
def test_sign_in_redirects_with_a_code_that_pkce_redeems(
    gatehouse: Gatehouse, javascript: bool
) -> None:
    """authorize → sign-in page → a wrong password (one generic message) → the right
    one → 302 to the loopback redirect URI with code, state (byte-exact) and iss →
    the code with its verifier at /auth/token → GET /accounts/me answers 200. Then a
    second authorize rides the browser session: no form, a fresh code."""
    username, password = gatehouse.signup()

    with (
        Callback() as callback,
        chromium() as browser,
        local_context(browser, java_script_enabled=javascript) as context,
    ):
        client = gatehouse.register_client(first_party=True, redirect_uris=[callback.redirect_uri])
        flow = Flow(gatehouse, client)
        page = context.new_page()
        shown = page.goto(flow.url())
        assert shown is not None and shown.status == 200
        assert_page_headers(shown.headers)
        assert_sign_in_page(page)
        if javascript:
            page.screenshot(path=screenshot("sign-in"), full_page=True)

        sign_in(page, username, "not the password")
        alert = page.get_by_role("alert")
        alert.wait_for()  # the re-rendered page, once it has replaced the first
        assert alert.count() == 1
        assert INCORRECT in alert.inner_text()
        assert page.locator('input[name="password"]').input_value() == ""
        assert callback.urls == []

        sign_in(page, username, password)
        query = callback.wait(page)
        code = flow.expect_code(query)
        assert_browser_session_cookie(context, gatehouse.base)

        tokens = flow.redeem(code)
        assert tokens["token_type"].lower() == "bearer"
        assert own_account(gatehouse, tokens["access_token"])["username"] == username

        # A live browser session: a first-party client gets its code without the form.
        again = Flow(gatehouse, flow.client)
        with page.expect_response(lambda r: "/oauth/authorize?" in r.url) as first:
            page.goto(again.url())
        assert first.value.status == 302
        second_code = again.expect_code(callback.wait(page))
        assert second_code != code
        assert own_account(gatehouse, again.redeem(second_code)["access_token"])["id"]
        assert len(callback.urls) == 2
        assert query["code"] in callback.urls[0]


def test_keyboard_alone_signs_in(gatehouse: Gatehouse) -> None:
    """Tab reaches the username field, then the password field, and Enter submits;
    the focused field shows a visible focus indicator (WCAG 2.4.7)."""
    username, password = gatehouse.signup()

    with Callback() as callback, chromium() as browser, local_context(browser) as context:
        client = gatehouse.register_client(first_party=True, redirect_uris=[callback.redirect_uri])
        flow = Flow(gatehouse, client)
        page = context.new_page()
        page.goto(flow.url())
        for _ in range(20):
            page.keyboard.press("Tab")
            if page.evaluate("document.activeElement && document.activeElement.name") == (
                "username"
            ):
                break
        else:
            pytest.fail("twenty presses of Tab never reached the username field")
        focus = page.evaluate(
            """() => { const s = getComputedStyle(document.activeElement);
                       return [s.outlineStyle, s.outlineWidth, s.boxShadow]; }"""
        )
        assert focus[0] != "none" and focus[1] != "0px" or focus[2] != "none", focus
        page.keyboard.type(username)
        page.keyboard.press("Tab")
        assert page.evaluate("document.activeElement.name") == "password"
        page.keyboard.type(password)
        page.keyboard.press("Enter")
        code = flow.expect_code(callback.wait(page))
        assert own_account(gatehouse, flow.redeem(code)["access_token"])["username"] == username


def test_signed_in_view_signs_out_and_the_next_authorize_asks_again(gatehouse: Gatehouse) -> None:
    """With JavaScript off: prompt=login over a live browser session shows "Signed in
    as" with a Sign out form; it ends the browser session (303), and the next
    authorize shows the sign-in form again instead of redirecting."""
    username, password = gatehouse.signup()

    with (
        Callback() as callback,
        chromium() as browser,
        local_context(browser, java_script_enabled=False) as context,
    ):
        client = gatehouse.register_client(first_party=True, redirect_uris=[callback.redirect_uri])
        flow = Flow(gatehouse, client)
        page = context.new_page()
        page.goto(flow.url())
        sign_in(page, username, password)
        flow.expect_code(callback.wait(page))

        relogin = Flow(gatehouse, client)
        shown = page.goto(relogin.url(prompt="login"))
        assert shown is not None and shown.status == 200
        assert f"Signed in as {username}" in page.locator("body").inner_text()
        assert_sign_in_page(page)
        sign_out = page.locator('form[method="post"][action="/oauth/logout"]')
        assert sign_out.locator('input[type="hidden"][name="csrf_token"]').count() == 1
        with page.expect_response(lambda r: r.url.endswith("/oauth/logout")) as answer:
            sign_out.get_by_role("button", name="Sign out").click()
        assert answer.value.status == 303
        page.wait_for_load_state()
        assert urlsplit(page.url).hostname == urlsplit(gatehouse.base).hostname

        after = Flow(gatehouse, client)
        shown = page.goto(after.url())
        assert shown is not None and shown.status == 200
        assert_sign_in_page(page)
        assert "Signed in as" not in page.locator("body").inner_text()
        assert len(callback.urls) == 1
        sign_in(page, username, password)
        code = after.expect_code(callback.wait(page))
        assert own_account(gatehouse, after.redeem(code)["access_token"])["username"] == username


def test_no_page_can_frame_the_sign_in_page(gatehouse: Gatehouse) -> None:
    """Clickjacking, as a browser enforces it: a page that frames the sign-in page
    gets an empty frame (CSP frame-ancestors 'none', X-Frame-Options DENY), and the
    browser says why in the console."""
    flow = Flow(gatehouse, gatehouse.register_client(first_party=True))
    console: list[str] = []

    with chromium() as browser, local_context(browser, console=console) as context:
        page = context.new_page()
        with page.expect_console_message(lambda m: "frame-ancestors" in m.text):
            page.set_content(
                '<!doctype html><html lang="en"><title>framing</title>'
                f'<iframe title="sign-in" src="{html.escape(flow.url())}"></iframe>'
            )
        framed = [f for f in page.frames if f is not page.main_frame]
        assert len(framed) == 1
        assert framed[0].locator('input[name="password"]').count() == 0
        assert framed[0].locator("form").count() == 0
    assert any("frame-ancestors 'none'" in message for message in console), console


def scope_descriptions(gatehouse: Gatehouse) -> dict[str, str]:
    with gatehouse.http() as http:
        catalogue = http.get("/scopes", headers=gatehouse.admin_headers)
    assert catalogue.status_code == 200, catalogue.text
    return {s["name"]: s["description"] for s in catalogue.json()}


@pytest.mark.parametrize("javascript", [True, False], ids=["js-on", "js-off"])
def test_consent_allow_issues_a_code_and_is_remembered_deny_is_access_denied(
    gatehouse: Gatehouse, javascript: bool
) -> None:
    """A client with first_party false: after sign-in the consent page lists each
    requested scope with its description; Allow → a code that redeems; the next
    authorize with the same scopes skips the page. Another account's Deny → the
    redirect carries error=access_denied with state and iss, and no code. With
    JavaScript on and off."""
    descriptions = scope_descriptions(gatehouse)
    allower, allower_password = gatehouse.signup()
    denier, denier_password = gatehouse.signup()

    with Callback() as callback, chromium() as browser:
        client = gatehouse.register_client(first_party=False, redirect_uris=[callback.redirect_uri])
        with local_context(browser, java_script_enabled=javascript) as context:
            flow = Flow(gatehouse, client, scope="openid me:read")
            page = context.new_page()
            page.goto(flow.url())
            sign_in(page, allower, allower_password)
            allow = page.get_by_role("button", name="Allow")
            allow.wait_for()
            consent = page.locator("body").inner_text()
            for scope in ("openid", "me:read"):
                assert scope in consent, consent
                assert descriptions[scope] in consent, (scope, consent)
            form = page.locator('form[method="post"][action="/oauth/authorize"]')
            assert form.locator('input[name="csrf_token"]').count() == 1
            assert form.locator('button[name="decision"][value="allow"]').count() == 1
            assert form.locator('button[name="decision"][value="deny"]').count() == 1
            assert callback.urls == []
            if javascript:
                page.screenshot(path=screenshot("consent"), full_page=True)

            allow.click()
            code = flow.expect_code(callback.wait(page))
            tokens = flow.redeem(code)
            assert set(tokens["scope"].split()) == {"openid", "me:read"}
            assert own_account(gatehouse, tokens["access_token"])["username"] == allower

            # Remembered for this account, client and scopes: straight back.
            again = Flow(gatehouse, client, scope="openid me:read")
            page.goto(again.url())
            again.expect_code(callback.wait(page))

        with local_context(browser, java_script_enabled=javascript) as context:
            flow = Flow(gatehouse, client, scope="openid me:read")
            page = context.new_page()
            page.goto(flow.url())
            sign_in(page, denier, denier_password)
            page.get_by_role("button", name="Deny").click()
            query = callback.wait(page)
            assert query["error"] == "access_denied", query
            assert query["state"] == flow.state
            assert query["iss"] == gatehouse.base
            assert "code" not in query


def test_swagger_ui_authorises_on_the_code_flow_and_reads_the_account(
    gatehouse: Gatehouse,
) -> None:
    """/docs → Authorize → the authorizationCode flow of client "gatehouse" with PKCE
    → the hosted sign-in page in Swagger's pop-up → /docs/oauth2-redirect → the
    token → "Try it out" on GET /accounts/me → 200 with the account."""
    username, password = gatehouse.signup()

    with (
        chromium() as browser,
        local_context(browser, viewport={"width": 1280, "height": 1400}) as context,
    ):
        page = context.new_page()
        page.goto(f"{gatehouse.base}/docs", wait_until="networkidle")
        page.locator("button.authorize").first.click()
        dialog = page.locator(".modal-ux")
        flow = dialog.locator(".auth-container").filter(has_text="Flow: authorizationCode")
        assert flow.count() == 1, dialog.inner_text()
        assert flow.locator('input[data-name="clientId"]').input_value() == "gatehouse"
        box = flow.locator('input[type="checkbox"][data-value="me:read"]')
        flow.locator(f'label[for="{box.get_attribute("id")}"]').click()
        assert box.is_checked()

        with page.expect_popup() as popup_info:
            flow.locator("button.authorize").click()
        popup = popup_info.value
        popup.wait_for_load_state()
        assert urlsplit(popup.url).path == "/oauth/authorize"
        query = parse_qs(urlsplit(popup.url).query)
        assert query["client_id"] == ["gatehouse"]
        assert query["code_challenge_method"] == ["S256"]
        assert_sign_in_page(popup)
        popup.screenshot(path=screenshot("swagger-popup"))
        with page.expect_response(lambda r: r.url.endswith("/auth/token")) as token_info:
            sign_in(popup, username, password)
        assert token_info.value.status == 200, token_info.value.text()
        form = token_info.value.request.post_data or ""
        assert "grant_type=authorization_code" in form
        assert "code_verifier=" in form
        # /docs/oauth2-redirect handed the code to the opener and closed the pop-up.
        if not popup.is_closed():
            popup.wait_for_event("close")
        # Swagger UI's Logout button ("Remove authorization") replaces Authorize.
        flow.get_by_role("button", name="Remove authorization").wait_for()
        assert "Authorized" in flow.inner_text()
        page.screenshot(path=screenshot("swagger-authorized"))
        flow.locator("button.btn-done").click()
        assert dialog.count() == 0

        body = swagger_reads_own_account(page)
        assert f'"username": "{username}"' in body, body
        page.screenshot(path=screenshot("swagger-me"))


def axe_violations(page: "Page") -> list[dict[str, Any]]:
    """axe-core (bundled by axe-playwright-python) on the page as it stands."""
    from axe_playwright_python.sync_playwright import Axe

    results = Axe().run(page)
    # It ran its rules on this page (an empty result from a page it could not read
    # would say nothing).
    assert results.response["passes"], results.response
    assert results.response["url"] == page.url
    violations: list[dict[str, Any]] = results.response["violations"]
    if violations:
        print(results.generate_report())
    return violations


def test_sign_in_and_consent_pages_have_no_axe_violations(gatehouse: Gatehouse) -> None:
    """Zero axe-core violations on the sign-in page, on it with the error message,
    and on the consent page, on a phone-sized screen and a desktop one; and on the
    signed-in view, the signed-out page and the error page."""
    username, password = gatehouse.signup()
    client = gatehouse.register_client(first_party=False)
    flow = Flow(gatehouse, client)

    with chromium() as browser, local_context(browser) as context:
        page = context.new_page()
        page.goto(flow.url())
        assert axe_violations(page) == []
        page.set_viewport_size(PHONE)
        assert axe_violations(page) == []
        page.screenshot(path=screenshot("sign-in-phone"), full_page=True)

        sign_in(page, username, "not the password")
        page.get_by_role("alert").wait_for()
        assert axe_violations(page) == []
        page.screenshot(path=screenshot("sign-in-error"), full_page=True)

        sign_in(page, username, password)
        page.get_by_role("button", name="Allow").wait_for()
        assert axe_violations(page) == []
        page.set_viewport_size(DESKTOP)
        assert axe_violations(page) == []

        # The other pages a person meets: "Signed in as" with Sign out, the
        # signed-out page, and the error page of an unknown client (400).
        page.goto(Flow(gatehouse, client).url(prompt="login"))
        sign_out = page.get_by_role("button", name="Sign out")
        sign_out.wait_for()
        assert axe_violations(page) == []
        with page.expect_response(lambda r: r.url.endswith("/oauth/logout")) as answer:
            sign_out.click()
        assert answer.value.status == 303
        page.wait_for_load_state()
        assert axe_violations(page) == []
        shown = page.goto(Flow(gatehouse, {**client, "client_id": "no-such-client"}).url())
        assert shown is not None and shown.status == 400
        assert axe_violations(page) == []
        page.screenshot(path=screenshot("error"), full_page=True)
