"""Rotate the token signing key: `make rotate-key` (or `python -m scripts.rotate_key`).

Adds a key of GATEHOUSE_SIGNING_ALGORITHM and makes it the signer. Older keys
keep verifying, and stay in the JWKS, until every token they signed has expired;
running instances pick the new key up within GATEHOUSE_KEY_REFRESH_SECONDS, and
at once when they meet a token it signed. With --retire-expired it also deletes
keys whose retirement time has passed. Prints key ids and times, never key material.

It refuses to run when live keys exist and none of them decrypts with this
GATEHOUSE_SECRET_KEY: a key sealed with another secret would be unusable by the
running instances, yet would retire the keys they sign with.
"""

import argparse
import asyncio
import sys

from sqlalchemy import delete, or_, select
from sqlmodel import col

from app.core.config import Settings
from app.core.db import create_engine, create_sessionmaker
from app.core.models import utcnow
from app.crypto.sealing import decrypt_private_key
from app.signing_keys.service import create_key
from app.tables import SigningKey


def _opens(secret: bytes, row: SigningKey) -> bool:
    try:
        decrypt_private_key(secret, row.kid, row.private_key)
    except Exception:
        return False
    return True


async def main(*, retire_expired: bool) -> int:
    settings = Settings()
    engine = create_engine(settings)
    try:
        async with create_sessionmaker(engine)() as session, session.begin():
            live = (
                await session.scalars(
                    select(SigningKey).where(
                        or_(
                            col(SigningKey.retire_at).is_(None),
                            col(SigningKey.retire_at) > utcnow(),
                        )
                    )
                )
            ).all()
            if live and not any(_opens(settings.master_secret, row) for row in live):
                print(
                    "No live signing key decrypts with this GATEHOUSE_SECRET_KEY; run this "
                    "with the service's own configuration. Nothing changed.",
                    file=sys.stderr,
                )
                return 1
            key = await create_key(session, settings)
            retiring = (
                await session.scalars(
                    select(SigningKey)
                    .where(col(SigningKey.kid) != key.kid, col(SigningKey.retire_at) > utcnow())
                    .order_by(col(SigningKey.created_at))
                )
            ).all()
            removed: list[str] = []
            if retire_expired:
                removed = list(
                    (
                        await session.scalars(
                            delete(SigningKey)
                            .where(col(SigningKey.retire_at) <= utcnow())
                            .returning(col(SigningKey.kid))
                        )
                    ).all()
                )
    finally:
        await engine.dispose()
    print(
        f"New signing key: kid={key.kid} alg={key.alg}; running instances sign with it "
        f"within {settings.key_refresh_seconds:g} s."
    )
    for old in retiring:
        print(f"  {old.kid} ({old.alg}) verifies until {old.retire_at:%Y-%m-%d %H:%M:%S} UTC")
    if retire_expired:
        print(f"Deleted {len(removed)} retired key(s){': ' if removed else ''}{', '.join(removed)}")
    return 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--retire-expired",
        action="store_true",
        help="also delete keys whose retirement time has passed",
    )
    sys.exit(asyncio.run(main(retire_expired=parser.parse_args().retire_expired)))
