"""Browser sessions: the sign-in a browser keeps with the authorization server,
so that a later authorization request skips the form (unless `prompt=login`).

The cookie carries 256 random bits; the database keeps only their SHA-256. A
browser session follows the ordinary sessions' lifetimes (absolute lifetime,
idle timeout) and ends on logout, a password change or reset, and the account's
disabling (the account service calls `end_account_browser_sessions`).
"""

import hashlib
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import CursorResult, Table, delete, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from app.accounts.models import Account
from app.audit import service as audit
from app.browser_sessions.models import BrowserSession
from app.core.config import Settings
from app.core.models import utcnow, uuid7
from app.sessions import service as sessions_service

_TABLE: Table = BrowserSession.__table__  # type: ignore[attr-defined]  # SQLModel leaves it untyped


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


@dataclass(frozen=True, slots=True)
class LiveBrowserSession:
    id: uuid.UUID
    account: Account
    auth_time: datetime


async def start(
    db: AsyncSession,
    *,
    settings: Settings,
    account: Account,
    password_hash: str,
    user_agent: str | None,
    ip: str | None,
    client_id: str,
) -> tuple[str, LiveBrowserSession] | None:
    """A new browser session for `account`, and the cookie value naming it.

    Inserted as the token endpoint's sessions are
    (`sessions.service.insert_while_account_unchanged`): None when a password
    change, disabling or deletion won the race since the password was checked."""
    now = utcnow()
    token = secrets.token_urlsafe(32)
    session_id = uuid7()
    values = {
        "id": session_id,
        "token_hash": hash_token(token),
        "account_id": account.id,
        "auth_time": now,
        "created_at": now,
        "last_used_at": now,
        "expires_at": now + timedelta(seconds=settings.refresh_token_ttl_seconds),
        "user_agent": (user_agent or "")[:255] or None,
        "ip": ip,
    }
    if not await sessions_service.insert_while_account_unchanged(
        db, _TABLE, values, account_id=account.id, password_hash=password_hash
    ):
        return None
    await audit.record(
        db,
        action="auth.sign_in",
        actor=account.id,
        target=str(account.id),
        ip=ip,
        detail={"browser_session_id": str(session_id), "client_id": client_id},
    )
    return token, LiveBrowserSession(id=session_id, account=account, auth_time=now)


async def find_live(
    db: AsyncSession, *, settings: Settings, token: str | None
) -> LiveBrowserSession | None:
    """The live browser session the cookie names, with its (active) account."""
    if not token or len(token) > 128:
        return None
    now = utcnow()
    row = (
        await db.execute(
            select(BrowserSession, Account)
            .join(Account, col(Account.id) == col(BrowserSession.account_id))
            .where(
                col(BrowserSession.token_hash) == hash_token(token),
                col(BrowserSession.ended_at).is_(None),
                col(BrowserSession.expires_at) > now,
                col(BrowserSession.last_used_at)
                > now - timedelta(seconds=settings.session_idle_timeout_seconds),
                col(Account.is_active).is_(True),
            )
        )
    ).first()
    if row is None:
        return None
    browser_session, account = row
    return LiveBrowserSession(
        id=browser_session.id, account=account, auth_time=browser_session.auth_time
    )


async def touch(db: AsyncSession, session_id: uuid.UUID) -> None:
    """Mark the session used now (an authorization it answered without the form)."""
    await db.execute(
        update(BrowserSession)
        .where(col(BrowserSession.id) == session_id)
        .values(last_used_at=utcnow())
        .execution_options(synchronize_session=False)
    )


async def end(db: AsyncSession, session_id: uuid.UUID, *, reason: str) -> bool:
    result = cast(
        "CursorResult[Any]",
        await db.execute(
            update(BrowserSession)
            .where(col(BrowserSession.id) == session_id, col(BrowserSession.ended_at).is_(None))
            .values(ended_at=utcnow(), end_reason=reason)
            .execution_options(synchronize_session=False)
        ),
    )
    return bool(result.rowcount)


async def sign_out(db: AsyncSession, browser: LiveBrowserSession, *, ip: str | None) -> None:
    """The browser's own sign-out (`POST /oauth/logout`); audited as a logout."""
    if await end(db, browser.id, reason="logout"):
        await audit.record(
            db,
            action="auth.logout",
            actor=browser.account.id,
            target=str(browser.id),
            ip=ip,
            detail={"via": "browser"},
        )


async def end_account_browser_sessions(
    db: AsyncSession, account_id: uuid.UUID, *, reason: str
) -> None:
    await db.execute(
        update(BrowserSession)
        .where(col(BrowserSession.account_id) == account_id, col(BrowserSession.ended_at).is_(None))
        .values(ended_at=utcnow(), end_reason=reason)
        .execution_options(synchronize_session=False)
    )


async def purge_expired(db: AsyncSession, *, settings: Settings) -> None:
    """Delete browser sessions past their lifetime or idle timeout, and ended ones
    a day on."""
    now = utcnow()
    await db.execute(
        delete(BrowserSession)
        .where(
            or_(
                col(BrowserSession.expires_at) <= now,
                col(BrowserSession.last_used_at)
                <= now - timedelta(seconds=settings.session_idle_timeout_seconds),
                col(BrowserSession.ended_at) <= now - timedelta(days=1),
            )
        )
        .execution_options(synchronize_session=False)
    )
