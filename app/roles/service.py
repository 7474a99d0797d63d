"""Roles, the scope catalogue, role assignment and effective scopes, with the
guardrails: nobody grants what the token making the request does not carry,
built-ins stay and change only with a token carrying every built-in permission
scope, the last admin stays. Every change here invalidates the access tokens it
affects (the account's `authz_version`) and writes its audit event.

Races between these changes are settled by row locks on PostgreSQL (SQLite runs
one writer at a time): a change that names a scope or role takes a key-share
lock on its row while it checks that it exists, so a deletion of that row
waits until the change has committed (and then removes it from there), instead
of pulling the row away between the check and the insert.
"""

import uuid
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from sqlalchemy import (
    ColumnElement,
    ScalarSelect,
    Table,
    delete,
    func,
    select,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from app.accounts.models import Account
from app.audit import service as audit
from app.authz.catalogue import (
    ADMIN_ROLE,
    Actor,
    Principal,
    carries_every_permission,
    holds_all,
)
from app.core.db import affected, grouped, inserted
from app.core.errors import Conflict, Forbidden, Invalid, NotFound
from app.roles.models import AccountRole, Role, RoleScope, Scope
from app.roles.schemas import RoleCreate, RolePublic, RoleUpdate, ScopeCreate, ScopePublic


async def scopes_of(db: AsyncSession, names: Sequence[str]) -> defaultdict[str, list[str]]:
    """Each named role's scopes, sorted."""
    return await grouped(db, col(RoleScope.role_name), col(RoleScope.scope_name), names)


_ACCOUNT_ROLES: Table = AccountRole.__table__  # type: ignore[attr-defined]  # SQLModel: untyped
_ROLE_SCOPES: Table = RoleScope.__table__  # type: ignore[attr-defined]


def role_names_of(account_id: ColumnElement[uuid.UUID]) -> ScalarSelect[str]:
    """The account's roles, space-separated (string_agg on PostgreSQL, group_concat
    on SQLite; NULL for none), as a subquery correlated to `account_id`: for a hot
    statement that reads the account row and must not spend a round trip on them."""
    return (
        select(func.aggregate_strings(_ACCOUNT_ROLES.c.role_name, " "))
        .where(_ACCOUNT_ROLES.c.account_id == account_id)
        .scalar_subquery()
    )


def scope_names_of(account_id: ColumnElement[uuid.UUID]) -> ScalarSelect[str]:
    """The account's effective scopes (the union of its roles'), space-separated
    and possibly repeated, as `role_names_of`: the join `roles_and_scopes` makes."""
    return (
        select(func.aggregate_strings(_ROLE_SCOPES.c.scope_name, " "))
        .join(_ACCOUNT_ROLES, _ACCOUNT_ROLES.c.role_name == _ROLE_SCOPES.c.role_name)
        .where(_ACCOUNT_ROLES.c.account_id == account_id)
        .scalar_subquery()
    )


def split_names(joined: str | None) -> list[str]:
    """What `role_names_of` or `scope_names_of` read, sorted, once each."""
    return sorted(set(joined.split(" "))) if joined else []


async def roles_and_scopes(
    db: AsyncSession, account_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, tuple[list[str], list[str]]]:
    """Roles and effective scopes of many accounts in one query."""
    if not account_ids:
        return {}
    rows = (
        await db.execute(
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


async def effective_scopes(db: AsyncSession, account_id: uuid.UUID) -> tuple[set[str], bool]:
    """The account's scopes now, and whether it holds the admin role."""
    roles, scopes = (await roles_and_scopes(db, [account_id]))[account_id]
    return set(scopes), ADMIN_ROLE in roles


async def bump_authz_version(
    db: AsyncSession,
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
        query = query.where(col(Account.id).in_(_holders_of(role)))
    elif account_ids is not None:
        query = query.where(col(Account.id).in_(account_ids))
    else:
        return
    await db.execute(query)


def _holders_of(role: str) -> Any:
    return select(col(AccountRole.account_id)).where(col(AccountRole.role_name) == role)


async def lock_admin_role(db: AsyncSession) -> None:
    """Serialise every change that could remove an admin (PostgreSQL row lock on
    the admin role; SQLite serialises writers anyway), so two racing demotions
    cannot both see 'another admin remains'."""
    await db.execute(select(col(Role.name)).where(col(Role.name) == ADMIN_ROLE).with_for_update())


async def active_admins(db: AsyncSession, *, limit: int) -> list[uuid.UUID]:
    """Up to `limit` ids of active accounts holding the admin role."""
    rows = await db.scalars(
        select(col(Account.id))
        .where(col(Account.id).in_(_holders_of(ADMIN_ROLE)), col(Account.is_active).is_(True))
        .limit(limit)
    )
    return list(rows.all())


async def is_last_active_admin(db: AsyncSession, account: Account) -> bool:
    """Whether `account` is an active admin with no other active admin beside it."""
    return account.is_active and await active_admins(db, limit=2) == [account.id]


async def list_roles(db: AsyncSession) -> list[RolePublic]:
    roles = (await db.scalars(select(Role).order_by(col(Role.name)))).all()
    scopes = await scopes_of(db, [r.name for r in roles])
    return [
        RolePublic(name=r.name, description=r.description, scopes=scopes[r.name], builtin=r.builtin)
        for r in roles
    ]


async def _get_role(
    db: AsyncSession, name: str, *, lock: bool = False, key_share: bool = False
) -> Role:
    """`lock`: for update (the role itself changes); `key_share`: only kept from
    being deleted until commit (the role is being referenced)."""
    query = select(Role).where(col(Role.name) == name)
    if lock:
        query = query.with_for_update()
    elif key_share:
        query = query.with_for_update(read=True, key_share=True)
    role = await db.scalar(query)
    if role is None:
        raise NotFound("Role not found")
    return role


async def get_role(db: AsyncSession, name: str) -> RolePublic:
    role = await _get_role(db, name)
    scopes = await scopes_of(db, [name])
    return RolePublic(
        name=role.name, description=role.description, scopes=scopes[name], builtin=role.builtin
    )


async def _actor_holds(db: AsyncSession, actor: Actor[Principal]) -> tuple[set[str], bool]:
    """What the request's token may grant: its scopes that the account still
    holds, and whether the account holds the admin role. A client acting through
    its own token holds what its token carries, and is never an admin."""
    if actor.account_id is None:
        return set(actor.scopes), False
    held, is_admin = await effective_scopes(db, actor.account_id)
    return held & actor.scopes, is_admin


async def check_may_grant(db: AsyncSession, actor: Actor[Principal], scopes: set[str]) -> None:
    """The guardrail (CONTRACT.md, "Guardrails"): 403 unless the token making the
    request carries every scope in `scopes` (an admin's token carrying every
    built-in permission scope counts as holding every custom scope): a token
    narrowed to `roles:write` grants nothing else. Giving a role to an account or
    a client, and changing a role, are all granting its scopes."""
    usable, is_admin = await _actor_holds(db, actor)
    if not holds_all(usable, scopes, is_admin=is_admin):
        raise Forbidden("You cannot grant scopes your token does not carry")


async def unknown_scopes(
    db: AsyncSession, scopes: Sequence[str], *, lock: bool = False
) -> list[str]:
    """The names in `scopes` that are not in the catalogue, in the order given.
    With `lock`, the known ones cannot be deleted before this transaction ends."""
    if not scopes:
        return []
    query = select(col(Scope.name)).where(col(Scope.name).in_(set(scopes)))
    if lock:
        query = query.order_by(col(Scope.name)).with_for_update(read=True, key_share=True)
    known = set((await db.scalars(query)).all())
    return [s for s in dict.fromkeys(scopes) if s not in known]


async def _check_known_scopes(db: AsyncSession, scopes: set[str]) -> None:
    if unknown := sorted(await unknown_scopes(db, sorted(scopes), lock=True)):
        raise Invalid(f"Unknown scope: {unknown[0]}", field="scopes")


async def check_roles_exist(db: AsyncSession, roles: Sequence[str], *, lock: bool = False) -> None:
    """404 naming the first unknown role. With `lock`, none of them can be deleted
    before this transaction ends."""
    if not roles:
        return
    query = select(col(Role.name)).where(col(Role.name).in_(set(roles)))
    if lock:
        query = query.order_by(col(Role.name)).with_for_update(read=True, key_share=True)
    found = set((await db.scalars(query)).all())
    if missing := sorted(set(roles) - found):
        raise NotFound(f"Unknown role: {missing[0]}")


async def create_role(db: AsyncSession, *, actor: Actor[Principal], role: RoleCreate) -> RolePublic:
    name, description, wanted = role.name, role.description, set(role.scopes)
    await _check_known_scopes(db, wanted)
    await check_may_grant(db, actor, wanted)
    if not await inserted(db, Role(name=name, description=description, builtin=False)):
        raise Conflict("A role with that name exists")
    for scope in sorted(wanted):
        db.add(RoleScope(role_name=name, scope_name=scope))
    await db.flush()
    created = await get_role(db, name)
    await audit.record_change(
        db, actor, "role.create", target=name, detail={"scopes": created.scopes}
    )
    return created


async def update_role(
    db: AsyncSession,
    *,
    actor: Actor[Principal],
    name: str,
    change: RoleUpdate,
) -> RolePublic:
    description, scopes = change.description, change.scopes
    role = await _get_role(db, name, lock=True)
    if role.builtin:
        # What `user` carries, every signup gets; `admin` is every built-in scope.
        usable, _ = await _actor_holds(db, actor)
        if not carries_every_permission(usable):
            raise Forbidden(
                "Only a token carrying every built-in permission scope may change a built-in role"
            )
    changed: dict[str, object] = {}
    if description is not None and description != role.description:
        # Changing a role, even only its description, needs every scope it carries.
        await check_may_grant(db, actor, set((await scopes_of(db, [name]))[name]))
        role.description = description
        changed["description"] = description
    if scopes is not None:
        wanted = set(scopes)
        current = set((await scopes_of(db, [name]))[name])
        if wanted != current:
            if role.name == ADMIN_ROLE:
                raise Conflict("The admin role always carries every built-in scope")
            await _check_known_scopes(db, wanted)
            # Both what is added and what is taken away: removing a scope from a
            # role also changes what its holders may do.
            await check_may_grant(db, actor, wanted | current)
            await db.execute(delete(RoleScope).where(col(RoleScope.role_name) == name))
            for scope in sorted(wanted):
                db.add(RoleScope(role_name=name, scope_name=scope))
            await bump_authz_version(db, role=name)
            changed["added"] = sorted(wanted - current)
            changed["removed"] = sorted(current - wanted)
    await db.flush()
    if changed:
        await audit.record_change(db, actor, "role.update", target=name, detail=changed)
    return await get_role(db, name)


async def delete_role(
    db: AsyncSession,
    *,
    actor: Actor[Principal],
    name: str,
) -> None:
    role = await _get_role(db, name, lock=True)
    if role.builtin:
        raise Conflict("Built-in roles cannot be deleted")
    scopes = set((await scopes_of(db, [name]))[name])
    await check_may_grant(db, actor, scopes)
    await bump_authz_version(db, role=name)
    await db.execute(delete(Role).where(col(Role.name) == name))
    await audit.record_change(db, actor, "role.delete", target=name)


async def check_may_assign(db: AsyncSession, *, actor: Actor[Principal], role: str) -> None:
    """404 for an unknown role, 403 unless the token carries every scope it carries.
    The role cannot be deleted before this transaction ends (key-share lock)."""
    await _get_role(db, role, key_share=True)
    await check_may_grant(db, actor, set((await scopes_of(db, [role]))[role]))


async def _lock_account(db: AsyncSession, account_id: uuid.UUID) -> Account:
    account = await db.scalar(
        select(Account).where(col(Account.id) == account_id).with_for_update()
    )
    if account is None:
        raise NotFound("Account not found")
    return account


async def assign_role(
    db: AsyncSession,
    *,
    actor: Actor[Principal],
    account_id: uuid.UUID,
    role: str,
) -> Account:
    """Idempotent: assigning a role the account holds changes and records nothing."""
    # The role before the account, in the order `delete_role` takes them (the
    # role, then its holders' accounts): the other order could deadlock.
    await check_may_assign(db, actor=actor, role=role)
    account = await _lock_account(db, account_id)
    exists = await db.scalar(
        select(func.count()).where(
            col(AccountRole.account_id) == account_id, col(AccountRole.role_name) == role
        )
    )
    if exists:
        return account
    if not await inserted(db, AccountRole(account_id=account_id, role_name=role)):
        # The role row is locked against deletion, so only the primary key can
        # clash: a concurrent identical assignment won, and the role is held.
        return account
    await bump_authz_version(db, [account_id])
    await audit.record_change(
        db, actor, "role.assign", target=str(account_id), detail={"role": role}
    )
    return account


async def unassign_role(
    db: AsyncSession,
    *,
    actor: Actor[Principal],
    account_id: uuid.UUID,
    role: str,
) -> Account:
    if role == ADMIN_ROLE:
        await lock_admin_role(db)
    await _get_role(db, role, key_share=True)  # role before account, as in `assign_role`
    account = await _lock_account(db, account_id)
    # Before the grant check: when two admins demote each other at once, the one
    # that waited on the lock has just lost `admin` itself, and the answer is 409.
    if role == ADMIN_ROLE and await is_last_active_admin(db, account):
        raise Conflict("The last active admin cannot lose the admin role")
    await check_may_assign(db, actor=actor, role=role)
    taken = await affected(
        db,
        delete(AccountRole).where(
            col(AccountRole.account_id) == account_id, col(AccountRole.role_name) == role
        ),
    )
    if taken:
        await bump_authz_version(db, [account_id])
        await audit.record_change(
            db, actor, "role.unassign", target=str(account_id), detail={"role": role}
        )
    return account


async def list_scopes(db: AsyncSession) -> list[ScopePublic]:
    rows = (await db.scalars(select(Scope).order_by(col(Scope.name)))).all()
    return [ScopePublic(name=s.name, description=s.description, builtin=s.builtin) for s in rows]


async def create_scope(
    db: AsyncSession, *, actor: Actor[Principal], scope: ScopeCreate
) -> ScopePublic:
    name, description = scope.name, scope.description
    if not await inserted(db, Scope(name=name, description=description, builtin=False)):
        raise Conflict("A scope with that name exists")
    await audit.record_change(db, actor, "scope.create", target=name)
    return ScopePublic(name=name, description=description, builtin=False)


async def delete_scope(
    db: AsyncSession,
    *,
    actor: Actor[Principal],
    name: str,
) -> None:
    scope = await db.scalar(select(Scope).where(col(Scope.name) == name).with_for_update())
    if scope is None:
        raise NotFound("Scope not found")
    if scope.builtin:
        raise Conflict("Built-in scopes cannot be deleted")
    await check_may_grant(db, actor, {name})
    holders = select(col(AccountRole.account_id)).where(
        col(AccountRole.role_name).in_(
            select(col(RoleScope.role_name)).where(col(RoleScope.scope_name) == name)
        )
    )
    await bump_authz_version(db, list((await db.scalars(holders)).all()))
    await db.execute(delete(Scope).where(col(Scope.name) == name))
    await audit.record_change(db, actor, "scope.delete", target=name)
