"""Who a bearer token speaks for, whichever of the three kinds it is: a session's
access token (a JWT with `sid`), a client's own client-credentials token (a JWT
whose `sub` is its `client_id`, no `sid`), or a personal access token (opaque,
`gatehouse_pat_...`). Used by the `Security` gate and by introspection, so both
judge a token alike.

Each kind costs one query: a session token the session-and-account check (which
also reads the account's roles and scopes), a client token one on the client, a
personal access token one on the token and its account."""

import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from app.authz.catalogue import GATEHOUSE_CLIENT, Principal, parse_scope
from app.clients import service as clients_service
from app.core.db import release_connection
from app.crypto.jwt import TokenError
from app.personal_tokens import service as personal_tokens
from app.personal_tokens.models import PersonalAccessToken
from app.sessions import service as sessions_service
from app.state import State


@dataclass(frozen=True, slots=True)
class Verified:
    """A live token: its principal, and what introspection reports of it (the
    JWT's claims, or the personal access token's row)."""

    principal: Principal
    claims: dict[str, Any] | None = None
    personal_token: PersonalAccessToken | None = None
    # The username of the token's account (None for a client's), for introspection.
    username: str | None = None
    # A session token's account with its roles and scopes, as the liveness check
    # read them in its one statement (None for other kinds).
    account: sessions_service.LiveAccount | None = None


def _version(claims: dict[str, Any]) -> int:
    version = claims["ver"]
    if not isinstance(version, int) or isinstance(version, bool):
        raise TokenError("bad ver")
    return version


def _client_id(claims: dict[str, Any]) -> str:
    client_id = claims.get("client_id", GATEHOUSE_CLIENT)
    if not isinstance(client_id, str):
        raise TokenError("bad client_id")
    return client_id


async def verify(db: AsyncSession, state: State, token: str) -> Verified | None:
    """The token's principal if it is live now, else None."""
    if token.startswith(personal_tokens.PREFIX):
        found = await personal_tokens.authenticate(db, token=token)
        if found is None:
            return None
        return Verified(found[0], personal_token=found[1], username=found[2].username)
    if db.in_transaction() and state.keyring.may_reload_for(token):
        await release_connection(db)  # reads only so far (client authentication)
    try:
        claims = await state.keyring.verify(token)
        scopes = frozenset(parse_scope(claims["scope"]))
        version = _version(claims)
        client_id = _client_id(claims)
        if "sid" in claims:
            principal = Principal(
                account_id=uuid.UUID(claims["sub"]),
                session_id=uuid.UUID(claims["sid"]),
                scopes=scopes,
                client_id=client_id,
                kind="session",
                token_id=str(claims["jti"]),
            )
        else:
            if claims["sub"] != client_id:
                raise TokenError("a client's token names the client as its subject")
            principal = Principal(
                account_id=None,
                session_id=None,
                scopes=scopes,
                client_id=client_id,
                kind="client",
                token_id=str(claims["jti"]),
            )
    except (TokenError, KeyError, ValueError, TypeError, AttributeError):
        return None
    if principal.session_id is not None and principal.account_id is not None:
        live_account = await sessions_service.live_account(
            db,
            account_id=principal.account_id,
            session_id=principal.session_id,
            authz_version=version,
            idle_timeout=state.settings.session_idle_timeout_seconds,
        )
        if live_account is None:
            return None
        return Verified(
            principal, claims=claims, username=live_account.username, account=live_account
        )
    live = await clients_service.client_token_is_live(
        db, client_id=client_id, authz_version=version, scopes=scopes
    )
    return Verified(principal, claims=claims) if live else None
