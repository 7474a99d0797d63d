"""The resource owner password grant (RFC 6749 §4.3), for first-party use only
(RFC 9700 §2.4 says apps must not use it; browser apps get the code flow).

Unknown user, wrong password and disabled account cost the same work and give
byte-identical answers, so neither timing nor text tells an attacker which
usernames exist.
"""

from sqlalchemy.ext.asyncio import AsyncSession

from app.accounts import service as accounts_service
from app.authz.catalogue import parse_scope
from app.clients import service as clients_service
from app.oauth.errors import InvalidGrant
from app.oauth.grants.base import TokenRequest, grant
from app.oauth.scopes import check_catalogue
from app.roles import service as roles_service
from app.sessions import service as sessions_service
from app.sessions.schemas import TokenResponse
from app.state import State

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
        check = await accounts_service.check_login(
            db,
            settings=settings,
            hashing=hashing,
            slots=state.login_slots,
            username=username,
            password=password,
            origin=origin,
        )
        tokens = None
        if (account := check.verified) is not None:
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
                password_hash=check.verified_hash,
                scopes=(set(requested) & held) if requested else held,
                user_agent=origin.user_agent,
                ip=origin.ip,
                all_held=not requested,
                client_id=client.client_id,
            )
    if tokens is None:
        await accounts_service.record_login_failure(db, check, ip=origin.ip)
        raise InvalidGrant(INVALID_CREDENTIALS)
    return tokens
