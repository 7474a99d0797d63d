"""Accounts: sign-up, creation, lookup, listing, changes, password changes and
the last-admin guardrail, each with its audit event.

Flows that hash a password (sign-up, creation, password change) give their
database connection back while argon2 runs: see `core.db.released_after`. They
hash through a claim on the hasher taken for the client address
(`PasswordHasher.claim`), so no address holds more than its share of it.
"""

import asyncio
import secrets
import uuid
from collections.abc import Sequence
from typing import Any, cast

from sqlalchemy import CursorResult, delete, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from app.accounts import usernames
from app.accounts.models import Account
from app.accounts.schemas import AccountPublic
from app.audit import service as audit
from app.authz.catalogue import ADMIN_ROLE, USER_ROLE
from app.core.config import Settings
from app.core.db import inserted, release_connection
from app.core.errors import Conflict, Forbidden, GatehouseError, Invalid, NotFound
from app.core.models import utcnow
from app.core.network import RequestOrigin
from app.core.pagination import decode_cursor, keyset_page
from app.core.schemas import Page, public
from app.crypto.passwords import HasherClaim, PasswordHasher, policy_violation
from app.roles import service as roles_service
from app.roles.models import AccountRole
from app.sessions import service as sessions_service
from app.sessions.service import LiveAccount
from app.throttle import service as throttle


def email_key(email: str | None) -> str | None:
    return email.casefold() if email else None


async def hash_new_password(hashing: HasherClaim, password: str, *, username: str | None) -> str:
    if problem := policy_violation(password, username=username):
        raise Invalid(problem, field="password")
    return await hashing.hash(password)


async def _insert(
    db: AsyncSession,
    *,
    username: str,
    password_hash: str,
    email: str | None,
    roles: Sequence[str],
) -> Account:
    """Insert the account with its roles; the unique keys decide races (409)."""
    account = Account(
        username=usernames.display_form(username),
        username_key=usernames.key(username),
        email=email,
        email_key=email_key(email),
        password_hash=password_hash,
    )
    # Locks the roles (PostgreSQL) so that none is deleted before the insert.
    await roles_service.check_roles_exist(db, roles, lock=True)
    if not await inserted(db, account):
        raise Conflict(_taken(await _which_taken(db, account)))
    for role in dict.fromkeys(roles):
        db.add(AccountRole(account_id=account.id, role_name=role))
    await db.flush()
    return account


async def _which_taken(db: AsyncSession, account: Account) -> str:
    taken = await db.scalar(
        select(func.count()).where(col(Account.username_key) == account.username_key)
    )
    return "username" if taken else "email"


def _taken(what: str) -> str:
    return f"That {what} is already taken"


def _check_username(username: str) -> None:
    if problem := usernames.problem(username):
        raise Invalid(problem, field="username")


async def signup(
    db: AsyncSession,
    *,
    settings: Settings,
    hasher: PasswordHasher,
    username: str,
    password: str,
    email: str | None,
    origin: RequestOrigin,
) -> Account:
    if not settings.signup_enabled:
        raise Forbidden("Self-signup is switched off")
    _check_username(username)
    await throttle.count_signup(db, settings=settings, origin=origin)
    with hasher.claim(origin.ip) as hashing:
        password_hash = await hash_new_password(hashing, password, username=username)
    account = await _insert(
        db, username=username, password_hash=password_hash, email=email, roles=[USER_ROLE]
    )
    await audit.record(
        db,
        action="account.create",
        actor=account.id,
        target=str(account.id),
        ip=origin.ip,
        detail={"username": account.username, "via": "signup"},
    )
    return account


async def create_account(
    db: AsyncSession,
    *,
    hasher: PasswordHasher,
    actor: uuid.UUID,
    actor_scopes: frozenset[str],
    username: str,
    password: str,
    email: str | None,
    roles: list[str],
    origin: RequestOrigin,
) -> Account:
    """An admin creates an account with `roles`; creating it with a role is
    granting it, so the same guardrail applies (to the token's scopes)."""
    for role in dict.fromkeys(roles):
        await roles_service.check_may_assign(db, actor=actor, actor_scopes=actor_scopes, role=role)
    _check_username(username)
    await release_connection(db)  # no connection held while argon2 runs
    with hasher.claim(origin.ip) as hashing:
        password_hash = await hash_new_password(hashing, password, username=username)
    account = await _insert(
        db, username=username, password_hash=password_hash, email=email, roles=roles
    )
    await audit.record(
        db,
        action="account.create",
        actor=actor,
        target=str(account.id),
        ip=origin.ip,
        detail={"username": account.username, "roles": sorted(set(roles))},
    )
    return account


async def bootstrap_admin(
    db: AsyncSession, *, hasher: PasswordHasher, username: str, password: str
) -> Account | None:
    """Create `username` with the admin role when no active account holds it.

    Returns the new account, or None when an admin already exists. Racing
    instances are settled by the unique username key (the loser gets 409).
    An existing non-admin account of that name is never promoted: that would
    hand admin to whoever signed up with the name first.
    """
    _check_username(username)
    if await roles_service.active_admins(db, limit=1):
        return None
    if await find_by_username(db, username):
        raise Conflict(f"Account {username!r} exists but is not an active admin; not promoted")
    return await create_admin(
        db, hasher=hasher, username=username, password=password, via="bootstrap"
    )


async def create_admin(
    db: AsyncSession, *, hasher: PasswordHasher, username: str, password: str, via: str
) -> Account:
    """Create `username` with the admin and user roles, whatever admins exist:
    the operator's way in (`gatehouse create-admin`), so it needs no token."""
    _check_username(username)
    if await find_by_username(db, username):
        raise Conflict(f"An account named {username!r} already exists")
    await release_connection(db)
    with hasher.claim(None) as hashing:  # at start-up, for no client
        password_hash = await hash_new_password(hashing, password, username=username)
    account = await _insert(
        db,
        username=username,
        password_hash=password_hash,
        email=None,
        roles=[ADMIN_ROLE, USER_ROLE],
    )
    await audit.record(
        db,
        action="account.create",
        target=str(account.id),
        detail={"username": account.username, "roles": [ADMIN_ROLE, USER_ROLE], "via": via},
    )
    return account


async def get_account(db: AsyncSession, account_id: uuid.UUID, *, lock: bool = False) -> Account:
    if lock:
        account = await db.scalar(
            select(Account).where(col(Account.id) == account_id).with_for_update()
        )
    else:
        # From the identity map when this request already loaded it (the token
        # check does), else one primary-key query.
        account = await db.get(Account, account_id)
    if account is None:
        raise NotFound("Account not found")
    return account


async def find_by_username(db: AsyncSession, username: str) -> Account | None:
    """The sign-in lookup (see `usernames.lookup_key`)."""
    return await db.scalar(
        select(Account).where(col(Account.username_key) == usernames.lookup_key(username))
    )


async def upgrade_password_hash(
    db: AsyncSession, *, hashing: HasherClaim, account: Account, password: str
) -> str:
    """After a successful login: rehash with today's argon2 parameters when the
    stored hash used older ones. Returns the hash now stored. Conditional on the
    old hash, so it never overwrites a password changed meanwhile."""
    if not hashing.needs_rehash(account.password_hash):
        return account.password_hash
    new_hash = await hashing.hash(password)
    result = cast(
        "CursorResult[Any]",
        await db.execute(
            update(Account)
            .where(
                col(Account.id) == account.id, col(Account.password_hash) == account.password_hash
            )
            .values(password_hash=new_hash)
            .execution_options(synchronize_session=False)
        ),
    )
    # When it did not apply, the password changed while this one hashed: the
    # session check then fails on the old hash, as it must.
    return new_hash if result.rowcount == 1 else account.password_hash


def live_public(account: LiveAccount) -> AccountPublic:
    """The public shape of the account a session token's liveness check read."""
    return AccountPublic(
        id=account.id,
        username=account.username,
        email=account.email,
        is_active=account.is_active,
        roles=account.roles,
        scopes=account.scopes,
        created_at=account.created_at,
    )


async def to_public(db: AsyncSession, accounts: Sequence[Account]) -> list[AccountPublic]:
    extra = await roles_service.roles_and_scopes(db, [a.id for a in accounts])
    return [public(AccountPublic, a, roles=extra[a.id][0], scopes=extra[a.id][1]) for a in accounts]


async def list_accounts(
    db: AsyncSession,
    *,
    limit: int,
    cursor: str | None,
    q: str | None,
    role: str | None,
    is_active: bool | None,
) -> Page[AccountPublic]:
    """Keyset pagination over time-ordered ids: no offset scans, stable under inserts."""
    query = select(Account).order_by(col(Account.id)).limit(limit + 1)
    if cursor:
        query = query.where(col(Account.id) > decode_cursor(cursor, uuid.UUID))
    if q:
        prefix = usernames.key(q).replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        query = query.where(col(Account.username_key).like(prefix + "%", escape="\\"))
    if role:
        query = query.where(
            col(Account.id).in_(
                select(col(AccountRole.account_id)).where(col(AccountRole.role_name) == role)
            )
        )
    if is_active is not None:
        query = query.where(col(Account.is_active) == is_active)
    rows, next_cursor = keyset_page((await db.scalars(query)).all(), limit, lambda a: str(a.id))
    return Page[AccountPublic](items=await to_public(db, rows), next_cursor=next_cursor)


async def update_account(
    db: AsyncSession,
    *,
    actor: uuid.UUID,
    ip: str | None,
    account_id: uuid.UUID,
    is_active: bool | None = None,
    email: str | None = None,
    email_given: bool = False,
) -> Account:
    """Enable or disable (disabling ends every session), or change the email."""
    if is_active is False:
        await roles_service.lock_admin_role(db)
    account = await get_account(db, account_id, lock=True)
    changed: dict[str, object] = {}
    if is_active is not None and is_active != account.is_active:
        if not is_active and await roles_service.is_last_active_admin(db, account):
            raise Conflict("The last active admin cannot be disabled")
        account.is_active = is_active
        account.authz_version += 1
        changed["is_active"] = is_active
        if not is_active:
            await sessions_service.end_account_sessions(db, account.id, reason="account_disabled")
    if email_given and email != account.email:
        account.email = email
        account.email_key = email_key(email)
        changed["email"] = "changed" if email else "removed"
    if changed:
        account.updated_at = utcnow()
        try:
            async with db.begin_nested():
                await db.flush()
        except IntegrityError:
            raise Conflict(_taken("email")) from None
        await audit.record(
            db, action="account.update", actor=actor, target=str(account_id), ip=ip, detail=changed
        )
    return account


async def delete_account(
    db: AsyncSession, *, actor: uuid.UUID, ip: str | None, account_id: uuid.UUID
) -> None:
    await roles_service.lock_admin_role(db)
    account = await get_account(db, account_id, lock=True)
    if await roles_service.is_last_active_admin(db, account):
        raise Conflict("The last active admin cannot be deleted")
    await db.execute(delete(Account).where(col(Account.id) == account_id))
    await audit.record(
        db,
        action="account.delete",
        actor=actor,
        target=str(account_id),
        ip=ip,
        detail={"username": account.username},
    )


async def change_password(
    db: AsyncSession,
    *,
    settings: Settings,
    hasher: PasswordHasher,
    slots: asyncio.Semaphore,
    account_id: uuid.UUID,
    session_id: uuid.UUID | None,
    current_password: str,
    new_password: str,
    origin: RequestOrigin,
) -> None:
    """Verify the current password, store the new one, end every other session
    (every session, when the request came with a personal access token).

    The new hash is stored only if the account is still active and still has the
    hash that was verified (one conditional UPDATE, which also locks the row until
    commit): of two changes racing from the same old password one wins and the
    other is 409, and a login holding the row finishes before its session is ended."""
    account = await get_account(db, account_id)
    if problem := policy_violation(new_password, username=account.username):
        raise Invalid(problem, field="new_password")
    verified_hash = account.password_hash
    # Throttled like a login, on the same keys: a stolen access token must not
    # become a way to guess the password, nor one address's way to fill the hasher.
    with hasher.claim(origin.ip) as hashing:
        if not await throttle.verify_password(
            db,
            hashing=hashing,
            slots=slots,
            keys=[
                throttle.account_key(settings, account.username_key, target=str(account.id)),
                throttle.address_key(settings, origin),
            ],
            password_hash=verified_hash,
            password=current_password,
            active=True,  # the caller's token was live a moment ago
            origin=origin,
        ):
            raise GatehouseError("The current password is wrong")
        new_hash = await hashing.hash(new_password)
    changed = cast(
        "CursorResult[Any]",
        await db.execute(
            update(Account)
            .where(
                col(Account.id) == account_id,
                col(Account.is_active).is_(True),
                col(Account.password_hash) == verified_hash,
            )
            .values(password_hash=new_hash, updated_at=utcnow())
            .execution_options(synchronize_session=False)
        ),
    )
    if changed.rowcount != 1:
        raise Conflict("The account changed while the password was checked; nothing was changed")
    await sessions_service.end_account_sessions(
        db, account_id, reason="password_changed", keep=session_id
    )
    await audit.record(
        db,
        action="account.password_change",
        actor=account_id,
        target=str(account_id),
        ip=origin.ip,
        detail={},
    )


async def reset_password(
    db: AsyncSession, *, hasher: PasswordHasher, username: str
) -> tuple[Account, str]:
    """The operator's recovery for a lost password (`gatehouse reset-password`):
    a generated password (192 random bits, never one an operator picks, so it is
    never reused or guessable), every session of the account ended (a thief's
    included), audited. Returns the account and the password, to be shown once."""
    account = await find_by_username(db, username)
    if account is None:
        raise NotFound(f"No account named {username!r}")
    password = secrets.token_urlsafe(24)
    await release_connection(db)
    new_hash = await hasher.hash(password)
    await db.execute(
        update(Account)
        .where(col(Account.id) == account.id)
        .values(
            password_hash=new_hash,
            authz_version=col(Account.authz_version) + 1,
            updated_at=utcnow(),
        )
        .execution_options(synchronize_session=False)
    )
    await sessions_service.end_account_sessions(db, account.id, reason="password_reset")
    await audit.record(
        db,
        action="account.password_reset",
        target=str(account.id),
        detail={"username": account.username, "via": "cli"},
    )
    return account, password
