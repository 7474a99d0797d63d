"""Builds the application: `create_app()` and the `app` that `uvicorn app.main:app` serves."""

from fastapi import FastAPI

from app.accounts import routes as accounts
from app.audit import routes as audit
from app.authorization import routes as authorization
from app.clients import routes as clients
from app.consents import routes as consents
from app.core import access_log
from app.core.config import Settings, settings_or_exit
from app.core.db import TransactionalRoute
from app.core.errors import install_error_handlers
from app.core.middleware import BodySizeLimit, ListedOriginsCORS, NulInUrlGuard, SecurityHeaders
from app.health import routes as health
from app.lifespan import lifespan
from app.oauth import routes as oauth
from app.observability import logs
from app.observability import routes as observability
from app.observability.middleware import RequestObservability
from app.personal_tokens import routes as personal_tokens
from app.roles import routes as roles
from app.sessions import routes as sessions
from app.signing_keys import routes as signing_keys
from app.swagger import install_docs


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or settings_or_exit()
    app = FastAPI(
        title="Gatehouse",
        summary="Accounts, roles and scoped tokens for FastAPI services",
        version="0.1.0",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        openapi_url=None,  # served by install_docs, with the live scope catalogue
        # No 307 to the same path with or without a slash: Starlette builds that
        # redirect from the request's Host header (`Host: evil.example` would send
        # the client there). A path the API does not define is 404 (CONTRACT.md).
        redirect_slashes=False,
    )
    app.state.settings = settings
    # Routes added on the app itself (the docs) commit their session like the rest.
    app.router.route_class = TransactionalRoute
    logs.ensure_configured(settings.log_format)
    install_error_handlers(app)
    access_log.install()
    # Starlette tries routes in order until one matches, and in FastAPI's router a
    # miss is not free: the hot paths (the token endpoint, introspection, the
    # caller's own account) come right after the health probes. No two routes
    # here match the same path, so the order decides nothing else.
    for router in (
        health.router,
        oauth.router,
        oauth.introspection_router,
        accounts.router,
        accounts.signup_router,
        sessions.router,
        personal_tokens.router,
        consents.router,
        roles.assignment_router,
        roles.router,
        roles.scopes_router,
        audit.router,
        clients.router,
        authorization.router,
        signing_keys.router,
        oauth.metadata_router,
        observability.router,
    ):
        app.include_router(router)
    if settings.show_docs:
        install_docs(app)
    # Added innermost first. Security headers wrap everything, 413 and 422 answers
    # of the guards included; CORS wraps the guards so a browser can read those.
    app.add_middleware(NulInUrlGuard)
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_body_bytes)
    if settings.cors_origins:
        # Only listed origins get CORS headers; never a wildcard with credentials.
        app.add_middleware(
            ListedOriginsCORS,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "POST", "PUT", "PATCH", "DELETE"],
            allow_headers=["Authorization", "Content-Type"],
            allow_credentials=False,
            max_age=600,
        )
    app.add_middleware(SecurityHeaders, hsts=settings.is_production)
    # Outermost: its status, duration and request id cover every answer above.
    app.add_middleware(RequestObservability, access_log=settings.access_log)
    return app


app = create_app()
