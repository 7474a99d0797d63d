"""Request ids, request metrics and request log lines, in one pure ASGI middleware:
per request a clock read, a header scan, one extra response header and two
metric updates; the log line only when the access log is on."""

import itertools
import re
import secrets
import time

from starlette.requests import HTTPConnection
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.core.middleware import HttpMiddleware
from app.core.network import client_ip
from app.observability import logs, metrics

# An incoming X-Request-ID is kept when it is this harmless (it goes into logs
# and a response header); anything else is replaced by a fresh one.
_SAFE_ID = re.compile(rb"[A-Za-z0-9._:@/+=-]{1,128}")
# Made ids: a random prefix per process and a counter. Unique across instances
# without a system call per request (`uuid4` reads the OS's randomness each
# time); a request id is a label, not a secret.
_PREFIX = secrets.token_hex(8)
_counter = itertools.count(1)


def new_request_id() -> bytes:
    return f"{_PREFIX}{next(_counter):016x}".encode()


class RequestObservability(HttpMiddleware):
    def __init__(self, app: ASGIApp, *, access_log: bool):
        super().__init__(app)
        self.access_log = access_log

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        start = time.perf_counter()
        raw_id = None
        for name, value in scope["headers"]:
            if name == b"x-request-id":
                raw_id = value if _SAFE_ID.fullmatch(value) else None
                break
        if raw_id is None:
            raw_id = new_request_id()
        header = (b"x-request-id", raw_id)
        token = logs.REQUEST_ID.set(raw_id.decode())
        status = 500  # what the client gets when the app raises before answering

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", ()), header]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            seconds = time.perf_counter() - start
            route = getattr(scope.get("route"), "path", None) or metrics.UNMATCHED
            metrics.observe_request(scope["method"], route, status, seconds)
            if self.access_log and logs.access.isEnabledFor(20):
                logs.request_line(
                    scope["method"], route, status, seconds, client_ip(HTTPConnection(scope))
                )
            logs.REQUEST_ID.reset(token)
