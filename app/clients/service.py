"""OAuth clients: registration and its rules, secrets, client authentication,
the client's own tokens (client credentials) and their liveness.

A client secret is 256 random bits shown once and stored as its SHA-256. A fast
hash is right here, unlike for passwords: a password is guessable, so its hash
must make each guess expensive (argon2), but a 256-bit random secret cannot be
guessed at any speed, and a slow hash would only put argon2's cost (and a
denial-of-service lever) on every token and introspection request. Presented
secrets are compared with the stored hash in constant time.
"""

import hashlib
import hmac
import secrets
from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime, timedelta
from urllib.parse import urlsplit

from sqlalchemy import Table, bindparam, delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from app.audit import service as audit
from app.authz.catalogue import ACCOUNT_SCOPES, Actor, Principal, format_scope
from app.clients.models import ClientRole, OAuthClient
from app.clients.schemas import ClientCreate, ClientCreated, ClientPublic, ClientUpdate
from app.core.config import Settings
from app.core.db import grouped, read_rows
from app.core.errors import Conflict, Invalid, NotFound
from app.core.models import utcnow
from app.core.pagination import decode_cursor, keyset_page
from app.core.schemas import Page
from app.oauth.errors import InvalidClient
from app.roles import service as roles_service
from app.roles.models import RoleScope
from app.sessions import service as sessions_service
from app.sessions.schemas import TokenResponse
from app.signing_keys.service import KeyRing

CONFIDENTIAL = "confidential"
PUBLIC = "public"
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "::1", "localhost"})


def new_secret() -> str:
    return secrets.token_urlsafe(32)  # 256 bits


def hash_secret(secret: str) -> str:
    # See the module docstring: a fast hash suits a random 256-bit secret.
    return hashlib.sha256(secret.encode("utf-8", "surrogatepass")).hexdigest()


def _new_client_id() -> str:
    return secrets.token_urlsafe(18)


# --- validation ---------------------------------------------------------------


def redirect_uri_problem(uri: str) -> str | None:
    """Why `uri` cannot be registered, or None: absolute, no fragment, `https`, or
    `http` only on a loopback host (RFC 8252 §7.3, OAuth 2.1 §2.3.1)."""
    if any(ord(ch) <= 0x20 or ord(ch) == 0x7F for ch in uri):
        return "must not contain spaces or control characters"
    if "#" in uri:
        return "must not contain a fragment"
    try:
        parts = urlsplit(uri)
        host = parts.hostname
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number
    except ValueError:
        return "is not a valid absolute URI"
    if parts.scheme not in ("https", "http") or not host:
        return "must be an absolute https URI (or http on a loopback address)"
    if parts.username is not None or parts.password is not None:
        return "must not carry user information"
    if parts.scheme == "http" and host not in LOOPBACK_HOSTS:
        return "may use http only on a loopback address (127.0.0.1, [::1], localhost)"
    return None


def _check_shape(
    *, type_: str, grant_types: Sequence[str], redirect_uris: Sequence[str], roles: Sequence[str]
) -> None:
    for uri in redirect_uris:
        if problem := redirect_uri_problem(uri):
            raise Invalid(f"Redirect URI {problem}", field="redirect_uris")
    if "client_credentials" in grant_types and type_ != CONFIDENTIAL:
        raise Invalid("Only a confidential client may use client_credentials", field="grant_types")
    if "authorization_code" in grant_types and not redirect_uris:
        raise Invalid(
            "A client using authorization_code needs at least one redirect URI",
            field="redirect_uris",
        )
    if roles and type_ != CONFIDENTIAL:
        raise Invalid("Only a confidential client can hold roles", field="roles")


async def _check_known_scopes(db: AsyncSession, scopes: Sequence[str]) -> None:
    if unknown := await roles_service.unknown_scopes(db, scopes):
        raise Invalid(f"Unknown scope: {unknown[0]}", field="allowed_scopes")


async def _check_may_grant(db: AsyncSession, actor: Actor[Principal], roles: Sequence[str]) -> None:
    """Registering or changing a client that holds roles grants the client every
    scope those roles carry: the guardrail applies to all of them."""
    wanted = {s for scopes in (await roles_service.scopes_of(db, roles)).values() for s in scopes}
    await roles_service.check_may_grant(db, actor, wanted)


# --- reading ------------------------------------------------------------------


async def _roles_of(db: AsyncSession, client_ids: Sequence[str]) -> defaultdict[str, list[str]]:
    return await grouped(db, col(ClientRole.client_id), col(ClientRole.role_name), client_ids)


def redirect_uris_of(client: OAuthClient, settings: Settings) -> list[str]:
    """The built-in client's redirect URI is Swagger UI's on this issuer, which
    only the running service knows."""
    if client.builtin:
        return [f"{settings.issuer.rstrip('/')}/docs/oauth2-redirect", *client.redirect_uris]
    return list(client.redirect_uris)


async def to_public(
    db: AsyncSession, settings: Settings, clients: Sequence[OAuthClient]
) -> list[ClientPublic]:
    roles = await _roles_of(db, [c.client_id for c in clients])
    return [
        ClientPublic(
            client_id=c.client_id,
            name=c.name,
            type=PUBLIC if c.type == PUBLIC else CONFIDENTIAL,
            redirect_uris=redirect_uris_of(c, settings),
            grant_types=list(c.grant_types),
            allowed_scopes=list(c.allowed_scopes),
            roles=roles[c.client_id],
            first_party=c.first_party,
            is_active=c.is_active,
            builtin=c.builtin,
            created_at=c.created_at,
        )
        for c in clients
    ]


async def _get(db: AsyncSession, client_id: str, *, lock: bool = False) -> OAuthClient:
    query = select(OAuthClient).where(col(OAuthClient.client_id) == client_id)
    if lock:
        query = query.with_for_update()
    client = await db.scalar(query)
    if client is None:
        raise NotFound("Client not found")
    return client


async def get_client(db: AsyncSession, *, settings: Settings, client_id: str) -> ClientPublic:
    return (await to_public(db, settings, [await _get(db, client_id)]))[0]


def _client_cursor(value: str) -> str:
    if len(value) > 64 or "\x00" in value:
        raise ValueError(value)
    return value


async def list_clients(
    db: AsyncSession, *, settings: Settings, limit: int, cursor: str | None
) -> Page[ClientPublic]:
    query = select(OAuthClient).order_by(col(OAuthClient.client_id)).limit(limit + 1)
    if cursor:
        query = query.where(col(OAuthClient.client_id) > decode_cursor(cursor, _client_cursor))
    rows, next_cursor = keyset_page((await db.scalars(query)).all(), limit, lambda c: c.client_id)
    return Page[ClientPublic](items=await to_public(db, settings, rows), next_cursor=next_cursor)


# --- changes ------------------------------------------------------------------


async def create_client(
    db: AsyncSession, *, actor: Actor[Principal], settings: Settings, new: ClientCreate
) -> ClientCreated:
    name, type_, allowed_scopes = new.name, new.type, new.allowed_scopes
    grant_types: list[str] = list(dict.fromkeys(new.grant_types))
    redirect_uris = list(dict.fromkeys(new.redirect_uris))
    roles = sorted(set(new.roles))
    _check_shape(type_=type_, grant_types=grant_types, redirect_uris=redirect_uris, roles=roles)
    await _check_known_scopes(db, allowed_scopes)
    await roles_service.check_roles_exist(db, roles)
    await _check_may_grant(db, actor, roles)
    secret = new_secret() if type_ == CONFIDENTIAL else None
    client = OAuthClient(
        client_id=_new_client_id(),
        name=name,
        type=type_,
        redirect_uris=redirect_uris,
        grant_types=grant_types,
        allowed_scopes=sorted(set(allowed_scopes)),
        first_party=new.first_party,
        secret_hash=hash_secret(secret) if secret else None,
    )
    db.add(client)
    await db.flush()
    for role in roles:
        db.add(ClientRole(client_id=client.client_id, role_name=role))
    try:
        async with db.begin_nested():
            await db.flush()
    except IntegrityError:  # a role deleted since it was checked
        raise Conflict("A role was deleted while the client was registered") from None
    await audit.record_change(
        db,
        actor,
        "client.create",
        target=client.client_id,
        detail={"name": name, "type": type_, "grant_types": grant_types, "roles": roles},
    )
    public = (await to_public(db, settings, [client]))[0]
    return ClientCreated(**public.model_dump(), client_secret=secret)


async def update_client(
    db: AsyncSession,
    *,
    actor: Actor[Principal],
    settings: Settings,
    client_id: str,
    change: ClientUpdate,
) -> ClientPublic:
    """Change a client. What its tokens may do changes at once: a new grant-type
    set, role set or disabling refuses its own tokens from the next request (its
    version moves), and disabling or changing its grant types or scope cap ends
    the sessions opened through it."""
    client = await _get(db, client_id, lock=True)
    if client.builtin and change.model_dump(exclude_none=True).keys() - {"is_active"}:
        raise Conflict("The built-in client can only be switched on or off")
    roles, grant_types, allowed_scopes = change.roles, change.grant_types, change.allowed_scopes
    current_roles = (await _roles_of(db, [client_id]))[client_id]
    new_roles = sorted(set(roles)) if roles is not None else current_roles
    new_grants = list(dict.fromkeys(grant_types)) if grant_types is not None else client.grant_types
    uris = change.redirect_uris
    new_uris = list(dict.fromkeys(uris)) if uris is not None else None
    _check_shape(
        type_=client.type,
        grant_types=new_grants,
        redirect_uris=new_uris if new_uris is not None else redirect_uris_of(client, settings),
        roles=new_roles,
    )
    if allowed_scopes is not None:
        await _check_known_scopes(db, allowed_scopes)
    await roles_service.check_roles_exist(db, new_roles)
    # Changing a client that holds roles, even only its name, needs every scope
    # they carry: both the roles it keeps or gains and those it loses.
    await _check_may_grant(db, actor, sorted(set(current_roles) | set(new_roles)))

    wanted: dict[str, object] = {
        "name": change.name,
        "redirect_uris": new_uris,
        "grant_types": new_grants if grant_types is not None else None,
        "allowed_scopes": sorted(set(allowed_scopes)) if allowed_scopes is not None else None,
        "first_party": change.first_party,
        "is_active": change.is_active,
    }
    changed = {k: v for k, v in wanted.items() if v is not None and v != getattr(client, k)}
    for field, value in changed.items():
        setattr(client, field, value)
    # New grant types or a switched-off client: its own tokens stop (the version
    # moves) and so do the sessions opened through it; a narrower scope cap ends
    # those sessions, whose refresh tokens would otherwise carry the old scopes.
    revoke_own = bool(changed.keys() & {"grant_types", "is_active"})
    end_sessions = bool(changed.keys() & {"grant_types", "allowed_scopes"}) or (
        changed.get("is_active") is False
    )
    if roles is not None and new_roles != current_roles:
        await db.execute(delete(ClientRole).where(col(ClientRole.client_id) == client_id))
        for role in new_roles:
            db.add(ClientRole(client_id=client_id, role_name=role))
        changed["roles"] = new_roles
        revoke_own = True
    if changed:
        if revoke_own:
            client.authz_version += 1
        client.updated_at = utcnow()
        try:
            async with db.begin_nested():
                await db.flush()
        except IntegrityError:  # a role deleted since it was checked
            raise Conflict("A role was deleted while the client was changed") from None
        if end_sessions:
            await sessions_service.end_client_sessions(db, client_id, reason="client_changed")
        await audit.record_change(db, actor, "client.update", target=client_id, detail=changed)
    return (await to_public(db, settings, [client]))[0]


async def delete_client(db: AsyncSession, *, actor: Actor[Principal], client_id: str) -> None:
    """Delete a client: its sessions (and their refresh tokens) go with it, and its
    own tokens are refused once it no longer exists."""
    client = await _get(db, client_id, lock=True)
    if client.builtin:
        raise Conflict("The built-in client cannot be deleted; it can be switched off")
    await _check_may_grant(db, actor, (await _roles_of(db, [client_id]))[client_id])
    await db.execute(delete(OAuthClient).where(col(OAuthClient.client_id) == client_id))
    await audit.record_change(
        db, actor, "client.delete", target=client_id, detail={"name": client.name}
    )


async def rotate_secret(
    db: AsyncSession,
    *,
    actor: Actor[Principal],
    client_id: str,
    previous_valid_for_seconds: int,
) -> str:
    """A new secret, shown once. The old one keeps authenticating for
    `previous_valid_for_seconds` (0: not at all), so a service can roll the new
    one out without downtime; the client's access tokens are refused from the
    next request either way (its secret state changed)."""
    client = await _get(db, client_id, lock=True)
    if client.type != CONFIDENTIAL:
        raise Conflict("A public client has no secret")
    await _check_may_grant(db, actor, (await _roles_of(db, [client_id]))[client_id])
    secret = new_secret()
    now = utcnow()
    if previous_valid_for_seconds > 0 and client.secret_hash:
        client.previous_secret_hash = client.secret_hash
        client.previous_secret_expires_at = now + timedelta(seconds=previous_valid_for_seconds)
    else:
        client.previous_secret_hash = None
        client.previous_secret_expires_at = None
    client.secret_hash = hash_secret(secret)
    client.authz_version += 1
    client.updated_at = now
    await db.flush()
    await audit.record_change(
        db,
        actor,
        "client.secret_rotate",
        target=client_id,
        detail={"previous_valid_for_seconds": previous_valid_for_seconds},
    )
    return secret


# --- authentication and the client's own tokens --------------------------------


_CLIENTS: Table = OAuthClient.__table__  # type: ignore[attr-defined]  # SQLModel: untyped
_CLIENT_ROLES: Table = ClientRole.__table__  # type: ignore[attr-defined]
_ROLE_SCOPES: Table = RoleScope.__table__  # type: ignore[attr-defined]
# Built once: every token, revocation and introspection request authenticates its
# client with this one statement (a row per scope its roles carry).
_CLIENT_WITH_SCOPES = (
    select(_CLIENTS, _ROLE_SCOPES.c.scope_name)
    .select_from(
        _CLIENTS.outerjoin(
            _CLIENT_ROLES, _CLIENT_ROLES.c.client_id == _CLIENTS.c.client_id
        ).outerjoin(_ROLE_SCOPES, _ROLE_SCOPES.c.role_name == _CLIENT_ROLES.c.role_name)
    )
    .where(_CLIENTS.c.client_id == bindparam("client_id"))
)
_CLIENT_COLUMNS = [column.name for column in _CLIENTS.columns]


async def load_with_scopes(db: AsyncSession, client_id: str) -> tuple[OAuthClient, set[str]] | None:
    """The client and the scopes its roles carry, in one Core statement (outside
    any transaction when the request has none open yet). The client comes back as
    a detached value, not a row the session tracks: nothing changes it."""
    rows = await read_rows(db, _CLIENT_WITH_SCOPES, {"client_id": client_id})
    if not rows:
        return None
    first = rows[0]
    client = OAuthClient(**dict(zip(_CLIENT_COLUMNS, first, strict=False)))
    return client, {row[-1] for row in rows if row[-1] is not None}


def _secret_matches(client: OAuthClient, secret: str, now: datetime) -> bool:
    presented = hash_secret(secret)
    matches = client.secret_hash is not None and hmac.compare_digest(presented, client.secret_hash)
    if (
        client.previous_secret_hash is not None
        and client.previous_secret_expires_at is not None
        and client.previous_secret_expires_at > now
    ):
        # Both compared whatever the first gave: the time taken says nothing.
        matches = hmac.compare_digest(presented, client.previous_secret_hash) or matches
    return matches


async def authenticate(
    db: AsyncSession, *, client_id: str, secret: str | None, basic: bool
) -> tuple[OAuthClient, set[str]]:
    """RFC 6749 §2.3: a confidential client proves itself with its secret; a public
    client sends its id alone, and a secret from one is refused (it has none, so
    whoever sends one is not that client, or is misconfigured). An unknown or
    disabled client fails the same way as a wrong secret."""
    loaded = await load_with_scopes(db, client_id)
    failure = InvalidClient("Client authentication failed", basic=basic)
    if loaded is None:
        raise failure
    client, scopes = loaded
    if not client.is_active:
        raise failure
    if client.type == CONFIDENTIAL:
        if secret is None or not _secret_matches(client, secret, utcnow()):
            raise failure
    elif secret is not None:
        raise failure
    return client, scopes


def own_scopes(held: set[str]) -> set[str]:
    """What a client's own token may carry: its roles' scopes, never the account
    scopes `me:*` (a client is no account)."""
    return held - ACCOUNT_SCOPES


def user_scope_cap(client: OAuthClient, scopes: set[str]) -> set[str]:
    """A user's token through `client` carries at most its `allowed_scopes`."""
    return scopes & set(client.allowed_scopes) if client.allowed_scopes else scopes


async def issue_client_token(
    db: AsyncSession,
    *,
    settings: Settings,
    keyring: KeyRing,
    client: OAuthClient,
    scopes: set[str],
    ip: str | None,
) -> TokenResponse:
    """RFC 6749 §4.4.3: an access token for the client itself (`sub` = `client_id`,
    no `sid`), and no refresh token. It carries the client's version, checked at
    each use like an account's."""
    now = int(utcnow().timestamp())
    scope = format_scope(scopes)
    access_token = keyring.sign(
        {
            "iss": settings.issuer,
            "aud": settings.audience,
            "sub": client.client_id,
            "client_id": client.client_id,
            "jti": secrets.token_urlsafe(16),
            "iat": now,
            "exp": now + settings.access_token_ttl_seconds,
            "scope": scope,
            "ver": client.authz_version,
        }
    )
    await audit.record(
        db,
        action="auth.client_credentials",
        actor=None,
        target=client.client_id,
        ip=ip,
        detail={"scope": scope},
        alone=True,  # the whole change, and the last statement of the request
    )
    return TokenResponse(
        access_token=access_token,
        expires_in=settings.access_token_ttl_seconds,
        refresh_token=None,
        scope=scope,
    )


# Built once: this runs on every request made with a client's own token.
_LIVE_CLIENT_SCOPES = (
    select(col(OAuthClient.client_id), col(RoleScope.scope_name))
    .outerjoin(ClientRole, col(ClientRole.client_id) == col(OAuthClient.client_id))
    .outerjoin(RoleScope, col(RoleScope.role_name) == col(ClientRole.role_name))
    .where(
        col(OAuthClient.client_id) == bindparam("client_id"),
        col(OAuthClient.is_active).is_(True),
        col(OAuthClient.type) == CONFIDENTIAL,
        col(OAuthClient.authz_version) == bindparam("authz_version"),
    )
)


async def client_token_is_live(
    db: AsyncSession, *, client_id: str, authz_version: int, scopes: frozenset[str]
) -> bool:
    """The per-request check of a client-credentials token, one query: the client
    exists, is active, its version is the token's (no change to its roles, grant
    types, secret or activity since), and its roles still carry every scope the
    token does (so a role narrowed or deleted, or a scope deleted, ends it too)."""
    rows = (
        await db.execute(
            _LIVE_CLIENT_SCOPES, {"client_id": client_id, "authz_version": authz_version}
        )
    ).all()
    if not rows:
        return False
    return scopes <= own_scopes({scope for _, scope in rows if scope is not None})


async def revoke_client_tokens(db: AsyncSession, *, client_id: str) -> None:
    """RFC 7009 §2.1 allows revoking every token of the same grant: a client's own
    tokens are stateless, so revoking one moves its version and ends them all."""
    await db.execute(
        update(OAuthClient)
        .where(col(OAuthClient.client_id) == client_id)
        .values(authz_version=col(OAuthClient.authz_version) + 1)
        .execution_options(synchronize_session=False)
    )
