"""What the process builds once at start-up, typed, and the dependencies that
read it. The lifespan (`app.lifespan`) makes the one `State` of an app."""

import asyncio
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from starlette.requests import HTTPConnection

from app.core.config import Settings
from app.crypto.passwords import PasswordHasher
from app.signing_keys.service import KeyRing


@dataclass(frozen=True, slots=True)
class State:
    settings: Settings
    engine: AsyncEngine
    sessionmaker: async_sessionmaker[AsyncSession]
    hasher: PasswordHasher
    keyring: KeyRing
    # Password checks waiting on a shared throttle row hold at most half the pool.
    login_slots: asyncio.Semaphore


def state_of(conn: HTTPConnection) -> State:
    state = conn.app.state.gatehouse
    if not isinstance(state, State):  # only when a request arrives outside the lifespan
        raise RuntimeError("the application's lifespan has not run")
    return state


# The dependencies are `async def` although they never wait: FastAPI runs a plain
# `def` dependency in the thread pool, a thread hand-off on every request that
# cost more than the whole liveness query (issue 15's profile: most busy samples).


async def get_state(conn: HTTPConnection) -> State:
    return state_of(conn)


async def _settings(conn: HTTPConnection) -> Settings:
    return state_of(conn).settings


async def _hasher(conn: HTTPConnection) -> PasswordHasher:
    return state_of(conn).hasher


async def _keyring(conn: HTTPConnection) -> KeyRing:
    return state_of(conn).keyring


StateDep = Annotated[State, Depends(get_state)]
SettingsDep = Annotated[Settings, Depends(_settings)]
HasherDep = Annotated[PasswordHasher, Depends(_hasher)]
KeyRingDep = Annotated[KeyRing, Depends(_keyring)]
