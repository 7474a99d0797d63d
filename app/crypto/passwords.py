"""Password hashing (argon2id) off the event loop, and the password policy.

The only importer of argon2. Hashes run in a small thread pool; argon2-cffi drops
the GIL while it works, so logins use every core while the loop keeps serving.
The pool is bounded twice: `workers` hash at once (memory is workers x m_cost)
and at most `queue_limit` more wait; past that `HasherBusy` is raised at once
and the caller answers 503 instead of queueing without limit.

Requests use it through a `HasherClaim` taken for their client address, and
no address holds more than a quarter of those places at once: the rest of its
requests answer 429 at once, so one address (many accounts, parallel password
changes) cannot fill the hasher and turn everyone else's logins into 503s.
"""

import asyncio
import os
import secrets
import sys
import threading
import time
import unicodedata
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from functools import lru_cache
from typing import TypeVar

from argon2 import PasswordHasher as Argon2Hasher
from argon2 import Type
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from app.core.errors import TooManyRequests, Unavailable

T = TypeVar("T")
MIN_LENGTH = 8
HASH_THREAD_NICENESS = 10
MAX_LENGTH = 256
# One client address may hold at most this fraction of the hasher's workers and
# waiting line (at least one place).
ADDRESS_SHARE = 4


class HasherBusy(Unavailable):
    """Every worker is busy and the waiting line is full: shed the load (503)."""

    def __init__(self) -> None:
        super().__init__("Too many logins in progress; retry shortly", retry_after=1)


class AddressBusy(TooManyRequests):
    """This client address already holds its share of the hasher (429)."""

    def __init__(self) -> None:
        super().__init__(
            "Too many password checks in progress from this address; retry shortly",
            retry_after=1,
        )


class PasswordHasher:
    def __init__(
        self,
        *,
        time_cost: int,
        memory_kib: int,
        parallelism: int,
        workers: int = 0,
        queue_limit: int = 64,
    ):
        self._argon2 = Argon2Hasher(
            time_cost=time_cost,
            memory_cost=memory_kib,
            parallelism=parallelism,
            type=Type.ID,
        )
        self.workers = workers or os.cpu_count() or 1
        self.capacity = self.workers + queue_limit
        self.address_share = max(1, self.capacity // ADDRESS_SHARE)
        self._claims: Counter[str | None] = Counter()
        self._pool = ThreadPoolExecutor(
            self.workers, thread_name_prefix="argon2", initializer=_lower_priority
        )
        self._in_flight = 0
        # Unknown usernames are checked against this, so they cost the same work
        # as a wrong password and their timing tells nothing.
        self._dummy_hash = self._argon2.hash(secrets.token_urlsafe(16))

    @property
    def in_flight(self) -> int:
        return self._in_flight

    @property
    def saturated(self) -> bool:
        """Every worker busy and the waiting line full: a new hash would be shed."""
        return self._in_flight >= self.capacity

    async def _run(self, fn: Callable[[], T]) -> T:
        if self._in_flight >= self.capacity:
            raise HasherBusy
        self._in_flight += 1
        try:
            return await asyncio.get_running_loop().run_in_executor(self._pool, fn)
        finally:
            self._in_flight -= 1

    async def hash(self, password: str) -> str:
        secret = normalize(password)
        return await self._run(lambda: self._argon2.hash(secret))

    async def verify(self, password_hash: str | None, password: str) -> bool:
        """True when `password` matches; with no hash, burn the same work and fail."""
        secret = normalize(password)
        target = password_hash or self._dummy_hash

        def check() -> bool:
            try:
                return self._argon2.verify(target, secret)
            except (VerifyMismatchError, VerificationError, InvalidHashError):
                return False

        ok = await self._run(check)
        return ok and password_hash is not None

    def needs_rehash(self, password_hash: str) -> bool:
        try:
            return self._argon2.check_needs_rehash(password_hash)
        except InvalidHashError:
            return True

    @contextmanager
    def claim(self, address: str | None) -> Iterator["HasherClaim"]:
        """Hold one of `address`'s places for a request's password work (every
        hash and check it makes, and the database work between them): 503 when
        the hasher is full, 429 when the address holds its share already."""
        if self.saturated:
            raise HasherBusy
        if self._claims[address] >= self.address_share:
            raise AddressBusy
        self._claims[address] += 1
        try:
            yield HasherClaim(self)
        finally:
            self._claims[address] -= 1
            if not self._claims[address]:
                del self._claims[address]

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)


class HasherClaim:
    """A request's right to use the hasher, within its address's share. Every
    request-driven hash or check goes through one (`PasswordHasher.claim`)."""

    def __init__(self, hasher: PasswordHasher):
        self._hasher = hasher

    @property
    def saturated(self) -> bool:
        return self._hasher.saturated

    async def hash(self, password: str) -> str:
        return await self._hasher.hash(password)

    async def verify(self, password_hash: str | None, password: str) -> bool:
        return await self._hasher.verify(password_hash, password)

    def needs_rehash(self, password_hash: str) -> bool:
        return self._hasher.needs_rehash(password_hash)


def hash_seconds(*, time_cost: int, memory_kib: int, parallelism: int, rounds: int = 3) -> float:
    """The median time of `rounds` argon2id hashes at these costs, on this machine
    and in this thread (for `gatehouse calibrate`)."""
    argon2 = Argon2Hasher(
        time_cost=time_cost, memory_cost=memory_kib, parallelism=parallelism, type=Type.ID
    )
    password = secrets.token_urlsafe(16)
    argon2.hash(password)  # warm-up: the first allocation of the memory is dearer
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        argon2.hash(password)
        times.append(time.perf_counter() - start)
    return sorted(times)[len(times) // 2]


def _lower_priority() -> None:
    """Hashing threads (and the lane threads argon2 starts from them) yield the CPU
    to the event loop, so protected requests stay fast while logins saturate the
    cores; logins only queue a little longer. Linux applies nice per thread."""
    try:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), HASH_THREAD_NICENESS)
    except (AttributeError, OSError):  # not Linux, or not permitted: run as is
        pass


def normalize(password: str) -> bytes:
    """NFKC, so the same password typed on another keyboard or OS still matches."""
    return unicodedata.normalize("NFKC", password).encode("utf-8", "surrogatepass")


@lru_cache(maxsize=1)
def common_passwords() -> frozenset[str]:
    """The 30,000 most common passwords of zxcvbn's frequency list."""
    from zxcvbn.frequency_lists import FREQUENCY_LISTS

    words = frozenset(FREQUENCY_LISTS["passwords"])
    # The module holds five other large lists we never use.
    sys.modules.pop("zxcvbn.frequency_lists", None)
    return words


def policy_violation(password: str, *, username: str | None = None) -> str | None:
    """Why `password` is refused (NIST SP 800-63B §3.1.1.2), or None.

    Length 8-256, no composition rules; not a common password, not the username.
    """
    normalized = unicodedata.normalize("NFKC", password)
    if len(normalized) < MIN_LENGTH:
        return f"Password must be at least {MIN_LENGTH} characters"
    if len(normalized) > MAX_LENGTH:
        return f"Password must be at most {MAX_LENGTH} characters"
    folded = normalized.casefold()
    if username is not None and folded == unicodedata.normalize("NFKC", username).casefold():
        return "Password must not be the username"
    if folded in common_passwords():
        return "Password is too common"
    return None
