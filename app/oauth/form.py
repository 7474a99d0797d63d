"""The shape every request to the token endpoint must have (RFC 6749 §3.2): its
parameters form-encoded, none of them twice. FastAPI would read a JSON body as
an empty form ("grant_type is required") and keep the last of repeated fields;
this dependency says what is actually wrong. Also the two form parameters that
revocation and introspection share."""

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Form, Request

from app.oauth.errors import InvalidRequest

FORM_TYPE = "application/x-www-form-urlencoded"
FormField = Annotated[str | None, Form()]
KNOWN_PARAMETERS = frozenset(
    {
        "grant_type",
        "username",
        "password",
        "refresh_token",
        "scope",
        "client_id",
        "client_secret",
        "code",
        "redirect_uri",
        "code_verifier",
        "token",
        "token_type_hint",
    }
)


async def single_valued_form(request: Request) -> None:
    """`invalid_request` for a body that is not form-encoded, or a parameter sent
    more than once. The form is the one FastAPI already parsed (Starlette caches it)."""
    media_type = request.headers.get("content-type", "").partition(";")[0].strip().lower()
    if media_type and media_type != FORM_TYPE:
        raise InvalidRequest(
            f"The token endpoint takes its parameters as {FORM_TYPE} (RFC 6749 §3.2), "
            f"not {'JSON' if media_type.endswith('json') else 'this content type'}"
        )
    seen: set[str] = set()
    for name, _ in (await request.form()).multi_items():
        if name in seen:
            shown = name if name in KNOWN_PARAMETERS else "a parameter"
            raise InvalidRequest(f"{shown} was sent more than once (RFC 6749 §3.2)")
        seen.add(name)


SingleValuedForm = Annotated[None, Depends(single_valued_form)]


@dataclass(frozen=True, slots=True)
class PresentedToken:
    """What revocation (RFC 7009 §2.1) and introspection (RFC 7662 §2.1, which
    takes RFC 7009's parameters) are asked about: the token, and the client's
    optional hint of its type."""

    token: str | None
    hint: str | None


async def presented_token(
    token: FormField = None, token_type_hint: FormField = None
) -> PresentedToken:
    # async: a plain `def` dependency would run in the thread pool (see app.state).
    return PresentedToken(token, token_type_hint)


# Declared before an endpoint's client dependency, so that its form documents
# `token` and `token_type_hint` first, as the RFCs list them.
Presented = Annotated[PresentedToken, Depends(presented_token)]
