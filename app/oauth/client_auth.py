"""Client authentication at the token, revocation and introspection endpoints
(RFC 6749 §2.3): `client_secret_basic`, `client_secret_post`, or a public
client's `client_id` alone.

RFC 6749 §2.3.1 has the client form-url-encode its id and secret *before* Basic
encoding, so a secret holding `:`, `%` or `+` arrives as `%3A`, `%25`, `%2B` and is
decoded here after the split at the (then unambiguous) colon; servers that skip
the decoding refuse such secrets, or worse, read `+` as itself.
"""

import base64
import binascii
from dataclasses import dataclass
from typing import Annotated
from urllib.parse import unquote_plus

from fastapi import Depends
from starlette.requests import Request

from app.authz.catalogue import GATEHOUSE_CLIENT
from app.clients import service as clients_service
from app.clients.models import OAuthClient
from app.core.db import DbSession
from app.oauth.errors import InvalidClient, InvalidRequest

MAX_CLIENT_ID_LENGTH = 64
MAX_SECRET_LENGTH = 512


@dataclass(frozen=True, slots=True)
class Credentials:
    """What the request presented: an id, perhaps a secret, and whether by Basic."""

    client_id: str | None
    secret: str | None
    basic: bool


@dataclass(frozen=True, slots=True)
class AuthenticatedClient:
    """A client that proved itself (or a public client that named itself), and the
    scopes its roles carry."""

    client: OAuthClient
    scopes: frozenset[str]


def _parse_basic(value: str) -> tuple[str, str]:
    """`Basic base64(urlencode(id) ":" urlencode(secret))` (RFC 6749 §2.3.1)."""
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
        encoded_id, colon, encoded_secret = decoded.partition(":")
        if not colon:
            raise ValueError("no colon")
        client_id = unquote_plus(encoded_id, errors="strict")
        secret = unquote_plus(encoded_secret, errors="strict")
    except (binascii.Error, ValueError) as exc:  # bad base64, bad UTF-8, no colon
        raise InvalidClient("Malformed Basic credentials", basic=True) from exc
    return client_id, secret


def _single(values: list[object], name: str) -> str | None:
    if len(values) > 1:
        raise InvalidRequest(f"{name} may be sent only once")
    if not values:
        return None
    value = values[0]
    if not isinstance(value, str) or "\x00" in value:
        raise InvalidRequest(f"Malformed {name}")
    return value or None  # an empty field is an absent one (as FastAPI's Form reads it)


async def read_credentials(request: Request) -> Credentials:
    """The client's credentials, from the Authorization header or the form; both
    at once is `invalid_client` (§2.3: one method per request)."""
    form = await request.form()
    form_id = _single(list(form.getlist("client_id")), "client_id")
    form_secret = _single(list(form.getlist("client_secret")), "client_secret")
    scheme, _, value = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "basic":
        if form_secret is not None:
            raise InvalidClient("Use one client authentication method, not two", basic=True)
        client_id, secret = _parse_basic(value)
        if not client_id and not secret:
            # `Basic Og==` (":"): what some clients (Swagger UI among them) send
            # when no client was configured, meaning none.
            return Credentials(form_id, None, basic=False)
        if form_id is not None and form_id != client_id:
            raise InvalidClient("client_id differs from the Basic credentials", basic=True)
        # `Basic base64("gatehouse:")`, an id with an empty password, is what
        # Swagger UI's password flow sends once its client id is configured: no
        # secret, so for a public client the same as its client_id alone (RFC 6749
        # §2.3.1 gives public clients no password). A confidential client sending
        # it still fails, for want of its secret.
        return Credentials(client_id, secret or None, basic=True)
    return Credentials(form_id, form_secret, basic=False)


async def authenticate(db: DbSession, credentials: Credentials) -> AuthenticatedClient:
    client_id, secret, basic = credentials.client_id, credentials.secret, credentials.basic
    if (
        not client_id
        or len(client_id) > MAX_CLIENT_ID_LENGTH
        or (secret is not None and len(secret) > MAX_SECRET_LENGTH)
    ):
        raise InvalidClient("Client authentication failed", basic=basic)
    client, scopes = await clients_service.authenticate(
        db, client_id=client_id, secret=secret, basic=basic
    )
    return AuthenticatedClient(client, frozenset(scopes))


async def token_endpoint_client(request: Request, db: DbSession) -> AuthenticatedClient:
    """The client of a token or revocation request; a request naming no client at
    all speaks for the built-in public client `gatehouse`."""
    credentials = await read_credentials(request)
    if credentials.client_id is None and credentials.secret is None:
        credentials = Credentials(GATEHOUSE_CLIENT, None, basic=False)
    return await authenticate(db, credentials)


async def introspecting_client(request: Request, db: DbSession) -> AuthenticatedClient:
    """RFC 7662 §2.1: introspection needs an authenticated client, here one whose
    roles hold `tokens:introspect`; any other is `invalid_client`."""
    credentials = await read_credentials(request)
    found = await authenticate(db, credentials)
    if "tokens:introspect" not in found.scopes:
        raise InvalidClient("This client may not introspect tokens", basic=credentials.basic)
    return found


TokenClient = Annotated[AuthenticatedClient, Depends(token_endpoint_client)]
IntrospectingClient = Annotated[AuthenticatedClient, Depends(introspecting_client)]
