"""Domain errors carry their HTTP meaning; one set of handlers renders them."""

import logging
import math
from typing import Any, cast

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DataError, DBAPIError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from starlette.exceptions import HTTPException as StarletteHTTPException

log = logging.getLogger("gatehouse")

# `responses=` of a route or router, for the OpenAPI document.
Answers = dict[int | str, dict[str, Any]]


def answers(*groups: dict[int, str]) -> Answers:
    """The error answers a route may give, from {status: what it means}, for the
    OpenAPI document (Swagger lists them under the route)."""
    return {code: {"description": text} for group in groups for code, text in group.items()}


class GatehouseError(Exception):
    status_code = 400
    detail = "Bad request"

    def __init__(self, detail: str | None = None, *, headers: dict[str, str] | None = None):
        super().__init__(detail or self.detail)
        self.detail = detail or self.detail
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        return {"detail": self.detail}


class NotFound(GatehouseError):
    """No such resource; also what another account's session or token looks like,
    so that ids cannot be probed."""

    status_code = 404
    detail = "Not found"


class Conflict(GatehouseError):
    """The change clashes with what is stored: a name taken, the last admin, a
    built-in role or client, a row changed by a request that won a race."""

    status_code = 409
    detail = "Conflict"


class Forbidden(GatehouseError):
    """The caller is known and may not do this: most often the guardrail, granting
    scopes its token does not carry."""

    status_code = 403
    detail = "Forbidden"


class Invalid(GatehouseError):
    """Input that passed the schema but breaks a rule (password policy, unknown scope)."""

    status_code = 422
    detail = "Invalid input"

    def __init__(self, detail: str, *, field: str | None = None, location: str = "body"):
        super().__init__(detail)
        self.loc = [location, field] if field else [location]

    def body(self) -> dict[str, Any]:
        return {"detail": [{"loc": self.loc, "msg": self.detail, "type": "value_error"}]}


class RetryLater(GatehouseError):
    """An answer that says when to try again (RFC 9110 §10.2.3, whole seconds)."""

    def __init__(self, detail: str | None = None, *, retry_after: float = 1):
        super().__init__(detail, headers={"Retry-After": str(max(1, math.ceil(retry_after)))})


class Unavailable(RetryLater):
    """Overloaded (the hasher's queue is full) or the database is unreachable."""

    status_code = 503
    detail = "Service temporarily unavailable"


class TooManyRequests(RetryLater):
    """A throttle said no: failed logins, signups, or an address's share of the hasher."""

    status_code = 429
    detail = "Too many attempts"


class BearerChallenge(GatehouseError):
    """A refusal on a protected endpoint, with the RFC 6750 §3 challenge naming the
    scope the endpoint needs; no `error` attribute when the request carried no
    token at all."""

    error: str | None = None

    def __init__(self, *, scope: str = ""):
        parts = [f'error="{self.error}"'] if self.error else []
        if scope:
            parts.append(f'scope="{scope}"')
        challenge = "Bearer " + ", ".join(parts) if parts else "Bearer"
        super().__init__(headers={"WWW-Authenticate": challenge})


class NotAuthenticated(BearerChallenge):
    """No bearer token at all."""

    status_code = 401
    detail = "Not authenticated"


class InvalidToken(BearerChallenge):
    """A token that is malformed, forged, expired, or no longer live: its session
    ended, its account disabled, its roles changed (RFC 6750 §3.1)."""

    status_code = 401
    detail = "Invalid or expired token"
    error = "invalid_token"


class InsufficientScope(BearerChallenge):
    """A live token without a scope the endpoint needs (RFC 6750 §3.1)."""

    status_code = 403
    detail = "The token lacks a scope this endpoint needs"
    error = "insufficient_scope"


async def _domain_error(request: Request, exc: Exception) -> JSONResponse:
    exc = cast(GatehouseError, exc)
    return JSONResponse(exc.body(), status_code=exc.status_code, headers=exc.headers)


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    # Pydantic echoes the offending input and context; a password or token could be
    # in them, so only the location, message and type are sent back.
    exc = cast(RequestValidationError, exc)
    errors = [
        {"loc": list(e.get("loc", ())), "msg": str(e.get("msg", "")), "type": e.get("type", "")}
        for e in exc.errors()
    ]
    return JSONResponse({"detail": errors}, status_code=422)


async def _database_unavailable(request: Request, exc: Exception) -> JSONResponse:
    log.warning("database unavailable: %s", type(exc).__name__)
    return JSONResponse(
        {"detail": "Database unavailable; retry shortly"},
        status_code=503,
        headers={"Retry-After": "5"},
    )


def _is_data_exception(exc: DBAPIError) -> bool:
    # SQLSTATE class 22 (asyncpg errors reach SQLAlchemy as the generic DBAPIError):
    # a value PostgreSQL refuses to store or compare, such as a NUL character or a
    # string longer than its column. Input that slipped past validation is the
    # client's error, not a server failure.
    return isinstance(exc, DataError) or str(getattr(exc.orig, "sqlstate", "")).startswith("22")


async def _dbapi_error(request: Request, exc: Exception) -> JSONResponse:
    exc = cast(DBAPIError, exc)
    if exc.connection_invalidated or isinstance(exc, OperationalError):
        return await _database_unavailable(request, exc)
    if _is_data_exception(exc):
        log.warning("input refused by the database on %s %s", request.method, request.url.path)
        return JSONResponse(
            {
                "detail": [
                    {
                        "loc": ["request"],
                        "msg": "A value is too long or contains characters that cannot be stored",
                        "type": "value_error",
                    }
                ]
            },
            status_code=422,
        )
    return await _unexpected(request, exc)


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    log.error("unhandled %s on %s %s", type(exc).__name__, request.method, request.url.path)
    return JSONResponse({"detail": "Internal server error"}, status_code=500)


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    exc = cast(StarletteHTTPException, exc)
    return JSONResponse(
        {"detail": exc.detail}, status_code=exc.status_code, headers=exc.headers or None
    )


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(GatehouseError, _domain_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(PoolTimeoutError, _database_unavailable)
    app.add_exception_handler(ConnectionError, _database_unavailable)
    app.add_exception_handler(TimeoutError, _database_unavailable)
    app.add_exception_handler(DBAPIError, _dbapi_error)
    app.add_exception_handler(Exception, _unexpected)
