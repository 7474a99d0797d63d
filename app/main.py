"""Builds the application: lifespan, middleware, routers, error handlers, docs."""

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html, get_swagger_ui_oauth2_redirect_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles
from swagger_ui_bundle import swagger_ui_path

from app.api.routes import accounts, audit, auth, health, roles, scopes, wellknown
from app.core.config import Settings
from app.core.config import settings as default_settings
from app.core.db import create_engine, create_sessionmaker
from app.core.errors import Conflict, install_error_handlers
from app.core.middleware import (
    BodySizeLimit,
    ListedOriginsCORS,
    NulInUrlGuard,
    SecurityHeaders,
)
from app.security.keys import KeyRing
from app.security.passwords import PasswordHasher
from app.services import auth as auth_service
from app.services import sessions as sessions_service
from app.services import throttle

log = logging.getLogger("gatehouse")
PURGE_INTERVAL_SECONDS = 600
PURGE_FIRST_DELAY_SECONDS = 30


async def _purge_forever(app: FastAPI) -> None:
    """Expired sessions and stale throttle rows go without a separate process."""
    settings: Settings = app.state.settings
    # Soon after start, then periodically: instances restarted often still purge.
    delay = PURGE_FIRST_DELAY_SECONDS
    while True:
        await asyncio.sleep(delay)
        delay = PURGE_INTERVAL_SECONDS
        try:
            async with app.state.sessionmaker() as session, session.begin():
                await sessions_service.purge_expired(session, settings=settings)
                await throttle.purge_stale(
                    session, older_than_seconds=max(3600, settings.login_window_seconds)
                )
        except Exception as exc:
            log.warning("purge failed: %s", type(exc).__name__)


async def _bootstrap_admin(app: FastAPI) -> None:
    settings: Settings = app.state.settings
    if not (settings.admin_username and settings.admin_password):
        return
    async with app.state.sessionmaker() as session:
        try:
            created = await auth_service.bootstrap_admin(
                session,
                hasher=app.state.hasher,
                username=settings.admin_username,
                password=settings.admin_password.get_secret_value(),
            )
            await session.commit()
        except Conflict as exc:
            log.warning("bootstrap admin skipped: %s", exc.detail)
            return
    if created:
        log.warning("bootstrap admin %r created", settings.admin_username)


@contextlib.asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    settings: Settings = app.state.settings
    app.state.engine = create_engine(settings)
    app.state.sessionmaker = create_sessionmaker(app.state.engine)
    app.state.hasher = PasswordHasher(
        time_cost=settings.argon2_time_cost,
        memory_kib=settings.argon2_memory_kib,
        parallelism=settings.argon2_parallelism,
        workers=settings.hash_workers,
        queue_limit=settings.hash_queue_limit,
    )
    # Password checks waiting on a shared throttle row hold at most half the pool.
    app.state.login_slots = asyncio.Semaphore(max(1, settings.db_pool_size // 2))
    app.state.keyring = KeyRing(settings, app.state.sessionmaker)
    await app.state.keyring.start()
    await _bootstrap_admin(app)
    purge = asyncio.create_task(_purge_forever(app), name="purge")
    try:
        yield
    finally:
        purge.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await purge
        await app.state.keyring.stop()
        app.state.hasher.close()
        await app.state.engine.dispose()


def _install_docs(app: FastAPI) -> None:
    """Swagger UI from the service's own copy of its assets: no CDN needed."""
    app.mount("/docs/static", StaticFiles(directory=str(swagger_ui_path)), name="swagger-static")

    @app.get("/docs", include_in_schema=False)
    async def swagger_ui() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url="/openapi.json",
            title="Gatehouse",
            swagger_js_url="/docs/static/swagger-ui-bundle.js",
            swagger_css_url="/docs/static/swagger-ui.css",
            swagger_favicon_url="/docs/static/favicon-32x32.png",
            oauth2_redirect_url="/docs/oauth2-redirect",
            swagger_ui_parameters={"persistAuthorization": False},
        )

    @app.get("/docs/oauth2-redirect", include_in_schema=False)
    async def swagger_ui_redirect() -> HTMLResponse:
        return get_swagger_ui_oauth2_redirect_html()


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or default_settings
    app = FastAPI(
        title="Gatehouse",
        summary="Accounts, roles and scoped tokens for FastAPI services",
        version="0.1.0",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        openapi_url="/openapi.json" if settings.show_docs else None,
    )
    app.state.settings = settings
    install_error_handlers(app)
    for module in (health, auth, accounts, roles, scopes, audit, wellknown):
        app.include_router(module.router)
    if settings.show_docs:
        _install_docs(app)
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
    return app


app = create_app()
