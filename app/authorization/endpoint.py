"""The authorization endpoint's flow (RFC 6749 §4.1.1-§4.1.2, OpenID Connect Core
§3.1.2): check the request, sign the browser in (the same password check as the
token endpoint), ask for consent where the client is a third party, and send
the code back. Builds the HTML and redirect answers; the rules live in the
services it calls."""

from urllib.parse import parse_qsl

from fastapi.responses import RedirectResponse, Response
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.datastructures import FormData
from starlette.requests import Request

from app.accounts import service as accounts_service
from app.authorization import csrf, pages, requests
from app.authorization import service as authorization_service
from app.authorization.schemas import AuthorizationRequest
from app.authz.catalogue import ALL_HELD, format_scope
from app.browser_sessions import service as browser_sessions
from app.browser_sessions.service import LiveBrowserSession
from app.consents import service as consents_service
from app.core.errors import TooManyRequests, Unavailable
from app.core.network import RequestOrigin
from app.roles import service as roles_service
from app.state import State

SESSION_COOKIE = "gatehouse_session"
WRONG_CREDENTIALS = "Incorrect username or password."
MAX_FIELD_LENGTH = 4096


class _Page:
    """What every page of one request shares: settings, the CSRF value, and the
    cookies to set on whatever answer goes out."""

    def __init__(self, state: State, request: Request):
        self.state = state
        self.settings = state.settings
        self.csrf = csrf.for_page(
            self.settings, request.cookies.get(csrf.cookie_name(self.settings, csrf.COOKIE))
        )
        self.session_cookie = request.cookies.get(csrf.cookie_name(self.settings, SESSION_COOKIE))
        self.new_session: str | None = None
        self.clear_session = False

    def finish(self, response: Response) -> Response:
        secure = csrf.secure_cookies(self.settings)
        if self.csrf.new:
            response.set_cookie(
                csrf.cookie_name(self.settings, csrf.COOKIE),
                self.csrf.nonce,
                httponly=True,
                secure=secure,
                samesite="lax",
                path="/",
            )
        name = csrf.cookie_name(self.settings, SESSION_COOKIE)
        if self.new_session is not None:
            response.set_cookie(
                name,
                self.new_session,
                max_age=self.settings.refresh_token_ttl_seconds,
                httponly=True,
                secure=secure,
                samesite="lax",
                path="/",
            )
        elif self.clear_session:
            response.delete_cookie(name, path="/", secure=secure, httponly=True, samesite="lax")
        return response


def _redirect(location: str) -> Response:
    # RFC 6749 §4.1.2 shows a 302; a browser follows it with GET, from a form POST too.
    return RedirectResponse(location, status_code=302, headers={"Cache-Control": "no-store"})


def _to_client(page: _Page, redirect_uri: str, params: dict[str, str | None]) -> Response:
    """A redirect back to the client, with `iss` (RFC 9207 §2) on every answer."""
    location = requests.redirect_to(redirect_uri, {**params, "iss": page.settings.issuer})
    return page.finish(_redirect(location))


def _error_to_client(page: _Page, error: requests.RedirectError) -> Response:
    return _to_client(
        page,
        error.redirect_uri,
        {"error": error.error, "error_description": error.description, "state": error.state},
    )


def _targets(areq: AuthorizationRequest) -> tuple[str, ...]:
    origin = pages.origin_of(areq.redirect_uri)
    return (origin,) if origin else ()


def _sign_in_page(
    page: _Page,
    areq: AuthorizationRequest,
    *,
    signed_in_as: str | None = None,
    error: str | None = None,
    username: str = "",
    status_code: int = 200,
    headers: dict[str, str] | None = None,
) -> Response:
    return page.finish(
        pages.render(
            "sign_in",
            status_code=status_code,
            form_targets=_targets(areq),
            headers=headers,
            client_name=areq.client.name,
            csrf_token=page.csrf.token,
            request=areq.encoded,
            signed_in_as=signed_in_as,
            error=error,
            username=username,
        )
    )


async def _consent_page(
    db: AsyncSession,
    page: _Page,
    areq: AuthorizationRequest,
    browser: LiveBrowserSession,
    scopes: set[str],
) -> Response:
    catalogue = {s.name: s.description for s in await roles_service.list_scopes(db)}
    return page.finish(
        pages.render(
            "consent",
            form_targets=_targets(areq),
            client_name=areq.client.name,
            username=browser.account.username,
            scopes=[{"name": s, "description": catalogue.get(s, "")} for s in sorted(scopes)],
            csrf_token=page.csrf.token,
            request=areq.encoded,
        )
    )


async def _granted(
    db: AsyncSession, areq: AuthorizationRequest, browser: LiveBrowserSession
) -> set[str]:
    held, _ = await roles_service.effective_scopes(db, browser.account.id)
    return authorization_service.grantable(areq.client, held, areq.scopes)


async def _issue(
    db: AsyncSession,
    page: _Page,
    areq: AuthorizationRequest,
    browser: LiveBrowserSession,
    scopes: set[str],
) -> Response:
    # A first-party request naming no scope follows the account's roles, like a
    # password login naming none; anything consented to stays exactly that.
    all_held = not areq.scopes and areq.client.first_party
    code = await authorization_service.issue_code(
        db,
        client_id=areq.client.client_id,
        redirect_uri=areq.redirect_uri if areq.redirect_uri_given else None,
        account_id=browser.account.id,
        browser_session_id=browser.id,
        code_challenge=areq.code_challenge,
        scope=ALL_HELD if all_held else format_scope(scopes),
        nonce=areq.nonce,
        auth_time=browser.auth_time,
    )
    await browser_sessions.touch(db, browser.id)
    return _to_client(page, areq.redirect_uri, {"code": code, "state": areq.state})


async def _proceed(
    db: AsyncSession,
    page: _Page,
    areq: AuthorizationRequest,
    browser: LiveBrowserSession | None,
    *,
    just_signed_in: bool = False,
) -> Response:
    """Where a checked request goes next: the sign-in form, the consent page, or
    back to the client with a code."""
    prompt = areq.prompt
    if browser is None:
        if "none" in prompt:
            return _to_client(
                page,
                areq.redirect_uri,
                {
                    "error": "login_required",
                    "error_description": "No one is signed in",
                    "state": areq.state,
                },
            )
        return _sign_in_page(page, areq)
    if "login" in prompt and not just_signed_in:
        return _sign_in_page(page, areq, signed_in_as=browser.account.username)
    scopes = await _granted(db, areq, browser)
    if "consent" in prompt or (
        not areq.client.first_party
        and not await consents_service.covers(
            db, account_id=browser.account.id, client_id=areq.client.client_id, scopes=scopes
        )
    ):
        if "none" in prompt:
            return _to_client(
                page,
                areq.redirect_uri,
                {
                    "error": "consent_required",
                    "error_description": "The user has not allowed this application",
                    "state": areq.state,
                },
            )
        return await _consent_page(db, page, areq, browser, scopes)
    return await _issue(db, page, areq, browser, scopes)


async def authorize(db: AsyncSession, state: State, request: Request) -> Response:
    """GET /oauth/authorize."""
    page = _Page(state, request)
    try:
        areq = await requests.check(
            db, settings=page.settings, params=list(request.query_params.multi_items())
        )
    except requests.PageError as exc:
        return page.finish(pages.error_page(exc.message))
    except requests.RedirectError as exc:
        return _error_to_client(page, exc)
    browser = await browser_sessions.find_live(
        db, settings=page.settings, token=page.session_cookie
    )
    return await _proceed(db, page, areq, browser)


def _field(form: FormData, name: str) -> str | None:
    values = form.getlist(name)
    if len(values) != 1 or not isinstance(values[0], str):
        return None
    value = values[0]
    if len(value) > MAX_FIELD_LENGTH or "\x00" in value:
        return None
    return value


async def submit(
    db: AsyncSession, state: State, request: Request, origin: RequestOrigin
) -> Response:
    """POST /oauth/authorize: the sign-in form, or the consent page's decision."""
    page = _Page(state, request)
    form = await request.form()
    cookie = request.cookies.get(csrf.cookie_name(page.settings, csrf.COOKIE))
    if not csrf.valid(page.settings, cookie, _field(form, "csrf_token")):
        return page.finish(
            pages.error_page(
                "This form has expired or did not come from this browser. "
                "Go back, reload the page and try again."
            )
        )
    raw = _field(form, "request")
    if raw is None:
        return page.finish(pages.error_page("The sign-in request is missing."))
    try:
        areq = await requests.check(
            db, settings=page.settings, params=parse_qsl(raw, keep_blank_values=True)
        )
    except requests.PageError as exc:
        return page.finish(pages.error_page(exc.message))
    except requests.RedirectError as exc:
        return _error_to_client(page, exc)
    decision = _field(form, "decision")
    if decision is not None or "decision" in form:
        return await _decide(db, page, areq, decision, origin)
    return await _sign_in(db, page, areq, form, origin)


async def _decide(
    db: AsyncSession,
    page: _Page,
    areq: AuthorizationRequest,
    decision: str | None,
    origin: RequestOrigin,
) -> Response:
    browser = await browser_sessions.find_live(
        db, settings=page.settings, token=page.session_cookie
    )
    if browser is None:
        return _sign_in_page(page, areq)
    if decision == "deny":
        return _to_client(
            page,
            areq.redirect_uri,
            {
                "error": "access_denied",
                "error_description": "The user denied the request",
                "state": areq.state,
            },
        )
    if decision != "allow":
        return page.finish(pages.error_page("Choose Allow or Deny."))
    scopes = await _granted(db, areq, browser)
    await consents_service.grant(
        db,
        account_id=browser.account.id,
        client_id=areq.client.client_id,
        scopes=scopes,
        ip=origin.ip,
    )
    return await _issue(db, page, areq, browser, scopes)


async def _sign_in(
    db: AsyncSession,
    page: _Page,
    areq: AuthorizationRequest,
    form: FormData,
    origin: RequestOrigin,
) -> Response:
    username = _field(form, "username") or ""
    password = _field(form, "password") or ""
    if not username or not password:
        # Nothing to check: the same answer as a wrong password, and no count.
        return _sign_in_page(page, areq, error=WRONG_CREDENTIALS, username=username)
    settings = page.settings
    try:
        # The token endpoint's check, claim and throttle, exactly (see
        # accounts.service.check_login): the form is no side door around them.
        with page.state.hasher.claim(origin.ip) as hashing:
            check = await accounts_service.check_login(
                db,
                settings=settings,
                hashing=hashing,
                slots=page.state.login_slots,
                username=username,
                password=password,
                origin=origin,
            )
            started = None
            if (account := check.verified) is not None and check.verified_hash is not None:
                started = await browser_sessions.start(
                    db,
                    settings=settings,
                    account=account,
                    password_hash=check.verified_hash,
                    user_agent=origin.user_agent,
                    ip=origin.ip,
                    client_id=areq.client.client_id,
                )
    except (TooManyRequests, Unavailable) as exc:
        return _sign_in_page(
            page,
            areq,
            error="Too many sign-in attempts. Wait a little and try again.",
            username=username,
            status_code=exc.status_code,
            headers=exc.headers,
        )
    if started is None:
        await accounts_service.record_login_failure(db, check, ip=origin.ip)
        return _sign_in_page(page, areq, error=WRONG_CREDENTIALS, username=username)
    token, browser = started
    previous = await browser_sessions.find_live(db, settings=settings, token=page.session_cookie)
    if previous is not None:
        await browser_sessions.end(db, previous.id, reason="signed_in_again")
    page.new_session = token
    return await _proceed(db, page, areq, browser, just_signed_in=True)


async def logout(
    db: AsyncSession, state: State, request: Request, origin: RequestOrigin
) -> Response:
    """POST /oauth/logout: end this browser's session."""
    page = _Page(state, request)
    form = await request.form()
    cookie = request.cookies.get(csrf.cookie_name(page.settings, csrf.COOKIE))
    if not csrf.valid(page.settings, cookie, _field(form, "csrf_token")):
        return page.finish(
            pages.error_page("This form has expired or did not come from this browser.")
        )
    browser = await browser_sessions.find_live(
        db, settings=page.settings, token=page.session_cookie
    )
    if browser is not None:
        await browser_sessions.sign_out(db, browser, ip=origin.ip)
    page.clear_session = True
    return page.finish(
        RedirectResponse(
            "/oauth/signed-out", status_code=303, headers={"Cache-Control": "no-store"}
        )
    )


def signed_out(state: State, request: Request) -> Response:
    page = _Page(state, request)
    return page.finish(pages.render("signed_out"))
