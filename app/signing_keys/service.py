"""The signing key set, shared by every instance through the `signing_key` table.

Private keys are stored encrypted (AES-256-GCM, key derived from
GATEHOUSE_SECRET_KEY with HKDF) and parsed once per process. Each instance
re-reads the table every `key_refresh_seconds`, and at once (at most every
`key_reload_min_interval_seconds`) when a token names a `kid` it does not know,
so a rotation reaches every instance without restart.
"""

import asyncio
import logging
import secrets
import time
from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, or_, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlmodel import col

from app.core.config import Settings
from app.core.errors import Conflict, Unavailable
from app.core.models import utcnow
from app.crypto import jwt
from app.crypto.jwt import KeyPair, TokenError
from app.crypto.sealing import decrypt_private_key, encrypt_private_key, generate_private_key
from app.signing_keys.models import SigningKey

log = logging.getLogger("gatehouse.keys")
# Verified access tokens remembered per process (a few MB at most); a miss only
# costs the signature check again.
VERIFIED_CACHE_SIZE = 4096
# Advisory lock id serialising first-key creation across instances ("gh-keys").
_KEY_LOCK = 0x67682D6B657973


def _material(alg: str, raw: bytes) -> str | bytes:
    return raw if alg == "HS256" else raw.decode()


async def create_key(session: AsyncSession, settings: Settings) -> SigningKey:
    """Add a key of the configured algorithm and make it the signer; keys it
    replaces keep verifying until every token they signed has expired."""
    alg = settings.signing_algorithm
    raw = await asyncio.to_thread(generate_private_key, alg)
    kid = f"{utcnow():%Y%m%d}-{secrets.token_hex(6)}"
    loaded = await asyncio.to_thread(jwt.load_key, kid, alg, _material(alg, raw))
    row = SigningKey(
        kid=kid,
        alg=alg,
        private_key=encrypt_private_key(settings.master_secret, kid, raw),
        public_jwk=loaded.public_jwk,
    )
    # Instances that have not reloaded yet keep signing with the old key for up to
    # one refresh interval, so its last tokens expire that much later.
    retire_at = utcnow() + timedelta(
        seconds=settings.access_token_ttl_seconds
        + settings.key_refresh_seconds
        + jwt.LEEWAY_SECONDS
        + 1
    )
    await session.execute(
        update(SigningKey).where(col(SigningKey.retire_at).is_(None)).values(retire_at=retire_at)
    )
    session.add(row)
    await session.flush()
    return row


class ForeignSecret(Conflict):
    detail = (
        "No live signing key decrypts with this GATEHOUSE_SECRET_KEY; run this with the "
        "service's own configuration. Nothing changed."
    )


@dataclass(frozen=True, slots=True)
class Rotation:
    """What `rotate` did: the new signer, the keys still verifying, the keys deleted."""

    key: SigningKey
    retiring: list[SigningKey]
    removed: list[str]


def _opens(secret: bytes, row: SigningKey) -> bool:
    try:
        decrypt_private_key(secret, row.kid, row.private_key)
    except Exception:
        return False
    return True


async def rotate(db: AsyncSession, *, settings: Settings, retire_expired: bool) -> Rotation:
    """Add a signer (`create_key`); with `retire_expired`, delete keys whose
    retirement time has passed.

    Refused (`ForeignSecret`) when live keys exist and none decrypts with this
    secret: a key sealed with another secret would be unusable by the running
    instances, yet would retire the keys they sign with."""
    live = (
        await db.scalars(
            select(SigningKey).where(
                or_(col(SigningKey.retire_at).is_(None), col(SigningKey.retire_at) > utcnow())
            )
        )
    ).all()
    if live and not any(_opens(settings.master_secret, row) for row in live):
        raise ForeignSecret
    key = await create_key(db, settings)
    retiring = (
        await db.scalars(
            select(SigningKey)
            .where(col(SigningKey.kid) != key.kid, col(SigningKey.retire_at) > utcnow())
            .order_by(col(SigningKey.created_at))
        )
    ).all()
    removed: list[str] = []
    if retire_expired:
        removed = list(
            (
                await db.scalars(
                    delete(SigningKey)
                    .where(col(SigningKey.retire_at) <= utcnow())
                    .returning(col(SigningKey.kid))
                )
            ).all()
        )
    return Rotation(key=key, retiring=list(retiring), removed=removed)


@dataclass(frozen=True, slots=True)
class _Entry:
    pair: KeyPair
    created_at: datetime
    retire_at: datetime | None


class KeyRing:
    """This instance's view of the key set."""

    def __init__(self, settings: Settings, sessionmaker: async_sessionmaker[AsyncSession]):
        self._settings = settings
        self._sessionmaker = sessionmaker
        self._entries: dict[str, _Entry] = {}
        self._signer: KeyPair | None = None
        self._signer_is_current = False
        self._last_load = 0.0
        self._lock = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None
        # Tokens whose signature and claims verified, by their exact text: kid, claims.
        self._verified: OrderedDict[str, tuple[str, dict[str, Any]]] = OrderedDict()

    async def start(self) -> None:
        """Load the set, creating the first key when there is none usable."""
        await self.reload()
        if not self._signer_is_current:
            async with self._sessionmaker() as session, session.begin():
                if await self._first_key_needed(session):
                    await create_key(session, self._settings)
            await self.reload()
        self._task = asyncio.create_task(self._refresh_forever(), name="keyring-refresh")

    async def _first_key_needed(self, session: AsyncSession) -> bool:
        """Instances starting together on one database must not each make a key
        (their tokens would be refused by one another until the next reload): on
        PostgreSQL they queue on an advisory lock and re-check under it."""
        if session.get_bind().dialect.name == "postgresql":
            await session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _KEY_LOCK})
        newest = await session.scalar(
            select(SigningKey)
            .where(
                col(SigningKey.alg) == self._settings.signing_algorithm,
                col(SigningKey.retire_at).is_(None),
            )
            .order_by(col(SigningKey.created_at).desc())
            .limit(1)
        )
        if newest is None:
            return True
        try:
            decrypt_private_key(self._settings.master_secret, newest.kid, newest.private_key)
        except Exception:
            return True  # sealed with another secret: this instance needs its own
        return False

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass

    async def _refresh_forever(self) -> None:
        while True:
            await asyncio.sleep(self._settings.key_refresh_seconds)
            try:
                await self.reload()
            except Exception as exc:  # a database outage must not end the loop
                log.warning("key reload failed: %s", type(exc).__name__)

    async def reload(self) -> None:
        async with self._lock:
            self._last_load = time.monotonic()
            now = utcnow()
            async with self._sessionmaker() as session:
                rows = (
                    await session.scalars(
                        select(SigningKey).where(
                            or_(
                                col(SigningKey.retire_at).is_(None), col(SigningKey.retire_at) > now
                            )
                        )
                    )
                ).all()
            entries: dict[str, _Entry] = {}
            for row in rows:
                known = self._entries.get(row.kid)
                if known is not None:
                    entries[row.kid] = _Entry(known.pair, row.created_at, row.retire_at)
                    continue
                try:
                    raw = decrypt_private_key(
                        self._settings.master_secret, row.kid, row.private_key
                    )
                    pair = await asyncio.to_thread(
                        jwt.load_key, row.kid, row.alg, _material(row.alg, raw)
                    )
                except Exception:
                    log.error("signing key %s cannot be decrypted with this secret", row.kid)
                    continue
                entries[row.kid] = _Entry(pair, row.created_at, row.retire_at)
            self._entries = entries
            ours = [e for e in entries.values() if e.pair.alg == self._settings.signing_algorithm]
            current = [e for e in ours if e.retire_at is None]
            if ours and not current and self._signer_is_current:
                # The newest key is one this instance cannot use (another secret or
                # algorithm): keep signing with a retiring key rather than not at all.
                log.warning("no current signing key usable here; signing with a retiring one")
            signers = current or ours
            self._signer = max(signers, key=lambda e: e.created_at).pair if signers else None
            self._signer_is_current = bool(current)

    @property
    def signer(self) -> KeyPair:
        if self._signer is None:
            raise Unavailable("no usable signing key")
        return self._signer

    def public_jwks(self) -> dict[str, Any]:
        now = utcnow()
        return {
            "keys": [
                e.pair.public_jwk
                for e in sorted(self._entries.values(), key=lambda e: e.created_at, reverse=True)
                if e.pair.public_jwk is not None and (e.retire_at is None or e.retire_at > now)
            ]
        }

    async def _lookup(self, kid: str) -> KeyPair | None:
        entry = self._entries.get(kid)
        now = time.monotonic()
        if (
            entry is None
            and now - self._last_load >= self._settings.key_reload_min_interval_seconds
        ):
            # A token from a key another instance just created: reload once, rate-limited
            # (the stamp is set before the await, so concurrent misses share one reload)
            # and a flood of made-up kids cannot turn into a flood of queries.
            self._last_load = now
            await self.reload()
            entry = self._entries.get(kid)
        if entry is None or (entry.retire_at is not None and entry.retire_at <= utcnow()):
            return None
        return entry.pair

    def may_reload_for(self, token: str) -> bool:
        """Whether verifying `token` may reload the key set (its `kid` is not known
        here), which takes a database connection of its own: a caller holding the
        request's connection gives it back first (SQLite's pool has only one)."""
        try:
            return jwt.unverified_header(token)["kid"] not in self._entries
        except TokenError:
            return False

    async def verify(self, token: str, *, allow_expired: bool = False) -> dict[str, Any]:
        """The token's claims once its signature and claims verify with a key of
        the set that is not retired.

        A client presents the same access token on every request until it
        expires, and checking an RS256 signature with python-jose costs more than
        the rest of a protected request's own work (issue 15's profile). So a
        token that verified is remembered by its exact text (at most
        `VERIFIED_CACHE_SIZE`, least recently used out): the same text presented
        again verifies to the same claims while its key is in the set and it has
        not expired, which are checked again every time. Revocation is not a
        property of the text: the caller's liveness check still runs on every
        request, and nothing here can answer it."""
        if not allow_expired and (hit := self._verified.get(token)) is not None:
            kid, claims = hit
            if await self._lookup(kid) is not None and jwt.unexpired(claims):
                self._verified.move_to_end(token)
                return dict(claims)
            del self._verified[token]
        header = jwt.unverified_header(token)
        pair = await self._lookup(header["kid"])
        if pair is None:
            raise TokenError("unknown key")
        claims = jwt.verify(
            token,
            pair,
            issuer=self._settings.issuer,
            audience=self._settings.audience,
            allow_expired=allow_expired,
        )
        if not allow_expired:
            self._verified[token] = (pair.kid, dict(claims))
            if len(self._verified) > VERIFIED_CACHE_SIZE:
                self._verified.popitem(last=False)
        return claims

    def sign(self, claims: dict[str, Any], *, typ: str = "at+jwt") -> str:
        return jwt.sign(claims, self.signer, typ=typ)
