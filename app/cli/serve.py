"""`gatehouse serve`: check everything that would make start-up fail, make sure
an admin exists when asked (`make run`), say where to go, then run uvicorn."""

import os
import secrets
from dataclasses import dataclass

import typer
import uvicorn
from sqlalchemy.engine import make_url

from app.accounts import service as accounts_service
from app.core.config import Settings, redacted, variable
from app.core.db import create_engine, create_sessionmaker
from app.crypto.passwords import PasswordHasher
from app.observability.logs import logging_config
from app.roles import service as roles_service

# Addresses that mean this machine (or all its interfaces): a browser here says localhost.
LOCAL_HOSTS = {"127.0.0.1", "localhost", "::1", "0.0.0.0", "::"}  # noqa: S104 - names, not binds


def served_issuer(host: str, port: int) -> str:
    """The development issuer when GATEHOUSE_ISSUER is unset: where this process
    serves, as a browser on this machine names it."""
    name = "localhost" if host in LOCAL_HOSTS else (f"[{host}]" if ":" in host else host)
    return f"http://{name}:{port}"


@dataclass(frozen=True, slots=True)
class AdminNotice:
    username: str
    password: str | None  # None: not shown (it came from the environment, or exists)
    created: bool


def hasher_for(settings: Settings) -> PasswordHasher:
    return PasswordHasher(
        time_cost=settings.argon2_time_cost,
        memory_kib=settings.argon2_memory_kib,
        parallelism=settings.argon2_parallelism,
    )


async def ensure_admin(settings: Settings) -> AdminNotice:
    """Create the development admin when no active account holds `admin`
    (GATEHOUSE_ADMIN_USERNAME, default `admin`; GATEHOUSE_ADMIN_PASSWORD, else a
    generated one, shown once), or name the admins there are."""
    engine = create_engine(settings)
    hasher = hasher_for(settings)
    username = settings.admin_username or "admin"
    given = settings.admin_password.get_secret_value() if settings.admin_password else None
    password = given or secrets.token_urlsafe(18)
    try:
        async with create_sessionmaker(engine)() as db:
            created = await accounts_service.bootstrap_admin(
                db, hasher=hasher, username=username, password=password
            )
            await db.commit()
            if created is not None:
                return AdminNotice(username, None if given else password, created=True)
            admins = await roles_service.active_admins(db, limit=1)
            account = await accounts_service.get_account(db, admins[0])
            return AdminNotice(account.username, None, created=False)
    finally:
        hasher.close()
        await engine.dispose()


def banner(settings: Settings, *, host: str, port: int, admin: AdminNotice | None) -> str:
    """What `serve` prints before uvicorn starts; the admin's credentials last."""
    address = f"http://{f'[{host}]' if ':' in host else host}:{port}"
    lines = [f"Gatehouse ({settings.env}) is starting on {address}"]
    if settings.show_docs:
        lines.append(f"  API docs (Swagger UI): {address}/docs")
    lines += [
        f"  Health:                {address}/healthz",
        f"  Issuer (tokens' iss):  {settings.issuer}",
        f"  Database:              {redacted(make_url(settings.database_url))}",
        "",
    ]
    if admin is not None and admin.created:
        lines.append("Admin account created; Authorize in the Swagger UI with:")
        lines.append(f"  username: {admin.username}")
        if admin.password:
            lines.append(f"  password: {admin.password}   (shown once; store it now)")
        else:
            lines.append(f"  password: the one in {variable('admin_password')}")
    elif admin is not None:
        lines.append(f"Admin account: {admin.username} (its password was shown when it was made)")
        lines.append(f"  Lost it? make reset-password USERNAME={admin.username}")
    return "\n".join(lines)


def run(
    settings: Settings, *, host: str, port: int, workers: int, admin: AdminNotice | None
) -> None:
    typer.echo(banner(settings, host=host, port=port, admin=admin) + "\n")
    uvicorn.run(
        "app.main:app",
        host=host,
        port=port,
        workers=workers,
        # X-Forwarded-For is the app's to judge (GATEHOUSE_TRUSTED_PROXIES): uvicorn
        # must not rewrite the client address first.
        proxy_headers=False,
        server_header=False,
        # The app writes its own request lines, without query strings.
        access_log=False,
        log_config=logging_config(settings.log_format),
    )


def follow_served_address(settings: Settings, host: str, port: int) -> Settings:
    """In development with GATEHOUSE_ISSUER unset, the issuer is the served address
    (the app reads it from the environment when uvicorn imports it)."""
    if settings.is_production or not settings.issuer_is_default:
        return settings
    issuer = served_issuer(host, port)
    os.environ[variable("issuer")] = issuer
    return settings.model_copy(update={"issuer": issuer})
