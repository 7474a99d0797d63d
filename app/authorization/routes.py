"""The browser sign-in pages under /oauth/ (public, HTML) and OpenID Connect
userinfo (bearer with `openid`)."""

from fastapi import Request
from fastapi.responses import HTMLResponse, Response

from app.authorization import endpoint, pages
from app.authorization import service as authorization_service
from app.authorization.schemas import UserInfo
from app.authz.dependencies import AUTH_ERRORS, OpenId
from app.core.db import DbSession, transactional_router
from app.core.network import OriginDep
from app.state import StateDep

router = transactional_router("/oauth", tag="oauth")

HTML: dict[int | str, dict[str, object]] = {
    200: {"content": {"text/html": {}}, "description": "The sign-in or consent page"},
    302: {"description": "Back to the client's redirect URI with code or error, state, iss"},
    400: {
        "content": {"text/html": {}},
        "description": "Unknown client or unregistered redirect URI (never a redirect)",
    },
}


@router.get("/authorize", response_class=HTMLResponse, responses=HTML)
async def authorize(request: Request, db: DbSession, state: StateDep) -> Response:
    """RFC 6749 §4.1.1 with PKCE (S256 only): `response_type=code`, `client_id`,
    `redirect_uri`, `scope`, `state`, `code_challenge`, `code_challenge_method`,
    optional `nonce` and `prompt` (`login`, `none`, `consent`)."""
    return await endpoint.authorize(db, state, request)


@router.post("/authorize", response_class=HTMLResponse, responses=HTML)
async def submit_authorization(
    request: Request, db: DbSession, state: StateDep, origin: OriginDep
) -> Response:
    """The sign-in form (`username`, `password`) or the consent decision
    (`decision=allow|deny`), each with `csrf_token` and `request`."""
    return await endpoint.posted(endpoint.submit, db, state, request, origin)


@router.post("/logout", response_class=HTMLResponse, status_code=303)
async def sign_out(request: Request, db: DbSession, state: StateDep, origin: OriginDep) -> Response:
    """End this browser's sign-in (form with `csrf_token`); 303 to the signed-out page."""
    return await endpoint.posted(endpoint.logout, db, state, request, origin)


@router.get("/signed-out", response_class=HTMLResponse)
async def signed_out(request: Request, state: StateDep) -> Response:
    """The page a browser sees after signing out."""
    return endpoint.signed_out(state, request)


@router.get("/userinfo", response_model_exclude_none=True, responses=AUTH_ERRORS)
async def read_userinfo(principal: OpenId, db: DbSession) -> UserInfo:
    """OpenID Connect Core §5.3: `sub`, `preferred_username`, and `email` with
    `email_verified` when the token carries `email`."""
    return await authorization_service.userinfo(
        db, account_id=principal.account_id, scopes=principal.scopes
    )


@router.get("/static/gatehouse.css", include_in_schema=False)
async def stylesheet() -> Response:
    return pages.stylesheet()
