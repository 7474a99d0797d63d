"""The resource owner password grant (RFC 6749 §4.3), for first-party use only
(RFC 9700 §2.4 says apps must not use it; browser apps get the code flow).

Unknown user, wrong password and disabled account cost the same work and give
byte-identical answers, so neither timing nor text tells an attacker which
usernames exist.
"""

from sqlalchemy.ext.asyncio import AsyncSession

from app.accounts import service as accounts_service
from app.accounts import usernames
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
    origin = request.origin
    settings = state.settings
    # The address's place in the hasher is taken first: past its share, 429 before
    # any database work.
    with state.hasher.claim(origin.ip) as hashing:
        await check_catalogue(db, requested)
        account = await accounts_service.find_by_username(db, username)
        key = usernames.lookup_key(username)
        tokens = None
        if (
            await throttle.verify_password(
                db,
                hashing=hashing,
                slots=state.login_slots,
                keys=[
                    throttle.account_key(settings, key, target=key),
                    throttle.address_key(settings, origin),
                ],
                password_hash=account.password_hash if account else None,
                password=password,
                active=account is not None and account.is_active,
                origin=origin,
            )
            and account is not None
        ):
            verified_hash = await accounts_service.upgrade_password_hash(
                db, hashing=hashing, account=account, password=password
            )
            held, _ = await roles_service.effective_scopes(db, account.id)
            client = request.client.client
            held = clients_service.user_scope_cap(client, held)
            # None when a password change, disabling or deletion won the race
            # since the password was checked: that login fails like a wrong one.
            tokens = await sessions_service.start_session(
                db,
                settings=settings,
                keyring=state.keyring,
                account=account,
                password_hash=verified_hash,
                scopes=(set(requested) & held) if requested else held,
                user_agent=origin.user_agent,
                ip=origin.ip,
                all_held=not requested,
                client_id=client.client_id,
            )
    if tokens is None:
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
    return tokens
