"""Alembic on both databases: up, down and up again; the models and the migrations
agree; the seed holds the contract's built-in scopes and roles."""

import asyncio
from collections.abc import Callable
from typing import Any, TypeVar

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect, text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine

from app.authz.catalogue import BUILTIN_ROLES, BUILTIN_SCOPES, OIDC_SCOPES, PERMISSION_SCOPES
from app.tables import SQLModel
from tests.conftest import downgrade, migrate

T = TypeVar("T")

TABLES = {
    "account",
    "account_role",
    "audit_event",
    "auth_session",
    "authorization_code",
    "browser_session",
    "client_role",
    "consent",
    "login_throttle",
    "oauth_client",
    "personal_access_token",
    "refresh_token",
    "role",
    "role_scope",
    "scope",
    "signing_key",
}


@pytest.fixture(params=["sqlite", "postgresql"])
def fresh_url(request: pytest.FixtureRequest) -> str:
    """A brand-new, empty database of each backend."""
    prefix = "pg" if request.param == "postgresql" else "sqlite"
    factory: Callable[[], str] = request.getfixturevalue(f"{prefix}_database_factory")
    return factory()


def on_connection(url: str, work: Callable[[Connection], T]) -> T:
    async def run() -> T:
        engine = create_async_engine(url)
        try:
            async with engine.connect() as conn:
                return await conn.run_sync(work)
        finally:
            await engine.dispose()

    return asyncio.run(run())


def table_names(url: str) -> set[str]:
    return on_connection(url, lambda c: set(inspect(c).get_table_names()))


def rows(url: str, sql: str) -> list[tuple[Any, ...]]:
    return on_connection(url, lambda c: [tuple(r) for r in c.execute(text(sql))])


def test_upgrade_creates_every_table(fresh_url: str) -> None:
    migrate(fresh_url)
    assert table_names(fresh_url) - {"alembic_version"} == TABLES


def test_downgrade_to_base_drops_every_table(fresh_url: str) -> None:
    migrate(fresh_url)
    downgrade(fresh_url, "base")
    assert table_names(fresh_url) - {"alembic_version"} == set()


def test_upgrade_after_downgrade_rebuilds_schema_and_seed(fresh_url: str) -> None:
    migrate(fresh_url)
    downgrade(fresh_url, "base")
    migrate(fresh_url)
    assert table_names(fresh_url) - {"alembic_version"} == TABLES
    assert len(rows(fresh_url, "SELECT name FROM scope")) == len(BUILTIN_SCOPES)


def test_upgrade_twice_changes_nothing(fresh_url: str) -> None:
    migrate(fresh_url)
    migrate(fresh_url)
    assert len(rows(fresh_url, "SELECT name FROM role")) == len(BUILTIN_ROLES)


def test_models_and_migrations_agree(fresh_url: str) -> None:
    migrate(fresh_url)

    def differences(conn: Connection) -> list[Any]:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        return compare_metadata(context, SQLModel.metadata)  # type: ignore[no-any-return]

    assert on_connection(fresh_url, differences) == []


def test_seed_holds_every_builtin_scope(fresh_url: str) -> None:
    migrate(fresh_url)
    seeded = rows(fresh_url, "SELECT name, description, builtin FROM scope")
    assert {(name, bool(builtin)) for name, _, builtin in seeded} == {
        (name, True) for name in BUILTIN_SCOPES
    }
    assert {"clients:read", "clients:write", "tokens:introspect"} <= set(BUILTIN_SCOPES)
    assert {"openid", "profile", "email"} <= set(BUILTIN_SCOPES)
    assert all(description for _, description, _ in seeded)


def test_seed_holds_the_builtin_roles_with_their_scopes(fresh_url: str) -> None:
    migrate(fresh_url)
    roles = {
        name: bool(builtin) for name, builtin in rows(fresh_url, "SELECT name, builtin FROM role")
    }
    assert roles == {"user": True, "admin": True}
    links: dict[str, set[str]] = {}
    for role, scope in rows(fresh_url, "SELECT role_name, scope_name FROM role_scope"):
        links.setdefault(role, set()).add(scope)
    assert links == {"user": {"me:read", "me:write"}, "admin": set(PERMISSION_SCOPES)}


def test_no_role_holds_the_openid_connect_scopes(fresh_url: str) -> None:
    migrate(fresh_url)
    held = {scope for _, scope in rows(fresh_url, "SELECT role_name, scope_name FROM role_scope")}
    assert held.isdisjoint(OIDC_SCOPES)


def test_seed_holds_the_builtin_gatehouse_client(fresh_url: str) -> None:
    migrate(fresh_url)
    [(client_id, client_type, builtin, first_party, is_active, secret)] = rows(
        fresh_url,
        "SELECT client_id, type, builtin, first_party, is_active, secret_hash FROM oauth_client",
    )
    assert (client_id, client_type, bool(builtin), bool(first_party), bool(is_active)) == (
        "gatehouse",
        "public",
        True,
        True,
        True,
    )
    assert secret is None


def test_sessions_from_before_the_clients_migration_belong_to_the_builtin_client(
    fresh_url: str,
) -> None:
    migrate(fresh_url, "0002")
    account, session = "0" * 31 + "1", "0" * 31 + "2"
    on_connection(
        fresh_url,
        lambda c: (
            c.execute(
                text(
                    "INSERT INTO account (id, username, username_key, password_hash, is_active,"
                    " authz_version, created_at, updated_at) VALUES (:id, 'old', 'old', 'x',"
                    " :t, 1, CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"
                ),
                {"id": account, "t": True},
            ),
            c.execute(
                text(
                    "INSERT INTO auth_session (id, account_id, scope, created_at, last_used_at,"
                    " expires_at) VALUES (:id, :account, '*', CURRENT_TIMESTAMP, CURRENT_TIMESTAMP,"
                    " CURRENT_TIMESTAMP)"
                ),
                {"id": session, "account": account},
            ),
            c.commit(),  # type: ignore[func-returns-value]
        ),
    )
    migrate(fresh_url)
    assert rows(fresh_url, "SELECT client_id FROM auth_session") == [("gatehouse",)]
    downgrade(fresh_url, "0002")
    assert len(rows(fresh_url, "SELECT id FROM auth_session")) == 1
    assert "oauth_client" not in table_names(fresh_url)


def test_seed_matches_the_code_catalogue(fresh_url: str) -> None:
    migrate(fresh_url)
    assert dict(rows(fresh_url, "SELECT name, description FROM scope")) == BUILTIN_SCOPES
    descriptions = dict(rows(fresh_url, "SELECT name, description FROM role"))
    assert descriptions == {name: description for name, (description, _) in BUILTIN_ROLES.items()}


def test_migrated_database_has_no_accounts_or_signing_keys(fresh_url: str) -> None:
    migrate(fresh_url)
    assert rows(fresh_url, "SELECT count(*) FROM account") == [(0,)]
    assert rows(fresh_url, "SELECT count(*) FROM signing_key") == [(0,)]


def test_metrics_scope_migration_takes_over_a_custom_scope_of_that_name(fresh_url: str) -> None:
    """0003 on a database where an admin had made `metrics:read` as a custom scope:
    it becomes the built-in one, the role carrying it keeps it, admin gains it."""
    migrate(fresh_url, "0002")

    def seed_custom(conn: Connection) -> None:
        conn.execute(
            text("INSERT INTO scope (name, description, builtin) VALUES ('metrics:read', 'x', :f)"),
            {"f": False},
        )
        conn.execute(
            text("INSERT INTO role (name, description, builtin) VALUES ('scraper', '', :f)"),
            {"f": False},
        )
        conn.execute(
            text(
                "INSERT INTO role_scope (role_name, scope_name) VALUES ('scraper', 'metrics:read')"
            )
        )
        conn.commit()

    on_connection(fresh_url, seed_custom)
    migrate(fresh_url)
    scope = rows(fresh_url, "SELECT description, builtin FROM scope WHERE name = 'metrics:read'")
    assert [(d, bool(b)) for d, b in scope] == [(BUILTIN_SCOPES["metrics:read"], True)]
    holders = rows(fresh_url, "SELECT role_name FROM role_scope WHERE scope_name = 'metrics:read'")
    assert sorted(r for (r,) in holders) == ["admin", "scraper"]
    downgrade(fresh_url, "0002")
    assert rows(fresh_url, "SELECT name FROM scope WHERE name = 'metrics:read'") == []
