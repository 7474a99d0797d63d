"""Settings: production refuses unsafe configuration before it serves anything;
development makes its own secret once per data folder and keeps it."""

import os
import secrets
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from app.core.config import Settings
from tests.conftest import ROOT
from tests.servers import free_port

GOOD_SECRET = secrets.token_urlsafe(48)
POSTGRES_URL = "postgresql+asyncpg://gatehouse@127.0.0.1:5432/gatehouse"
SQLITE_URL = "sqlite+aiosqlite:///./data/gatehouse.db"
TUTORIAL_KEY = "09d25e094faa6ca2556c818166b7a9563b93f7099f6f0f4caa6cf63b88e8d3e7"


def environment(tmp_path: Path, **variables: str | None) -> dict[str, str]:
    """This process's environment without any GATEHOUSE_ variable, plus `variables`.
    The working directory is empty, so no `.env` file joins in."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("GATEHOUSE_")}
    env["PYTHONPATH"] = str(ROOT)
    env["GATEHOUSE_DATA_DIR"] = str(tmp_path / "data")
    env.update({f"GATEHOUSE_{k.upper()}": v for k, v in variables.items() if v is not None})
    return env


def import_app(tmp_path: Path, **variables: str | None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", "import app.main"],
        cwd=tmp_path,
        env=environment(tmp_path, **variables),
        capture_output=True,
        text=True,
        timeout=60,
    )


REFUSED = {
    "missing secret": {"secret_key": None, "database_url": POSTGRES_URL},
    "empty secret": {"secret_key": "", "database_url": POSTGRES_URL},
    "10-byte secret": {"secret_key": "k3Q9vX2pL7", "database_url": POSTGRES_URL},
    "31-byte secret": {"secret_key": GOOD_SECRET[:31], "database_url": POSTGRES_URL},
    "changeme": {"secret_key": "changeme", "database_url": POSTGRES_URL},
    "secret": {"secret_key": "secret", "database_url": POSTGRES_URL},
    "changeme repeated to 40 bytes": {"secret_key": "changeme" * 5, "database_url": POSTGRES_URL},
    "FastAPI tutorial key": {"secret_key": TUTORIAL_KEY, "database_url": POSTGRES_URL},
    "tutorial key in capitals": {"secret_key": TUTORIAL_KEY.upper(), "database_url": POSTGRES_URL},
    "SQLite with a good secret": {"secret_key": GOOD_SECRET, "database_url": SQLITE_URL},
    "default database": {"secret_key": GOOD_SECRET, "database_url": None},
}


@pytest.mark.parametrize("variables", REFUSED.values(), ids=REFUSED.keys())
def test_production_refuses_to_start(tmp_path: Path, variables: dict[str, str | None]) -> None:
    result = import_app(tmp_path, env="production", **variables)
    assert result.returncode != 0
    assert "production refuses" in result.stderr


def test_production_starts_with_a_strong_secret_and_postgresql(tmp_path: Path) -> None:
    result = import_app(
        tmp_path,
        env="production",
        secret_key=GOOD_SECRET,
        database_url=POSTGRES_URL,
        issuer="https://auth.example.test",
    )
    assert result.returncode == 0, result.stderr


def test_production_refusal_does_not_print_the_secret(tmp_path: Path) -> None:
    result = import_app(tmp_path, env="production", secret_key=GOOD_SECRET, database_url=SQLITE_URL)
    assert result.returncode != 0
    output = result.stdout + result.stderr
    assert not any(GOOD_SECRET[i : i + 8] in output for i in range(len(GOOD_SECRET) - 7))


@pytest.mark.parametrize(
    "variables",
    [
        {"secret_key": "changeme", "database_url": POSTGRES_URL},
        {"secret_key": GOOD_SECRET, "database_url": SQLITE_URL},
    ],
    ids=["weak secret", "SQLite"],
)
def test_uvicorn_exits_non_zero_on_unsafe_production_settings(
    tmp_path: Path, variables: dict[str, str]
) -> None:
    uvicorn = Path(sys.executable).parent / "uvicorn"
    result = subprocess.run(
        [str(uvicorn), "app.main:app", "--app-dir", str(ROOT), "--port", str(free_port())],
        cwd=tmp_path,
        env=environment(tmp_path, env="production", **variables),
        capture_output=True,
        text=True,
        timeout=20,
    )
    assert result.returncode != 0
    assert "production refuses" in result.stderr


# --- development -------------------------------------------------------------


@pytest.fixture
def development(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("GATEHOUSE_"):
            monkeypatch.delenv(name)


def dev_settings(data_dir: Path, **values: Any) -> Settings:
    return Settings(_env_file=None, data_dir=data_dir, **values)


@pytest.mark.usefixtures("development")
def test_development_generates_a_strong_secret(tmp_path: Path) -> None:
    secret = dev_settings(tmp_path).master_secret
    assert len(secret) >= 32
    assert len(set(secret)) >= 16


@pytest.mark.usefixtures("development")
def test_development_keeps_its_secret_across_restarts(tmp_path: Path) -> None:
    assert dev_settings(tmp_path).master_secret == dev_settings(tmp_path).master_secret


@pytest.mark.usefixtures("development")
def test_development_secret_is_readable_by_its_owner_only(tmp_path: Path) -> None:
    dev_settings(tmp_path).master_secret  # noqa: B018 - the property writes the file
    [path] = [p for p in tmp_path.iterdir() if p.is_file()]
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


@pytest.mark.usefixtures("development")
def test_each_data_folder_gets_its_own_secret(tmp_path: Path) -> None:
    first = dev_settings(tmp_path / "one").master_secret
    assert first != dev_settings(tmp_path / "two").master_secret


@pytest.mark.usefixtures("development")
def test_development_uses_a_given_secret_and_writes_none(tmp_path: Path) -> None:
    settings = dev_settings(tmp_path, secret_key=GOOD_SECRET)
    assert settings.master_secret == GOOD_SECRET.encode()
    assert not any(tmp_path.iterdir())


@pytest.mark.usefixtures("development")
def test_development_treats_an_empty_secret_as_unset(tmp_path: Path) -> None:
    # `GATEHOUSE_SECRET_KEY=` in a copied .env must not make the empty string the key.
    assert (
        dev_settings(tmp_path, secret_key="").master_secret == dev_settings(tmp_path).master_secret
    )


@pytest.mark.usefixtures("development")
def test_empty_secret_file_is_refused_rather_than_used_as_the_key(tmp_path: Path) -> None:
    (tmp_path / "secret_key").write_text("\n")
    with pytest.raises(RuntimeError, match="empty"):
        dev_settings(tmp_path).master_secret  # noqa: B018 - the property reads the file


# --- problems are listed at once ----------------------------------------------


@pytest.mark.usefixtures("development")
def test_every_problem_is_listed_at_once_naming_its_variable(tmp_path: Path) -> None:
    from app.core.config import ConfigurationError, load_settings

    with pytest.raises(ConfigurationError) as caught:
        load_settings(
            _env_file=None,
            data_dir=tmp_path,
            env="production",
            database_url="postgres://app:pw@db/gatehouse",
            secret_key="changeme",
            access_token_ttl_seconds=5,
            log_format="yaml",
        )
    assert [p.split(":", 1)[0] for p in caught.value.problems] == [
        "GATEHOUSE_DATABASE_URL",
        "GATEHOUSE_SECRET_KEY",
        "GATEHOUSE_ISSUER",
        "GATEHOUSE_ACCESS_TOKEN_TTL_SECONDS",
        "GATEHOUSE_LOG_FORMAT",
    ]
    assert "pw" not in caught.value.report()
    assert "'text' or 'json'" in caught.value.problems[-1]


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("sqlite+aiosqlite:///x.db", None),
        ("postgresql+asyncpg://u@h/db", None),
        ("postgres://u:secret@h/db", "write postgresql+asyncpg://u:***@h/db (not postgres://)"),
        ("sqlite:///x.db", "write sqlite+aiosqlite:///x.db (not sqlite://)"),
        ("mysql+aiomysql://u@h/db", "names the driver 'mysql+aiomysql'"),
        ("not a url", "is not a database URL"),
    ],
)
def test_database_url_problems_name_the_corrected_form(url: str, problem: str | None) -> None:
    from app.core.config import database_url_problem

    found = database_url_problem(url)
    assert found == problem if problem is None else problem in (found or "")


@pytest.mark.usefixtures("development")
def test_development_issuer_defaults_and_remembers_it_was_unset(tmp_path: Path) -> None:
    unset = dev_settings(tmp_path)
    assert unset.issuer == "http://localhost:8000" and unset.issuer_is_default
    given = dev_settings(tmp_path, issuer="https://auth.example.test")
    assert given.issuer == "https://auth.example.test" and not given.issuer_is_default
