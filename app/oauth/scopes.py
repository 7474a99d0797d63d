"""The `scope` parameter of token requests (RFC 6749 §3.3)."""

from sqlalchemy.ext.asyncio import AsyncSession

from app.oauth.errors import InvalidScope
from app.roles import service as roles_service


async def check_catalogue(db: AsyncSession, requested: list[str]) -> None:
    """`invalid_scope` for a requested name that is not in the catalogue."""
    if unknown := await roles_service.unknown_scopes(db, requested):
        raise InvalidScope(f"Unknown scope: {unknown[0][:64]}")
