"""The built-in scopes and roles, and the scope grammar. Imports nothing from the
app, so every layer may use it."""

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
USER_ROLE = "user"
ADMIN_ROLE = "admin"
BUILTIN_ROLES: dict[str, tuple[str, frozenset[str]]] = {
    USER_ROLE: ("Every signed-up account", frozenset({"me:read", "me:write"})),
    ADMIN_ROLE: ("Administers accounts, roles and scopes", frozenset(BUILTIN_SCOPES)),
}
# A session's stored scope when its login named none: it follows the account's
# roles at each refresh. No scope name can be "*" (names start with a letter or digit).
ALL_HELD = "*"


def parse_scope(value: str | None) -> list[str]:
    """RFC 6749 §3.3: space-delimited, order-free, duplicates meaningless."""
    return list(dict.fromkeys((value or "").split()))


def format_scope(scopes: set[str] | frozenset[str] | list[str]) -> str:
    return " ".join(sorted(set(scopes)))


def holds_all(held: set[str] | frozenset[str], wanted: set[str], *, is_admin: bool) -> bool:
    """Whether an account may grant `wanted`: admins count as holding every custom
    scope, never a built-in one they were not given."""
    missing = wanted - held
    if is_admin:
        missing &= BUILTIN_SCOPES.keys()
    return not missing


@dataclass(frozen=True, slots=True)
class Principal:
    """Who a verified, live access token speaks for."""

    account_id: uuid.UUID
    session_id: uuid.UUID
    scopes: frozenset[str]
