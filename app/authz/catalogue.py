"""The built-in scopes and roles, and the scope grammar. Imports nothing from the
app, so every layer may use it."""

import re
import uuid
from dataclasses import dataclass, fields
from typing import Generic, Literal, TypeVar

BUILTIN_SCOPES: dict[str, str] = {
    "me:read": "Read own account and own sessions",
    "me:write": "Change own password and email, end own sessions",
    "accounts:read": "List and read any account",
    "accounts:write": "Create, enable, disable and delete accounts",
    "roles:read": "List roles and the scope catalogue",
    "roles:write": "Create, change and delete roles and custom scopes; assign roles",
    "audit:read": "Read the audit log",
    "metrics:read": "Scrape GET /metrics (Prometheus)",
    "clients:read": "List and read OAuth clients",
    "clients:write": "Register, change and delete OAuth clients; rotate their secrets",
    "tokens:introspect": "Call the token introspection endpoint (resource servers)",
    "openid": "OpenID Connect: an ID token",
    "profile": "OpenID Connect: the account's username",
    "email": "OpenID Connect: the account's email address",
}
# Requests for identity claims, not permissions: they belong to no role, any
# account may request them, and they are granted only when requested.
OIDC_SCOPES = frozenset({"openid", "profile", "email"})
PERMISSION_SCOPES = frozenset(BUILTIN_SCOPES.keys() - OIDC_SCOPES)
# Scopes that act as an account on itself: a client's own token never carries them.
ACCOUNT_SCOPES = frozenset({"me:read", "me:write"})
# The name the guardrails' code used first for the same set.
IDENTITY_SCOPES = OIDC_SCOPES
USER_ROLE = "user"
ADMIN_ROLE = "admin"
BUILTIN_ROLES: dict[str, tuple[str, frozenset[str]]] = {
    USER_ROLE: ("Every signed-up account", frozenset({"me:read", "me:write"})),
    ADMIN_ROLE: ("Administers accounts, roles and scopes", PERMISSION_SCOPES),
}
# The built-in public client: what a token request without `client_id` means.
GATEHOUSE_CLIENT = "gatehouse"
# A session's stored scope when its login named none: it follows the account's
# roles at each refresh. No scope name can be "*" (names start with a letter or digit).
ALL_HELD = "*"
# Scope and role names: lowercase ASCII letters, digits and `:._-`, starting and
# ending with a letter or digit, at most 64 characters. So no two names differ
# only in case or a trailing mark, and every name fits in a URL path segment.
NAME_PATTERN = r"^[a-z0-9](?:[a-z0-9:._-]{0,62}[a-z0-9])?$"
_NAME = re.compile(NAME_PATTERN)


def is_valid_name(name: str) -> bool:
    return _NAME.fullmatch(name) is not None


def parse_scope(value: str | None) -> list[str]:
    """RFC 6749 §3.3: space-delimited, order-free, duplicates meaningless."""
    return list(dict.fromkeys((value or "").split()))


def format_scope(scopes: set[str] | frozenset[str] | list[str]) -> str:
    return " ".join(sorted(set(scopes)))


def carries_every_permission(scopes: set[str] | frozenset[str]) -> bool:
    return PERMISSION_SCOPES <= scopes


def holds_all(held: set[str] | frozenset[str], wanted: set[str], *, is_admin: bool) -> bool:
    """Whether the scopes `held` (those of the token making the request) may grant
    `wanted`. An admin's token carrying every built-in permission scope counts as
    holding every custom scope too; no token counts as holding a built-in scope
    it does not carry."""
    missing = wanted - held
    if is_admin and carries_every_permission(held):
        missing &= BUILTIN_SCOPES.keys()
    return not missing


# What kind of bearer a principal was authenticated by: a session's access token,
# a client-credentials token (the client itself, no account), or a personal
# access token (an account, no session).
TokenKind = Literal["session", "client", "pat"]


@dataclass(frozen=True, slots=True)
class Principal:
    """Who a verified, live bearer token speaks for.

    `account_id` is None for a client-credentials token (its subject is the
    client); `session_id` is None for every token that is not a session's.
    `scopes` are the scopes the token may use now."""

    account_id: uuid.UUID | None
    session_id: uuid.UUID | None
    scopes: frozenset[str]
    client_id: str = GATEHOUSE_CLIENT
    kind: TokenKind = "session"
    # The access token's `jti`, or a personal access token's id.
    token_id: str | None = None

    def as_account(self) -> "AccountPrincipal | None":
        """This principal, typed as speaking for an account, when it does."""
        if self.account_id is None:
            return None
        return AccountPrincipal(**{f.name: getattr(self, f.name) for f in fields(self)})


@dataclass(frozen=True, slots=True)
class AccountPrincipal(Principal):
    """A principal that speaks for an account: what routes that act as an account
    (its own data, or as the actor of an admin change) receive."""

    account_id: uuid.UUID


P = TypeVar("P", bound=Principal, covariant=True)


@dataclass(frozen=True, slots=True)
class Actor(Generic[P]):
    """Who makes a change, and from where: the principal the change is checked
    against (CONTRACT.md, "Guardrails") and the address its audit entry names.
    Routes that change something get one from their `Security` dependency and
    hand it to the service whole."""

    principal: P
    ip: str | None

    @property
    def account_id(self) -> uuid.UUID | None:
        return self.principal.account_id

    @property
    def scopes(self) -> frozenset[str]:
        return self.principal.scopes
