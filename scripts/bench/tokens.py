"""Section 6: signing and verifying one access token, per algorithm, in-process.

Signing runs on the event loop at every login and refresh, verifying at every
protected request, so their cost bounds what one process can serve whatever the
database does. Measured through `app.security.tokens` (the service's own code
path: header checks plus python-jose), not the crypto library alone.
"""

import asyncio
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from jose import jwk

from app.crypto import jwt as tokens
from app.crypto.sealing import generate_private_key
from scripts.bench.report import Section, rate, us
from scripts.bench.server import BenchConfig

ALGORITHMS = ("RS256", "ES256", "HS256")
ISSUER, AUDIENCE = "http://localhost:8000", "gatehouse"


@dataclass(frozen=True, slots=True)
class TokenTiming:
    alg: str
    sign_seconds: float
    verify_seconds: float
    length: int


def claims() -> dict[str, Any]:
    now = int(time.time())
    return {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": "0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b",
        "sid": "0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5c",
        "jti": secrets.token_urlsafe(16),
        "iat": now,
        "exp": now + 900,
        "scope": "me:read me:write",
        "ver": 1,
    }


def per_call(fn: Callable[[], object], seconds: float) -> float:
    """Mean seconds per call over a fixed time (at least 20 calls)."""
    fn()
    calls = 0
    began = time.perf_counter()
    while calls < 20 or time.perf_counter() - began < seconds:
        fn()
        calls += 1
    return (time.perf_counter() - began) / calls


def time_algorithm(alg: str, seconds: float) -> TokenTiming:
    raw = generate_private_key(alg)
    key = tokens.load_key(f"bench-{alg.lower()}", alg, raw if alg == "HS256" else raw.decode())
    body = claims()
    token = tokens.sign(body, key)

    def verify() -> None:
        tokens.verify(token, key, issuer=ISSUER, audience=AUDIENCE)

    verify()  # a wrong setup must fail loudly, not be timed
    return TokenTiming(
        alg,
        sign_seconds=per_call(lambda: tokens.sign(body, key), seconds),
        verify_seconds=per_call(verify, seconds),
        length=len(token),
    )


def measure(seconds: float) -> list[TokenTiming]:
    return [time_algorithm(alg, seconds) for alg in ALGORITHMS]


def backend_name() -> str:
    return str(getattr(jwk, "RSAKey", type(None)).__name__)


async def run(config: BenchConfig) -> Section:
    seconds = config.pick(1.5, 0.3)
    timings = await asyncio.to_thread(measure, seconds)
    section = Section(
        "tokens",
        "6. Access token sign / verify, in-process (app.security.tokens)",
        ["alg", "sign / token", "verify / token", "signs/s (1 core)", "verifies/s", "token bytes"],
    )
    for t in timings:
        section.add(
            t.alg,
            us(t.sign_seconds),
            us(t.verify_seconds),
            rate(1 / t.sign_seconds),
            rate(1 / t.verify_seconds),
            t.length,
        )
    by_alg = {t.alg: t for t in timings}
    rs = by_alg["RS256"]
    section.notes.append(
        f"python-jose key backend: {backend_name()}; {seconds:.1f} s per figure, one thread. "
        f"RS256 (the default) signs in {rs.sign_seconds / by_alg['ES256'].sign_seconds:.1f}x "
        f"ES256's time and verifies in {rs.verify_seconds / by_alg['ES256'].verify_seconds:.2f}x."
    )
    section.summary.append(
        "tokens: "
        + "; ".join(
            f"{t.alg} sign {us(t.sign_seconds)} verify {us(t.verify_seconds)}" for t in timings
        )
    )
    return section
