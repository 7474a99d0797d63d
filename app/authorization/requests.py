"""Checking an authorization request (RFC 6749 §4.1.1, RFC 7636 §4.3).

Errors fall in two kinds (RFC 6749 §4.1.2.1): while the client or its redirect
URI is in doubt, the answer is an error page and never a redirect (else the
endpoint is an open redirector); once both are known, every other error goes
back to the client's redirect URI with `error`, `state` and `iss` (RFC 9207).

Redirect URIs are compared as exact strings (OAuth 2.1 §4.1.1, RFC 9700 §4.1.3):
no prefix, path, query or case tolerance. The one exception is RFC 8252 §7.3:
a registered loopback URI matches the same URI on any port, because a native
app listens on whatever port the system gives it.
"""

import re
from collections.abc import Sequence
from urllib.parse import SplitResult, quote, urlencode, urlsplit

from sqlalchemy.ext.asyncio import AsyncSession

from app.authorization.schemas import AuthorizationRequest
from app.authz.catalogue import parse_scope
from app.clients import service as clients_service
from app.clients.models import OAuthClient
from app.core.config import Settings
from app.roles import service as roles_service

MAX_PARAM_LENGTH = 2048
# RFC 7636 §4.2: BASE64URL(SHA-256(verifier)) is 43 characters; §4.1 allows
# verifiers (and so plain challenges) of 43 to 128 unreserved characters.
CODE_CHALLENGE = re.compile(r"^[A-Za-z0-9_~.-]{43,128}$")
PROMPTS = frozenset({"none", "login", "consent"})
_PORT = re.compile(r":[0-9]*$")


class PageError(Exception):
    """An error shown on the server's own page (400), never redirected."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


class RedirectError(Exception):
    """An RFC 6749 §4.1.2.1 error sent back to the client's redirect URI."""

    def __init__(self, error: str, description: str, *, redirect_uri: str, state: str | None):
        super().__init__(description)
        self.error = error
        self.description = description
        self.redirect_uri = redirect_uri
        self.state = state


def redirect_to(redirect_uri: str, params: dict[str, str | None]) -> str:
    """`redirect_uri` with `params` added to its query (RFC 6749 §4.1.2: the
    registered URI may carry a query of its own, which is kept), each value
    percent-encoded as it is, so `state` comes back byte for byte."""
    # Everything but unreserved characters percent-encoded, `/`, `+` and spaces too.
    query = "&".join(
        f"{quote(name, safe='')}={quote(value, safe='')}"
        for name, value in params.items()
        if value is not None
    )
    if not query:
        return redirect_uri
    separator = "&" if urlsplit(redirect_uri).query else "?"
    if redirect_uri.endswith(("?", "&")):
        separator = ""
    return f"{redirect_uri}{separator}{query}"


def _loopback_form(parts: SplitResult) -> tuple[str, str, str, str] | None:
    """The URI without its port, when it names a loopback host; None otherwise."""
    if parts.hostname not in clients_service.LOOPBACK_HOSTS or "@" in parts.netloc:
        return None
    return (parts.scheme, _PORT.sub("", parts.netloc), parts.path, parts.query)


def matches(registered: str, given: str) -> bool:
    """Exact match, or RFC 8252 §7.3 loopback with another port."""
    if given == registered:
        return True
    if "#" in given or any(ord(ch) <= 0x20 or ord(ch) == 0x7F for ch in given):
        return False
    try:
        mine, theirs = urlsplit(registered), urlsplit(given)
        theirs.port  # noqa: B018 - raises ValueError for a port that is not a number
    except ValueError:
        return False
    registered_form = _loopback_form(mine)
    return registered_form is not None and registered_form == _loopback_form(theirs)


def _single(params: Sequence[tuple[str, str]], name: str) -> tuple[str | None, bool]:
    """The parameter's value and whether it was sent more than once (§3.1: a
    parameter must not be included more than once)."""
    values = [value for key, value in params if key == name]
    return (values[0] if values else None), len(values) > 1


async def check(
    db: AsyncSession, *, settings: Settings, params: Sequence[tuple[str, str]]
) -> AuthorizationRequest:
    """Check the request, or raise `PageError` / `RedirectError`."""
    client_id, twice = _single(params, "client_id")
    if twice:
        raise PageError("The request names its client more than once.")
    if not client_id:
        raise PageError("The request does not name a client (client_id).")
    loaded = None
    if len(client_id) <= 64 and "\x00" not in client_id:
        loaded = await clients_service.load_with_scopes(db, client_id)
    if loaded is None or not loaded[0].is_active:
        raise PageError("This application is not known here.")
    client = loaded[0]
    redirect_uri = _redirect_uri(client, settings, params)
    given, _ = _single(params, "redirect_uri")
    state, state_twice = _single(params, "state")

    def fail(error: str, description: str) -> RedirectError:
        return RedirectError(
            error, description, redirect_uri=redirect_uri, state=None if state_twice else state
        )

    for name in {key for key, _ in params}:
        if _single(params, name)[1]:
            raise fail("invalid_request", f"{name} was sent more than once")
    for name, value in params:
        if len(value) > MAX_PARAM_LENGTH or "\x00" in value:
            raise fail("invalid_request", f"Malformed {name}")
    response_type, _ = _single(params, "response_type")
    if response_type != "code":
        raise fail("unsupported_response_type", "Only response_type=code is supported")
    if "authorization_code" not in client.grant_types:
        raise fail("unauthorized_client", "This client may not use the authorization code flow")
    challenge, _ = _single(params, "code_challenge")
    method, _ = _single(params, "code_challenge_method")
    if not challenge:
        raise fail("invalid_request", "code_challenge is required (PKCE, RFC 7636)")
    if method != "S256":
        raise fail("invalid_request", "code_challenge_method must be S256")
    if not CODE_CHALLENGE.fullmatch(challenge):
        raise fail("invalid_request", "Malformed code_challenge")
    prompt = frozenset((_single(params, "prompt")[0] or "").split())
    if not prompt <= PROMPTS or ("none" in prompt and len(prompt) > 1):
        raise fail("invalid_request", "prompt must be none, login or consent")
    scopes = parse_scope(_single(params, "scope")[0])
    if unknown := await roles_service.unknown_scopes(db, scopes):
        raise fail("invalid_scope", f"Unknown scope: {unknown[0][:64]}")
    return AuthorizationRequest(
        client=client,
        redirect_uri=redirect_uri,
        redirect_uri_given=given is not None,
        state=state,
        scopes=scopes,
        code_challenge=challenge,
        nonce=_single(params, "nonce")[0] or None,
        prompt=prompt,
        encoded=urlencode(list(params)),
    )


def _registered(client: OAuthClient, settings: Settings) -> list[str]:
    """The client's redirect URIs. The built-in client's is Swagger UI's on the
    issuer; with a loopback issuer in development (`http://localhost:8000`) the
    docs are as often opened as `http://127.0.0.1:8000/docs`, so the same page on
    the other loopback names is this service's own page too."""
    registered = clients_service.redirect_uris_of(client, settings)
    issuer = urlsplit(settings.issuer)
    if (
        client.builtin
        and issuer.scheme == "http"
        and issuer.hostname in clients_service.LOOPBACK_HOSTS
    ):
        port = f":{issuer.port}" if issuer.port else ""
        registered += [
            f"http://{host}{port}/docs/oauth2-redirect"
            for host in ("127.0.0.1", "localhost", "[::1]")
        ]
    return registered


def _redirect_uri(
    client: OAuthClient, settings: Settings, params: Sequence[tuple[str, str]]
) -> str:
    registered = _registered(client, settings)
    given, twice = _single(params, "redirect_uri")
    if twice:
        raise PageError("The request names its redirect URI more than once.")
    if given is None:
        # RFC 6749 §3.1.2.3: optional only when exactly one URI is registered.
        if len(registered) == 1:
            return registered[0]
        raise PageError("The request does not say where to return (redirect_uri).")
    if not any(matches(uri, given) for uri in registered):
        raise PageError("The redirect URI is not registered for this application.")
    return given
