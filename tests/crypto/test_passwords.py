"""Password hashing (argon2id off the event loop, bounded) and the password policy."""

import asyncio
import time
import uuid
from collections.abc import Iterator

import httpx
import pytest
from sqlalchemy import select
from sqlmodel import col

from app.core.config import Settings
from app.crypto.passwords import (
    MAX_LENGTH,
    HasherBusy,
    PasswordHasher,
    common_passwords,
    policy_violation,
)
from app.tables import Account
from tests.conftest import AppFactory, app_state
from tests.factories import PASSWORD, login, signup


def cheap_hasher(**options: int) -> PasswordHasher:
    return PasswordHasher(**{"time_cost": 1, "memory_kib": 1024, "parallelism": 1, **options})


@pytest.fixture
def hasher() -> Iterator[PasswordHasher]:
    hasher = cheap_hasher(workers=2)
    yield hasher
    hasher.close()


@pytest.fixture(scope="module")
def real_hasher() -> Iterator[PasswordHasher]:
    """The production default cost: what the loop must survive."""
    defaults = Settings(_env_file=None)
    hasher = PasswordHasher(
        time_cost=defaults.argon2_time_cost,
        memory_kib=defaults.argon2_memory_kib,
        parallelism=defaults.argon2_parallelism,
        workers=2,
    )
    yield hasher
    hasher.close()


async def stored_hash(client: httpx.AsyncClient, account_id: str) -> str:
    async with app_state(client).sessionmaker() as session:
        value = await session.scalar(
            select(col(Account.password_hash)).where(col(Account.id) == uuid.UUID(account_id))
        )
    assert value is not None
    return value


# --- hashing and verifying ---------------------------------------------------


async def test_hashed_password_verifies(hasher: PasswordHasher) -> None:
    assert await hasher.verify(await hasher.hash(PASSWORD), PASSWORD)


async def test_hash_is_argon2id_with_the_configured_parameters(hasher: PasswordHasher) -> None:
    assert (await hasher.hash(PASSWORD)).startswith("$argon2id$v=19$m=1024,t=1,p=1$")


async def test_hashing_the_same_password_twice_gives_different_salts(
    hasher: PasswordHasher,
) -> None:
    assert await hasher.hash(PASSWORD) != await hasher.hash(PASSWORD)


async def test_wrong_password_does_not_verify(hasher: PasswordHasher) -> None:
    assert not await hasher.verify(await hasher.hash(PASSWORD), PASSWORD + "!")


async def test_password_case_matters(hasher: PasswordHasher) -> None:
    assert not await hasher.verify(await hasher.hash("Correct Horse"), "correct horse")


@pytest.mark.parametrize(
    ("stored", "typed"),
    [
        ("\ufb01ne print on the page", "fine print on the page"),
        ("ｆｕｌｌｗｉｄｔｈ ｐａｓｓ １２３", "fullwidth pass 123"),
        ("cafe\u0301 au lait 42", "caf\u00e9 au lait 42"),
    ],
    ids=["ligature", "fullwidth", "combining accent"],
)
async def test_password_typed_in_another_unicode_form_verifies(
    hasher: PasswordHasher, stored: str, typed: str
) -> None:
    assert await hasher.verify(await hasher.hash(stored), typed)


async def test_garbage_stored_hash_does_not_verify(hasher: PasswordHasher) -> None:
    assert not await hasher.verify("not-an-argon2-hash", PASSWORD)


async def test_unknown_account_verifies_false(hasher: PasswordHasher) -> None:
    assert await hasher.verify(None, PASSWORD) is False


async def test_unknown_account_costs_the_same_argon2_work_as_a_wrong_password(
    real_hasher: PasswordHasher,
) -> None:
    stored = await real_hasher.hash(PASSWORD)

    async def fastest(password_hash: str | None) -> float:
        times = []
        for _ in range(3):
            start = time.perf_counter()
            await real_hasher.verify(password_hash, "wrong password entirely")
            times.append(time.perf_counter() - start)
        return min(times)

    wrong_password, unknown_user = await fastest(stored), await fastest(None)
    assert 0.5 < unknown_user / wrong_password < 2


async def test_hash_made_with_other_parameters_needs_rehash(hasher: PasswordHasher) -> None:
    stronger = cheap_hasher(time_cost=2)
    try:
        assert stronger.needs_rehash(await hasher.hash(PASSWORD))
    finally:
        stronger.close()


async def test_hash_made_with_current_parameters_needs_no_rehash(
    hasher: PasswordHasher,
) -> None:
    assert not hasher.needs_rehash(await hasher.hash(PASSWORD))


def test_unreadable_stored_hash_needs_rehash(hasher: PasswordHasher) -> None:
    assert hasher.needs_rehash("$2b$12$not.an.argon2.hash")


async def test_verify_leaves_the_event_loop_free_while_argon2_runs(
    real_hasher: PasswordHasher,
) -> None:
    stored = await real_hasher.hash(PASSWORD)
    gaps: list[float] = []
    done = asyncio.Event()

    async def tick() -> None:
        last = time.perf_counter()
        while not done.is_set():
            await asyncio.sleep(0.002)
            now = time.perf_counter()
            gaps.append(now - last)
            last = now

    ticker = asyncio.create_task(tick())
    await asyncio.sleep(0)
    start = time.perf_counter()
    assert await real_hasher.verify(stored, PASSWORD)
    elapsed = time.perf_counter() - start
    done.set()
    await ticker
    assert len(gaps) >= 5, (gaps, elapsed)
    assert max(gaps) < elapsed / 2, (max(gaps), elapsed)


async def test_hash_beyond_capacity_raises_hasher_busy() -> None:
    hasher = cheap_hasher(workers=1, queue_limit=0)
    try:
        results = await asyncio.gather(
            hasher.hash(PASSWORD), hasher.hash(PASSWORD), return_exceptions=True
        )
    finally:
        hasher.close()
    assert sorted(type(r).__name__ for r in results) == ["HasherBusy", "str"]


async def test_verify_beyond_capacity_raises_hasher_busy() -> None:
    hasher = cheap_hasher(workers=1, queue_limit=0)
    try:
        stored = await hasher.hash(PASSWORD)
        results = await asyncio.gather(
            hasher.verify(stored, PASSWORD), hasher.verify(None, PASSWORD), return_exceptions=True
        )
    finally:
        hasher.close()
    assert results[0] is True
    assert isinstance(results[1], HasherBusy)


async def test_waiting_line_admits_queue_limit_more_hashes() -> None:
    hasher = cheap_hasher(workers=1, queue_limit=2)
    try:
        results = await asyncio.gather(
            *(hasher.hash(PASSWORD) for _ in range(4)), return_exceptions=True
        )
    finally:
        hasher.close()
    assert [isinstance(r, str) for r in results] == [True, True, True, False]
    assert isinstance(results[3], HasherBusy)


async def test_capacity_is_given_back_after_hashing() -> None:
    hasher = cheap_hasher(workers=1, queue_limit=0)
    try:
        await asyncio.gather(hasher.hash(PASSWORD), hasher.hash(PASSWORD), return_exceptions=True)
        assert hasher.in_flight == 0
        assert await hasher.verify(await hasher.hash(PASSWORD), PASSWORD)
    finally:
        hasher.close()


# --- re-hash on login, through HTTP ------------------------------------------


async def test_signup_stores_a_hash_with_the_configured_parameters(
    client: httpx.AsyncClient,
) -> None:
    account = await signup(client)
    assert (await stored_hash(client, account["id"])).startswith("$argon2id$v=19$m=1024,t=1,p=1$")


async def test_login_rehashes_a_password_stored_with_older_parameters(
    make_client: AppFactory,
) -> None:
    async with make_client(argon2_time_cost=1) as client:
        account = await signup(client)
    async with make_client(argon2_time_cost=2) as client:
        await login(client, account["username"])
        assert "$m=1024,t=2,p=1$" in await stored_hash(client, account["id"])


async def test_rehashed_password_still_logs_in(make_client: AppFactory) -> None:
    async with make_client(argon2_time_cost=1) as client:
        account = await signup(client)
    async with make_client(argon2_time_cost=2) as client:
        await login(client, account["username"])
        await login(client, account["username"])


async def test_failed_login_does_not_rehash(make_client: AppFactory) -> None:
    async with make_client(argon2_time_cost=1) as client:
        account = await signup(client)
        before = await stored_hash(client, account["id"])
    async with make_client(argon2_time_cost=2) as client:
        response = await client.post(
            "/auth/token",
            data={"grant_type": "password", "username": account["username"], "password": "nope"},
        )
        assert response.status_code == 400
        assert await stored_hash(client, account["id"]) == before


# --- the policy --------------------------------------------------------------


def test_password_of_seven_characters_is_too_short() -> None:
    assert policy_violation("q7#vLm2") == "Password must be at least 8 characters"


def test_password_of_eight_characters_is_long_enough() -> None:
    assert policy_violation("q7#vLm2x") is None


def test_length_counts_characters_not_bytes() -> None:
    assert policy_violation("\u5bc6\u7801\u94a5\u5319\u95e8\u7a97\u684c\u6905") is None


def test_password_of_the_maximum_length_is_accepted() -> None:
    assert policy_violation(("q7#vLm2x" * 40)[:MAX_LENGTH]) is None


def test_password_longer_than_256_characters_is_too_long() -> None:
    assert MAX_LENGTH >= 128
    assert policy_violation("q7#vLm2x" * 40) == f"Password must be at most {MAX_LENGTH} characters"


def test_password_is_not_checked_for_composition() -> None:
    assert policy_violation("correct horse battery staple") is None


@pytest.mark.parametrize(
    "password",
    ["Alice.Liddell", "alice.liddell", "ALICE.LIDDELL", "ａｌｉｃｅ.ｌｉｄｄｅｌｌ"],
    ids=["same", "lower", "upper", "fullwidth"],
)
def test_password_equal_to_the_username_is_refused(password: str) -> None:
    assert (
        policy_violation(password, username="Alice.Liddell") == "Password must not be the username"
    )


@pytest.mark.parametrize(
    "password", ["password1", "iloveyou", "PASSWORD1", "ｉｌｏｖｅｙｏｕ", "trustno1"]
)
def test_common_password_is_refused(password: str) -> None:
    assert policy_violation(password) == "Password is too common"


def test_common_password_list_holds_at_least_ten_thousand_entries() -> None:
    assert len(common_passwords()) >= 10_000
    assert {"password", "123456", "qwerty", "iloveyou"} <= common_passwords()
