"""Sign-up, sign-in (the password and refresh grants), password changes.

Hashing takes a quarter of a second on purpose; no database connection is held
while it runs, so a burst of logins cannot drain the pool that every protected
request needs. That is why these flows commit between steps: each step is its
own short transaction.
"""

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from app.core.config import Settings
from app.core.errors import (
    Conflict,
    Forbidden,
    GatehouseError,
    Invalid,
    OAuthError,
    TooManyRequests,
)
from app.models import Account, AccountRole, Scope
from app.models.base import utcnow
from app.schemas import TokenResponse
from app.security.keys import KeyRing
from app.security.passwords import HasherBusy, PasswordHasher, policy_violation
from app.security.scopes import ADMIN_ROLE, USER_ROLE, parse_scope
from app.services import accounts as accounts_service
from app.services import audit, throttle
from app.services import roles as roles_service
from app.services import sessions as sessions_service

INVALID_CREDENTIALS = "Invalid username or password"


@dataclass(frozen=True, slots=True)
class Client:
    """Where a request came from, for sessions, throttling and the audit log."""

    ip: str | None
    user_agent: str | None


async def _check_catalogue(session: AsyncSession, requested: list[str]) -> None:
    if not requested:
        return
    known = set(
        (await session.scalars(select(col(Scope.name)).where(col(Scope.name).in_(requested)))).all()
    )
    if unknown := [s for s in requested if s not in known]:
        raise OAuthError("invalid_scope", f"Unknown scope: {unknown[0][:64]}")


@dataclass(frozen=True, slots=True)
class Counted:
    """A throttle key an attempt counts against, and how the audit log names it."""

    key: str
    target: str | None
    by: str


def _login_limit(settings: Settings) -> throttle.Limit:
    return throttle.Limit(
        max_attempts=settings.login_max_failures,
        window_seconds=settings.login_window_seconds,
        lockout_seconds=settings.login_lockout_seconds,
    )


def _address_key(client: Client) -> Counted:
    return Counted(f"ip:{client.ip}", client.ip, "address")


async def _verify_throttled(
    session: AsyncSession,
    *,
    hasher: PasswordHasher,
    slots: asyncio.Semaphore,
    limit: throttle.Limit,
    keys: list[Counted],
    password_hash: str | None,
    password: str,
    ip: str | None,
    on_failure: Callable[[], Awaitable[None]] | None = None,
) -> bool:
    """Check a password under the throttle: reserve a place on every key (429 when
    one is locked or full), hash with no connection held, then settle: a failure
    counts (the one that locks a key is audited; `on_failure` records more), a success
    forgives the first key (the account) and gives the others their place back.

    A flood of logins from one address all write one throttle row; each write
    runs in its own short transaction, and at most `slots` of them wait for that
    row at once, so waiting logins cannot take the connections that every
    protected request needs."""
    if hasher.saturated:
        raise HasherBusy  # shed before any database work
    # Never wait for a slot while holding a connection: slot holders may be
    # waiting for that very connection (SQLite has only one).
    await session.commit()
    async with slots:
        for i, counted in enumerate(keys):
            verdict = await throttle.reserve(session, counted.key, limit)
            if not verdict.allowed:
                for reserved in keys[:i]:
                    await throttle.settle(session, reserved.key, limit, failed=False)
                await session.commit()
                raise TooManyRequests(
                    "Too many failed attempts; try again later"
                    if verdict.locked
                    else "Too many attempts in progress; retry shortly",
                    retry_after=verdict.retry_after,
                )
        await session.commit()  # release the connection while argon2 runs
    try:
        ok = await hasher.verify(password_hash, password)
    except HasherBusy:
        ok = None  # shed without judging the password: the attempt does not count
    async with slots:
        for i, counted in enumerate(keys):
            locked = await throttle.settle(
                session, counted.key, limit, failed=ok is False, forgive=bool(ok) and i == 0
            )
            if locked:
                await audit.record(
                    session,
                    action="auth.lockout",
                    target=counted.target,
                    ip=ip,
                    detail={"by": counted.by},
                )
        if ok is False and on_failure is not None:
            await on_failure()
        await session.commit()
    if ok is None:
        raise HasherBusy
    return ok


async def hash_new_password(hasher: PasswordHasher, password: str, *, username: str | None) -> str:
    if problem := policy_violation(password, username=username):
        raise Invalid(problem, field="password")
    return await hasher.hash(password)


async def signup(
    session: AsyncSession,
    *,
    settings: Settings,
    hasher: PasswordHasher,
    username: str,
    password: str,
    email: str | None,
    client: Client,
) -> Account:
    if not settings.signup_enabled:
        raise Forbidden("Self-signup is switched off")
    if problem := accounts_service.username_violation(username):
        raise Invalid(problem, field="username")
    # Every signup attempt counts against the address, successful or not.
    limit = throttle.Limit(
        max_attempts=settings.signup_max_per_hour, window_seconds=3600, lockout_seconds=3600
    )
    verdict = await throttle.reserve(session, f"signup:{client.ip}", limit)
    if verdict.allowed:
        await throttle.settle(session, f"signup:{client.ip}", limit, failed=True)
    await session.commit()
    if not verdict.allowed:
        raise TooManyRequests("Too many signups from this address", retry_after=verdict.retry_after)
    password_hash = await hash_new_password(hasher, password, username=username)
    account = await accounts_service.create_account(
        session, username=username, password_hash=password_hash, email=email, roles=[USER_ROLE]
    )
    await audit.record(
        session,
        action="account.create",
        actor=account.id,
        target=str(account.id),
        ip=client.ip,
        detail={"username": account.username, "via": "signup"},
    )
    return account


async def create_account_as_admin(
    session: AsyncSession,
    *,
    hasher: PasswordHasher,
    actor: uuid.UUID,
    username: str,
    password: str,
    email: str | None,
    roles: list[str],
    client: Client,
) -> Account:
    for role in dict.fromkeys(roles):
        # Creating an account with a role is granting it: the same guardrail applies.
        await roles_service.check_may_assign(session, actor=actor, role=role)
    if problem := accounts_service.username_violation(username):
        raise Invalid(problem, field="username")
    await session.commit()  # no connection held while argon2 runs
    password_hash = await hash_new_password(hasher, password, username=username)
    account = await accounts_service.create_account(
        session, username=username, password_hash=password_hash, email=email, roles=roles
    )
    await audit.record(
        session,
        action="account.create",
        actor=actor,
        target=str(account.id),
        ip=client.ip,
        detail={"username": account.username, "roles": sorted(set(roles))},
    )
    return account


async def password_grant(
    session: AsyncSession,
    *,
    settings: Settings,
    hasher: PasswordHasher,
    slots: asyncio.Semaphore,
    keyring: KeyRing,
    username: str,
    password: str,
    scope: str | None,
    client: Client,
) -> TokenResponse:
    requested = parse_scope(scope)
    await _check_catalogue(session, requested)
    key = accounts_service.username_key(username)[:128]
    account = await session.scalar(select(Account).where(col(Account.username_key) == key))

    async def record_failure() -> None:
        await audit.record(
            session,
            action="auth.login_failed",
            actor=None,
            target=str(account.id) if account else key,
            ip=client.ip,
            detail={"username": key},
        )

    # Unknown user, wrong password, disabled account: the same work, the same answer.
    ok = await _verify_throttled(
        session,
        hasher=hasher,
        slots=slots,
        limit=_login_limit(settings),
        keys=[Counted(f"account:{key}", key, "account"), _address_key(client)],
        password_hash=account.password_hash if account else None,
        password=password,
        ip=client.ip,
        on_failure=record_failure,
    )
    if ok and account is not None and not account.is_active:
        await record_failure()
        await session.commit()
    if not ok or account is None or not account.is_active:
        raise OAuthError("invalid_grant", INVALID_CREDENTIALS)

    if hasher.needs_rehash(account.password_hash):
        new_hash = await hasher.hash(password)
        await session.execute(
            update(Account)
            .where(
                col(Account.id) == account.id, col(Account.password_hash) == account.password_hash
            )
            .values(password_hash=new_hash)
            .execution_options(synchronize_session=False)
        )
    held, _ = await accounts_service.effective_scopes(session, account.id)
    granted = (set(requested) & held) if requested else held
    tokens = await sessions_service.start_session(
        session,
        settings=settings,
        keyring=keyring,
        account=account,
        scopes=granted,
        user_agent=client.user_agent,
        ip=client.ip,
        all_held=not requested,
    )
    await audit.record(
        session,
        action="auth.login",
        actor=account.id,
        target=str(account.id),
        ip=client.ip,
        detail={"scope": tokens.scope},
    )
    return tokens


async def refresh_grant(
    session: AsyncSession,
    *,
    settings: Settings,
    keyring: KeyRing,
    refresh_token: str,
    scope: str | None,
    client: Client,
) -> TokenResponse:
    requested = parse_scope(scope)
    await _check_catalogue(session, requested)

    async def held(account_id: uuid.UUID) -> set[str]:
        return (await accounts_service.effective_scopes(session, account_id))[0]

    return await sessions_service.refresh(
        session,
        settings=settings,
        keyring=keyring,
        refresh_token=refresh_token,
        requested=requested,
        held_scopes=held,
        ip=client.ip,
    )


async def change_password(
    session: AsyncSession,
    *,
    settings: Settings,
    hasher: PasswordHasher,
    slots: asyncio.Semaphore,
    account_id: uuid.UUID,
    session_id: uuid.UUID,
    current_password: str,
    new_password: str,
    client: Client,
) -> None:
    """Verify the current password, store the new one, end every other session."""
    account = await accounts_service.get_account(session, account_id)
    if problem := policy_violation(new_password, username=account.username):
        raise Invalid(problem, field="new_password")
    # Throttled like a login: a stolen access token must not become a way to
    # guess the password without limit.
    if not await _verify_throttled(
        session,
        hasher=hasher,
        slots=slots,
        limit=_login_limit(settings),
        keys=[Counted(f"account:{account.username_key}", str(account.id), "account")],
        password_hash=account.password_hash,
        password=current_password,
        ip=client.ip,
    ):
        await session.commit()
        raise GatehouseError("The current password is wrong")
    new_hash = await hasher.hash(new_password)
    await session.execute(
        update(Account)
        .where(col(Account.id) == account_id)
        .values(password_hash=new_hash, updated_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    await sessions_service.end_account_sessions(
        session, account_id, reason="password_changed", keep=session_id
    )
    await audit.record(
        session,
        action="account.password_change",
        actor=account_id,
        target=str(account_id),
        ip=client.ip,
        detail={},
    )


async def logout(
    session: AsyncSession, *, account_id: uuid.UUID, session_id: uuid.UUID, client: Client
) -> None:
    await sessions_service.end_session(session, session_id, reason="logout")
    await audit.record(
        session,
        action="auth.logout",
        actor=account_id,
        target=str(session_id),
        ip=client.ip,
        detail={},
    )


async def revoke(
    session: AsyncSession, *, keyring: KeyRing, token: str, hint: str | None, client: Client
) -> None:
    ended = await sessions_service.revoke(session, keyring=keyring, token=token, hint=hint)
    if ended is not None:
        account_id, session_id = ended
        await audit.record(
            session,
            action="auth.logout",
            actor=account_id,
            target=str(session_id),
            ip=client.ip,
            detail={"via": "revoke"},
        )


async def bootstrap_admin(
    session: AsyncSession, *, hasher: PasswordHasher, username: str, password: str
) -> Account | None:
    """Create `username` with the admin role when no active account holds it.

    Returns the new account, or None when an admin already exists. Racing
    instances are settled by the unique username key (the loser gets 409).
    An existing non-admin account of that name is never promoted: that would
    hand admin to whoever signed up with the name first.
    """
    has_admin = await session.scalar(
        select(col(Account.id))
        .join(AccountRole, col(AccountRole.account_id) == col(Account.id))
        .where(col(AccountRole.role_name) == ADMIN_ROLE, col(Account.is_active).is_(True))
        .limit(1)
    )
    if has_admin:
        return None
    if await accounts_service.find_by_username(session, username):
        raise Conflict(f"Account {username!r} exists but is not an active admin; not promoted")
    await session.commit()
    password_hash = await hash_new_password(hasher, password, username=username)
    account = await accounts_service.create_account(
        session,
        username=username,
        password_hash=password_hash,
        email=None,
        roles=[ADMIN_ROLE, USER_ROLE],
    )
    await audit.record(
        session,
        action="account.create",
        target=str(account.id),
        detail={"username": username, "via": "bootstrap"},
    )
    return account
