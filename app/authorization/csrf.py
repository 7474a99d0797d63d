"""CSRF protection of the hosted forms: a signed double-submit token.

The browser gets a random value in a cookie (`SameSite=Lax`, `HttpOnly`); each
form carries HMAC(service secret, that value). A POST passes only when the form's
token is the HMAC of the cookie it came with: another site can make the browser
send the cookie but cannot read it, nor forge the HMAC without the service's
secret, and a token copied from another browser fails against this browser's
cookie (OWASP CSRF cheat sheet, "signed double-submit cookie")."""

import base64
import hashlib
import hmac
import secrets
from dataclasses import dataclass

from app.core.config import Settings

COOKIE = "gatehouse_csrf"
_LABEL = b"gatehouse hosted pages csrf v1"


def secure_cookies(settings: Settings) -> bool:
    """`Secure` cookies unless the issuer is plain http, which configuration
    allows only on loopback (development)."""
    return settings.issuer.lower().startswith("https://")


def cookie_name(settings: Settings, base: str) -> str:
    # The __Host- prefix makes the browser refuse the cookie unless it is Secure,
    # has Path=/ and no Domain: no sibling subdomain can plant or shadow it.
    return f"__Host-{base}" if secure_cookies(settings) else base


def _key(settings: Settings) -> bytes:
    return hmac.new(settings.master_secret, _LABEL, hashlib.sha256).digest()


def token_for(settings: Settings, nonce: str) -> str:
    mac = hmac.new(_key(settings), nonce.encode("utf-8", "surrogatepass"), hashlib.sha256)
    return base64.urlsafe_b64encode(mac.digest()).rstrip(b"=").decode("ascii")


@dataclass(frozen=True, slots=True)
class Csrf:
    """This browser's CSRF value, whether it must be set as a cookie now, and the
    token the forms carry."""

    nonce: str
    new: bool
    token: str


def for_page(settings: Settings, cookie: str | None) -> Csrf:
    if cookie and 20 <= len(cookie) <= 64 and cookie.isascii():
        return Csrf(cookie, False, token_for(settings, cookie))
    nonce = secrets.token_urlsafe(24)
    return Csrf(nonce, True, token_for(settings, nonce))


def valid(settings: Settings, cookie: str | None, presented: str | None) -> bool:
    if not cookie or not presented or len(cookie) > 64 or len(presented) > 64:
        return False
    return hmac.compare_digest(token_for(settings, cookie), presented)
