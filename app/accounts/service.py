"""Accounts: sign-up, creation, lookup, listing, changes, password changes and
the last-admin guardrail, each with its audit event.

Flows that hash a password (sign-up, creation, password change) give their
database connection back while argon2 runs: see `core.db.released_after`.
"""

import asyncio
import unicodedata
import uuid
from collections.abc import Sequence

from sqlalchemy import delete, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from app.accounts.models import Account
from app.accounts.schemas import AccountPublic
from app.audit import service as audit
from app.authz.catalogue import ADMIN_ROLE, USER_ROLE
from app.core.config import Settings
from app.core.db import release_connection
from app.core.errors import Conflict, Forbidden, GatehouseError, Invalid, NotFound
from app.core.models import utcnow
from app.core.network import RequestOrigin
from app.core.pagination import decode_cursor, keyset_page
from app.core.schemas import Page
from app.crypto.passwords import PasswordHasher, policy_violation
from app.roles import service as roles_service
from app.roles.models import AccountRole
from app.sessions import service as sessions_service
from app.throttle import service as throttle

# Unicode categories refused in usernames: separators (Z*), controls (Cc),
# format characters (Cf, e.g. zero-width joiners and bidi overrides that make
# two names look alike), surrogates, private-use and unassigned code points.
_FORBIDDEN_CATEGORIES = frozenset({"Zs", "Zl", "Zp", "Cc", "Cf", "Cs", "Co", "Cn"})
USERNAME_MAX = 64


def normalize_username(username: str) -> str:
    return unicodedata.normalize("NFKC", username)


def username_key(username: str) -> str:
    """NFKC then case fold (then NFKC again, as folding can denormalise):
    `Bob`, `BOB` and fullwidth `ｂｏｂ` share one key."""
    return unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", username).casefold())


def username_violation(username: str) -> str | None:
    name = normalize_username(username)
    if not 1 <= len(name) <= USERNAME_MAX:
        return f"Username must be 1 to {USERNAME_MAX} characters"
    if any(unicodedata.category(ch) in _FORBIDDEN_CATEGORIES for ch in name):
        return "Username must not contain whitespace, control or invisible characters"
    if len(username_key(name)) > USERNAME_MAX:
        # Case folding can lengthen a name ("ß" becomes "ss"); the key must fit too.
        return f"Username must be at most {USERNAME_MAX} characters once case-folded"
    return None


def email_key(email: str | None) -> str | None:
    return email.casefold() if email else None


async def hash_new_password(hasher: PasswordHasher, password: str, *, username: str | None) -> str:
    if problem := policy_violation(password, username=username):
        raise Invalid(problem, field="password")
    return await hasher.hash(password)


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
        username=normalize_username(username),
        username_key=username_key(username),
        email=email,
        email_key=email_key(email),
        password_hash=password_hash,
    )
    await roles_service.check_roles_exist(db, roles)
    try:
        async with db.begin_nested():
            db.add(account)
            await db.flush()
    except IntegrityError:
        raise Conflict(_taken(await _which_taken(db, account))) from None
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
    if problem := username_violation(username):
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
    password_hash = await hash_new_password(hasher, password, username=username)
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
    username: str,
    password: str,
    email: str | None,
    roles: list[str],
    origin: RequestOrigin,
) -> Account:
    """An admin creates an account with `roles`; creating it with a role is
    granting it, so the same guardrail applies."""
    for role in dict.fromkeys(roles):
        await roles_service.check_may_assign(db, actor=actor, role=role)
    _check_username(username)
    await release_connection(db)  # no connection held while argon2 runs
    password_hash = await hash_new_password(hasher, password, username=username)
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
    await release_connection(db)
    password_hash = await hash_new_password(hasher, password, username=username)
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
        detail={"username": username, "via": "bootstrap"},
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
    return await db.scalar(
        select(Account).where(col(Account.username_key) == username_key(username)[:128])
    )


async def to_public(db: AsyncSession, accounts: Sequence[Account]) -> list[AccountPublic]:
    extra = await roles_service.roles_and_scopes(db, [a.id for a in accounts])
    return [
        AccountPublic(
            id=a.id,
            username=a.username,
            email=a.email,
            is_active=a.is_active,
            roles=extra[a.id][0],
            scopes=extra[a.id][1],
            created_at=a.created_at,
        )
        for a in accounts
    ]


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
        prefix = username_key(q).replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
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
    (every session, when the request came with a personal access token)."""
    account = await get_account(db, account_id)
    if problem := policy_violation(new_password, username=account.username):
        raise Invalid(problem, field="new_password")
    # Throttled like a login: a stolen access token must not become a way to
    # guess the password without limit.
    if not await throttle.verify_password(
        db,
        hasher=hasher,
        slots=slots,
        limit=throttle.login_limit(settings),
        keys=[throttle.Counted(f"account:{account.username_key}", str(account.id), "account")],
        password_hash=account.password_hash,
        password=current_password,
        origin=origin,
    ):
        raise GatehouseError("The current password is wrong")
    new_hash = await hasher.hash(new_password)
    await db.execute(
        update(Account)
        .where(col(Account.id) == account_id)
        .values(password_hash=new_hash, updated_at=utcnow())
        .execution_options(synchronize_session=False)
    )
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
