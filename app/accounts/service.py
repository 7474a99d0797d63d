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
from dataclasses import dataclass

from sqlalchemy import delete, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from app.accounts import usernames
from app.accounts.models import Account
from app.accounts.schemas import AccountCreate, AccountPublic, AccountUpdate, SignupRequest
from app.audit import service as audit
from app.authz.catalogue import ADMIN_ROLE, USER_ROLE, Actor, Principal
from app.browser_sessions import service as browser_sessions
from app.core.config import Settings
from app.core.db import affected, inserted, release_connection, released_after
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
    new: SignupRequest,
    origin: RequestOrigin,
) -> Account:
    username, password, email = new.username, new.password, new.email
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
    actor: Actor[Principal],
    hasher: PasswordHasher,
    account: AccountCreate,
) -> Account:
    """An admin creates an account with `roles`; creating it with a role is
    granting it, so the same guardrail applies (to the token's scopes)."""
    username, password = account.username, account.password
    roles = account.roles if account.roles is not None else [USER_ROLE]
    for role in dict.fromkeys(roles):
        await roles_service.check_may_assign(db, actor=actor, role=role)
    _check_username(username)
    await release_connection(db)  # no connection held while argon2 runs
    with hasher.claim(actor.ip) as hashing:
        password_hash = await hash_new_password(hashing, password, username=username)
    created = await _insert(
        db, username=username, password_hash=password_hash, email=account.email, roles=roles
    )
    await audit.record_change(
        db,
        actor,
        "account.create",
        target=str(created.id),
        detail={"username": created.username, "roles": sorted(set(roles))},
    )
    return created


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
    # When it did not apply, the password changed (or the account was disabled)
    # while this one hashed: the session check then fails on the old hash, as it must.
    stored = await _replace_hash(db, account.id, verified=account.password_hash, new=new_hash)
    return new_hash if stored else account.password_hash


async def _replace_hash(
    db: AsyncSession, account_id: uuid.UUID, *, verified: str, new: str, **values: object
) -> bool:
    """Store `new` only while the account is active and still holds the hash that
    was verified: one conditional UPDATE, which also locks the row until commit,
    so of two changes racing from the same old password exactly one applies."""
    return (
        await affected(
            db,
            update(Account)
            .where(
                col(Account.id) == account_id,
                col(Account.is_active).is_(True),
                col(Account.password_hash) == verified,
            )
            .values(password_hash=new, **values)
            .execution_options(synchronize_session=False),
        )
        == 1
    )


@dataclass(frozen=True, slots=True)
class LoginCheck:
    """The outcome of checking a username and password: the account the name
    found (if any), its lookup key, and the hash the password was verified
    against (None when the password did not open an active account)."""

    account: Account | None
    username_key: str
    verified_hash: str | None

    @property
    def verified(self) -> Account | None:
        return self.account if self.verified_hash is not None else None


async def check_login(
    db: AsyncSession,
    *,
    settings: Settings,
    hashing: HasherClaim,
    slots: asyncio.Semaphore,
    username: str,
    password: str,
    origin: RequestOrigin,
) -> LoginCheck:
    """The one password check of every sign-in (the token endpoint's password
    grant and the hosted sign-in page): throttled on the account and the address
    (429 past either limit), hashed with no connection held, an unknown name
    checked against a dummy hash, a disabled account's right password counted as
    a failure; on success the hash is upgraded to today's parameters. The caller
    then opens its session conditionally on `verified_hash` (see
    `sessions.service.start_session`), inside the same hasher claim."""
    account = await find_by_username(db, username)
    key = usernames.lookup_key(username)
    ok = await throttle.verify_password(
        db,
        hashing=hashing,
        slots=slots,
        keys=[
            throttle.account_key(settings, key, target=key),
            throttle.address_key(settings, origin),
        ],
        password_hash=account.password_hash if account else None,
        password=password,
        active=account is not None and account.is_active,
        origin=origin,
    )
    if not ok or account is None:
        return LoginCheck(account, key, None)
    verified_hash = await upgrade_password_hash(
        db, hashing=hashing, account=account, password=password
    )
    return LoginCheck(account, key, verified_hash)


async def record_login_failure(db: AsyncSession, check: LoginCheck, *, ip: str | None) -> None:
    """`auth.login_failed`, kept even though the request then fails."""
    async with released_after(db):
        await audit.record(
            db,
            action="auth.login_failed",
            actor=None,
            target=str(check.account.id) if check.account else check.username_key,
            ip=ip,
            detail={"username": check.username_key},
        )


def live_public(account: LiveAccount) -> AccountPublic:
    """The public shape of the account a session token's liveness check read."""
    return AccountPublic.model_validate(account, from_attributes=True)


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
    db: AsyncSession, *, actor: Actor[Principal], account_id: uuid.UUID, change: AccountUpdate
) -> Account:
    """Enable or disable (disabling ends every session), or change the email
    (`"email": null` removes it; leaving `email` out keeps it)."""
    is_active, email = change.is_active, change.email
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
            await browser_sessions.end_account_browser_sessions(
                db, account.id, reason="account_disabled"
            )
    if "email" in change.model_fields_set and email != account.email:
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
        await audit.record_change(
            db, actor, "account.update", target=str(account_id), detail=changed
        )
    return account


async def delete_account(
    db: AsyncSession, *, actor: Actor[Principal], account_id: uuid.UUID
) -> None:
    await roles_service.lock_admin_role(db)
    account = await get_account(db, account_id, lock=True)
    if await roles_service.is_last_active_admin(db, account):
        raise Conflict("The last active admin cannot be deleted")
    await db.execute(delete(Account).where(col(Account.id) == account_id))
    await audit.record_change(
        db, actor, "account.delete", target=str(account_id), detail={"username": account.username}
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
    if not await _replace_hash(
        db, account_id, verified=verified_hash, new=new_hash, updated_at=utcnow()
    ):
        raise Conflict("The account changed while the password was checked; nothing was changed")
    await sessions_service.end_account_sessions(
        db, account_id, reason="password_changed", keep=session_id
    )
    # Every browser session ends: the sign-in page asks for the new password.
    await browser_sessions.end_account_browser_sessions(db, account_id, reason="password_changed")
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
    await browser_sessions.end_account_browser_sessions(db, account.id, reason="password_reset")
    await audit.record(
        db,
        action="account.password_reset",
        target=str(account.id),
        detail={"username": account.username, "via": "cli"},
    )
    return account, password
