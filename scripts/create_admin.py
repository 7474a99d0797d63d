"""Create an admin account: `make create-admin` in production, `make run` in development.

Username from GATEHOUSE_ADMIN_USERNAME (default `admin`), password from
GATEHOUSE_ADMIN_PASSWORD or, when unset, generated and printed once.
With --if-none it does nothing when an active admin exists.
"""

import argparse
import asyncio
import secrets
import sys

from app.accounts import service as accounts_service
from app.core.config import Settings
from app.core.db import create_engine, create_sessionmaker
from app.core.errors import GatehouseError
from app.crypto.passwords import PasswordHasher


async def main(if_none: bool) -> int:
    settings = Settings()
    username = settings.admin_username or "admin"
    given = settings.admin_password.get_secret_value() if settings.admin_password else None
    password = given or secrets.token_urlsafe(18)
    engine = create_engine(settings)
    hasher = PasswordHasher(
        time_cost=settings.argon2_time_cost,
        memory_kib=settings.argon2_memory_kib,
        parallelism=settings.argon2_parallelism,
    )
    try:
        async with create_sessionmaker(engine)() as session:
            created = await accounts_service.bootstrap_admin(
                session, hasher=hasher, username=username, password=password
            )
            await session.commit()
    except GatehouseError as exc:
        print(f"admin not created: {exc.detail}", file=sys.stderr)
        return 0 if if_none else 1
    finally:
        hasher.close()
        await engine.dispose()
    if created is None:
        print("An active admin account already exists; nothing to do.")
        return 0 if if_none else 1
    print(f"Admin account created. username: {username}")
    if not given:
        print(f"                       password: {password}   (shown once; store it now)")
    return 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--if-none", action="store_true", help="succeed quietly when an admin exists"
    )
    sys.exit(asyncio.run(main(parser.parse_args().if_none)))
