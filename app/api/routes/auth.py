import uuid
from typing import Annotated

from fastapi import APIRouter, Form, Response, status

from app.api.deps import (
    AUTH_ERRORS,
    AnyToken,
    ClientDep,
    HasherDep,
    KeyRingDep,
    LoginSlotsDep,
    MeRead,
    MeWrite,
    SessionDep,
    SettingsDep,
)
from app.core.errors import NO_STORE, OAuthError
from app.schemas import AccountPublic, SessionPublic, SignupRequest, TokenResponse
from app.services import accounts as accounts_service
from app.services import audit
from app.services import auth as auth_service
from app.services import sessions as sessions_service

router = APIRouter(prefix="/auth", tags=["auth"])

OAUTH_ERRORS: dict[int | str, dict[str, str]] = {
    400: {
        "description": (
            "RFC 6749 error: invalid_request, invalid_grant, "
            "unsupported_grant_type or invalid_scope"
        )
    },
    429: {"description": "Too many failed attempts; see Retry-After"},
    503: {"description": "Login capacity exhausted; see Retry-After"},
}
FormField = Annotated[str | None, Form()]


@router.post(
    "/signup",
    status_code=status.HTTP_201_CREATED,
    response_model=AccountPublic,
    responses={
        403: {"description": "Self-signup is off"},
        409: {"description": "Username or email taken"},
        429: {"description": "Too many signups"},
    },
)
async def signup(
    body: SignupRequest,
    session: SessionDep,
    settings: SettingsDep,
    hasher: HasherDep,
    client: ClientDep,
) -> AccountPublic:
    """Create an account holding the `user` role."""
    account = await auth_service.signup(
        session,
        settings=settings,
        hasher=hasher,
        username=body.username,
        password=body.password,
        email=body.email,
        client=client,
    )
    return (await accounts_service.to_public(session, [account]))[0]


@router.post("/token", response_model=TokenResponse, responses=OAUTH_ERRORS)
async def issue_token(
    response: Response,
    session: SessionDep,
    settings: SettingsDep,
    hasher: HasherDep,
    keyring: KeyRingDep,
    client: ClientDep,
    slots: LoginSlotsDep,
    grant_type: FormField = None,
    username: FormField = None,
    password: FormField = None,
    refresh_token: FormField = None,
    scope: FormField = None,
    client_id: FormField = None,
) -> TokenResponse:
    """OAuth 2.0 token endpoint (RFC 6749): `password` and `refresh_token` grants."""
    response.headers.update(NO_STORE)
    for name, value in (
        ("username", username),
        ("password", password),
        ("refresh_token", refresh_token),
        ("scope", scope),
    ):
        if value is not None and ("\x00" in value or len(value) > 4096):
            raise OAuthError("invalid_request", f"Malformed {name}")
    if grant_type == "password":
        if not username or not password:
            raise OAuthError("invalid_request", "username and password are required")
        return await auth_service.password_grant(
            session,
            settings=settings,
            hasher=hasher,
            slots=slots,
            keyring=keyring,
            username=username,
            password=password,
            scope=scope,
            client=client,
        )
    if grant_type == "refresh_token":
        if not refresh_token:
            raise OAuthError("invalid_request", "refresh_token is required")
        return await auth_service.refresh_grant(
            session,
            settings=settings,
            keyring=keyring,
            refresh_token=refresh_token,
            scope=scope,
            client=client,
        )
    if not grant_type:
        raise OAuthError("invalid_request", "grant_type is required")
    raise OAuthError("unsupported_grant_type", "Supported grant types: password, refresh_token")


@router.post("/revoke", status_code=status.HTTP_200_OK)
async def revoke_token(
    session: SessionDep,
    keyring: KeyRingDep,
    client: ClientDep,
    token: FormField = None,
    token_type_hint: FormField = None,
) -> Response:
    """RFC 7009 revocation: ends the session of a refresh or access token. Always 200."""
    if token and len(token) <= 8192 and "\x00" not in token:
        await auth_service.revoke(
            session, keyring=keyring, token=token, hint=token_type_hint, client=client
        )
    return Response(status_code=status.HTTP_200_OK, headers=NO_STORE)


@router.post("/logout", status_code=status.HTTP_204_NO_CONTENT, responses=AUTH_ERRORS)
async def logout(principal: AnyToken, session: SessionDep, client: ClientDep) -> Response:
    """End the current session."""
    await auth_service.logout(
        session, account_id=principal.account_id, session_id=principal.session_id, client=client
    )
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/sessions", response_model=list[SessionPublic], responses=AUTH_ERRORS)
async def list_sessions(
    principal: MeRead, session: SessionDep, settings: SettingsDep
) -> list[SessionPublic]:
    """The caller's live sessions."""
    return await sessions_service.list_sessions(
        session, settings=settings, account_id=principal.account_id, current=principal.session_id
    )


@router.delete(
    "/sessions/{session_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses={**AUTH_ERRORS, 404: {"description": "Not one of the caller's live sessions"}},
)
async def end_session(
    session_id: uuid.UUID,
    principal: MeWrite,
    session: SessionDep,
    settings: SettingsDep,
    client: ClientDep,
) -> Response:
    """End one of the caller's sessions."""
    await sessions_service.end_own_session(
        session, settings=settings, account_id=principal.account_id, session_id=session_id
    )
    await audit.record(
        session,
        action="auth.logout",
        actor=principal.account_id,
        target=str(session_id),
        ip=client.ip,
        detail={"via": "session_delete"},
    )
    return Response(status_code=status.HTTP_204_NO_CONTENT)
