"""Accounts: creation, lookup, listing, changes, and the last-admin guardrail."""

import unicodedata
import uuid
from collections import defaultdict
from collections.abc import Sequence
from typing import cast

from sqlalchemy import delete, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from app.core.errors import Conflict, Invalid, NotFound
from app.core.pagination import decode_cursor, encode_cursor
from app.models import Account, AccountRole, Role, RoleScope
from app.models.base import utcnow
from app.schemas import AccountPublic, Page
from app.security.scopes import ADMIN_ROLE
from app.services import sessions as sessions_service

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


async def create_account(
    session: AsyncSession,
    *,
    username: str,
    password_hash: str,
    email: str | None,
    roles: Sequence[str],
) -> Account:
    """Insert the account with its roles; the unique keys decide races (409)."""
    if problem := username_violation(username):
        raise Invalid(problem, field="username")
    account = Account(
        username=normalize_username(username),
        username_key=username_key(username),
        email=email,
        email_key=email_key(email),
        password_hash=password_hash,
    )
    await _ensure_roles_exist(session, roles)
    try:
        async with session.begin_nested():
            session.add(account)
            await session.flush()
    except IntegrityError:
        raise Conflict(_taken(await _which_taken(session, account))) from None
    for role in dict.fromkeys(roles):
        session.add(AccountRole(account_id=account.id, role_name=role))
    await session.flush()
    return account


async def _which_taken(session: AsyncSession, account: Account) -> str:
    taken = await session.scalar(
        select(func.count()).where(col(Account.username_key) == account.username_key)
    )
    return "username" if taken else "email"


def _taken(what: str) -> str:
    return f"That {what} is already taken"


async def _ensure_roles_exist(session: AsyncSession, roles: Sequence[str]) -> None:
    if not roles:
        return
    found = set(
        (await session.scalars(select(col(Role.name)).where(col(Role.name).in_(set(roles))))).all()
    )
    missing = sorted(set(roles) - found)
    if missing:
        raise NotFound(f"Unknown role: {missing[0]}")


async def get_account(
    session: AsyncSession, account_id: uuid.UUID, *, lock: bool = False
) -> Account:
    if lock:
        account = await session.scalar(
            select(Account).where(col(Account.id) == account_id).with_for_update()
        )
    else:
        # From the identity map when this request already loaded it (the token
        # check does), else one primary-key query.
        account = await session.get(Account, account_id)
    if account is None:
        raise NotFound("Account not found")
    return account


async def find_by_username(session: AsyncSession, username: str) -> Account | None:
    return await session.scalar(
        select(Account).where(col(Account.username_key) == username_key(username))
    )


async def roles_and_scopes(
    session: AsyncSession, account_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, tuple[list[str], list[str]]]:
    """Roles and effective scopes of many accounts in one query."""
    if not account_ids:
        return {}
    rows = (
        await session.execute(
            select(
                col(AccountRole.account_id),
                col(AccountRole.role_name),
                col(RoleScope.scope_name),
            )
            .outerjoin(RoleScope, col(RoleScope.role_name) == col(AccountRole.role_name))
            .where(col(AccountRole.account_id).in_(account_ids))
        )
    ).all()
    roles: dict[uuid.UUID, set[str]] = defaultdict(set)
    held: dict[uuid.UUID, set[str]] = defaultdict(set)
    for account_id, role, scope in rows:
        roles[account_id].add(role)
        if scope is not None:
            held[account_id].add(scope)
    return {i: (sorted(roles[i]), sorted(held[i])) for i in account_ids}


async def effective_scopes(session: AsyncSession, account_id: uuid.UUID) -> tuple[set[str], bool]:
    """The account's scopes now, and whether it holds the admin role."""
    roles, scopes = (await roles_and_scopes(session, [account_id]))[account_id]
    return set(scopes), ADMIN_ROLE in roles


async def to_public(session: AsyncSession, accounts: Sequence[Account]) -> list[AccountPublic]:
    extra = await roles_and_scopes(session, [a.id for a in accounts])
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
    session: AsyncSession,
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
        try:
            after = uuid.UUID(decode_cursor(cursor))
        except ValueError:
            raise Invalid("Invalid cursor", field="cursor") from None
        query = query.where(col(Account.id) > after)
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
    rows = list((await session.scalars(query)).all())
    more = len(rows) > limit
    rows = rows[:limit]
    return Page[AccountPublic](
        items=await to_public(session, rows),
        next_cursor=encode_cursor(str(rows[-1].id)) if more and rows else None,
    )


async def lock_admin_role(session: AsyncSession) -> None:
    """Serialise every change that could remove an admin (PostgreSQL row lock on
    the admin role; SQLite serialises writers anyway), so two racing demotions
    cannot both see 'another admin remains'."""
    await session.execute(
        select(col(Role.name)).where(col(Role.name) == ADMIN_ROLE).with_for_update()
    )


async def is_last_active_admin(session: AsyncSession, account: Account) -> bool:
    """Whether `account` is an active admin with no other active admin beside it."""
    if not account.is_active:
        return False
    admins = (
        await session.scalars(
            select(col(Account.id))
            .join(AccountRole, col(AccountRole.account_id) == col(Account.id))
            .where(col(AccountRole.role_name) == ADMIN_ROLE, col(Account.is_active).is_(True))
            .limit(2)
        )
    ).all()
    return list(admins) == [account.id]


async def update_account(
    session: AsyncSession,
    *,
    account_id: uuid.UUID,
    changes: dict[str, object],
) -> tuple[Account, dict[str, object]]:
    """Apply `is_active` / `email`; returns the account and what really changed."""
    if changes.get("is_active") is False:
        await lock_admin_role(session)
    account = await get_account(session, account_id, lock=True)
    changed: dict[str, object] = {}
    if (
        "is_active" in changes
        and changes["is_active"] is not None
        and changes["is_active"] != account.is_active
    ):
        if changes["is_active"] is False and await is_last_active_admin(session, account):
            raise Conflict("The last active admin cannot be disabled")
        account.is_active = bool(changes["is_active"])
        account.authz_version += 1
        changed["is_active"] = account.is_active
        if not account.is_active:
            await sessions_service.end_account_sessions(
                session, account.id, reason="account_disabled"
            )
    if "email" in changes and changes["email"] != account.email:
        email = cast(str | None, changes["email"])
        account.email = email
        account.email_key = email_key(email)
        changed["email"] = "changed" if email else "removed"
    if changed:
        account.updated_at = utcnow()
        try:
            async with session.begin_nested():
                await session.flush()
        except IntegrityError:
            raise Conflict(_taken("email")) from None
    return account, changed


async def delete_account(session: AsyncSession, *, account_id: uuid.UUID) -> Account:
    await lock_admin_role(session)
    account = await get_account(session, account_id, lock=True)
    if await is_last_active_admin(session, account):
        raise Conflict("The last active admin cannot be deleted")
    await session.execute(delete(Account).where(col(Account.id) == account_id))
    return account


async def bump_authz_version(
    session: AsyncSession,
    account_ids: Sequence[uuid.UUID] | None = None,
    *,
    role: str | None = None,
) -> None:
    """Invalidate access tokens of accounts whose permissions just changed; they
    refresh and get the new scopes (the token carries the version it was issued at)."""
    query = (
        update(Account)
        .values(authz_version=col(Account.authz_version) + 1)
        .execution_options(synchronize_session=False)
    )
    if role is not None:
        query = query.where(
            col(Account.id).in_(
                select(col(AccountRole.account_id)).where(col(AccountRole.role_name) == role)
            )
        )
    elif account_ids is not None:
        query = query.where(col(Account.id).in_(account_ids))
    else:
        return
    await session.execute(query)
