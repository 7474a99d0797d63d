"""Roles, the scope catalogue, and role assignment, with the guardrails:
nobody grants what they do not hold, built-ins stay, the last admin stays."""

import uuid
from collections import defaultdict
from collections.abc import Sequence
from typing import Any, cast

from sqlalchemy import CursorResult, delete, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from app.core.errors import Conflict, Forbidden, Invalid, NotFound
from app.models import Account, AccountRole, Role, RoleScope, Scope
from app.schemas import RolePublic, ScopePublic
from app.security.scopes import ADMIN_ROLE, holds_all
from app.services import accounts as accounts_service


async def _scopes_of(session: AsyncSession, names: Sequence[str]) -> dict[str, list[str]]:
    result: dict[str, list[str]] = defaultdict(list)
    rows = await session.execute(
        select(col(RoleScope.role_name), col(RoleScope.scope_name))
        .where(col(RoleScope.role_name).in_(names))
        .order_by(col(RoleScope.scope_name))
    )
    for role, scope in rows.all():
        result[role].append(scope)
    return result


async def list_roles(session: AsyncSession) -> list[RolePublic]:
    roles = (await session.scalars(select(Role).order_by(col(Role.name)))).all()
    scopes = await _scopes_of(session, [r.name for r in roles])
    return [
        RolePublic(name=r.name, description=r.description, scopes=scopes[r.name], builtin=r.builtin)
        for r in roles
    ]


async def _get_role(session: AsyncSession, name: str, *, lock: bool = False) -> Role:
    query = select(Role).where(col(Role.name) == name)
    if lock:
        query = query.with_for_update()
    role = await session.scalar(query)
    if role is None:
        raise NotFound("Role not found")
    return role


async def get_role(session: AsyncSession, name: str) -> RolePublic:
    role = await _get_role(session, name)
    scopes = await _scopes_of(session, [name])
    return RolePublic(
        name=role.name, description=role.description, scopes=scopes[name], builtin=role.builtin
    )


async def _check_may_grant(session: AsyncSession, actor: uuid.UUID, scopes: set[str]) -> None:
    held, is_admin = await accounts_service.effective_scopes(session, actor)
    if not holds_all(held, scopes, is_admin=is_admin):
        raise Forbidden("You cannot grant scopes you do not hold")


async def _check_known_scopes(session: AsyncSession, scopes: set[str]) -> None:
    if not scopes:
        return
    known = set(
        (await session.scalars(select(col(Scope.name)).where(col(Scope.name).in_(scopes)))).all()
    )
    if unknown := sorted(scopes - known):
        raise Invalid(f"Unknown scope: {unknown[0]}", field="scopes")


async def create_role(
    session: AsyncSession, *, actor: uuid.UUID, name: str, description: str, scopes: list[str]
) -> RolePublic:
    wanted = set(scopes)
    await _check_known_scopes(session, wanted)
    await _check_may_grant(session, actor, wanted)
    try:
        async with session.begin_nested():
            session.add(Role(name=name, description=description, builtin=False))
            await session.flush()
    except IntegrityError:
        raise Conflict("A role with that name exists") from None
    for scope in sorted(wanted):
        session.add(RoleScope(role_name=name, scope_name=scope))
    await session.flush()
    return await get_role(session, name)


async def update_role(
    session: AsyncSession,
    *,
    actor: uuid.UUID,
    name: str,
    description: str | None,
    scopes: list[str] | None,
) -> tuple[RolePublic, dict[str, object]]:
    role = await _get_role(session, name, lock=True)
    changed: dict[str, object] = {}
    if description is not None and description != role.description:
        # Changing a role, even only its description, needs every scope it carries.
        await _check_may_grant(session, actor, set((await _scopes_of(session, [name]))[name]))
        role.description = description
        changed["description"] = description
    if scopes is not None:
        wanted = set(scopes)
        current = set((await _scopes_of(session, [name]))[name])
        if wanted != current:
            if role.name == ADMIN_ROLE:
                raise Conflict("The admin role always carries every built-in scope")
            await _check_known_scopes(session, wanted)
            # Both what is added and what is taken away: removing a scope from a
            # role also changes what its holders may do.
            await _check_may_grant(session, actor, wanted | current)
            await session.execute(delete(RoleScope).where(col(RoleScope.role_name) == name))
            for scope in sorted(wanted):
                session.add(RoleScope(role_name=name, scope_name=scope))
            await accounts_service.bump_authz_version(session, role=name)
            changed["added"] = sorted(wanted - current)
            changed["removed"] = sorted(current - wanted)
    await session.flush()
    return await get_role(session, name), changed


async def delete_role(session: AsyncSession, *, actor: uuid.UUID, name: str) -> None:
    role = await _get_role(session, name, lock=True)
    if role.builtin:
        raise Conflict("Built-in roles cannot be deleted")
    scopes = set((await _scopes_of(session, [name]))[name])
    await _check_may_grant(session, actor, scopes)
    await accounts_service.bump_authz_version(session, role=name)
    await session.execute(delete(Role).where(col(Role.name) == name))


async def check_may_assign(session: AsyncSession, *, actor: uuid.UUID, role: str) -> None:
    """404 for an unknown role, 403 unless `actor` holds every scope it carries."""
    await _get_role(session, role)
    await _check_may_grant(session, actor, set((await _scopes_of(session, [role]))[role]))


async def assign_role(
    session: AsyncSession, *, actor: uuid.UUID, account_id: uuid.UUID, role: str
) -> tuple[Account, bool]:
    """Idempotent; returns whether anything changed."""
    account = await accounts_service.get_account(session, account_id, lock=True)
    await check_may_assign(session, actor=actor, role=role)
    exists = await session.scalar(
        select(func.count()).where(
            col(AccountRole.account_id) == account_id, col(AccountRole.role_name) == role
        )
    )
    if exists:
        return account, False
    try:
        async with session.begin_nested():
            session.add(AccountRole(account_id=account_id, role_name=role))
            await session.flush()
    except IntegrityError:  # a concurrent identical assignment won
        return account, False
    await accounts_service.bump_authz_version(session, [account_id])
    return account, True


async def unassign_role(
    session: AsyncSession, *, actor: uuid.UUID, account_id: uuid.UUID, role: str
) -> tuple[Account, bool]:
    if role == ADMIN_ROLE:
        await accounts_service.lock_admin_role(session)
    account = await accounts_service.get_account(session, account_id, lock=True)
    # Before the grant check: when two admins demote each other at once, the one
    # that waited on the lock has just lost `admin` itself, and the answer is 409.
    if role == ADMIN_ROLE and await accounts_service.is_last_active_admin(session, account):
        raise Conflict("The last active admin cannot lose the admin role")
    await check_may_assign(session, actor=actor, role=role)
    result = cast(
        "CursorResult[Any]",
        await session.execute(
            delete(AccountRole).where(
                col(AccountRole.account_id) == account_id, col(AccountRole.role_name) == role
            )
        ),
    )
    changed = bool(result.rowcount)
    if changed:
        await accounts_service.bump_authz_version(session, [account_id])
    return account, changed


async def list_scopes(session: AsyncSession) -> list[ScopePublic]:
    rows = (await session.scalars(select(Scope).order_by(col(Scope.name)))).all()
    return [ScopePublic(name=s.name, description=s.description, builtin=s.builtin) for s in rows]


async def create_scope(session: AsyncSession, *, name: str, description: str) -> ScopePublic:
    try:
        async with session.begin_nested():
            session.add(Scope(name=name, description=description, builtin=False))
            await session.flush()
    except IntegrityError:
        raise Conflict("A scope with that name exists") from None
    return ScopePublic(name=name, description=description, builtin=False)


async def delete_scope(session: AsyncSession, *, actor: uuid.UUID, name: str) -> None:
    scope = await session.scalar(select(Scope).where(col(Scope.name) == name).with_for_update())
    if scope is None:
        raise NotFound("Scope not found")
    if scope.builtin:
        raise Conflict("Built-in scopes cannot be deleted")
    await _check_may_grant(session, actor, {name})
    holders = select(col(AccountRole.account_id)).where(
        col(AccountRole.role_name).in_(
            select(col(RoleScope.role_name)).where(col(RoleScope.scope_name) == name)
        )
    )
    await accounts_service.bump_authz_version(session, list((await session.scalars(holders)).all()))
    await session.execute(delete(Scope).where(col(Scope.name) == name))
