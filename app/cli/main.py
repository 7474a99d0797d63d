"""The `gatehouse` command. Each subcommand loads the configuration first: any
problem stops it with one line per problem and exit code 2, before anything
touches the database; an unreachable database is one line and exit code 1."""

import asyncio
import json
import os
import secrets
from collections.abc import Coroutine
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from sqlalchemy.engine import make_url

from app.accounts import service as accounts_service
from app.cli import calibrate as calibration
from app.cli import reference
from app.cli.database import alembic_config, head_revision, startup_problem
from app.cli.serve import ensure_admin, follow_served_address, hasher_for, run
from app.core.config import ConfigurationError, Settings, load_settings, redacted, variable
from app.core.db import create_engine, create_sessionmaker
from app.core.errors import GatehouseError
from app.signing_keys import service as signing_keys_service

T = TypeVar("T")
cli = typer.Typer(
    name="gatehouse",
    help="Gatehouse: accounts, roles and scoped tokens. Configured by GATEHOUSE_* variables.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)


def settings() -> Settings:
    try:
        return load_settings()
    except ConfigurationError as exc:
        typer.echo(exc.report(), err=True)
        raise typer.Exit(2) from None


def fail(message: str, code: int = 1) -> typer.Exit:
    typer.echo(message, err=True)
    return typer.Exit(code)


def run_async(work: Coroutine[Any, Any, T]) -> T:
    try:
        return asyncio.run(work)
    except GatehouseError as exc:
        raise fail(exc.detail) from None


def check_database(config: Settings) -> None:
    if problem := asyncio.run(startup_problem(config)):
        raise fail(problem)


@cli.command()
def serve(
    host: Annotated[str, typer.Option(help="Address to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on", min=1, max=65535)] = 8000,
    workers: Annotated[int, typer.Option(help="Processes (each with its own pools)", min=1)] = 1,
    migrate_first: Annotated[
        bool, typer.Option("--migrate", help="Upgrade the schema first (make run)")
    ] = False,
    ensure_admin_account: Annotated[
        bool,
        typer.Option(
            "--ensure-admin",
            help="Create an admin when none exists and print its password (make run)",
        ),
    ] = False,
) -> None:
    """Serve the API with uvicorn, after checking configuration and database.

    In development with GATEHOUSE_ISSUER unset, the issuer is the address served on.
    """
    config = follow_served_address(settings(), host, port)
    if migrate_first:
        migrate()
    check_database(config)
    admin = asyncio.run(ensure_admin(config)) if ensure_admin_account else None
    run(config, host=host, port=port, workers=workers, admin=admin)


@cli.command()
def migrate(
    revision: Annotated[str, typer.Argument(help="Target revision")] = "head",
) -> None:
    """Create or upgrade the schema of GATEHOUSE_DATABASE_URL (alembic upgrade)."""
    from alembic import command

    settings()
    config = alembic_config()
    if config is None:
        raise fail("alembic.ini not found: run this from the project folder", 2)
    command.upgrade(config, revision)


@cli.command("create-admin")
def create_admin(
    username: Annotated[
        str | None,
        typer.Argument(help="Default: GATEHOUSE_ADMIN_USERNAME, else `admin`"),
    ] = None,
) -> None:
    """Add an admin account (also when admins exist). Its password comes from
    GATEHOUSE_ADMIN_PASSWORD, or is generated and printed once."""
    config = settings()
    check_database(config)
    name = username or config.admin_username or "admin"
    given = config.admin_password.get_secret_value() if config.admin_password else None
    password = given or secrets.token_urlsafe(18)

    async def create() -> None:
        engine, hasher = create_engine(config), hasher_for(config)
        try:
            async with create_sessionmaker(engine)() as db:
                await accounts_service.create_admin(
                    db, hasher=hasher, username=name, password=password, via="cli"
                )
                await db.commit()
        finally:
            hasher.close()
            await engine.dispose()

    try:
        run_async(create())
    except typer.Exit:
        typer.echo(
            f"Give another name (make create-admin USERNAME=...), or reset that account's "
            f"password (make reset-password USERNAME={name}).",
            err=True,
        )
        raise
    typer.echo(f"Admin account created. username: {name}")
    if given:
        typer.echo(f"                       password: the one in {variable('admin_password')}")
    else:
        typer.echo(f"                       password: {password}   (shown once; store it now)")


@cli.command("reset-password")
def reset_password(
    username: Annotated[str, typer.Argument(help="The account whose password is lost")],
) -> None:
    """Give an account a new generated password (printed once) and end all its sessions."""
    config = settings()
    check_database(config)

    async def reset() -> tuple[bool, str]:
        engine, hasher = create_engine(config), hasher_for(config)
        try:
            async with create_sessionmaker(engine)() as db:
                account, password = await accounts_service.reset_password(
                    db, hasher=hasher, username=username
                )
                await db.commit()
                return account.is_active, password
        finally:
            hasher.close()
            await engine.dispose()

    active, password = run_async(reset())
    typer.echo(f"Password of {username} reset; every session of the account has ended.")
    typer.echo(f"  new password: {password}   (shown once; store it now)")
    if not active:
        typer.echo("  The account is disabled: an admin enables it with PATCH /accounts/{id}.")


@cli.command("rotate-key")
def rotate_key(
    retire_expired: Annotated[
        bool, typer.Option(help="Also delete keys whose retirement time has passed")
    ] = False,
) -> None:
    """Add a new token signing key; older keys verify until their tokens expire.

    Run it with the service's own environment: it refuses when no live key
    decrypts with this GATEHOUSE_SECRET_KEY. Prints key ids and times, never keys.
    """
    config = settings()
    check_database(config)

    async def rotate() -> signing_keys_service.Rotation:
        engine = create_engine(config)
        try:
            async with create_sessionmaker(engine)() as db, db.begin():
                return await signing_keys_service.rotate(
                    db, settings=config, retire_expired=retire_expired
                )
        finally:
            await engine.dispose()

    done = run_async(rotate())
    typer.echo(
        f"New signing key: kid={done.key.kid} alg={done.key.alg}; running instances sign "
        f"with it within {config.key_refresh_seconds:g} s."
    )
    for old in done.retiring:
        typer.echo(f"  {old.kid} ({old.alg}) verifies until {old.retire_at:%Y-%m-%d %H:%M:%S} UTC")
    if retire_expired:
        removed = ", ".join(done.removed)
        typer.echo(f"Deleted {len(done.removed)} retired key(s){': ' if removed else ''}{removed}")


@cli.command("check-config")
def check_config(
    offline: Annotated[bool, typer.Option(help="Do not connect to the database")] = False,
) -> None:
    """Print every configuration problem (exit 2), else what the service would run
    with and whether the database answers at the right schema."""
    config = settings()
    secret = (
        f"from {variable('secret_key')}"
        if config.secret_key and config.secret_key.get_secret_value()
        else f"generated once, in {config.data_dir / 'secret_key'}"
    )
    issuer = config.issuer + (
        " (unset: follows the address `gatehouse serve` serves on)"
        if config.issuer_is_default and not config.is_production
        else ""
    )
    rows = [
        ("environment", config.env),
        ("database", redacted(make_url(config.database_url))),
        ("issuer", issuer),
        ("audience", config.audience),
        ("secret key", secret),
        ("signing", config.signing_algorithm),
        (
            "argon2id",
            f"t={config.argon2_time_cost} m={config.argon2_memory_kib} KiB "
            f"p={config.argon2_parallelism}",
        ),
        ("docs", "served at /docs" if config.show_docs else "off"),
        ("log format", config.log_format),
    ]
    for name, value in rows:
        typer.echo(f"{name + ':':<13} {value}")
    unknown = sorted(
        name
        for name in os.environ
        if name.startswith("GATEHOUSE_")
        and name.removeprefix("GATEHOUSE_").lower() not in Settings.model_fields
        and not name.startswith("GATEHOUSE_TEST_")
    )
    for name in unknown:
        typer.echo(f"note: {name} is not a Gatehouse setting (misspelt?); it is ignored")
    if not offline:
        check_database(config)
        typer.echo(f"{'schema:':<13} at revision {head_revision() or 'unknown'}; database answers")
    typer.echo("Configuration OK")


@cli.command()
def calibrate(
    target_ms: Annotated[
        int, typer.Option(help="Wanted time for one hash, in milliseconds", min=1)
    ] = 250,
    memory_kib: Annotated[
        int | None, typer.Option(help="Memory per hash (default: the configured one)", min=8)
    ] = None,
    parallelism: Annotated[
        int | None, typer.Option(help="Lanes per hash (default: the configured one)", min=1)
    ] = None,
) -> None:
    """Measure the argon2id cost that takes --target-ms here; prints the settings."""
    config = settings()
    taken = calibration.calibrate(
        target=target_ms / 1000,
        memory_kib=memory_kib or config.argon2_memory_kib,
        parallelism=parallelism or config.argon2_parallelism,
    )
    workers = config.hash_workers or os.cpu_count() or 1
    for line in calibration.report(taken, target=target_ms / 1000, workers=workers):
        typer.echo(line)


@cli.command()
def openapi(
    output: Annotated[
        Path | None, typer.Option(help="Write the JSON document here (default: stdout)")
    ] = None,
    markdown: Annotated[
        Path | None, typer.Option(help="Rewrite the generated API reference in this file")
    ] = None,
) -> None:
    """Write the OpenAPI document (and with --markdown, the API reference)."""
    from app.main import create_app

    # Defaults only: the document does not depend on the environment.
    document = create_app(Settings.model_construct(docs_enabled=True)).openapi()
    text = json.dumps(document, indent=2, ensure_ascii=False) + "\n"
    if markdown is not None:
        current = markdown.read_text() if markdown.exists() else ""
        markdown.write_text(reference.splice(current, reference.markdown(document)))
        typer.echo(f"wrote {markdown}")
    if output is not None:
        output.write_text(text)
        typer.echo(f"wrote {output}")
    elif markdown is None:
        typer.echo(text, nl=False)
