"""Sessions and their tokens: issue, rotate, detect reuse, end, and check liveness.

A refresh token is 256 random bits, stored only as its SHA-256. Claiming one is
a conditional UPDATE (`used_at IS NULL`), so of any number of racing refreshes,
on one instance or many, exactly one wins; a second presentation of a used token
is treated as theft and ends the whole session (RFC 9700 §4.14.2).
"""

import hashlib
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Table,
    and_,
    bindparam,
    delete,
    insert,
    literal,
    or_,
    select,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from app.accounts.models import Account
from app.audit import service as audit
from app.authz.catalogue import (
    ALL_HELD,
    GATEHOUSE_CLIENT,
    OIDC_SCOPES,
    format_scope,
    parse_scope,
)
from app.core.config import Settings
from app.core.db import affected, read_rows, released_after, write_alone
from app.core.errors import Forbidden, NotFound
from app.core.models import UTCDateTime, utcnow, uuid7
from app.core.schemas import public
from app.crypto.jwt import TokenError
from app.oauth.errors import InvalidGrant, InvalidScope
from app.observability import events
from app.roles import service as roles_service
from app.roles.service import split_names
from app.sessions.models import AuthSession, RefreshToken
from app.sessions.schemas import SessionPublic, TokenResponse
from app.signing_keys.service import KeyRing

# A session stored with ALL_HELD was granted whatever the account holds when its
# login named no scope, so each refresh follows the account's roles as they are
# now and a role given later reaches the next token ("the client refreshes and
# gets the new scopes"). A login that named scopes stays capped by them (RFC 6749 §6).


def hash_refresh_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def _invalid_grant() -> InvalidGrant:
    # One message for every refresh failure: the caller learns nothing about why.
    return InvalidGrant("The refresh token is invalid, expired or revoked")


_ACCOUNTS: Table = Account.__table__  # type: ignore[attr-defined]  # SQLModel leaves it untyped
_SESSIONS: Table = AuthSession.__table__  # type: ignore[attr-defined]
_REFRESH_TOKENS: Table = RefreshToken.__table__  # type: ignore[attr-defined]


def _live(now: Any, idle_cutoff: Any) -> ColumnElement[bool]:
    """A session is live until it is ended, reaches its absolute lifetime, or goes
    unused past the idle timeout. `now` and `idle_cutoff` are datetimes or bind
    parameters (for statements built once)."""
    return and_(
        _SESSIONS.c.ended_at.is_(None),
        _SESSIONS.c.expires_at > now,
        _SESSIONS.c.last_used_at > idle_cutoff,
    )


def _live_now(settings: Settings) -> ColumnElement[bool]:
    now = utcnow()
    return _live(now, now - timedelta(seconds=settings.session_idle_timeout_seconds))


@dataclass(frozen=True, slots=True)
class LiveAccount:
    """The account a live session token speaks for, as the liveness check read it:
    its public columns, roles and effective scopes, all from that one statement,
    so that `GET /accounts/me` needs no second query."""

    id: uuid.UUID
    username: str
    email: str | None
    is_active: bool
    created_at: datetime
    roles: list[str]
    scopes: list[str]


# Built once: this runs on every protected request. One Core statement, one round
# trip: the session is live, the account active and its authorisation unchanged
# since the token was issued; and what `GET /accounts/me` shows of the account.
_LIVE_ACCOUNT = (
    select(
        _ACCOUNTS.c.id,
        _ACCOUNTS.c.username,
        _ACCOUNTS.c.email,
        _ACCOUNTS.c.is_active,
        _ACCOUNTS.c.created_at,
        roles_service.role_names_of(_ACCOUNTS.c.id),
        roles_service.scope_names_of(_ACCOUNTS.c.id),
    )
    .select_from(_SESSIONS.join(_ACCOUNTS, _ACCOUNTS.c.id == _SESSIONS.c.account_id))
    .where(
        _SESSIONS.c.id == bindparam("session_id"),
        _SESSIONS.c.account_id == bindparam("account_id"),
        _live(bindparam("now", type_=UTCDateTime()), bindparam("idle_cutoff", type_=UTCDateTime())),
        _ACCOUNTS.c.is_active.is_(True),
        _ACCOUNTS.c.authz_version == bindparam("authz_version"),
    )
)


async def live_account(
    db: AsyncSession,
    *,
    account_id: uuid.UUID,
    session_id: uuid.UUID,
    authz_version: int,
    idle_timeout: int,
) -> LiveAccount | None:
    """The per-request revocation check: one primary-key lookup joining the
    session to its account. A token stays good only while its session is live,
    the account active, and the account's authorisation unchanged since issue.
    Nothing is cached: a logout, a disabling or a role change committed on any
    instance refuses the very next request. Returns the account with its roles
    and scopes (None when the token is not live)."""
    now = utcnow()
    rows = await read_rows(
        db,
        _LIVE_ACCOUNT,
        {
            "session_id": session_id,
            "account_id": account_id,
            "now": now,
            "idle_cutoff": now - timedelta(seconds=idle_timeout),
            "authz_version": authz_version,
        },
    )
    if not rows:
        return None
    row = rows[0]
    return LiveAccount(
        row[0], row[1], row[2], row[3], row[4], split_names(row[5]), split_names(row[6])
    )


@dataclass(frozen=True, slots=True)
class _Subject:
    """Whom an access token speaks for: the account, at the `authz_version` its
    liveness check compares, the session, and the client it was issued to (RFC
    9068 §2.2). A login takes it from the account it opens the session for; a
    refresh from the lookup's row, which has no Account object to pass."""

    account_id: uuid.UUID
    authz_version: int
    session_id: uuid.UUID
    client_id: str


def _token_pair(
    *,
    settings: Settings,
    keyring: KeyRing,
    subject: _Subject,
    scope: str,
    refresh_token: str,
) -> TokenResponse:
    """The answer carrying `refresh_token` (stored by the caller) and a new access
    token for `subject`, carrying `scope`."""
    now = int(utcnow().timestamp())
    access_token = keyring.sign(
        {
            "iss": settings.issuer,
            "aud": settings.audience,
            "sub": str(subject.account_id),
            "sid": str(subject.session_id),
            "client_id": subject.client_id,
            "jti": secrets.token_urlsafe(16),
            "iat": now,
            "exp": now + settings.access_token_ttl_seconds,
            "scope": scope,
            "ver": subject.authz_version,
        }
    )
    return TokenResponse(
        access_token=access_token,
        expires_in=settings.access_token_ttl_seconds,
        refresh_token=refresh_token,
        scope=scope,
    )


def new_refresh_token() -> str:
    return secrets.token_urlsafe(32)  # 256 random bits; stored only as its SHA-256


async def insert_while_account_unchanged(
    db: AsyncSession,
    table: Table,
    values: dict[str, Any],
    *,
    account_id: uuid.UUID,
    password_hash: str | None,
) -> bool:
    """Insert `values` into `table` only if the account is still active and, when
    `password_hash` is given, still holds the hash a password was verified
    against: one `INSERT ... SELECT` from the account row, which on PostgreSQL
    share-locks that row until commit. A password change, disabling or deletion
    either committed first (nothing is inserted, False) or waits for this
    transaction and then ends (or deletes) what it inserted. Every sign-in
    starts its session through here: the token endpoint's and the browser's."""
    unchanged = [col(Account.id) == account_id, col(Account.is_active).is_(True)]
    if password_hash is not None:
        unchanged.append(col(Account.password_hash) == password_hash)
    source = (
        select(*(literal(value, table.c[name].type) for name, value in values.items()))
        .select_from(Account)
        .where(*unchanged)
        .with_for_update(read=True)
    )
    return await affected(db, insert(table).from_select(list(values), source)) == 1


async def start_session(
    db: AsyncSession,
    *,
    settings: Settings,
    keyring: KeyRing,
    account: Account,
    password_hash: str | None,
    scopes: set[str],
    user_agent: str | None,
    ip: str | None,
    all_held: bool = False,
    client_id: str = GATEHOUSE_CLIENT,
    session_id: uuid.UUID | None = None,
) -> TokenResponse | None:
    """Open a session (one login) through `client_id` and issue its first token
    pair; audited as a login.

    None, and no session, unless the account is still active and, when
    `password_hash` is given, still has the hash the password was verified
    against. The check and the insert are one statement (`INSERT ... SELECT`
    from the account row), and on PostgreSQL that statement takes a share lock
    on the row until commit: a password change, disabling or deletion either
    committed first (the check fails) or waits for this login to commit and then
    ends (or deletes) the session it made. Without this, a login whose password
    was checked just before a password change or a disabling got a session that
    the change never saw."""
    now = utcnow()
    scope = format_scope(scopes)
    session_id = session_id or uuid7()
    values = {
        "id": session_id,
        "account_id": account.id,
        "client_id": client_id,
        "scope": ALL_HELD if all_held else scope,
        "created_at": now,
        "last_used_at": now,
        "expires_at": now + timedelta(seconds=settings.refresh_token_ttl_seconds),
        "user_agent": (user_agent or "")[:255] or None,
        "ip": ip,
    }
    if not await insert_while_account_unchanged(
        db, _SESSIONS, values, account_id=account.id, password_hash=password_hash
    ):
        return None
    # The session's first refresh token (kept as a hash) and its access token.
    refresh_token = new_refresh_token()
    await db.execute(
        insert(_REFRESH_TOKENS).values(
            token_hash=hash_refresh_token(refresh_token), session_id=session_id, created_at=now
        )
    )
    tokens = _token_pair(
        settings=settings,
        keyring=keyring,
        subject=_Subject(account.id, account.authz_version, session_id, client_id),
        scope=scope,
        refresh_token=refresh_token,
    )
    detail = {"scope": tokens.scope}
    if client_id != GATEHOUSE_CLIENT:
        detail["client_id"] = client_id
    await audit.record(
        db, action="auth.login", actor=account.id, target=str(account.id), ip=ip, detail=detail
    )
    return tokens


# Built once: the refresh grant's lookup, one statement. The presented token (used
# or not: a used one is reuse), its live session of the requesting client, the
# active account's version and its effective scopes now.
_REFRESH_LOOKUP = (
    select(
        _REFRESH_TOKENS.c.used_at,
        _SESSIONS.c.id,
        _SESSIONS.c.scope,
        _ACCOUNTS.c.id,
        _ACCOUNTS.c.authz_version,
        roles_service.scope_names_of(_ACCOUNTS.c.id),
    )
    .select_from(
        _REFRESH_TOKENS.join(_SESSIONS, _SESSIONS.c.id == _REFRESH_TOKENS.c.session_id).join(
            _ACCOUNTS, _ACCOUNTS.c.id == _SESSIONS.c.account_id
        )
    )
    .where(
        _REFRESH_TOKENS.c.token_hash == bindparam("token_hash"),
        _SESSIONS.c.client_id == bindparam("client_id"),
        _live(bindparam("now", type_=UTCDateTime()), bindparam("idle_cutoff", type_=UTCDateTime())),
        _ACCOUNTS.c.is_active.is_(True),
    )
)

# The claim: a conditional UPDATE (`used_at IS NULL`), so of racing presentations
# of one token exactly one wins, on any number of instances.
_CLAIM = (
    update(_REFRESH_TOKENS)
    .where(
        _REFRESH_TOKENS.c.token_hash == bindparam("old_hash"),
        _REFRESH_TOKENS.c.used_at.is_(None),
    )
    .values(used_at=bindparam("now", type_=UTCDateTime()))
)
_TOUCH = (
    update(_SESSIONS)
    .where(_SESSIONS.c.id == bindparam("sid"))
    .values(last_used_at=bindparam("now", type_=UTCDateTime()))
)
_STORE = insert(_REFRESH_TOKENS).values(
    token_hash=bindparam("new_hash"),
    session_id=bindparam("sid"),
    created_at=bindparam("now", type_=UTCDateTime()),
)
# On PostgreSQL the three are one statement (data-modifying WITH): the session is
# touched and the new token stored only when the claim took the old one, all in
# one round trip. It returns a row exactly when the claim won.
_claimed = _CLAIM.returning(_REFRESH_TOKENS.c.session_id).cte("claimed")
_touched = (
    update(_SESSIONS)
    .where(_SESSIONS.c.id.in_(select(_claimed.c.session_id)))
    .values(last_used_at=bindparam("now", type_=UTCDateTime()))
    .returning(_SESSIONS.c.id)
    .cte("touched")
)
_ROTATE_ONE_STATEMENT = (
    insert(_REFRESH_TOKENS)
    .from_select(
        ["token_hash", "session_id", "created_at"],
        select(
            bindparam("new_hash", type_=_REFRESH_TOKENS.c.token_hash.type),
            _touched.c.id,
            bindparam("now", type_=UTCDateTime()),
        ),
    )
    .returning(_REFRESH_TOKENS.c.session_id)
)


async def _rotate(
    db: AsyncSession,
    *,
    old_hash: str,
    new_hash: str,
    session_id: uuid.UUID,
    now: datetime,
    ip: str | None,
) -> bool:
    """Claim the presented token and store its successor; False when the claim
    lost (the token was spent meanwhile). Parameters are named unlike any column:
    Core would read a parameter named after a column as one more value to SET.
    A won claim counts one `auth.refresh` event once it is durable."""
    if db.bind is not None and db.bind.dialect.name == "postgresql":
        # One atomic statement, the whole change of a refresh: it may commit alone.
        params = {"old_hash": old_hash, "new_hash": new_hash, "now": now}
        written = await write_alone(db, _ROTATE_ONE_STATEMENT, params)
        if not written.rows:
            return False
        events.note(db, "auth.refresh", ip=ip, committed=written.committed)
        return True
    if await affected(db, _CLAIM, {"old_hash": old_hash, "now": now}) != 1:
        return False
    await db.execute(_TOUCH, {"sid": session_id, "now": now})
    await db.execute(_STORE, {"new_hash": new_hash, "sid": session_id, "now": now})
    events.note(db, "auth.refresh", ip=ip)
    return True


async def refresh(
    db: AsyncSession,
    *,
    settings: Settings,
    keyring: KeyRing,
    refresh_token: str,
    requested: list[str],
    ip: str | None,
    client_id: str = GATEHOUSE_CLIENT,
    scope_cap: set[str] | None = None,
) -> TokenResponse:
    """Rotate: claim the presented token, issue a new pair. Scopes are recomputed
    from the account's roles now, capped by the client's `scope_cap`, and narrowed
    by `requested` (RFC 6749 §6). Two statements: the lookup, then the rotation
    (one on PostgreSQL, three on SQLite).

    A refresh token works only for the client it was issued to (RFC 6749 §10.4):
    another client presenting it gets `invalid_grant` and leaves it unused, so a
    thief's attempt through another client can neither use nor burn it."""
    now = utcnow()
    token_hash = hash_refresh_token(refresh_token)
    rows = await read_rows(
        db,
        _REFRESH_LOOKUP,
        {
            "token_hash": token_hash,
            "client_id": client_id,
            "now": now,
            "idle_cutoff": now - timedelta(seconds=settings.session_idle_timeout_seconds),
        },
    )
    if not rows:
        raise _invalid_grant()
    used_at, session_id, session_scope, account_id, authz_version, scope_names = rows[0]
    if used_at is None:
        held = set(split_names(scope_names))
        if session_scope != ALL_HELD:
            # OpenID Connect scopes belong to no role: granted once, they stay.
            held |= OIDC_SCOPES & set(parse_scope(session_scope))
        if scope_cap is not None:
            held &= scope_cap
        granted = held if session_scope == ALL_HELD else set(parse_scope(session_scope))
        if requested and not set(requested) <= granted:
            # Checked before the claim: a refused request leaves the token unused.
            raise InvalidScope("A refresh may only narrow the granted scope")
        successor = new_refresh_token()
        if await _rotate(
            db,
            old_hash=token_hash,
            new_hash=hash_refresh_token(successor),
            session_id=session_id,
            now=now,
            ip=ip,
        ):
            scopes = (set(requested) if requested else granted) & held
            return _token_pair(
                settings=settings,
                keyring=keyring,
                subject=_Subject(account_id, authz_version, session_id, client_id),
                scope=format_scope(scopes),
                refresh_token=successor,
            )
    # Reuse: the token was already spent (perhaps by a racing request a moment ago).
    # Kept although the request then fails: the theft is what must be remembered.
    async with released_after(db):
        await end_session(db, session_id, reason="refresh_reuse")
        await audit.record(
            db,
            action="auth.refresh_reuse",
            actor=None,
            target=str(account_id),
            ip=ip,
            detail={"session_id": str(session_id)},
        )
    raise _invalid_grant()


async def live_refresh_token(
    db: AsyncSession, *, settings: Settings, token: str
) -> tuple[RefreshToken, AuthSession, Account] | None:
    """The refresh token, its session and account, when the token would refresh
    now (unused, session live, account active); for introspection (RFC 7662)."""
    row = (
        await db.execute(
            select(RefreshToken, AuthSession, Account)
            .join(AuthSession, col(AuthSession.id) == col(RefreshToken.session_id))
            .join(Account, col(Account.id) == col(AuthSession.account_id))
            .where(
                col(RefreshToken.token_hash) == hash_refresh_token(token),
                col(RefreshToken.used_at).is_(None),
                _live_now(settings),
                col(Account.is_active).is_(True),
            )
        )
    ).first()
    return None if row is None else (row[0], row[1], row[2])


def session_expiry(auth_session: AuthSession, settings: Settings) -> datetime:
    """When the session ends if nothing else ends it: its absolute lifetime, or
    the idle timeout counted from its last use, whichever comes first."""
    idle_end = auth_session.last_used_at + timedelta(seconds=settings.session_idle_timeout_seconds)
    return min(auth_session.expires_at, idle_end)


async def _end_where(db: AsyncSession, *which: ColumnElement[bool], reason: str) -> int:
    """End the sessions `which` picks that are not ended yet; how many it ended.
    Their refresh tokens stop at once, and their access tokens at the next request
    (the liveness check reads `ended_at`)."""
    return await affected(
        db,
        update(AuthSession)
        .where(col(AuthSession.ended_at).is_(None), *which)
        .values(ended_at=utcnow(), end_reason=reason)
        .execution_options(synchronize_session=False),
    )


async def end_session(db: AsyncSession, session_id: uuid.UUID, *, reason: str) -> bool:
    return await _end_where(db, col(AuthSession.id) == session_id, reason=reason) == 1


async def end_account_sessions(
    db: AsyncSession,
    account_id: uuid.UUID,
    *,
    reason: str,
    keep: uuid.UUID | None = None,
) -> None:
    which = [col(AuthSession.account_id) == account_id]
    if keep is not None:
        which.append(col(AuthSession.id) != keep)
    await _end_where(db, *which, reason=reason)


async def _record_logout(
    db: AsyncSession,
    account_id: uuid.UUID,
    session_id: uuid.UUID,
    *,
    ip: str | None,
    via: str | None = None,
    client_id: str | None = None,
) -> None:
    """One `auth.logout` event, however the session was ended by its owner."""
    detail = {"via": via} if via else {}
    if client_id:
        detail["client_id"] = client_id
    await audit.record(
        db, action="auth.logout", actor=account_id, target=str(session_id), ip=ip, detail=detail
    )


async def end_account_client_sessions(
    db: AsyncSession, account_id: uuid.UUID, client_id: str, *, reason: str
) -> None:
    """End the account's sessions opened through one client (a withdrawn consent)."""
    await _end_where(
        db,
        col(AuthSession.account_id) == account_id,
        col(AuthSession.client_id) == client_id,
        reason=reason,
    )


async def end_client_sessions(db: AsyncSession, client_id: str, *, reason: str) -> None:
    """End every session opened through a client (disabled or changed)."""
    await _end_where(db, col(AuthSession.client_id) == client_id, reason=reason)


async def logout(
    db: AsyncSession, *, account_id: uuid.UUID, session_id: uuid.UUID | None, ip: str | None
) -> None:
    if session_id is None:
        raise Forbidden(
            "This token has no session to end; a personal access token is revoked "
            "at DELETE /accounts/me/tokens/{id}"
        )
    await end_session(db, session_id, reason="logout")
    await _record_logout(db, account_id, session_id, ip=ip)


async def list_sessions(
    db: AsyncSession, *, settings: Settings, account_id: uuid.UUID, current: uuid.UUID | None
) -> list[SessionPublic]:
    rows = (
        await db.scalars(
            select(AuthSession)
            .where(col(AuthSession.account_id) == account_id, _live_now(settings))
            .order_by(col(AuthSession.created_at).desc())
        )
    ).all()
    return [public(SessionPublic, s, current=s.id == current) for s in rows]


async def end_own_session(
    db: AsyncSession,
    *,
    settings: Settings,
    account_id: uuid.UUID,
    session_id: uuid.UUID,
    ip: str | None,
) -> None:
    """404 unless it is one of the caller's live sessions: another account's
    session id is indistinguishable from one that never existed."""
    ended = await _end_where(
        db,
        col(AuthSession.id) == session_id,
        col(AuthSession.account_id) == account_id,
        _live_now(settings),
        reason="ended_by_owner",
    )
    if not ended:
        raise NotFound("Session not found")
    await _record_logout(db, account_id, session_id, ip=ip, via="session_delete")


async def revoke(
    db: AsyncSession,
    *,
    keyring: KeyRing,
    token: str,
    hint: str | None,
    ip: str | None,
    client_id: str = GATEHOUSE_CLIENT,
) -> None:
    """RFC 7009: end the session a refresh or access token belongs to, when it was
    issued to the requesting client (§2.1). Unknown tokens, and another client's,
    are no error (§2.2: the answer is 200 either way)."""
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
                await db.execute(
                    select(col(AuthSession.account_id), col(AuthSession.id))
                    .join(RefreshToken, col(RefreshToken.session_id) == col(AuthSession.id))
                    .where(col(RefreshToken.token_hash) == hash_refresh_token(token))
                )
            ).first()
            if found is None:
                continue
            account_id, session_id = found
        owned = await db.scalar(
            select(col(AuthSession.id)).where(
                col(AuthSession.id) == session_id,
                col(AuthSession.account_id) == account_id,
                col(AuthSession.client_id) == client_id,
            )
        )
        if owned and await end_session(db, session_id, reason="revoked"):
            await _record_logout(
                db, account_id, session_id, ip=ip, via="revoke", client_id=client_id
            )
        return


def past_keeping(table: Table, settings: Settings) -> ColumnElement[bool]:
    """Whether a session (a login's or a browser's) may be deleted: past its
    absolute lifetime or idle timeout, or ended more than a day ago."""
    now = utcnow()
    return or_(
        table.c.expires_at <= now,
        table.c.last_used_at <= now - timedelta(seconds=settings.session_idle_timeout_seconds),
        table.c.ended_at <= now - timedelta(days=1),
    )


async def purge_expired(db: AsyncSession, *, settings: Settings) -> int:
    """Delete sessions `past_keeping` (their refresh tokens go with them). Every
    instance runs this now and then; it needs no separate process and is safe to
    run concurrently."""
    return await affected(
        db,
        delete(_SESSIONS)
        .where(past_keeping(_SESSIONS, settings))
        .execution_options(synchronize_session=False),
    )
