"""Deny by default: every route but the public ones needs a token, and nearly all a
scope."""

import re
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from fastapi.dependencies.models import Dependant
from fastapi.routing import iter_route_contexts

from app.authz import bearer
from app.authz.catalogue import BUILTIN_SCOPES
from app.authz.dependencies import GATES
from app.main import app
from tests.factories import admin_headers

PUBLIC_PATHS = {
    "/healthz",
    "/readyz",
    "/auth/signup",
    "/auth/token",
    "/auth/revoke",
    "/openapi.json",
    # Client-authenticated (RFC 7662 §2.1), not bearer-authenticated.
    "/oauth/introspect",
    # The browser sign-in pages (CSRF-protected forms, a browser session cookie).
    "/oauth/authorize",
    "/oauth/logout",
    "/oauth/signed-out",
}
PUBLIC_PREFIXES = ("/.well-known/", "/docs", "/oauth/static/")
# Needs a token, whatever its scopes.
ANY_TOKEN_PATHS = {"/auth/logout"}


def is_public(path: str) -> bool:
    return path in PUBLIC_PATHS or path.startswith(PUBLIC_PREFIXES)


def scope_gates(dependant: Dependant) -> Iterator[list[str]]:
    """The scopes each scope gate (`Security(require_scopes, ...)` and its kin)
    anywhere in the tree asks for."""
    for sub in dependant.dependencies:
        if sub.call in GATES:
            yield [*(sub.parent_oauth_scopes or []), *(sub.own_oauth_scopes or [])]
        yield from scope_gates(sub)


def routes() -> list[tuple[str, str, Dependant | None]]:
    """(methods, path, dependant) of every route the app serves, routers flattened."""
    found: list[tuple[str, str, Dependant | None]] = []
    for context in iter_route_contexts(app.routes):
        methods = ",".join(sorted(getattr(context, "methods", None) or {"*"}))
        dependant = getattr(context, "dependant", None)
        found.append((methods, str(context.path), dependant))
    return found


PROTECTED = [(m, p, d) for m, p, d in routes() if not is_public(p)]


def test_the_walk_finds_the_routes_of_every_router() -> None:
    paths = {path for _, path, _ in routes()}
    assert {"/healthz", "/auth/token", "/accounts/me", "/roles", "/scopes", "/audit"} <= paths
    assert "/.well-known/jwks.json" in paths


@pytest.mark.parametrize(
    ("methods", "path", "dependant"), PROTECTED, ids=[f"{m} {p}" for m, p, _ in PROTECTED]
)
def test_non_public_route_declares_a_scope(
    methods: str, path: str, dependant: Dependant | None
) -> None:
    assert dependant is not None, f"{methods} {path} is not a FastAPI route with dependencies"
    gates = list(scope_gates(dependant))
    assert gates, f"{methods} {path} declares no scope gate"
    if path in ANY_TOKEN_PATHS:
        return
    assert any(gates), f"{methods} {path} needs a token but no scope"
    for scope in (s for gate in gates for s in gate):
        assert scope in BUILTIN_SCOPES, f"{methods} {path} asks for unknown scope {scope!r}"


def test_logout_needs_a_token_but_no_scope() -> None:
    [(_, _, dependant)] = [r for r in PROTECTED if r[1] == "/auth/logout"]
    assert dependant is not None
    assert list(scope_gates(dependant)) == [[]]


def _concrete(path: str) -> str:
    return re.sub(r"\{[^}]+\}", lambda m: str(uuid.uuid4()) if "id" in m[0] else "user", path)


HTTP_PROTECTED = [
    (method, path)
    for methods, path, dependant in PROTECTED
    if dependant is not None
    for method in methods.split(",")
    if method != "HEAD"
]


@pytest.mark.parametrize(
    ("method", "path"), HTTP_PROTECTED, ids=[f"{m} {p}" for m, p in HTTP_PROTECTED]
)
async def test_protected_route_answers_401_without_a_token(
    client: httpx.AsyncClient, method: str, path: str
) -> None:
    response = await client.request(method, _concrete(path), json={})
    assert response.status_code == 401, response.text
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert "error=" not in response.headers["www-authenticate"]
    assert list(response.json()) == ["detail"]


async def test_a_request_verifies_its_token_once(
    client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """GET /accounts/me asks for the verified token twice (the scope gate and the
    account its liveness check read); the verification kept on the request must
    answer the second, or every such request pays the liveness statement twice."""
    headers = await admin_headers(client)
    calls = 0
    verify = bearer.verify

    async def counted(*args: Any, **kwargs: Any) -> bearer.Verified | None:
        nonlocal calls
        calls += 1
        return await verify(*args, **kwargs)

    monkeypatch.setattr(bearer, "verify", counted)
    response = await client.get("/accounts/me", headers=headers)
    assert response.status_code == 200, response.text
    assert response.json()["username"] == "admin"
    assert calls == 1
