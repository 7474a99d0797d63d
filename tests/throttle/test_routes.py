"""Login and signup throttling (issue 7): counted in the database, atomic under
concurrency, per account and per client address, audited, never permanent."""

import asyncio
from collections import Counter
from datetime import timedelta

import httpx
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import create_async_engine

from app.throttle.service import TABLE as THROTTLE_TABLE
from tests.conftest import unique_name
from tests.factories import PASSWORD, admin_login, bearer, signup

PROXY = "10.0.0.1"
WRONG_PASSWORD = "definitely not the password"


def password_form(username: str, password: str = WRONG_PASSWORD) -> dict[str, str]:
    return {"grant_type": "password", "username": username, "password": password}


async def attempt(client: httpx.AsyncClient, username: str, password: str = WRONG_PASSWORD):
    return await client.post("/auth/token", data=password_form(username, password))


async def move_throttle_clock_back(database_url: str, seconds: int) -> None:
    """Make every throttle row look `seconds` older: the server compares these
    timestamps with its own clock, so this is exactly time passing for it."""
    engine = create_async_engine(database_url)
    try:
        async with engine.begin() as conn:
            rows = (await conn.execute(select(THROTTLE_TABLE))).all()
            assert rows, "expected throttle counters to exist"
            for row in rows:
                shift = timedelta(seconds=seconds)
                await conn.execute(
                    update(THROTTLE_TABLE)
                    .where(THROTTLE_TABLE.c.key == row.key)
                    .values(
                        window_started_at=row.window_started_at - shift,
                        locked_until=row.locked_until - shift if row.locked_until else None,
                    )
                )
    finally:
        await engine.dispose()


def proxied(client: httpx.AsyncClient, peer: str = PROXY) -> httpx.AsyncClient:
    """A client whose TCP peer address is `peer`: another client, or a reverse proxy
    when `peer` is listed in trusted_proxies."""
    transport = httpx.ASGITransport(app=client.app, client=(peer, 1234))  # type: ignore[attr-defined]
    return httpx.AsyncClient(transport=transport, base_url="http://testserver")


async def test_failures_past_the_limit_answer_429_with_integer_retry_after(make_client):
    async with make_client(login_max_failures=3, login_lockout_seconds=120) as client:
        account = await signup(client)
        answers = [await attempt(client, account["username"]) for _ in range(5)]
    assert [r.status_code for r in answers] == [400, 400, 400, 429, 429]
    for r in answers[:3]:
        assert r.json()["error"] == "invalid_grant"
    for r in answers[3:]:
        retry_after = r.headers["Retry-After"]
        assert retry_after.isdigit(), retry_after
        assert 1 <= int(retry_after) <= 120


async def test_correct_password_is_refused_while_the_account_is_locked(make_client):
    async with make_client(login_max_failures=3) as client:
        account = await signup(client)
        for _ in range(3):
            assert (await attempt(client, account["username"])).status_code == 400
        response = await attempt(client, account["username"], PASSWORD)
    assert response.status_code == 429
    assert "access_token" not in response.text


async def test_real_user_logs_in_once_the_lockout_has_passed(make_client, database_url):
    async with make_client(login_max_failures=3, login_lockout_seconds=300) as client:
        account = await signup(client)
        for _ in range(4):
            await attempt(client, account["username"])
        assert (await attempt(client, account["username"], PASSWORD)).status_code == 429
        await move_throttle_clock_back(database_url, 301)
        response = await attempt(client, account["username"], PASSWORD)
    assert response.status_code == 200, response.text
    assert response.json()["access_token"]


async def test_a_short_lockout_ends_by_itself_in_real_time(make_client):
    # The guesses come from another address: the address counter's window lasts at
    # least 60 s (contract), longer than this one-second account lockout.
    async with make_client(login_max_failures=2, login_lockout_seconds=1) as client:
        account = await signup(client)
        async with proxied(client, "192.0.2.10") as other_address:
            for _ in range(2):
                await attempt(other_address, account["username"])
            locked = await attempt(other_address, account["username"], PASSWORD)
            await asyncio.sleep(1.2)
            response = await attempt(client, account["username"], PASSWORD)
    assert locked.status_code == 429
    assert response.status_code == 200, response.text


async def test_fifty_parallel_wrong_passwords_trip_the_throttle_at_exactly_the_limit(
    make_client,
):
    async with make_client(login_max_failures=10, login_lockout_seconds=300) as client:
        account = await signup(client)
        answers = await asyncio.gather(*(attempt(client, account["username"]) for _ in range(50)))
    counts = Counter(r.status_code for r in answers)
    assert counts == {400: 10, 429: 40}, counts
    assert all(r.json()["error"] == "invalid_grant" for r in answers if r.status_code == 400)


async def test_fifty_parallel_wrong_passwords_audit_one_lockout_per_locked_key(make_client):
    async with make_client(
        login_max_failures=10, login_max_failures_per_address=10, login_lockout_seconds=300
    ) as client:
        admin = await admin_login(client, scope="audit:read")
        account = await signup(client)
        await asyncio.gather(*(attempt(client, account["username"]) for _ in range(50)))
        response = await client.get(
            "/audit",
            params={"action": "auth.lockout", "limit": 100},
            headers=bearer(admin["access_token"]),
        )
    # The account and the address both reached the limit: one entry for each.
    items = response.json()["items"]
    assert sorted(item["detail"]["by"] for item in items) == ["account", "address"], items


async def test_one_address_is_throttled_across_different_usernames(make_client):
    async with make_client(login_max_failures_per_address=3) as client:
        answers = [await attempt(client, unique_name()) for _ in range(5)]
    assert [r.status_code for r in answers] == [400, 400, 400, 429, 429]


async def test_an_address_lockout_does_not_lock_other_addresses(make_client):
    async with make_client(login_max_failures_per_address=3) as client:
        account = await signup(client)
        guesses = [await attempt(client, unique_name()) for _ in range(4)]
        async with proxied(client, "192.0.2.20") as elsewhere:
            response = await attempt(elsewhere, account["username"], PASSWORD)
    assert [r.status_code for r in guesses] == [400, 400, 400, 429]
    assert response.status_code == 200, response.text


async def test_forwarded_for_from_an_untrusted_peer_is_ignored(make_client):
    async with make_client(trusted_proxies=[PROXY]) as client:
        account = await signup(client)
        response = await client.post(
            "/auth/token",
            data=password_form(account["username"], PASSWORD),
            headers={"X-Forwarded-For": "198.51.100.7"},
        )
        token = response.json()["access_token"]
        sessions = (await client.get("/auth/sessions", headers=bearer(token))).json()
    assert [s["ip"] for s in sessions] == ["127.0.0.1"]


async def test_forwarded_for_from_a_trusted_proxy_names_the_client(make_client):
    async with make_client(trusted_proxies=[PROXY]) as client:
        account = await signup(client)
        async with proxied(client) as proxy:
            response = await proxy.post(
                "/auth/token",
                data=password_form(account["username"], PASSWORD),
                headers={"X-Forwarded-For": "spoofed-by-client, 198.51.100.7"},
            )
        token = response.json()["access_token"]
        sessions = (await client.get("/auth/sessions", headers=bearer(token))).json()
    assert [s["ip"] for s in sessions] == ["198.51.100.7"]


async def test_a_forwarded_ipv6_zone_id_is_dropped_from_the_client_address(make_client):
    async with make_client(trusted_proxies=[PROXY]) as client:
        account = await signup(client)
        async with proxied(client) as proxy:
            response = await proxy.post(
                "/auth/token",
                data=password_form(account["username"], PASSWORD),
                headers={"X-Forwarded-For": "fe80::1%" + "z" * 80},
            )
        assert response.status_code == 200, response.text
        token = response.json()["access_token"]
        sessions = (await client.get("/auth/sessions", headers=bearer(token))).json()
    assert [s["ip"] for s in sessions] == ["fe80::1"]


async def test_addresses_forwarded_by_a_trusted_proxy_are_throttled_separately(make_client):
    async with make_client(trusted_proxies=[PROXY], login_max_failures_per_address=3) as client:
        async with proxied(client) as proxy:

            async def from_address(ip: str) -> int:
                response = await proxy.post(
                    "/auth/token",
                    data=password_form(unique_name()),
                    headers={"X-Forwarded-For": ip},
                )
                return response.status_code

            first = [await from_address("198.51.100.1") for _ in range(4)]
            second = [await from_address("198.51.100.2") for _ in range(4)]
    assert first == [400, 400, 400, 429]
    assert second == [400, 400, 400, 429]


async def test_spoofed_forwarded_for_from_an_untrusted_peer_cannot_dodge_the_address_limit(
    make_client,
):
    async with make_client(trusted_proxies=[PROXY], login_max_failures_per_address=3) as client:
        statuses = []
        for i in range(5):
            response = await client.post(
                "/auth/token",
                data=password_form(unique_name()),
                headers={"X-Forwarded-For": f"203.0.113.{i + 1}"},
            )
            statuses.append(response.status_code)
    assert statuses == [400, 400, 400, 429, 429]


async def test_signup_is_throttled_per_address(make_client):
    async with make_client(signup_max_per_hour=3) as client:
        answers = [
            await client.post(
                "/auth/signup", json={"username": unique_name(), "password": PASSWORD}
            )
            for _ in range(4)
        ]
        async with proxied(client, "192.0.2.30") as elsewhere:
            other = await elsewhere.post(
                "/auth/signup", json={"username": unique_name(), "password": PASSWORD}
            )
    assert [r.status_code for r in answers] == [201, 201, 201, 429]
    assert answers[3].headers["Retry-After"].isdigit()
    assert other.status_code == 201


async def test_a_lockout_is_written_to_the_audit_log(make_client):
    async with make_client(login_max_failures=3, login_max_failures_per_address=3) as client:
        # The admin signs in first: the guesses below also lock this address.
        admin = await admin_login(client, scope="audit:read")
        account = await signup(client)
        for _ in range(5):
            await attempt(client, account["username"])
        response = await client.get(
            "/audit", params={"action": "auth.lockout"}, headers=bearer(admin["access_token"])
        )
    assert response.status_code == 200
    entries = {entry["detail"]["by"]: entry for entry in response.json()["items"]}
    # Both the account and the address reached the limit with these guesses.
    assert sorted(entries) == ["account", "address"], entries
    assert all(entry["ip"] == "127.0.0.1" and entry["actor"] is None for entry in entries.values())
    assert entries["account"]["target"] == account["username"].casefold()
    assert entries["address"]["target"] == "127.0.0.1"


async def test_parallel_signups_of_one_name_in_different_forms_create_one_account(make_client):
    rounds = 20
    names = ["bob", "Bob", "\uff42\uff4f\uff42"]  # the last is fullwidth ｂｏｂ
    async with make_client(signup_max_per_hour=100) as client:
        answers = await asyncio.gather(
            *(
                client.post(
                    "/auth/signup",
                    json={"username": names[i % 3], "password": PASSWORD},
                )
                for i in range(rounds)
            )
        )
        admin = await admin_login(client, scope="accounts:read")
        listing = await client.get(
            "/accounts", params={"q": "bob", "limit": 100}, headers=bearer(admin["access_token"])
        )
    counts = Counter(r.status_code for r in answers)
    assert counts == {201: 1, 409: rounds - 1}, counts
    matching = [a for a in listing.json()["items"] if a["username"].casefold() == "bob"]
    assert len(matching) == 1, listing.json()


async def test_a_burst_of_correct_logins_never_locks_the_account(make_client):
    async with make_client(login_max_failures=3) as client:
        account = await signup(client)
        burst = await asyncio.gather(
            *(attempt(client, account["username"], PASSWORD) for _ in range(8))
        )
        after = await attempt(client, account["username"], PASSWORD)
    # Attempts beyond the places being judged wait a second; none is a failure.
    assert {r.status_code for r in burst} <= {200, 429}
    assert all(r.headers["retry-after"] == "1" for r in burst if r.status_code == 429)
    assert after.status_code == 200, after.text


async def test_a_success_forgives_the_accounts_earlier_failures(make_client):
    async with make_client(login_max_failures=3) as client:
        account = await signup(client)
        for _ in range(2):
            assert (await attempt(client, account["username"])).status_code == 400
        assert (await attempt(client, account["username"], PASSWORD)).status_code == 200
        # From another address, so only the account's own count is in play.
        async with proxied(client, "192.0.2.40") as elsewhere:
            answers = [await attempt(elsewhere, account["username"]) for _ in range(4)]
    assert [r.status_code for r in answers] == [400, 400, 400, 429]


async def test_wrong_current_passwords_are_throttled_like_logins(make_client):
    async with make_client(login_max_failures=3) as client:
        account = await signup(client)
        tokens = (await attempt(client, account["username"], PASSWORD)).json()
        answers = [
            await client.post(
                "/accounts/me/password",
                json={
                    "current_password": WRONG_PASSWORD,
                    "new_password": "another fine passphrase",
                },
                headers=bearer(tokens["access_token"]),
            )
            for _ in range(4)
        ]
    assert [r.status_code for r in answers] == [400, 400, 400, 429]
    assert int(answers[3].headers["retry-after"]) > 0


async def test_an_address_may_fail_past_the_account_limit_without_locking_other_accounts(
    make_client,
):
    # One office behind a NAT (or every local client): ten failures on other
    # accounts do not lock its colleagues out; the address limit is 100.
    async with make_client() as client:
        account = await signup(client)
        guesses = [await attempt(client, unique_name()) for _ in range(12)]
        response = await attempt(client, account["username"], PASSWORD)
    assert {r.status_code for r in guesses} == {400}
    assert response.status_code == 200, response.text


async def test_an_address_is_locked_at_its_own_limit_across_accounts(make_client):
    async with make_client(login_max_failures=2, login_max_failures_per_address=5) as client:
        accounts = [await signup(client) for _ in range(3)]
        answers = [await attempt(client, accounts[i // 2]["username"]) for i in range(6)]
        after = await attempt(client, accounts[2]["username"], PASSWORD)
    # Two failures each on the first two accounts lock them; the fifth failure
    # (on the third account) locks the address, so the sixth attempt is refused.
    assert [r.status_code for r in answers] == [400, 400, 400, 400, 400, 429]
    assert after.status_code == 429


async def test_a_disabled_accounts_correct_password_counts_as_a_failure(make_client):
    async with make_client(login_max_failures=5) as client:
        admin = await admin_login(client, scope="accounts:write")
        account = await signup(client)
        disabled = await client.patch(
            f"/accounts/{account['id']}",
            json={"is_active": False},
            headers=bearer(admin["access_token"]),
        )
        assert disabled.status_code == 200, disabled.text
        wrong = [await attempt(client, account["username"]) for _ in range(4)]
        right = await attempt(client, account["username"], PASSWORD)
        after = await attempt(client, account["username"])
    assert [r.status_code for r in wrong] == [400, 400, 400, 400]
    # The right password of a disabled account answers exactly like a wrong one...
    assert right.status_code == 400
    assert right.content == wrong[0].content
    # ...and counts like one: five failures, so the next attempt is throttled.
    assert after.status_code == 429, after.text
