"""Pure ASGI middleware (no per-request task overhead): body size cap, NUL guard
for URLs, CORS for listed origins only, and security headers."""

from starlette.datastructures import Headers, MutableHeaders
from starlette.exceptions import HTTPException
from starlette.middleware.cors import CORSMiddleware
from starlette.responses import PlainTextResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

_CREDENTIAL_HEADERS = frozenset({b"authorization", b"cookie"})
_TOO_LARGE = b'{"detail":"Request body too large"}'
_NUL_IN_URL = (
    b'{"detail":[{"loc":["url"],"msg":"must not contain NUL characters","type":"value_error"}]}'
)


class HttpMiddleware:
    """Pure ASGI middleware for HTTP requests: other scopes (lifespan) pass
    straight through to the app."""

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        await self.handle(scope, receive, send)

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        raise NotImplementedError


class BodySizeLimit(HttpMiddleware):
    """413 before parsing when a body is over `max_bytes`, by Content-Length or
    by counting a chunked stream."""

    def __init__(self, app: ASGIApp, max_bytes: int):
        super().__init__(app)
        self.max_bytes = max_bytes

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        for name, value in scope["headers"]:
            if name == b"content-length":
                try:
                    too_large = int(value) > self.max_bytes
                except ValueError:
                    too_large = True
                if too_large:
                    await _reject(send, 413, _TOO_LARGE)
                    return
        seen = 0
        started = False

        async def counting_receive() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    raise _BodyTooLarge
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counting_receive, tracking_send)
        except _BodyTooLarge:
            if not started:
                await _reject(send, 413, _TOO_LARGE)


class _BodyTooLarge(HTTPException):
    # An HTTPException, because FastAPI turns any other error raised while it reads
    # the body into 400 "error parsing the body"; this one it lets through, and the
    # app's HTTP error handler answers 413 with the same JSON as `_reject`.
    def __init__(self) -> None:
        super().__init__(413, "Request body too large")


async def _reject(send: Send, status: int, body: bytes) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


class NulInUrlGuard(HttpMiddleware):
    """422 for a NUL character in the path or query string. PostgreSQL can neither
    store nor compare one (SQLite can), and no name in this API contains it, so
    refusing it up front makes both databases answer alike for every route."""

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            "\x00" in scope["path"]
            or b"%00" in scope["query_string"]
            or b"\x00" in scope["query_string"]
        ):
            await _reject(send, 422, _NUL_IN_URL)
            return
        await self.app(scope, receive, send)


class ListedOriginsCORS(CORSMiddleware):
    """Starlette's CORS, except that a preflight from an origin not listed gets no
    CORS headers at all (Starlette still sends its allowed methods and headers)."""

    def preflight_response(self, request_headers: Headers) -> Response:
        if not self.is_allowed_origin(origin=request_headers["origin"]):
            return PlainTextResponse(
                "Disallowed CORS origin", status_code=400, headers={"Vary": "Origin"}
            )
        return super().preflight_response(request_headers)


class SecurityHeaders(HttpMiddleware):
    def __init__(self, app: ASGIApp, *, hsts: bool):
        super().__init__(app)
        self.hsts = hsts

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        is_docs = scope["path"].startswith("/docs")
        # Token, revocation, introspection and session answers carry secrets or
        # personal data; RFC 6749 §5.1 wants no-store on token responses, errors and
        # 413s included (RFC 7662 §4 likewise for introspection).
        is_auth = scope["path"].startswith(("/auth/", "/oauth/"))
        # Whatever answers a request that carries credentials is about someone:
        # no cache, shared or private, may keep it (RFC 9111 §5.2.2.5).
        authenticated = any(name in _CREDENTIAL_HEADERS for name, _ in scope["headers"])

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                headers.setdefault("X-Content-Type-Options", "nosniff")
                headers.setdefault("Referrer-Policy", "no-referrer")
                headers.setdefault("X-Frame-Options", "DENY")
                headers.setdefault("Cross-Origin-Opener-Policy", "same-origin")
                if is_docs:
                    headers.setdefault(
                        "Content-Security-Policy",
                        "default-src 'self'; script-src 'self' 'unsafe-inline'; "
                        "style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
                        "connect-src 'self'; frame-ancestors 'none'",
                    )
                else:
                    headers.setdefault(
                        "Content-Security-Policy", "default-src 'none'; frame-ancestors 'none'"
                    )
                if authenticated:
                    headers["Cache-Control"] = "no-store"
                    headers.setdefault("Pragma", "no-cache")
                elif is_auth:
                    headers.setdefault("Cache-Control", "no-store")
                    headers.setdefault("Pragma", "no-cache")
                if self.hsts:
                    headers.setdefault("Strict-Transport-Security", "max-age=31536000")
            await send(message)

        await self.app(scope, receive, send_with_headers)
