"""The scope catalogue: the grammar of a scope parameter (RFC 6749 §3.3), who may
grant what, and the built-in roles."""

import pytest
from pydantic import ValidationError

from app.authz.catalogue import (
    ADMIN_ROLE,
    ALL_HELD,
    BUILTIN_ROLES,
    BUILTIN_SCOPES,
    PERMISSION_SCOPES,
    USER_ROLE,
    format_scope,
    holds_all,
    parse_scope,
)
from app.roles.schemas import ScopeCreate


def test_parse_scope_splits_on_spaces_and_drops_duplicates_keeping_order() -> None:
    assert parse_scope("me:write me:read  me:write") == ["me:write", "me:read"]


@pytest.mark.parametrize("value", [None, "", "   "])
def test_parse_scope_of_nothing_is_empty(value: str | None) -> None:
    assert parse_scope(value) == []


def test_format_scope_sorts_and_drops_duplicates() -> None:
    assert format_scope(["me:write", "accounts:read", "me:write"]) == "accounts:read me:write"


def test_format_scope_of_nothing_is_the_empty_string() -> None:
    assert format_scope(set()) == ""


def test_format_then_parse_gives_the_same_scopes() -> None:
    scopes = {"roles:read", "me:read", "billing:export"}
    assert set(parse_scope(format_scope(scopes))) == scopes


def test_holder_of_every_wanted_scope_holds_all() -> None:
    assert holds_all({"me:read", "me:write"}, {"me:read"}, is_admin=False)


def test_nothing_wanted_is_always_held() -> None:
    assert holds_all(set(), set(), is_admin=False)


def test_non_admin_missing_a_scope_does_not_hold_all() -> None:
    assert not holds_all({"me:read"}, {"me:read", "billing:export"}, is_admin=False)


def test_admin_counts_as_holding_custom_scopes() -> None:
    assert holds_all(set(BUILTIN_SCOPES), {"billing:export", "me:read"}, is_admin=True)


def test_admin_does_not_count_as_holding_a_builtin_scope_it_lacks() -> None:
    assert not holds_all({"me:read", "billing:export"}, {"audit:read"}, is_admin=True)


def test_a_builtin_role_holds_only_builtin_scopes() -> None:
    for _, scopes in BUILTIN_ROLES.values():
        assert scopes <= BUILTIN_SCOPES.keys()


def test_the_admin_role_holds_every_builtin_permission_scope_and_the_user_role_only_its_own() -> (
    None
):
    # The OpenID Connect scopes belong to no role (CONTRACT.md).
    assert BUILTIN_ROLES[ADMIN_ROLE][1] == PERMISSION_SCOPES
    assert BUILTIN_ROLES[USER_ROLE][1] == {"me:read", "me:write"}


def test_the_follow_the_roles_marker_can_never_be_a_scope_name() -> None:
    assert ALL_HELD not in BUILTIN_SCOPES
    with pytest.raises(ValidationError):
        ScopeCreate(name=ALL_HELD)


def test_admin_token_lacking_a_permission_scope_holds_no_custom_scope() -> None:
    narrowed = set(PERMISSION_SCOPES - {"audit:read"})
    assert not holds_all(narrowed, {"billing:export"}, is_admin=True)


def test_non_admin_carrying_every_permission_scope_holds_no_custom_scope() -> None:
    assert not holds_all(set(PERMISSION_SCOPES), {"billing:export"}, is_admin=False)
