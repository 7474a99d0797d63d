"""Test harness: every API test runs on SQLite and on a real PostgreSQL.

Each run creates its own databases (a SQLite file, a PostgreSQL database with a
random name), migrates them with Alembic once, and drops them at the end; each
test starts from the seeded state. With CI=true a missing PostgreSQL fails the
run; elsewhere its tests are skipped with one line saying how to start it.
"""

import asyncio
import os
import secrets
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from alembic import command
from alembic.config import Config
from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from app.authz.catalogue import BUILTIN_ROLES
from app.core.config import Settings
from app.main import create_app
from app.state import State

ROOT = Path(__file__).resolve().parent.parent
PG_HOST = os.environ.get("GATEHOUSE_TEST_PG_HOST", "127.0.0.1")
PG_PORT = int(os.environ.get("GATEHOUSE_TEST_PG_PORT", "5432"))
PG_USER = os.environ.get("GATEHOUSE_TEST_PG_USER", "postgres")
IN_CI = os.environ.get("CI", "").lower() == "true"
PG_HINT = (
    f"PostgreSQL not reachable at {PG_HOST}:{PG_PORT}; its tests are skipped. Start it with: "
    "pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start"
)
ADMIN_USERNAME = "admin"
ADMIN_PASSWORD = "admin-password-for-tests"
PG_AVAILABLE = pytest.StashKey[bool]()
TEST_SECRET = "test-secret-" + "x7Q2p9Lm4Rz8Kw1Vb6Nc3Hd5Jf0Tg" * 2


def _pg_available() -> bool:
    async def probe() -> bool:
        try:
            conn = await asyncpg.connect(
                host=PG_HOST, port=PG_PORT, user=PG_USER, database="postgres", timeout=3
            )
        except (OSError, asyncpg.PostgresError, TimeoutError):
            return False
        await conn.close()
        return True

    return asyncio.run(probe())


def pytest_configure(config: pytest.Config) -> None:
    config.stash[PG_AVAILABLE] = _pg_available()
    if not config.stash[PG_AVAILABLE] and IN_CI:
        raise pytest.UsageError(f"CI=true but {PG_HINT}")


def pytest_report_header(config: pytest.Config) -> str:
    return "postgresql: " + ("available" if config.stash[PG_AVAILABLE] else PG_HINT)


def migrate(url: str, revision: str = "head") -> None:
    cfg = Config(str(ROOT / "alembic.ini"))
    cfg.set_main_option("sqlalchemy.url", url)
    command.upgrade(cfg, revision)


def downgrade(url: str, revision: str = "base") -> None:
    cfg = Config(str(ROOT / "alembic.ini"))
    cfg.set_main_option("sqlalchemy.url", url)
    command.downgrade(cfg, revision)


async def _pg_admin(sql: str) -> None:
    conn = await asyncpg.connect(host=PG_HOST, port=PG_PORT, user=PG_USER, database="postgres")
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


@pytest.fixture(scope="session")
def pg_database_factory(request: pytest.FixtureRequest) -> Iterator[Callable[[], str]]:
    """Creates fresh PostgreSQL databases (dropped at the end of the run)."""
    if not request.config.stash[PG_AVAILABLE]:
        pytest.skip(PG_HINT)
    created: list[str] = []

    def create() -> str:
        name = f"gatehouse_test_{secrets.token_hex(6)}"
        asyncio.run(_pg_admin(f'CREATE DATABASE "{name}"'))
        created.append(name)
        return f"postgresql+asyncpg://{PG_USER}@{PG_HOST}:{PG_PORT}/{name}"

    yield create
    for name in created:
        asyncio.run(_pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(scope="session")
def sqlite_database_factory(tmp_path_factory: pytest.TempPathFactory) -> Callable[[], str]:
    def create() -> str:
        path = tmp_path_factory.mktemp("db") / "gatehouse.db"
        return f"sqlite+aiosqlite:///{path}"

    return create


@pytest.fixture(scope="session")
def migrated_urls() -> dict[str, str]:
    return {}


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, migrated_urls: dict[str, str]) -> str:
    """A migrated database of each backend, shared by the run, reset per test."""
    backend = request.param
    if backend not in migrated_urls:
        factory = request.getfixturevalue(
            f"{'pg' if backend == 'postgresql' else 'sqlite'}_database_factory"
        )
        url = factory()
        migrate(url)
        migrated_urls[backend] = url
    return migrated_urls[backend]


@pytest.fixture
def backend(database_url: str) -> str:
    return "postgresql" if database_url.startswith("postgresql") else "sqlite"


async def reset_database(url: str) -> None:
    """Back to the migration's seed: built-in scopes and roles; signing keys kept."""
    engine = create_async_engine(url)
    async with engine.begin() as conn:
        for table in (
            "authorization_code",
            "consent",
            "browser_session",
            "refresh_token",
            "auth_session",
            "personal_access_token",
            "client_role",
            "account_role",
            "account",
            "audit_event",
            "login_throttle",
            "role_scope",
        ):
            await conn.execute(text(f"DELETE FROM {table}"))  # noqa: S608 - fixed names
        await conn.execute(text("DELETE FROM oauth_client WHERE builtin = :f"), {"f": False})
        await conn.execute(
            text(
                "UPDATE oauth_client SET is_active = :t, authz_version = 1, allowed_scopes = '[]'"
            ),
            {"t": True},
        )
        await conn.execute(text("DELETE FROM role WHERE builtin = :f"), {"f": False})
        await conn.execute(text("DELETE FROM scope WHERE builtin = :f"), {"f": False})
        for role, (_, scopes) in BUILTIN_ROLES.items():
            for scope in scopes:
                await conn.execute(
                    text("INSERT INTO role_scope (role_name, scope_name) VALUES (:r, :s)"),
                    {"r": role, "s": scope},
                )
    await engine.dispose()


def make_settings(database_url: str, tmp_path: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "database_url": database_url,
        "data_dir": tmp_path / "data",
        "secret_key": TEST_SECRET,
        "admin_username": ADMIN_USERNAME,
        "admin_password": ADMIN_PASSWORD,
        # Cheap argon2 for speed; hashing itself is tested with real parameters.
        "argon2_time_cost": 1,
        "argon2_memory_kib": 1024,
        "argon2_parallelism": 1,
        "key_reload_min_interval_seconds": 0,
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)


AppFactory = Callable[..., AbstractAsyncContextManager[httpx.AsyncClient]]


@pytest.fixture
async def make_client(database_url: str, tmp_path: Path) -> AsyncIterator[AppFactory]:
    """`async with make_client(**settings) as client`: an app with its lifespan
    running, spoken to over HTTP through httpx's ASGI transport."""
    await reset_database(database_url)

    @asynccontextmanager
    async def factory(**overrides: Any) -> AsyncIterator[httpx.AsyncClient]:
        settings = make_settings(database_url, tmp_path, **overrides)
        app = create_app(settings)
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(
                transport=transport, base_url="http://testserver"
            ) as client:
                client.app = app  # type: ignore[attr-defined]
                yield client

    yield factory


@pytest.fixture
async def client(make_client: AppFactory) -> AsyncIterator[httpx.AsyncClient]:
    async with make_client() as c:
        yield c


def app_of(client: httpx.AsyncClient) -> FastAPI:
    """The app behind a client that `make_client` made."""
    app = getattr(client, "app", None)
    if not isinstance(app, FastAPI):
        raise TypeError("not a make_client client")
    return app


def app_state(client: httpx.AsyncClient) -> State:
    """What the app's lifespan built (settings, sessionmaker, keyring, ...)."""
    state = app_of(client).state.gatehouse
    if not isinstance(state, State):
        raise TypeError("the app's lifespan has not run")
    return state


def unique_name(prefix: str = "user") -> str:
    return f"{prefix}_{uuid.uuid4().hex[:10]}"
