"""A configuration that cannot work stops every entry point the same way: every
problem at once, one line each naming its variable, exit code 2, no traceback.
A wrong database URL gets its corrected form; an unreachable database one line."""

import sys
from pathlib import Path

import pytest

from tests.cli.helpers import GATEHOUSE, clean_env, run
from tests.conftest import PG_HOST, PG_PORT, PG_USER, ROOT, TEST_SECRET
from tests.servers import free_port

ALEMBIC = [sys.executable, "-m", "alembic", "-c", str(ROOT / "alembic.ini"), "upgrade", "head"]
UVICORN = [sys.executable, "-m", "uvicorn", "app.main:app", "--app-dir", str(ROOT)]
ENTRY_POINTS = {
    "check-config": [*GATEHOUSE, "check-config"],
    "migrate": [*GATEHOUSE, "migrate"],
    "serve": [*GATEHOUSE, "serve", "--port", str(free_port())],
    "create-admin": [*GATEHOUSE, "create-admin"],
    "rotate-key": [*GATEHOUSE, "rotate-key"],
    "alembic upgrade head": ALEMBIC,
    "uvicorn app.main:app": UVICORN,
}
TWO_PROBLEMS = {
    "GATEHOUSE_DATABASE_URL": "postgres://gatehouse:hunter2-db-password@db.internal/gatehouse",
    "GATEHOUSE_ACCESS_TOKEN_TTL_SECONDS": "fifteen minutes",
}


@pytest.mark.parametrize("command", ENTRY_POINTS.values(), ids=ENTRY_POINTS.keys())
def test_every_entry_point_lists_both_problems_and_exits_2(tmp_path: Path, command) -> None:
    result = run(command, clean_env(tmp_path, **TWO_PROBLEMS), cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    lines = result.stderr.strip().splitlines()
    assert lines[0] == "Gatehouse cannot start: 2 configuration problems"
    assert lines[1].strip().startswith("GATEHOUSE_DATABASE_URL: ")
    assert lines[2].strip().startswith("GATEHOUSE_ACCESS_TOKEN_TTL_SECONDS: ")
    assert "postgresql+asyncpg://gatehouse:***@db.internal/gatehouse" in lines[1]
    assert "hunter2" not in result.stdout + result.stderr


def test_production_without_settings_lists_every_missing_one(tmp_path: Path) -> None:
    result = run(
        [*GATEHOUSE, "check-config"], clean_env(tmp_path, GATEHOUSE_ENV="production"), cwd=tmp_path
    )
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    problems = [line.strip() for line in result.stderr.splitlines()[1:]]
    assert [p.split(":", 1)[0] for p in problems] == [
        "GATEHOUSE_DATABASE_URL",
        "GATEHOUSE_SECRET_KEY",
        "GATEHOUSE_ISSUER",
    ]


WRONG_FORMS = {
    "postgres://u@h:5432/db": "postgresql+asyncpg://u@h:5432/db",
    "postgresql://u@h/db": "postgresql+asyncpg://u@h/db",
    "postgresql+psycopg2://u@h/db": "postgresql+asyncpg://u@h/db",
    "sqlite:///data/x.db": "sqlite+aiosqlite:///data/x.db",
}


@pytest.mark.parametrize(("given", "fixed"), WRONG_FORMS.items(), ids=WRONG_FORMS.keys())
def test_a_database_url_in_a_wrong_form_gets_the_corrected_form(
    tmp_path: Path, given: str, fixed: str
) -> None:
    result = run(
        [*GATEHOUSE, "migrate"], clean_env(tmp_path, GATEHOUSE_DATABASE_URL=given), cwd=tmp_path
    )
    assert result.returncode == 2
    assert f"write {fixed} " in result.stderr
    assert "Traceback" not in result.stderr


def test_an_unsupported_database_names_the_supported_forms(tmp_path: Path) -> None:
    result = run(
        [*GATEHOUSE, "check-config"],
        clean_env(tmp_path, GATEHOUSE_DATABASE_URL="mysql://u@h/db"),
        cwd=tmp_path,
    )
    assert result.returncode == 2
    assert "sqlite+aiosqlite:///" in result.stderr and "postgresql+asyncpg://" in result.stderr


UNREACHABLE = {
    "closed port": (f"postgresql+asyncpg://{PG_USER}@127.0.0.1:{{port}}/gatehouse", "refused"),
    "missing database": (
        f"postgresql+asyncpg://{PG_USER}@{PG_HOST}:{PG_PORT}/gatehouse_no_such_db",
        "does not exist",
    ),
}


@pytest.mark.parametrize("case", UNREACHABLE.values(), ids=UNREACHABLE.keys())
@pytest.mark.parametrize("command", ["migrate", "serve", "check-config"])
def test_an_unreachable_database_is_one_line(tmp_path: Path, command: str, case) -> None:
    url, reason = case
    if "does not exist" in reason and not _pg_up():
        pytest.skip("needs the PostgreSQL server to say the database is missing")
    args = [command, "--port", str(free_port())] if command == "serve" else [command]
    result = run(
        [*GATEHOUSE, *args],
        clean_env(tmp_path, GATEHOUSE_DATABASE_URL=url.format(port=free_port())),
        cwd=tmp_path,
    )
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    [line] = [line for line in result.stderr.splitlines() if line.startswith("GATEHOUSE_")]
    assert line.startswith("GATEHOUSE_DATABASE_URL: cannot use the database at ")
    assert reason in line


def test_serve_on_a_database_without_schema_says_to_migrate(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'empty.db'}"
    result = run(
        [*GATEHOUSE, "serve", "--port", str(free_port())],
        clean_env(tmp_path, GATEHOUSE_DATABASE_URL=url, GATEHOUSE_SECRET_KEY=TEST_SECRET),
        cwd=tmp_path,
    )
    assert result.returncode == 1
    assert "gatehouse migrate" in result.stderr
    assert "Traceback" not in result.stderr


def test_check_config_describes_a_working_configuration(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'gatehouse.db'}"
    env = clean_env(tmp_path, GATEHOUSE_DATABASE_URL=url)
    assert run([*GATEHOUSE, "migrate"], env, cwd=tmp_path).returncode == 0
    result = run([*GATEHOUSE, "check-config"], env, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "Configuration OK" in result.stdout
    assert "follows the address" in result.stdout  # issuer unset in development


def _pg_up() -> bool:
    import socket

    with socket.socket() as s:
        s.settimeout(1)
        return s.connect_ex((PG_HOST, PG_PORT)) == 0
