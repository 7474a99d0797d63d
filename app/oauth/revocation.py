"""Token revocation (RFC 7009) for every kind of token the service issues."""

from sqlalchemy.ext.asyncio import AsyncSession

from app.authz.catalogue import GATEHOUSE_CLIENT
from app.clients import service as clients_service
from app.core.db import release_connection
from app.crypto.jwt import TokenError
from app.personal_tokens import service as personal_tokens
from app.sessions import service as sessions_service
from app.signing_keys.service import KeyRing

MAX_TOKEN_LENGTH = 8192


async def revoke(
    db: AsyncSession,
    *,
    keyring: KeyRing,
    client_id: str,
    token: str,
    hint: str | None,
    ip: str | None,
) -> None:
    """End what `token` gives access to, when it was issued to `client_id` (§2.1);
    anything else is silently ignored (§2.2: the answer is 200 either way).

    A session's access or refresh token ends its session; a client's own token
    moves the client's version, ending all its tokens (they are stateless, and
    §2.1 allows revoking every token of the same grant); a personal access token
    (issued through the built-in client) is deleted: whoever holds a leaked one
    may revoke it."""
    if len(token) > MAX_TOKEN_LENGTH or "\x00" in token:
        return
    if token.startswith(personal_tokens.PREFIX):
        if client_id == GATEHOUSE_CLIENT:
            await personal_tokens.revoke_presented(db, token=token, ip=ip)
        return
    if token.count(".") == 2 and hint != "refresh_token":
        if keyring.may_reload_for(token):
            await release_connection(db)  # reads only so far (client authentication)
        try:
            claims = await keyring.verify(token, allow_expired=True)
        except TokenError:
            claims = {}
        if claims and "sid" not in claims:
            if claims.get("sub") == client_id and claims.get("client_id") == client_id:
                await clients_service.revoke_client_tokens(db, client_id=client_id)
            return
    await sessions_service.revoke(
        db, keyring=keyring, token=token, hint=hint, ip=ip, client_id=client_id
    )
