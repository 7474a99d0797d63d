"""Authorization codes (RFC 6749 §4.1, RFC 7636), their exchange at the token
endpoint, ID tokens (OpenID Connect Core §2, §3.1.3.6) and userinfo (§5.3).

A code is 256 random bits, stored only as its SHA-256, valid 60 seconds, bound
to the client, the redirect URI and the PKCE challenge. Claiming it is a
conditional UPDATE (`used_at IS NULL`), so of racing exchanges exactly one
wins; any later presentation ends the session the first one opened and is
audited (RFC 6749 §4.1.2: the code may have been stolen, so the tokens issued
for it are revoked).
"""

import base64
import hashlib
import hmac
import secrets
import uuid
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from app.accounts.models import Account
from app.audit import service as audit
from app.authorization.models import AuthorizationCode
from app.authorization.schemas import UserInfo
from app.authz.catalogue import ALL_HELD, OIDC_SCOPES, parse_scope
from app.clients.models import OAuthClient
from app.core.config import Settings
from app.core.db import affected, released_after
from app.core.errors import NotFound
from app.core.models import utcnow, uuid7
from app.core.network import RequestOrigin
from app.oauth.errors import InvalidGrant, InvalidRequest
from app.roles import service as roles_service
from app.sessions import service as sessions_service
from app.sessions.schemas import TokenResponse
from app.signing_keys.service import KeyRing

CODE_TTL_SECONDS = 60
# RFC 7636 §4.1: 43 to 128 unreserved characters.
MAX_VERIFIER_LENGTH = 128
MIN_VERIFIER_LENGTH = 43
_UNRESERVED = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")


def hash_code(code: str) -> str:
    return hashlib.sha256(code.encode("utf-8", "surrogatepass")).hexdigest()


def s256(verifier: str) -> str:
    """RFC 7636 §4.2: BASE64URL-ENCODE(SHA256(ASCII(code_verifier)))."""
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def half_hash(value: str) -> str:
    """OpenID Connect Core §3.1.3.6 `at_hash`: the left half of the SHA-256 of the
    token (every algorithm Gatehouse signs with uses SHA-256), base64url."""
    digest = hashlib.sha256(value.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest[:16]).rstrip(b"=").decode("ascii")


def grantable(client: OAuthClient, held: set[str], requested: list[str]) -> set[str]:
    """What a sign-in through `client` may carry: the requested scopes the account
    holds, plus the OpenID Connect scopes, which any account may request (all it
    holds when none were requested), within the client's `allowed_scopes`."""
    scopes = (set(requested) & (held | OIDC_SCOPES)) if requested else set(held)
    return scopes & set(client.allowed_scopes) if client.allowed_scopes else scopes


async def issue_code(
    db: AsyncSession,
    *,
    client_id: str,
    redirect_uri: str | None,
    account_id: uuid.UUID,
    browser_session_id: uuid.UUID,
    code_challenge: str,
    scope: str,
    nonce: str | None,
    auth_time: datetime,
) -> str:
    """A new code; `redirect_uri` is None when the request named none (§4.1.3:
    then the token request need not either). `scope` is the granted scope, or
    ALL_HELD for a first-party request that named none."""
    code = secrets.token_urlsafe(32)
    now = utcnow()
    db.add(
        AuthorizationCode(
            code_hash=hash_code(code),
            client_id=client_id,
            account_id=account_id,
            browser_session_id=browser_session_id,
            redirect_uri=redirect_uri or "",
            code_challenge=code_challenge,
            scope=scope,
            nonce=nonce,
            auth_time=auth_time,
            created_at=now,
            expires_at=now + timedelta(seconds=CODE_TTL_SECONDS),
        )
    )
    await db.flush()
    return code


def _invalid_grant() -> InvalidGrant:
    # One message whatever failed: the caller learns nothing about the code.
    return InvalidGrant("The authorization code is invalid, expired or already used")


def _verifier_ok(verifier: str, challenge: str) -> bool:
    if not MIN_VERIFIER_LENGTH <= len(verifier) <= MAX_VERIFIER_LENGTH:
        return False
    if not set(verifier) <= _UNRESERVED:
        return False
    return hmac.compare_digest(s256(verifier), challenge)


async def exchange(
    db: AsyncSession,
    *,
    settings: Settings,
    keyring: KeyRing,
    client: OAuthClient,
    code: str,
    redirect_uri: str | None,
    code_verifier: str | None,
    origin: RequestOrigin,
) -> TokenResponse:
    """RFC 6749 §4.1.3 with RFC 7636 §4.6: the code's client, redirect URI and
    challenge must match, then the code is claimed and an ordinary session opens
    (listed, ended and audited like any other login)."""
    if not code_verifier:
        raise InvalidRequest("code_verifier is required (PKCE, RFC 7636)")
    now = utcnow()
    row = await db.scalar(
        select(AuthorizationCode).where(col(AuthorizationCode.code_hash) == hash_code(code))
    )
    # A code of another client is refused and left as it is: that client did not
    # receive it, so its presentation says nothing about the rightful one.
    if row is None or row.client_id != client.client_id:
        raise _invalid_grant()
    if row.used_at is not None:
        await _reused(db, row, ip=origin.ip)
    if row.expires_at <= now:
        raise _invalid_grant()
    if row.redirect_uri and redirect_uri != row.redirect_uri:
        raise _invalid_grant()
    if not row.redirect_uri and redirect_uri is not None:
        raise _invalid_grant()
    if not _verifier_ok(code_verifier, row.code_challenge):
        raise _invalid_grant()
    claimed = await affected(
        db,
        update(AuthorizationCode)
        .where(
            col(AuthorizationCode.code_hash) == row.code_hash,
            col(AuthorizationCode.used_at).is_(None),
            col(AuthorizationCode.expires_at) > now,
        )
        .values(used_at=now)
        .execution_options(synchronize_session=False),
    )
    if claimed != 1:
        # A racing exchange won: this one is the second use.
        fresh = await db.scalar(
            select(AuthorizationCode)
            .where(col(AuthorizationCode.code_hash) == row.code_hash)
            .execution_options(populate_existing=True)
        )
        if fresh is not None and fresh.used_at is not None:
            await _reused(db, fresh, ip=origin.ip)
        raise _invalid_grant()
    account = await db.get(Account, row.account_id)
    if account is None:
        raise _invalid_grant()
    held, _ = await roles_service.effective_scopes(db, account.id)
    all_held = row.scope == ALL_HELD
    scopes = grantable(client, held, [] if all_held else parse_scope(row.scope))
    session_id = uuid7()
    tokens = await sessions_service.start_session(
        db,
        settings=settings,
        keyring=keyring,
        account=account,
        password_hash=None,
        scopes=scopes,
        user_agent=origin.user_agent,
        ip=origin.ip,
        all_held=all_held,
        client_id=client.client_id,
        session_id=session_id,
    )
    if tokens is None:  # disabled or deleted since the sign-in
        raise _invalid_grant()
    await db.execute(
        update(AuthorizationCode)
        .where(col(AuthorizationCode.code_hash) == row.code_hash)
        .values(session_id=session_id)
        .execution_options(synchronize_session=False)
    )
    if "openid" in scopes:
        tokens.id_token = id_token(
            settings=settings,
            keyring=keyring,
            account=account,
            client_id=client.client_id,
            session_id=session_id,
            auth_time=row.auth_time,
            nonce=row.nonce,
            access_token=tokens.access_token,
        )
    return tokens


async def _reused(db: AsyncSession, row: AuthorizationCode, *, ip: str | None) -> None:
    """A second use: end the session the first opened, audit, refuse. Kept
    although the request then fails (`released_after`)."""
    async with released_after(db):
        if row.session_id is not None:
            await sessions_service.end_session(db, row.session_id, reason="code_reuse")
        await audit.record(
            db,
            action="auth.code_reuse",
            actor=None,
            target=str(row.account_id),
            ip=ip,
            detail={
                "client_id": row.client_id,
                **({"session_id": str(row.session_id)} if row.session_id else {}),
            },
        )
    raise _invalid_grant()


def id_token(
    *,
    settings: Settings,
    keyring: KeyRing,
    account: Account,
    client_id: str,
    session_id: uuid.UUID,
    auth_time: datetime,
    nonce: str | None,
    access_token: str,
) -> str:
    """OpenID Connect Core §2 and §3.1.3.6: `typ: JWT` (never `at+jwt`, so it can
    never pass for an access token here), audience the client."""
    now = int(utcnow().timestamp())
    claims: dict[str, Any] = {
        "iss": settings.issuer,
        "sub": str(account.id),
        "aud": client_id,
        "exp": now + settings.access_token_ttl_seconds,
        "iat": now,
        "auth_time": int(auth_time.timestamp()),
        "sid": str(session_id),
        "at_hash": half_hash(access_token),
    }
    if nonce is not None:
        claims["nonce"] = nonce
    return keyring.sign(claims, typ="JWT")


async def userinfo(db: AsyncSession, *, account_id: uuid.UUID, scopes: frozenset[str]) -> UserInfo:
    """OpenID Connect Core §5.3: the claims the token's scopes ask for."""
    account = await db.get(Account, account_id)
    if account is None:  # the token check found it a moment ago
        raise NotFound("Account not found")
    info = UserInfo(sub=str(account.id), preferred_username=account.username)
    if "email" in scopes and account.email:
        info.email = account.email
        # Gatehouse does not verify addresses (no mail is sent).
        info.email_verified = False
    return info


async def purge_expired(db: AsyncSession) -> None:
    """Codes a minute past their lifetime are only evidence of reuse: an hour on,
    they go."""
    await db.execute(
        delete(AuthorizationCode)
        .where(col(AuthorizationCode.expires_at) <= utcnow() - timedelta(hours=1))
        .execution_options(synchronize_session=False)
    )
