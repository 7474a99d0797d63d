"""Sessions and their tokens: issue, rotate, detect reuse, end, and check liveness.

A refresh token is 256 random bits, stored only as its SHA-256. Claiming one is
a conditional UPDATE (`used_at IS NULL`), so of any number of racing refreshes,
on one instance or many, exactly one wins; a second presentation of a used token
is treated as theft and ends the whole session (RFC 9700 §4.14.2).
"""

import hashlib
import secrets
import uuid
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import ColumnElement, CursorResult, and_, bindparam, delete, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from app.core.config import Settings
from app.core.errors import NotFound, OAuthError
from app.models import Account, AuthSession, RefreshToken
from app.models.base import UTCDateTime, utcnow
from app.schemas import SessionPublic, TokenResponse
from app.security.keys import KeyRing
from app.security.scopes import format_scope, parse_scope
from app.security.tokens import TokenError
from app.services import audit

# Stored as a session's scope when its login named none: it was granted whatever
# the account holds, so each refresh follows the account's roles as they are now
# and a role given later reaches the next token ("the client refreshes and gets
# the new scopes"). A login that named scopes stays capped by them (RFC 6749 §6).
# No scope name can be "*" (names start with a letter or digit).
ALL_HELD = "*"


def hash_refresh_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def _invalid_grant() -> OAuthError:
    # One message for every refresh failure: the caller learns nothing about why.
    return OAuthError("invalid_grant", "The refresh token is invalid, expired or revoked")


def _live_clause(now: datetime, idle_timeout: int) -> ColumnElement[bool]:
    return and_(
        col(AuthSession.ended_at).is_(None),
        col(AuthSession.expires_at) > now,
        col(AuthSession.last_used_at) > now - timedelta(seconds=idle_timeout),
    )


# Built once: this runs on every protected request.
_LIVE_ACCOUNT = (
    select(Account)
    .join(AuthSession, col(Account.id) == col(AuthSession.account_id))
    .where(
        col(AuthSession.id) == bindparam("session_id"),
        col(AuthSession.account_id) == bindparam("account_id"),
        col(AuthSession.ended_at).is_(None),
        col(AuthSession.expires_at) > bindparam("now", type_=UTCDateTime()),
        col(AuthSession.last_used_at) > bindparam("idle_cutoff", type_=UTCDateTime()),
        col(Account.is_active).is_(True),
        col(Account.authz_version) == bindparam("authz_version"),
    )
)


async def token_is_live(
    session: AsyncSession,
    *,
    account_id: uuid.UUID,
    session_id: uuid.UUID,
    authz_version: int,
    idle_timeout: int,
) -> bool:
    """The per-request revocation check: one primary-key lookup joining the
    session to its account. A token stays good only while its session is live,
    the account active, and the account's authorisation unchanged since issue.
    It loads the account into the request's session, so a handler reading it
    costs no second query."""
    now = utcnow()
    found = await session.scalars(
        _LIVE_ACCOUNT,
        {
            "session_id": session_id,
            "account_id": account_id,
            "now": now,
            "idle_cutoff": now - timedelta(seconds=idle_timeout),
            "authz_version": authz_version,
        },
    )
    return found.first() is not None


async def _issue(
    session: AsyncSession,
    *,
    settings: Settings,
    keyring: KeyRing,
    account: Account,
    session_id: uuid.UUID,
    scope: str,
) -> TokenResponse:
    """A new refresh token for the session (256 random bits, kept as a hash) and
    an access token carrying `scope`."""
    refresh_token = secrets.token_urlsafe(32)
    session.add(RefreshToken(token_hash=hash_refresh_token(refresh_token), session_id=session_id))
    await session.flush()
    return TokenResponse(
        access_token=_access_token(
            settings=settings, keyring=keyring, account=account, session_id=session_id, scope=scope
        ),
        expires_in=settings.access_token_ttl_seconds,
        refresh_token=refresh_token,
        scope=scope,
    )


def _access_token(
    *, settings: Settings, keyring: KeyRing, account: Account, session_id: uuid.UUID, scope: str
) -> str:
    now = int(utcnow().timestamp())
    return keyring.sign(
        {
            "iss": settings.issuer,
            "aud": settings.audience,
            "sub": str(account.id),
            "sid": str(session_id),
            "jti": secrets.token_urlsafe(16),
            "iat": now,
            "exp": now + settings.access_token_ttl_seconds,
            "scope": scope,
            "ver": account.authz_version,
        }
    )


async def start_session(
    session: AsyncSession,
    *,
    settings: Settings,
    keyring: KeyRing,
    account: Account,
    scopes: set[str],
    user_agent: str | None,
    ip: str | None,
    all_held: bool = False,
) -> TokenResponse:
    now = utcnow()
    scope = format_scope(scopes)
    auth_session = AuthSession(
        account_id=account.id,
        scope=ALL_HELD if all_held else scope,
        created_at=now,
        last_used_at=now,
        expires_at=now + timedelta(seconds=settings.refresh_token_ttl_seconds),
        user_agent=(user_agent or "")[:255] or None,
        ip=ip,
    )
    session.add(auth_session)
    await session.flush()
    return await _issue(
        session,
        settings=settings,
        keyring=keyring,
        account=account,
        session_id=auth_session.id,
        scope=scope,
    )


async def refresh(
    session: AsyncSession,
    *,
    settings: Settings,
    keyring: KeyRing,
    refresh_token: str,
    requested: list[str],
    held_scopes: Callable[[uuid.UUID], Awaitable[set[str]]],
    ip: str | None,
) -> TokenResponse:
    """Rotate: claim the presented token, issue a new pair. Scopes are recomputed
    from the account's roles now and narrowed by `requested` (RFC 6749 §6)."""
    now = utcnow()
    token_hash = hash_refresh_token(refresh_token)
    row = (
        await session.execute(
            select(RefreshToken, AuthSession, Account)
            .join(AuthSession, col(AuthSession.id) == col(RefreshToken.session_id))
            .join(Account, col(Account.id) == col(AuthSession.account_id))
            .where(col(RefreshToken.token_hash) == token_hash)
        )
    ).first()
    if row is None:
        raise _invalid_grant()
    token, auth_session, account = row
    live = (
        auth_session.ended_at is None
        and auth_session.expires_at > now
        and auth_session.last_used_at
        > now - timedelta(seconds=settings.session_idle_timeout_seconds)
    )
    if not live or not account.is_active:
        raise _invalid_grant()
    if token.used_at is None:
        held = await held_scopes(account.id)
        granted = held if auth_session.scope == ALL_HELD else set(parse_scope(auth_session.scope))
        if requested and not set(requested) <= granted:
            # Checked before the claim: a refused request leaves the token unused.
            raise OAuthError("invalid_scope", "A refresh may only narrow the granted scope")
        claimed = cast(
            "CursorResult[Any]",
            await session.execute(
                update(RefreshToken)
                .where(
                    col(RefreshToken.token_hash) == token_hash, col(RefreshToken.used_at).is_(None)
                )
                .values(used_at=now)
                .execution_options(synchronize_session=False)
            ),
        )
        if claimed.rowcount == 1:
            scopes = (set(requested) if requested else granted) & held
            await session.execute(
                update(AuthSession)
                .where(col(AuthSession.id) == auth_session.id)
                .values(last_used_at=now)
                .execution_options(synchronize_session=False)
            )
            return await _issue(
                session,
                settings=settings,
                keyring=keyring,
                account=account,
                session_id=auth_session.id,
                scope=format_scope(scopes),
            )
    # Reuse: the token was already spent (perhaps by a racing request a moment ago).
    await end_session(session, auth_session.id, reason="refresh_reuse")
    await audit.record(
        session,
        action="auth.refresh_reuse",
        actor=None,
        target=str(account.id),
        ip=ip,
        detail={"session_id": str(auth_session.id)},
    )
    await session.commit()
    raise _invalid_grant()


async def end_session(session: AsyncSession, session_id: uuid.UUID, *, reason: str) -> bool:
    result = cast(
        "CursorResult[Any]",
        await session.execute(
            update(AuthSession)
            .where(col(AuthSession.id) == session_id, col(AuthSession.ended_at).is_(None))
            .values(ended_at=utcnow(), end_reason=reason)
            .execution_options(synchronize_session=False)
        ),
    )
    return bool(result.rowcount)


async def end_account_sessions(
    session: AsyncSession,
    account_id: uuid.UUID,
    *,
    reason: str,
    keep: uuid.UUID | None = None,
) -> None:
    query = (
        update(AuthSession)
        .where(col(AuthSession.account_id) == account_id, col(AuthSession.ended_at).is_(None))
        .values(ended_at=utcnow(), end_reason=reason)
        .execution_options(synchronize_session=False)
    )
    if keep is not None:
        query = query.where(col(AuthSession.id) != keep)
    await session.execute(query)


async def list_sessions(
    session: AsyncSession, *, settings: Settings, account_id: uuid.UUID, current: uuid.UUID
) -> list[SessionPublic]:
    rows = (
        await session.scalars(
            select(AuthSession)
            .where(
                col(AuthSession.account_id) == account_id,
                _live_clause(utcnow(), settings.session_idle_timeout_seconds),
            )
            .order_by(col(AuthSession.created_at).desc())
        )
    ).all()
    return [
        SessionPublic(
            id=s.id,
            created_at=s.created_at,
            last_used_at=s.last_used_at,
            expires_at=s.expires_at,
            user_agent=s.user_agent,
            ip=s.ip,
            current=s.id == current,
        )
        for s in rows
    ]


async def end_own_session(
    session: AsyncSession, *, settings: Settings, account_id: uuid.UUID, session_id: uuid.UUID
) -> None:
    """404 unless it is one of the caller's live sessions: another account's
    session id is indistinguishable from one that never existed."""
    result = cast(
        "CursorResult[Any]",
        await session.execute(
            update(AuthSession)
            .where(
                col(AuthSession.id) == session_id,
                col(AuthSession.account_id) == account_id,
                _live_clause(utcnow(), settings.session_idle_timeout_seconds),
            )
            .values(ended_at=utcnow(), end_reason="ended_by_owner")
            .execution_options(synchronize_session=False)
        ),
    )
    if not result.rowcount:
        raise NotFound("Session not found")


async def revoke(
    session: AsyncSession, *, keyring: KeyRing, token: str, hint: str | None
) -> tuple[uuid.UUID, uuid.UUID] | None:
    """RFC 7009: end the session a refresh or access token belongs to. Returns
    (account id, session id) when one was ended; unknown tokens are no error."""
    looks_like_jwt = token.count(".") == 2
    order = (True, False) if looks_like_jwt and hint != "refresh_token" else (False, True)
    for as_access in order:
        if as_access:
            if not looks_like_jwt:
                continue
            try:
                claims = await keyring.verify(token, allow_expired=True)
                account_id, session_id = uuid.UUID(claims["sub"]), uuid.UUID(claims["sid"])
            except (TokenError, KeyError, ValueError, TypeError, AttributeError):
                continue
        else:
            found = (
                await session.execute(
                    select(col(AuthSession.account_id), col(AuthSession.id))
                    .join(RefreshToken, col(RefreshToken.session_id) == col(AuthSession.id))
                    .where(col(RefreshToken.token_hash) == hash_refresh_token(token))
                )
            ).first()
            if found is None:
                continue
            account_id, session_id = found
        owned = await session.scalar(
            select(col(AuthSession.id)).where(
                col(AuthSession.id) == session_id, col(AuthSession.account_id) == account_id
            )
        )
        if owned and await end_session(session, session_id, reason="revoked"):
            return account_id, session_id
        return None
    return None


async def purge_expired(session: AsyncSession, *, settings: Settings) -> int:
    """Delete sessions past their absolute lifetime or idle timeout, and ended ones
    a day on (their refresh tokens go with them). Every instance runs this now
    and then; it needs no separate process and is safe to run concurrently."""
    now = utcnow()
    result = cast(
        "CursorResult[Any]",
        await session.execute(
            delete(AuthSession)
            .where(
                or_(
                    col(AuthSession.expires_at) <= now,
                    col(AuthSession.last_used_at)
                    <= now - timedelta(seconds=settings.session_idle_timeout_seconds),
                    col(AuthSession.ended_at) <= now - timedelta(days=1),
                )
            )
            .execution_options(synchronize_session=False)
        ),
    )
    return int(result.rowcount or 0)
