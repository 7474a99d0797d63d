"""Personal access tokens: long-lived opaque bearer tokens for scripts and CI.

A token is `gatehouse_pat_`, 256 random bits in base62 and a CRC32 checksum of
them (so secret scanners recognise a leaked token, and a mistyped one is refused
without a query). Only its SHA-256 is stored: a fast hash suits 256 random bits,
which no one can guess at any speed. At each use its scopes are those it was
made with that the account still holds, so a role taken away narrows it on the
next request; a disabled account's tokens stop at once and a deleted account's
go with it. `last_used_at` is written at most once a minute per token.
"""

import hashlib
import secrets
import string
import uuid
import zlib
from datetime import timedelta

from sqlalchemy import bindparam, delete, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from app.accounts.models import Account
from app.audit import service as audit
from app.authz.catalogue import GATEHOUSE_CLIENT, Actor, Principal, format_scope, parse_scope
from app.core.config import Settings
from app.core.errors import Forbidden, Invalid, NotFound
from app.core.models import UTCDateTime, utcnow
from app.personal_tokens.models import PersonalAccessToken
from app.personal_tokens.schemas import (
    PersonalTokenCreate,
    PersonalTokenCreated,
    PersonalTokenPublic,
)
from app.roles import service as roles_service
from app.roles.models import AccountRole, RoleScope

PREFIX = "gatehouse_pat_"
_ALPHABET = string.digits + string.ascii_uppercase + string.ascii_lowercase
_BODY_LENGTH = 43  # 62**43 > 2**256
_CHECKSUM_LENGTH = 6  # 62**6 > 2**32
TOKEN_LENGTH = len(PREFIX) + _BODY_LENGTH + _CHECKSUM_LENGTH
LAST_USED_RESOLUTION = timedelta(minutes=1)


def _base62(number: int, width: int) -> str:
    digits = []
    for _ in range(width):
        number, digit = divmod(number, 62)
        digits.append(_ALPHABET[digit])
    return "".join(reversed(digits))


def _checksum(body: str) -> str:
    return _base62(zlib.crc32(body.encode()), _CHECKSUM_LENGTH)


def new_token() -> str:
    body = _base62(int.from_bytes(secrets.token_bytes(32), "big"), _BODY_LENGTH)
    return PREFIX + body + _checksum(body)


def looks_like_token(token: str) -> bool:
    """Whether `token` has the shape and checksum of one of ours; says nothing of
    whether it exists."""
    if len(token) != TOKEN_LENGTH or not token.startswith(PREFIX):
        return False
    rest = token[len(PREFIX) :]
    if not all(ch in _ALPHABET for ch in rest):
        return False
    body, checksum = rest[:_BODY_LENGTH], rest[_BODY_LENGTH:]
    return secrets.compare_digest(_checksum(body), checksum)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _public(row: PersonalAccessToken) -> PersonalTokenPublic:
    return PersonalTokenPublic(
        id=row.id,
        name=row.name,
        scopes=parse_scope(row.scope),
        created_at=row.created_at,
        expires_at=row.expires_at,
        last_used_at=row.last_used_at,
    )


async def create_token(
    db: AsyncSession,
    *,
    actor: Actor[Principal],
    settings: Settings,
    new: PersonalTokenCreate,
) -> PersonalTokenCreated:
    """Make a token for the caller's own account. Only a session's access token
    may: a personal access token minting another would outlive its own
    revocation, and a client's token has no account."""
    principal, name, expires_in_days = actor.principal, new.name, new.expires_in_days
    if principal.kind != "session" or principal.account_id is None:
        raise Forbidden("Only a session's access token can create a personal access token")
    days = settings.pat_max_days if expires_in_days is None else expires_in_days
    if days > settings.pat_max_days:
        raise Invalid(
            f"expires_in_days must be at most {settings.pat_max_days}", field="expires_in_days"
        )
    wanted = set(new.scopes)
    held, _ = await roles_service.effective_scopes(db, principal.account_id)
    if missing := sorted(wanted - held):
        raise Invalid(f"The account does not hold {missing[0]}", field="scopes")
    # The guardrail: nobody grants what they do not hold, in the token making the
    # request (a token narrowed to me:write makes no admin token).
    if not wanted <= principal.scopes:
        raise Forbidden("You cannot give a token scopes your own token does not carry")
    token = new_token()
    now = utcnow()
    row = PersonalAccessToken(
        account_id=principal.account_id,
        name=name,
        token_hash=hash_token(token),
        scope=format_scope(wanted),
        created_at=now,
        expires_at=now + timedelta(days=days),
    )
    db.add(row)
    await db.flush()
    await audit.record_change(
        db,
        actor,
        "token.create",
        target=str(row.id),
        detail={"name": name, "scopes": sorted(wanted), "expires_at": row.expires_at.isoformat()},
    )
    return PersonalTokenCreated(**_public(row).model_dump(), token=token)


async def list_tokens(
    db: AsyncSession, *, account_id: uuid.UUID, check_account: bool = False
) -> list[PersonalTokenPublic]:
    """An account's tokens, newest first (expired ones too, until purged)."""
    if check_account and await db.get(Account, account_id) is None:
        raise NotFound("Account not found")
    rows = await db.scalars(
        select(PersonalAccessToken)
        .where(col(PersonalAccessToken.account_id) == account_id)
        .order_by(col(PersonalAccessToken.id).desc())
    )
    return [_public(row) for row in rows.all()]


async def revoke_token(
    db: AsyncSession,
    *,
    actor: Actor[Principal],
    account_id: uuid.UUID,
    token_id: uuid.UUID,
) -> None:
    """Delete one of `account_id`'s tokens; 404 when it has no such token (another
    account's token id is indistinguishable from one that never existed)."""
    row = await db.scalar(
        select(PersonalAccessToken).where(
            col(PersonalAccessToken.id) == token_id,
            col(PersonalAccessToken.account_id) == account_id,
        )
    )
    if row is None:
        raise NotFound("Token not found")
    await db.execute(delete(PersonalAccessToken).where(col(PersonalAccessToken.id) == token_id))
    await audit.record_change(
        db,
        actor,
        "token.revoke",
        target=str(token_id),
        detail={"name": row.name, "account_id": str(account_id)},
    )


async def revoke_presented(db: AsyncSession, *, token: str, ip: str | None) -> None:
    """RFC 7009: whoever holds a token may revoke it (a leaked one, say)."""
    if not looks_like_token(token):
        return
    row = await db.scalar(
        select(PersonalAccessToken).where(col(PersonalAccessToken.token_hash) == hash_token(token))
    )
    if row is None:
        return
    await db.execute(delete(PersonalAccessToken).where(col(PersonalAccessToken.id) == row.id))
    await audit.record(
        db,
        action="token.revoke",
        actor=row.account_id,
        target=str(row.id),
        ip=ip,
        detail={"name": row.name, "via": "revoke"},
    )


# Built once: this runs on every request made with a personal access token. One
# query: the token, its account (into the identity map, so a handler reading the
# account costs nothing more) and the scopes the account holds now.
_LIVE_TOKEN = (
    select(PersonalAccessToken, Account, col(RoleScope.scope_name))
    .join(Account, col(Account.id) == col(PersonalAccessToken.account_id))
    .outerjoin(AccountRole, col(AccountRole.account_id) == col(Account.id))
    .outerjoin(RoleScope, col(RoleScope.role_name) == col(AccountRole.role_name))
    .where(
        col(PersonalAccessToken.token_hash) == bindparam("token_hash"),
        col(PersonalAccessToken.expires_at) > bindparam("now", type_=UTCDateTime()),
        col(Account.is_active).is_(True),
    )
)


async def authenticate(
    db: AsyncSession, *, token: str
) -> tuple[Principal, PersonalAccessToken, Account] | None:
    """Who a presented token speaks for now (with the token's row and its account),
    or None when it is not live."""
    if not looks_like_token(token):
        return None
    now = utcnow()
    rows = (await db.execute(_LIVE_TOKEN, {"token_hash": hash_token(token), "now": now})).all()
    if not rows:
        return None
    row: PersonalAccessToken = rows[0][0]
    account: Account = rows[0][1]
    held = {scope for _, _, scope in rows if scope is not None}
    cutoff = now - LAST_USED_RESOLUTION
    if row.last_used_at is None or row.last_used_at <= cutoff:
        # Conditional, so racing requests (and instances) write it once a minute.
        await db.execute(
            update(PersonalAccessToken)
            .where(
                col(PersonalAccessToken.id) == row.id,
                or_(
                    col(PersonalAccessToken.last_used_at).is_(None),
                    col(PersonalAccessToken.last_used_at) <= cutoff,
                ),
            )
            .values(last_used_at=now)
            .execution_options(synchronize_session=False)
        )
    principal = Principal(
        account_id=row.account_id,
        session_id=None,
        scopes=frozenset(parse_scope(row.scope)) & held,
        client_id=GATEHOUSE_CLIENT,
        kind="pat",
        token_id=str(row.id),
    )
    return principal, row, account


async def purge_expired(db: AsyncSession) -> int:
    """Delete tokens a week past their expiry (listed as expired until then)."""
    result = await db.execute(
        delete(PersonalAccessToken)
        .where(col(PersonalAccessToken.expires_at) <= utcnow() - timedelta(days=7))
        .execution_options(synchronize_session=False)
    )
    return int(getattr(result, "rowcount", 0) or 0)
