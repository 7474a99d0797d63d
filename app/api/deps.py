"""`Annotated` aliases routes declare their needs with."""

import asyncio
from typing import Annotated

from fastapi import Depends, Request, Security
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.config import Settings
from app.core.db import get_session
from app.core.network import client_ip
from app.security.keys import KeyRing
from app.security.passwords import PasswordHasher
from app.security.scopes import Principal, require_scopes
from app.services.auth import Client


def _settings(request: Request) -> Settings:
    return request.app.state.settings  # type: ignore[no-any-return]


def _hasher(request: Request) -> PasswordHasher:
    return request.app.state.hasher  # type: ignore[no-any-return]


def _keyring(request: Request) -> KeyRing:
    return request.app.state.keyring  # type: ignore[no-any-return]


def _login_slots(request: Request) -> asyncio.Semaphore:
    return request.app.state.login_slots  # type: ignore[no-any-return]


def _client(request: Request) -> Client:
    return Client(ip=client_ip(request), user_agent=request.headers.get("user-agent"))


# "function" scope: the session commits before the response is sent, so a client
# never sees success for a change that then fails to commit.
SessionDep = Annotated[AsyncSession, Depends(get_session, scope="function")]
SettingsDep = Annotated[Settings, Depends(_settings)]
HasherDep = Annotated[PasswordHasher, Depends(_hasher)]
KeyRingDep = Annotated[KeyRing, Depends(_keyring)]
ClientDep = Annotated[Client, Depends(_client)]
LoginSlotsDep = Annotated[asyncio.Semaphore, Depends(_login_slots)]

AnyToken = Annotated[Principal, Security(require_scopes, scopes=[])]
MeRead = Annotated[Principal, Security(require_scopes, scopes=["me:read"])]
MeWrite = Annotated[Principal, Security(require_scopes, scopes=["me:write"])]
AccountsRead = Annotated[Principal, Security(require_scopes, scopes=["accounts:read"])]
AccountsWrite = Annotated[Principal, Security(require_scopes, scopes=["accounts:write"])]
RolesRead = Annotated[Principal, Security(require_scopes, scopes=["roles:read"])]
RolesWrite = Annotated[Principal, Security(require_scopes, scopes=["roles:write"])]
AuditRead = Annotated[Principal, Security(require_scopes, scopes=["audit:read"])]

# Error answers each kind of route can give, for the OpenAPI document.
AUTH_ERRORS: dict[int | str, dict[str, str]] = {
    401: {"description": "Missing, invalid, expired or revoked token"},
    403: {"description": "The token lacks a needed scope"},
}
