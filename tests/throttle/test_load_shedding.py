"""When every hasher is busy and the waiting line is full, logins are shed at
once with 503 + Retry-After, and protected endpoints keep answering. Each login
here comes from an address of its own: one address alone is held to its share
of the hasher (429, tests/throttle/test_fair_share.py)."""

import asyncio

import httpx

from tests.factories import PASSWORD, bearer, create_user
from tests.throttle.test_routes import proxied

# Real-cost hashing (about 0.1 s each) with one worker and no waiting line.
SHEDDING = {
    "argon2_time_cost": 2,
    "argon2_memory_kib": 65_536,
    "argon2_parallelism": 1,
    "hash_workers": 1,
    "hash_queue_limit": 0,
}


async def _login(client: httpx.AsyncClient, username: str) -> httpx.Response:
    return await client.post(
        "/auth/token", data={"grant_type": "password", "username": username, "password": PASSWORD}
    )


async def _login_from(client: httpx.AsyncClient, number: int, username: str) -> httpx.Response:
    async with proxied(client, f"192.0.2.{100 + number}") as elsewhere:
        return await _login(elsewhere, username)


async def test_logins_beyond_hashing_capacity_are_shed_with_503_and_retry_after(make_client):
    async with make_client(**SHEDDING) as client:
        account, _ = await create_user(client)
        responses = await asyncio.gather(
            *(_login_from(client, i, account["username"]) for i in range(6))
        )
    statuses = sorted(r.status_code for r in responses)
    assert statuses.count(200) >= 1
    assert statuses.count(503) >= 1
    assert set(statuses) <= {200, 503}
    for response in responses:
        if response.status_code == 503:
            assert response.headers["retry-after"] == "1"
            assert response.json() == {"detail": "Too many logins in progress; retry shortly"}


async def test_shed_logins_do_not_count_towards_the_lockout(make_client):
    async with make_client(**SHEDDING, login_max_failures=2) as client:
        account, _ = await create_user(client)
        for _ in range(3):
            await asyncio.gather(*(_login_from(client, i, account["username"]) for i in range(4)))
        assert (await _login(client, account["username"])).status_code == 200


async def test_protected_endpoints_answer_while_logins_saturate_the_hasher(make_client):
    # One worker and a line of 16: ten logins (the most one account may have in
    # flight by default) take about 1 s of hashing.
    async with make_client(**{**SHEDDING, "hash_queue_limit": 16}) as client:
        account, tokens = await create_user(client)
        logins = [
            asyncio.create_task(_login_from(client, i, account["username"])) for i in range(10)
        ]
        await asyncio.sleep(0.05)
        me = await client.get("/accounts/me", headers=bearer(tokens["access_token"]))
        waiting = sum(not task.done() for task in logins)
        answers = await asyncio.gather(*logins)
    assert me.status_code == 200
    # The request did not queue behind the hashes: most logins were still running.
    assert waiting >= 6, waiting
    assert all(a.status_code == 200 for a in answers)
