"""Start-up and shut-down: build the `State`, keep the key set fresh, create the
bootstrap admin, and purge expired rows now and then on every instance."""

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

from fastapi import FastAPI

from app.accounts import service as accounts_service
from app.authorization import service as authorization_service
from app.browser_sessions import service as browser_sessions
from app.core.config import Settings
from app.core.db import ReadPath, create_engine, create_sessionmaker
from app.core.errors import Conflict
from app.crypto.passwords import PasswordHasher
from app.personal_tokens import service as personal_tokens
from app.sessions import service as sessions_service
from app.signing_keys.service import KeyRing
from app.state import State
from app.throttle import service as throttle

log = logging.getLogger("gatehouse")
PURGE_INTERVAL_SECONDS = 600
PURGE_FIRST_DELAY_SECONDS = 30


async def _purge_forever(state: State) -> None:
    """Expired sessions and stale throttle rows go without a separate process."""
    settings = state.settings
    # Soon after start, then periodically: instances restarted often still purge.
    delay = PURGE_FIRST_DELAY_SECONDS
    while True:
        await asyncio.sleep(delay)
        delay = PURGE_INTERVAL_SECONDS
        try:
            async with state.sessionmaker() as db, db.begin():
                await sessions_service.purge_expired(db, settings=settings)
                await personal_tokens.purge_expired(db)
                await authorization_service.purge_expired(db)
                await browser_sessions.purge_expired(db, settings=settings)
                await throttle.purge_stale(
                    db, older_than_seconds=max(3600, settings.login_window_seconds)
                )
        except Exception as exc:
            log.warning("purge failed: %s", type(exc).__name__)


async def _bootstrap_admin(state: State) -> None:
    settings = state.settings
    if not (settings.admin_username and settings.admin_password):
        return
    async with state.sessionmaker() as db:
        try:
            created = await accounts_service.bootstrap_admin(
                db,
                hasher=state.hasher,
                username=settings.admin_username,
                password=settings.admin_password.get_secret_value(),
            )
            await db.commit()
        except Conflict as exc:
            log.warning("bootstrap admin skipped: %s", exc.detail)
            return
    if created:
        log.warning("bootstrap admin %r created", settings.admin_username)


def new_hasher(settings: Settings) -> PasswordHasher:
    return PasswordHasher(
        time_cost=settings.argon2_time_cost,
        memory_kib=settings.argon2_memory_kib,
        parallelism=settings.argon2_parallelism,
        workers=settings.hash_workers,
        queue_limit=settings.hash_queue_limit,
    )


@contextlib.asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    settings: Settings = app.state.settings
    engine = create_engine(settings)
    reads = None if settings.is_sqlite else ReadPath(engine, settings)
    sessionmaker = create_sessionmaker(engine, reads)
    state = State(
        settings=settings,
        engine=engine,
        sessionmaker=sessionmaker,
        hasher=new_hasher(settings),
        keyring=KeyRing(settings, sessionmaker),
        login_slots=asyncio.Semaphore(max(1, settings.db_pool_size // 2)),
    )
    app.state.gatehouse = state
    app.state.sessionmaker = sessionmaker  # read by core.db.get_db
    await state.keyring.start()
    await _bootstrap_admin(state)
    purge = asyncio.create_task(_purge_forever(state), name="purge")
    try:
        yield
    finally:
        purge.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await purge
        await state.keyring.stop()
        state.hasher.close()
        if reads is not None:
            await reads.close()
        await engine.dispose()
