"""One `Settings` object, read from the environment (prefix `GATEHOUSE_`) and `.env`."""

import os
import secrets
from functools import cached_property
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

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
    database_url: str = ""
    secret_key: SecretStr | None = None
    issuer: str = "http://localhost:8000"
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

    @model_validator(mode="before")
    @classmethod
    def _csv_fields(cls, data: object) -> object:
        if isinstance(data, dict):
            for name in ("cors_origins", "trusted_proxies"):
                if name in data:
                    data[name] = _split_csv(data[name])
        return data

    @model_validator(mode="after")
    def _production_guard(self) -> "Settings":
        if not self.database_url:
            self.database_url = f"sqlite+aiosqlite:///{self.data_dir / 'gatehouse.db'}"
        if self.env == "production":
            problem = secret_problem(self.secret_key)
            if problem:
                raise ValueError(f"GATEHOUSE_SECRET_KEY {problem}; production refuses to start")
            if self.database_url.startswith("sqlite"):
                raise ValueError("production refuses a SQLite database; use PostgreSQL")
        return self

    @property
    def is_production(self) -> bool:
        return self.env == "production"

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


settings = Settings()
