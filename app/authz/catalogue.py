"""The built-in scopes and roles, and the scope grammar. Imports nothing from the
app, so every layer may use it."""

import re
import uuid
from dataclasses import dataclass

BUILTIN_SCOPES: dict[str, str] = {
    "me:read": "Read own account and own sessions",
    "me:write": "Change own password and email, end own sessions",
    "accounts:read": "List and read any account",
    "accounts:write": "Create, enable, disable and delete accounts",
    "roles:read": "List roles and the scope catalogue",
    "roles:write": "Create, change and delete roles and custom scopes; assign roles",
    "audit:read": "Read the audit log",
    "metrics:read": "Scrape GET /metrics (Prometheus)",
}
# OpenID Connect requests for identity claims: no role carries them (CONTRACT.md).
IDENTITY_SCOPES = frozenset({"openid", "profile", "email"})
# What the guardrails call "every built-in permission scope".
PERMISSION_SCOPES = frozenset(BUILTIN_SCOPES) - IDENTITY_SCOPES
USER_ROLE = "user"
ADMIN_ROLE = "admin"
BUILTIN_ROLES: dict[str, tuple[str, frozenset[str]]] = {
    USER_ROLE: ("Every signed-up account", frozenset({"me:read", "me:write"})),
    ADMIN_ROLE: ("Administers accounts, roles and scopes", frozenset(BUILTIN_SCOPES)),
}
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


@dataclass(frozen=True, slots=True)
class Principal:
    """Who a verified, live access token speaks for."""

    account_id: uuid.UUID
    session_id: uuid.UUID
    scopes: frozenset[str]
