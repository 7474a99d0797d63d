"""Every table, imported so that `SQLModel.metadata` knows them all: what Alembic
compares migrations against."""

from sqlmodel import SQLModel

from app.accounts.models import Account
from app.audit.models import AuditEvent
from app.authorization.models import AuthorizationCode
from app.browser_sessions.models import BrowserSession
from app.clients.models import ClientRole, OAuthClient
from app.consents.models import Consent
from app.personal_tokens.models import PersonalAccessToken
from app.roles.models import AccountRole, Role, RoleScope, Scope
from app.sessions.models import AuthSession, RefreshToken
from app.signing_keys.models import SigningKey
from app.throttle.models import LoginThrottle

__all__ = [
    "Account",
    "AccountRole",
    "AuditEvent",
    "AuthorizationCode",
    "AuthSession",
    "BrowserSession",
    "ClientRole",
    "Consent",
    "LoginThrottle",
    "OAuthClient",
    "PersonalAccessToken",
    "RefreshToken",
    "Role",
    "RoleScope",
    "SQLModel",
    "Scope",
    "SigningKey",
]
