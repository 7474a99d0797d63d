"""Grants of the token endpoint, one module each; importing this package
registers them all in `base.GRANTS`."""

from app.oauth.grants import authorization_code, client_credentials, password, refresh_token
from app.oauth.grants.base import GRANTS, TokenRequest, dispatch, grant_for

__all__ = [
    "GRANTS",
    "TokenRequest",
    "authorization_code",
    "client_credentials",
    "dispatch",
    "grant_for",
    "password",
    "refresh_token",
]
