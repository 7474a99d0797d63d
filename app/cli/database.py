"""What the commands ask of the database before they act: can it be reached,
and is its schema the one this code needs."""

from pathlib import Path

from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.exc import DBAPIError

from app.core.config import Settings
from app.core.db import create_engine, database_problem, unreachable

PROJECT_ROOT = Path(__file__).resolve().parents[2]


def alembic_config() -> Config | None:
    """alembic.ini of the checkout (editable install) or of the working directory
    (the Docker image runs from the folder holding it)."""
    for folder in (PROJECT_ROOT, Path.cwd()):
        if (folder / "alembic.ini").is_file():
            return Config(str(folder / "alembic.ini"))
    return None


def head_revision() -> str | None:
    config = alembic_config()
    return ScriptDirectory.from_config(config).get_current_head() if config else None


async def current_revision(settings: Settings) -> str | None:
    engine = create_engine(settings)
    try:
        async with engine.connect() as connection:
            return await connection.run_sync(
                lambda sync: MigrationContext.configure(sync).get_current_revision()
            )
    finally:
        await engine.dispose()


async def startup_problem(settings: Settings) -> str | None:
    """One line when the database cannot serve this code: unreachable, or its
    schema missing or at another revision than this code's migrations end at."""
    if problem := await database_problem(settings):
        return problem
    head = head_revision()
    if head is None:
        return None  # no migrations shipped here: nothing to compare with
    try:
        current = await current_revision(settings)
    except (OSError, TimeoutError, DBAPIError) as exc:
        return unreachable(exc, settings.database_url)
    if current == head:
        return None
    if current is None:
        return "The database has no Gatehouse schema yet: run `gatehouse migrate` (make migrate)"
    return (
        f"The database schema is at revision {current}, this code needs {head}: "
        "run `gatehouse migrate` (make migrate)"
    )
