"""One `Settings` object, read from the environment (prefix `GATEHOUSE_`) and `.env`.

`load_settings()` is the way in: a configuration that cannot work raises
`ConfigurationError` listing every problem at once, one line each naming the
variable and what it allows, so that every entry point (`gatehouse serve`,
`gatehouse migrate`, Alembic, `uvicorn app.main:app`) can stop with those lines
and exit code 2 instead of a traceback.
"""

import os
import secrets
import sys
from functools import cached_property
from pathlib import Path
from typing import Annotated, Literal, NoReturn
from urllib.parse import urlsplit

from pydantic import (
    Field,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

# Placeholders that appear in tutorials and sample configs. A production secret
# equal to one of these (or containing one as its whole content) is refused.
KNOWN_WEAK_SECRETS = frozenset(
    {
        "secret",
        "changeme",
        "change-me",
        "changethis",
        "password",
        "supersecret",
        "your-secret-key",
        "your_secret_key",
        "secret-key",
        "secret_key",
        "mysecretkey",
        "development",
        "test",
        # FastAPI's OAuth2/JWT tutorial key.
        "09d25e094faa6ca2556c818166b7a9563b93f7099f6f0f4caa6cf63b88e8d3e7",
    }
)
MIN_SECRET_BYTES = 32
ENV_PREFIX = "GATEHOUSE_"
# What `make run` serves on, and so the development issuer when nothing says otherwise.
DEVELOPMENT_ISSUER = "http://localhost:8000"
# Exit code of every entry point that stops on configuration (as argparse and
# click do for usage errors).
CONFIG_EXIT_CODE = 2
ASYNC_DRIVERS = {"sqlite": "sqlite+aiosqlite", "postgresql": "postgresql+asyncpg"}
# Driver names people write, and the async form Gatehouse needs instead.
_DRIVER_FIXES = {
    "sqlite": "sqlite+aiosqlite",
    "sqlite+pysqlite": "sqlite+aiosqlite",
    "postgres": "postgresql+asyncpg",
    "postgresql": "postgresql+asyncpg",
    "postgresql+psycopg2": "postgresql+asyncpg",
    "postgresql+psycopg": "postgresql+asyncpg",
    "postgresql+pg8000": "postgresql+asyncpg",
    "postgres+asyncpg": "postgresql+asyncpg",
}
DATABASE_URL_FORMS = (
    "sqlite+aiosqlite:///path/to/file.db or postgresql+asyncpg://user:password@host:5432/name"
)


class ConfigurationError(Exception):
    """A configuration that cannot work; `problems` are whole lines, each naming
    its variable."""

    def __init__(self, problems: list[str]):
        super().__init__("\n".join(problems))
        self.problems = problems

    def report(self) -> str:
        count = len(self.problems)
        lines = [f"Gatehouse cannot start: {count} configuration problem{'s' * (count != 1)}"]
        lines += [f"  {problem}" for problem in self.problems]
        return "\n".join(lines)

    def exit(self) -> NoReturn:
        print(self.report(), file=sys.stderr)
        raise SystemExit(CONFIG_EXIT_CODE)


def variable(field: str) -> str:
    return f"{ENV_PREFIX}{field.upper()}"


def redacted(url: URL) -> str:
    return url.render_as_string(hide_password=True)


def database_url_problem(value: str) -> str | None:
    """Why `value` is not a URL Gatehouse can use, with the corrected form when
    only the driver is wrong (`postgres://` is what most hosting panels print)."""
    try:
        url = make_url(value)
    except ArgumentError:
        return f"is not a database URL; use {DATABASE_URL_FORMS}"
    if url.drivername in ASYNC_DRIVERS.values():
        return None
    fix = _DRIVER_FIXES.get(url.drivername)
    if fix is None:
        return (
            f"names the driver {url.drivername!r}; Gatehouse runs on SQLite or PostgreSQL "
            f"through async drivers: {DATABASE_URL_FORMS}"
        )
    return (
        f"needs the async driver: write {redacted(url.set(drivername=fix))} "
        f"(not {url.drivername}://)"
    )


def _split_csv(value: object) -> object:
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return value


CsvList = Annotated[list[str], NoDecode]


class Settings(BaseSettings):
    # hide_input_in_errors: a refusal must not print the secret it refuses (pydantic
    # echoes the input, which holds GATEHOUSE_SECRET_KEY, in the error message).
    model_config = SettingsConfigDict(
        env_prefix="GATEHOUSE_", env_file=".env", extra="ignore", hide_input_in_errors=True
    )

    env: Literal["development", "production"] = "development"
    data_dir: Path = Path("data")
    # validate_default: the checks below also judge what was left unset.
    database_url: str = Field("", validate_default=True)
    secret_key: SecretStr | None = Field(None, validate_default=True)
    # Unset: in development the address `gatehouse serve` serves on, else
    # DEVELOPMENT_ISSUER; production requires it (tokens name it as `iss`).
    issuer: str = Field("", validate_default=True)
    audience: str = "gatehouse"
    access_token_ttl_seconds: int = Field(900, ge=30, le=86_400)
    refresh_token_ttl_seconds: int = Field(2_592_000, ge=60)
    session_idle_timeout_seconds: int = Field(1_209_600, ge=60)
    admin_username: str | None = None
    admin_password: SecretStr | None = None
    signup_enabled: bool = True
    cors_origins: CsvList = []
    login_max_failures: int = Field(10, ge=1)
    login_lockout_seconds: int = Field(300, ge=1)
    # Per client address, across accounts: higher than the per-account limit, so
    # that one office behind a NAT (or every local client) does not lock itself out.
    login_max_failures_per_address: int = Field(100, ge=1)
    trusted_proxies: CsvList = []
    # The resource owner password grant, for every client (RFC 9700 §2.4 advises
    # against it; deployments with the code flow can switch it off).
    password_grant_enabled: bool = True
    # Longest (and default) lifetime of a personal access token.
    pat_max_days: int = Field(90, ge=1, le=3650)
    # Signups per client address per window (one hour).
    signup_max_per_hour: int = Field(20, ge=1)

    # Signing: RS256 by default; ES256 and HS256 selectable. HS256 publishes no keys.
    signing_algorithm: Literal["RS256", "ES256", "HS256"] = "RS256"
    # How often each instance re-reads the key table, and the least time between
    # two reloads forced by a token naming an unknown `kid`.
    key_refresh_seconds: float = Field(60.0, gt=0)
    key_reload_min_interval_seconds: float = Field(5.0, ge=0)

    # argon2id cost; the defaults are argon2-cffi's (RFC 9106 low-memory profile),
    # above OWASP's minimum of m=19 MiB, t=2, p=1.
    argon2_time_cost: int = Field(3, ge=1)
    argon2_memory_kib: int = Field(65_536, ge=8)
    argon2_parallelism: int = Field(4, ge=1)
    # Hashes run at once (threads) and hashes allowed to wait; past both, 503.
    hash_workers: int = Field(0, ge=0)  # 0: one per CPU core
    hash_queue_limit: int = Field(64, ge=0)

    max_body_bytes: int = Field(65_536, ge=1024)
    docs_enabled: bool | None = None  # default: on in development, off in production
    db_pool_size: int = Field(10, ge=1)
    db_timeout_seconds: float = Field(5.0, gt=0)

    log_format: Literal["text", "json"] = "text"
    # One log line per request (never its query string); off for benchmarks.
    access_log: bool = True

    @model_validator(mode="before")
    @classmethod
    def _csv_fields(cls, data: object) -> object:
        if isinstance(data, dict):
            for name in ("cors_origins", "trusted_proxies"):
                if name in data:
                    data[name] = _split_csv(data[name])
        return data

    # Field validators run in declaration order, each seeing the fields before it
    # in `info.data`: so each problem is its own error and all are reported at once.

    @field_validator("database_url")
    @classmethod
    def _database_url(cls, value: str, info: ValidationInfo) -> str:
        if not value:
            value = (
                f"sqlite+aiosqlite:///{info.data.get('data_dir', Path('data')) / 'gatehouse.db'}"
            )
        elif problem := database_url_problem(value):
            raise ValueError(problem)
        if info.data.get("env") == "production" and value.startswith("sqlite"):
            raise ValueError(
                "production refuses a SQLite database; set a PostgreSQL URL "
                "(postgresql+asyncpg://user:password@host:5432/name)"
            )
        return value

    @field_validator("secret_key")
    @classmethod
    def _secret_key(cls, value: SecretStr | None, info: ValidationInfo) -> SecretStr | None:
        if info.data.get("env") == "production" and (problem := secret_problem(value)):
            raise ValueError(
                f"{problem}; production refuses to start without at least {MIN_SECRET_BYTES} "
                "random bytes (python3 -c 'import secrets; print(secrets.token_urlsafe(48))')"
            )
        return value

    @field_validator("issuer")
    @classmethod
    def _issuer(cls, value: str, info: ValidationInfo) -> str:
        if not value:
            if info.data.get("env") == "production":
                raise ValueError(
                    "is required in production: the public https URL clients reach this "
                    "service at (tokens carry it as `iss`)"
                )
            return DEVELOPMENT_ISSUER
        parts = urlsplit(value)
        if (
            parts.scheme not in ("http", "https")
            or not parts.netloc
            or parts.query
            or parts.fragment
        ):
            raise ValueError(
                "must be an http(s) URL with no query or fragment, such as https://auth.example.com"
            )
        return value

    @property
    def is_production(self) -> bool:
        return self.env == "production"

    @property
    def issuer_is_default(self) -> bool:
        """Whether the issuer was left unset (and so may follow the served address)."""
        return "issuer" not in self.model_fields_set

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    @property
    def show_docs(self) -> bool:
        return (not self.is_production) if self.docs_enabled is None else self.docs_enabled

    @property
    def login_window_seconds(self) -> int:
        """Failures are counted over at least a minute, whatever the lockout length."""
        return max(60, self.login_lockout_seconds)

    @cached_property
    def master_secret(self) -> bytes:
        """The secret key, or in development one generated once per data folder."""
        if self.secret_key is not None and self.secret_key.get_secret_value():
            return self.secret_key.get_secret_value().encode()
        return _folder_secret(self.data_dir / "secret_key")


def _folder_secret(path: Path) -> bytes:
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        staged = path.with_name(f".{path.name}.{secrets.token_hex(8)}")
        fd = os.open(staged, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as file:
            file.write(secrets.token_urlsafe(48))
        try:
            # Linking a complete file is atomic and never replaces: of processes
            # starting at once, the first wins and no one reads a half-written
            # (empty) secret.
            os.link(staged, path)
        except FileExistsError:
            pass
        finally:
            staged.unlink()
    secret = path.read_text().strip()
    if not secret:
        raise RuntimeError(f"{path} is empty; delete it and a new secret is generated")
    return secret.encode()


def secret_problem(secret: SecretStr | None) -> str | None:
    """Why a secret is unfit for production, or None."""
    if secret is None or not secret.get_secret_value():
        return "is missing"
    value = secret.get_secret_value()
    if len(value.encode()) < MIN_SECRET_BYTES:
        return f"is shorter than {MIN_SECRET_BYTES} bytes"
    folded = value.strip().lower()
    if folded in KNOWN_WEAK_SECRETS or len(set(folded)) < 8:
        return "is a well-known or low-variety placeholder"
    return None


def _problem_line(error: object) -> str:
    details = error if isinstance(error, dict) else {}
    loc = details.get("loc") or ()
    field = str(loc[0]) if loc else ""
    message = str(details.get("msg", "invalid value")).removeprefix("Value error, ")
    return f"{variable(field)}: {message}" if field else message


def load_settings(**values: object) -> Settings:
    """The settings from the environment (and `.env`), or `ConfigurationError`
    listing every problem. `values` override the environment (tests)."""
    try:
        return Settings(**values)  # type: ignore[arg-type]
    except ValidationError as exc:
        raise ConfigurationError([_problem_line(e) for e in exc.errors()]) from None


def settings_or_exit() -> Settings:
    """`load_settings()`, or the problems on stderr and exit code 2 (no traceback)."""
    try:
        return load_settings()
    except ConfigurationError as exc:
        exc.exit()
