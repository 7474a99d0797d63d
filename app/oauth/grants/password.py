"""The resource owner password grant (RFC 6749 §4.3), for first-party use only
(RFC 9700 §2.4 says apps must not use it; browser apps get the code flow).

Unknown user, wrong password and disabled account cost the same work and give
byte-identical answers, so neither timing nor text tells an attacker which
usernames exist.
"""

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from app.accounts import service as accounts_service
from app.accounts.models import Account
from app.audit import service as audit
from app.authz.catalogue import parse_scope
from app.clients import service as clients_service
from app.core.db import released_after
from app.oauth.errors import InvalidGrant
from app.oauth.grants.base import TokenRequest, grant
from app.oauth.scopes import check_catalogue
from app.roles import service as roles_service
from app.sessions import service as sessions_service
from app.sessions.schemas import TokenResponse
from app.state import State
from app.throttle import service as throttle

INVALID_CREDENTIALS = "Invalid username or password"


@grant("password")
async def password_grant(db: AsyncSession, request: TokenRequest, state: State) -> TokenResponse:
    username, password = request.require("username", "password")
    requested = parse_scope(request.params.get("scope"))
    await check_catalogue(db, requested)
    account = await accounts_service.find_by_username(db, username)
    key = accounts_service.username_key(username)[:128]
    origin = request.origin
    ok = await throttle.verify_password(
        db,
        hasher=state.hasher,
        slots=state.login_slots,
        limit=throttle.login_limit(state.settings),
        keys=[throttle.Counted(f"account:{key}", key, "account"), throttle.address_key(origin)],
        password_hash=account.password_hash if account else None,
        password=password,
        origin=origin,
    )
    if not ok or account is None or not account.is_active:
        async with released_after(db):
            await audit.record(
                db,
                action="auth.login_failed",
                actor=None,
                target=str(account.id) if account else key,
                ip=origin.ip,
                detail={"username": key},
            )
        raise InvalidGrant(INVALID_CREDENTIALS)

    if state.hasher.needs_rehash(account.password_hash):
        new_hash = await state.hasher.hash(password)
        await db.execute(
            update(Account)
            .where(
                col(Account.id) == account.id, col(Account.password_hash) == account.password_hash
            )
            .values(password_hash=new_hash)
            .execution_options(synchronize_session=False)
        )
    held, _ = await roles_service.effective_scopes(db, account.id)
    client = request.client.client
    held = clients_service.user_scope_cap(client, held)
    return await sessions_service.start_session(
        db,
        settings=state.settings,
        keyring=state.keyring,
        account=account,
        scopes=(set(requested) & held) if requested else held,
        user_agent=origin.user_agent,
        ip=origin.ip,
        all_held=not requested,
        client_id=client.client_id,
    )
