"""Swagger UI from the service's own copy of its assets (no CDN needed), and the
OpenAPI document it reads, whose OAuth2 scopes are the live catalogue."""

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html, get_swagger_ui_oauth2_redirect_html
from fastapi.responses import HTMLResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from swagger_ui_bundle import swagger_ui_path

from app.authz.catalogue import GATEHOUSE_CLIENT
from app.core.db import DbSession
from app.roles import service as roles_service


def with_scopes(document: dict[str, Any], scopes: dict[str, str]) -> dict[str, Any]:
    """`document` with `scopes` as the scopes of every OAuth2 flow (what Swagger
    UI's Authorize dialog offers). Copies only the path down to the flows: the
    cached document stays as FastAPI built it."""
    schemes = document.get("components", {}).get("securitySchemes", {})
    patched = {}
    for name, scheme in schemes.items():
        if scheme.get("type") == "oauth2":
            flows = {kind: {**flow, "scopes": scopes} for kind, flow in scheme["flows"].items()}
            scheme = {**scheme, "flows": flows}
        patched[name] = scheme
    components = {**document.get("components", {}), "securitySchemes": patched}
    return {**document, "components": components}


def install_docs(app: FastAPI) -> None:
    app.mount("/docs/static", StaticFiles(directory=str(swagger_ui_path)), name="swagger-static")

    # Read from the scope table at each request: a custom scope an admin just
    # made is offered at once, on every instance, without a restart.
    @app.get("/openapi.json", include_in_schema=False)
    async def openapi_document(db: DbSession) -> JSONResponse:
        catalogue = await roles_service.list_scopes(db)
        return JSONResponse(with_scopes(app.openapi(), {s.name: s.description for s in catalogue}))

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
            # The Authorize dialog's code flow goes through the built-in public
            # client, whose redirect URI is this page's /docs/oauth2-redirect; PKCE
            # S256, which the authorization endpoint requires of every client.
            init_oauth={
                "clientId": GATEHOUSE_CLIENT,
                "usePkceWithAuthorizationCodeGrant": True,
                "appName": "Gatehouse",
            },
        )

    @app.get("/docs/oauth2-redirect", include_in_schema=False)
    async def swagger_ui_redirect() -> HTMLResponse:
        return get_swagger_ui_oauth2_redirect_html()
