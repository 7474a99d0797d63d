"""One address cannot keep others from logging in (CONTRACT.md, Guardrails):
every endpoint that checks a password counts toward the same per-account and
per-address limits, and no address holds more than a fair share of the hasher;
its excess answers 429 or 503 with Retry-After."""

import asyncio
from collections import Counter

import httpx

from tests.conftest import ADMIN_PASSWORD, ADMIN_USERNAME
from tests.factories import PASSWORD, bearer, create_user, signup
from tests.races import GatedArgon2, until
from tests.throttle.test_routes import WRONG_PASSWORD, attempt, proxied

ATTACKER = "192.0.2.66"
ELSEWHERE = "198.51.100.9"
# Three hashing threads and five waiting places: eight in all.
SMALL_HASHER = {"hash_workers": 3, "hash_queue_limit": 5}


def change_password(client: httpx.AsyncClient, token: str, current: str = PASSWORD):
    return client.post(
        "/accounts/me/password",
        json={"current_password": current, "new_password": "an entirely new passphrase"},
        headers=bearer(token),
    )


async def test_password_changes_from_one_address_leave_room_for_logins_from_another(make_client):
    async with make_client(**SMALL_HASHER) as client, proxied(client, ATTACKER) as attacker:
        hasher = client.app.state.gatehouse.hasher
        tokens = [(await create_user(attacker))[1]["access_token"] for _ in range(4)]
        # The attacker's password checks hold their hashing threads until the end.
        gated = GatedArgon2(hasher._argon2, PASSWORD)
        hasher._argon2 = gated
        flood = [
            asyncio.create_task(change_password(attacker, token))
            for token in tokens
            for _ in range(5)
        ]
        try:
            # Settled: every attacker request still open holds a place in the hasher.
            await until(
                lambda: (
                    hasher.in_flight > 0
                    and sum(not task.done() for task in flood) == hasher.in_flight
                )
            )
            attacker_in_flight = hasher.in_flight
            async with proxied(client, ELSEWHERE) as admin:
                logins = [await attempt(admin, ADMIN_USERNAME, ADMIN_PASSWORD) for _ in range(3)]
        finally:
            gated.open()
            answers = await asyncio.gather(*flood)

    assert [r.status_code for r in logins] == [200, 200, 200], [r.text for r in logins]
    assert attacker_in_flight <= hasher.capacity // 2
    refused = [r for r in answers if r.status_code in (429, 503)]
    assert len(refused) >= len(flood) - attacker_in_flight
    for response in refused:
        assert response.headers["retry-after"].isdigit()


async def test_wrong_current_passwords_count_toward_the_address_limit(make_client):
    async with make_client(login_max_failures_per_address=3) as client:
        async with proxied(client, ATTACKER) as attacker:
            tokens = [(await create_user(attacker))[1]["access_token"] for _ in range(3)]
            changes = [await change_password(attacker, t, WRONG_PASSWORD) for t in tokens]
            victim = await signup(client)
            login = await attempt(attacker, victim["username"], PASSWORD)
    assert [r.status_code for r in changes] == [400, 400, 400]
    assert login.status_code == 429, login.text
    assert login.headers["retry-after"].isdigit()


async def test_wrong_logins_count_toward_the_accounts_password_change_limit(make_client):
    async with make_client(login_max_failures=3) as client:
        account, tokens = await create_user(client)
        async with proxied(client, ATTACKER) as attacker:
            for _ in range(3):
                assert (await attempt(attacker, account["username"])).status_code == 400
        change = await change_password(client, tokens["access_token"])
    assert change.status_code == 429, change.text


async def test_parallel_logins_from_one_address_beyond_its_share_answer_429(make_client):
    async with make_client(**SMALL_HASHER) as client, proxied(client, ATTACKER) as attacker:
        hasher = client.app.state.gatehouse.hasher
        accounts = [await signup(attacker) for _ in range(8)]
        gated = GatedArgon2(hasher._argon2, PASSWORD)
        hasher._argon2 = gated
        tasks = [asyncio.create_task(attempt(attacker, a["username"], PASSWORD)) for a in accounts]
        try:
            await until(
                lambda: sum(task.done() for task in tasks) >= len(tasks) - hasher.capacity // 2
            )
            early = Counter(task.result().status_code for task in tasks if task.done())
        finally:
            gated.open()
            answers = await asyncio.gather(*tasks)
    assert set(early) == {429}, early
    assert all(r.headers["retry-after"] == "1" for r in answers if r.status_code == 429)
    assert Counter(r.status_code for r in answers)[200] >= 1
