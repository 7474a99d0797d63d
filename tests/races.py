"""Forcing races from the test side, so a race test fails on every run of code
that has the race and passes on every run of code that does not.

Three tools, none of them in production code:
- `Pause` replaces a coroutine function (with `monkeypatch`) by one that stops at
  its first call until the test lets it go: a request is held at a known point
  while another one runs.
- `HeldVerify` holds a password check after it has judged the password: a login
  is then exactly between "the password is right" and "its session is created".
- `blocked_or_done` tells when a request has either finished or is waiting on a
  PostgreSQL lock (SQLite has a single connection: there it simply waits).
"""

import asyncio
import threading
import time
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg

from app.crypto.passwords import PasswordHasher


class Pause:
    """Wraps `target`: the first call (for which `when` holds) stops before running
    until `release()`; `reached` is set once it has stopped. Other calls run as usual."""

    def __init__(
        self,
        target: Callable[..., Awaitable[Any]],
        when: Callable[..., bool] = lambda *args, **kwargs: True,
    ):
        self.target = target
        self.when = when
        self.reached = asyncio.Event()
        self._go = asyncio.Event()
        self._armed = True

    async def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if self._armed and self.when(*args, **kwargs):
            self._armed = False
            self.reached.set()
            await asyncio.wait_for(self._go.wait(), timeout=30)
        return await self.target(*args, **kwargs)

    def release(self) -> None:
        self._go.set()


class HeldVerify:
    """Replaces `hasher.verify`: while `holding`, each check runs for real, then waits
    for `release()` before answering. `held` counts the checks waiting."""

    def __init__(self, hasher: PasswordHasher):
        self.real = hasher.verify
        self.holding = True
        self.held = 0
        self._go = asyncio.Event()

    async def __call__(self, password_hash: str | None, password: str) -> bool:
        ok = await self.real(password_hash, password)
        if self.holding:
            self.held += 1
            await asyncio.wait_for(self._go.wait(), timeout=30)
        return ok

    async def until_held(self, count: int) -> None:
        await until(lambda: self.held >= count)

    def release(self) -> None:
        self.holding = False
        self._go.set()


class GatedArgon2:
    """Stands in for the hasher's argon2 object: hashing or checking `secret` blocks
    its worker thread until `open()`; every other password runs at once."""

    def __init__(self, real: Any, secret: str):
        self.real = real
        self.secret = secret.encode()
        self.gate = threading.Event()

    def _wait(self, secret: bytes) -> None:
        if secret == self.secret:
            self.gate.wait(timeout=30)

    def hash(self, secret: bytes) -> str:
        self._wait(secret)
        return str(self.real.hash(secret))

    def verify(self, password_hash: str, secret: bytes) -> bool:
        self._wait(secret)
        return bool(self.real.verify(password_hash, secret))

    def check_needs_rehash(self, password_hash: str) -> bool:
        return bool(self.real.check_needs_rehash(password_hash))

    def open(self) -> None:
        self.gate.set()


async def until(condition: Callable[[], bool], timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("the condition never held")
        await asyncio.sleep(0.01)


async def lock_waiters(database_url: str) -> int:
    """How many connections to this PostgreSQL database wait on a lock now."""
    conn = await asyncpg.connect(database_url.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        return int(
            await conn.fetchval(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                " AND pid <> pg_backend_pid() AND wait_event_type = 'Lock'"
            )
        )
    finally:
        await conn.close()


async def blocked_or_done(task: asyncio.Task[Any], database_url: str) -> None:
    """Return once `task` has finished or waits on a PostgreSQL row lock. On SQLite
    the request waits for the one connection, which nothing here can observe: a
    short grace period stands in."""
    if not database_url.startswith("postgresql"):
        await asyncio.wait({task}, timeout=0.3)
        return
    deadline = time.monotonic() + 15
    while not task.done():
        if await lock_waiters(database_url) >= 1:
            return
        if time.monotonic() > deadline:
            raise AssertionError("the request neither finished nor waited on a lock")
        await asyncio.sleep(0.02)
