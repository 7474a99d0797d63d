"""Admin over accounts: listing, creating, reading, changing, deleting, and the
last-admin guardrail (CONTRACT.md, /accounts rows and Guardrails)."""

import base64
import uuid
from typing import Any

import httpx
import pytest

from tests.conftest import ADMIN_PASSWORD, ADMIN_USERNAME, unique_name
from tests.factories import PASSWORD, admin_login, bearer, create_user, login, refresh

ACCOUNT_FIELDS = {"id", "username", "email", "is_active", "roles", "scopes", "created_at"}


async def admin_headers(client: httpx.AsyncClient) -> dict[str, str]:
    return bearer((await admin_login(client))["access_token"])


async def create_account(
    client: httpx.AsyncClient,
    headers: dict[str, str],
    username: str | None = None,
    password: str = PASSWORD,
    **extra: Any,
) -> dict[str, Any]:
    response = await client.post(
        "/accounts",
        json={"username": username or unique_name(), "password": password, **extra},
        headers=headers,
    )
    assert response.status_code == 201, response.text
    return response.json()  # type: ignore[no-any-return]


async def list_usernames(
    client: httpx.AsyncClient, headers: dict[str, str], **params: Any
) -> list[str]:
    response = await client.get("/accounts", params={"limit": 100, **params}, headers=headers)
    assert response.status_code == 200, response.text
    assert response.json()["next_cursor"] is None
    return [a["username"] for a in response.json()["items"]]


async def walk_pages(
    client: httpx.AsyncClient, headers: dict[str, str], limit: int
) -> list[list[str]]:
    pages: list[list[str]] = []
    params: dict[str, Any] = {"limit": limit}
    while True:
        response = await client.get("/accounts", params=params, headers=headers)
        assert response.status_code == 200, response.text
        body = response.json()
        pages.append([a["id"] for a in body["items"]])
        if body["next_cursor"] is None:
            return pages
        assert len(pages) < 20, "pagination does not end"
        params = {"limit": limit, "cursor": body["next_cursor"]}


async def make_second_admin(client: httpx.AsyncClient, headers: dict[str, str]) -> dict[str, Any]:
    return await create_account(client, headers, roles=["admin", "user"])


async def admin_account(client: httpx.AsyncClient, headers: dict[str, str]) -> dict[str, Any]:
    response = await client.get("/accounts", params={"q": ADMIN_USERNAME}, headers=headers)
    (account,) = [a for a in response.json()["items"] if a["username"] == ADMIN_USERNAME]
    return account  # type: ignore[no-any-return]


def assert_refused_token(response: httpx.Response) -> None:
    assert response.status_code == 401, response.text
    assert 'error="invalid_token"' in response.headers["www-authenticate"]


# Listing and pagination


async def test_pages_chain_through_every_account_exactly_once(client: httpx.AsyncClient) -> None:
    headers = await admin_headers(client)
    created = {(await create_account(client, headers))["id"] for _ in range(7)}

    pages = await walk_pages(client, headers, limit=3)

    assert [len(p) for p in pages] == [3, 3, 2]  # 7 accounts plus the bootstrap admin
    ids = [i for page in pages for i in page]
    assert len(ids) == len(set(ids)) == 8
    assert created < set(ids)


async def test_pages_follow_the_same_order_as_one_big_page_every_time(
    client: httpx.AsyncClient,
) -> None:
    headers = await admin_headers(client)
    for _ in range(7):
        await create_account(client, headers)
    whole = await client.get("/accounts", params={"limit": 100}, headers=headers)

    first = [i for page in await walk_pages(client, headers, limit=3) for i in page]
    second = [i for page in await walk_pages(client, headers, limit=3) for i in page]

    assert first == second == [a["id"] for a in whole.json()["items"]]


async def test_a_page_that_holds_the_last_account_has_a_null_cursor(
    client: httpx.AsyncClient,
) -> None:
    headers = await admin_headers(client)
    for _ in range(2):
        await create_account(client, headers)

    response = await client.get("/accounts", params={"limit": 3}, headers=headers)

    assert len(response.json()["items"]) == 3
    assert response.json()["next_cursor"] is None


async def test_accounts_created_after_a_cursor_was_handed_out_appear_on_later_pages(
    client: httpx.AsyncClient,
) -> None:
    headers = await admin_headers(client)
    for _ in range(3):
        await create_account(client, headers)
    first = await client.get("/accounts", params={"limit": 2}, headers=headers)
    seen = [a["id"] for a in first.json()["items"]]

    late = await create_account(client, headers)
    rest = await client.get(
        "/accounts",
        params={"limit": 100, "cursor": first.json()["next_cursor"]},
        headers=headers,
    )

    rest_ids = [a["id"] for a in rest.json()["items"]]
    assert late["id"] in rest_ids
    assert not set(seen) & set(rest_ids)
    assert len(seen) + len(rest_ids) == 5


async def test_q_matches_a_username_prefix_whatever_its_case(client: httpx.AsyncClient) -> None:
    headers = await admin_headers(client)
    for name in ("Alpha_one", "alphabet", "ALPHA2", "beta_alpha"):
        await create_account(client, headers, username=name)

    found = await list_usernames(client, headers, q="aLpH")

    assert sorted(found) == ["ALPHA2", "Alpha_one", "alphabet"]


@pytest.mark.parametrize(
    ("q", "expected"),
    [("a_b", ["a_bc"]), ("a%b", ["a%bc"]), ("a%", ["a%bc"]), ("a_", ["a_bc"])],
)
async def test_q_treats_percent_and_underscore_as_plain_characters(
    client: httpx.AsyncClient, q: str, expected: list[str]
) -> None:
    headers = await admin_headers(client)
    for name in ("a_bc", "a%bc", "axbc", "aybc", "a\\bc"):
        await create_account(client, headers, username=name)

    assert await list_usernames(client, headers, q=q) == expected


async def test_q_treats_a_backslash_as_a_plain_character(client: httpx.AsyncClient) -> None:
    headers = await admin_headers(client)
    for name in ("a\\bc", "a_bc", "abc"):
        await create_account(client, headers, username=name)

    assert await list_usernames(client, headers, q="a\\") == ["a\\bc"]


async def test_role_filter_lists_only_holders_of_that_role(client: httpx.AsyncClient) -> None:
    headers = await admin_headers(client)
    plain = await create_account(client, headers, roles=["user"])
    await create_account(client, headers, roles=[])

    assert await list_usernames(client, headers, role="admin") == [ADMIN_USERNAME]
    assert sorted(await list_usernames(client, headers, role="user")) == sorted(
        [ADMIN_USERNAME, plain["username"]]
    )


async def test_role_filter_with_an_unknown_role_lists_nothing(client: httpx.AsyncClient) -> None:
    headers = await admin_headers(client)
    await create_account(client, headers)

    assert await list_usernames(client, headers, role="no-such-role") == []


async def test_is_active_filter_separates_disabled_from_active_accounts(
    client: httpx.AsyncClient,
) -> None:
    headers = await admin_headers(client)
    active = await create_account(client, headers)
    disabled = await create_account(client, headers)
    response = await client.patch(
        f"/accounts/{disabled['id']}", json={"is_active": False}, headers=headers
    )
    assert response.status_code == 200

    assert await list_usernames(client, headers, is_active="false") == [disabled["username"]]
    assert sorted(await list_usernames(client, headers, is_active="true")) == sorted(
        [ADMIN_USERNAME, active["username"]]
    )


async def test_filters_combine(client: httpx.AsyncClient) -> None:
    headers = await admin_headers(client)
    await create_account(client, headers, username="carol_admin", roles=["admin"])
    await create_account(client, headers, username="carol_user", roles=["user"])
    await create_account(client, headers, username="dave_admin", roles=["admin"])

    assert await list_usernames(client, headers, q="carol", role="admin") == ["carol_admin"]


@pytest.mark.parametrize("limit", [0, 101, -1])
async def test_a_limit_outside_1_to_100_is_rejected(client: httpx.AsyncClient, limit: int) -> None:
    headers = await admin_headers(client)

    response = await client.get("/accounts", params={"limit": limit}, headers=headers)

    assert response.status_code == 422


@pytest.mark.parametrize("limit", [1, 100])
async def test_limits_at_the_bounds_are_accepted(client: httpx.AsyncClient, limit: int) -> None:
    headers = await admin_headers(client)

    response = await client.get("/accounts", params={"limit": limit}, headers=headers)

    assert response.status_code == 200
    assert len(response.json()["items"]) == 1


@pytest.mark.parametrize(
    "cursor",
    [
        "garbage",
        "!!!!",
        "",
        base64.urlsafe_b64encode(b"not-a-uuid").decode(),
        base64.urlsafe_b64encode(b"\xff\xfe\xfd").decode(),
        "x" * 500,
    ],
)
async def test_a_garbage_cursor_is_rejected_with_422(
    client: httpx.AsyncClient, cursor: str
) -> None:
    headers = await admin_headers(client)

    response = await client.get("/accounts", params={"cursor": cursor}, headers=headers)

    # An empty cursor is the same as none; anything else unreadable is a 422.
    assert response.status_code == (200 if cursor == "" else 422), response.text


@pytest.mark.parametrize("param", ["q", "role", "cursor"])
async def test_a_nul_character_in_a_listing_parameter_is_no_server_error(
    client: httpx.AsyncClient, param: str
) -> None:
    headers = await admin_headers(client)

    response = await client.get("/accounts", params={param: "a\x00b"}, headers=headers)

    assert response.status_code in (200, 422), response.text
    if response.status_code == 200:
        assert response.json()["items"] == []


# Creating


async def test_admin_creates_an_account_holding_the_given_roles(client: httpx.AsyncClient) -> None:
    headers = await admin_headers(client)
    response = await client.post(
        "/roles", json={"name": "reader", "scopes": ["accounts:read"]}, headers=headers
    )
    assert response.status_code == 201

    response = await client.post(
        "/accounts",
        json={
            "username": "new_person",
            "password": PASSWORD,
            "email": "new@example.com",
            "roles": ["user", "reader"],
        },
        headers=headers,
    )

    assert response.status_code == 201, response.text
    body = response.json()
    assert body["username"] == "new_person"
    assert body["email"] == "new@example.com"
    assert body["is_active"] is True
    assert body["roles"] == ["reader", "user"]
    assert sorted(body["scopes"]) == ["accounts:read", "me:read", "me:write"]


async def test_a_created_account_can_log_in_with_its_password_and_roles(
    client: httpx.AsyncClient,
) -> None:
    headers = await admin_headers(client)
    await create_account(client, headers, username="logs_in", roles=["user"])

    tokens = await login(client, "logs_in", PASSWORD)

    assert sorted(tokens["scope"].split()) == ["me:read", "me:write"]


async def test_an_account_created_without_roles_gets_the_user_role(
    client: httpx.AsyncClient,
) -> None:
    headers = await admin_headers(client)

    account = await create_account(client, headers)

    assert account["roles"] == ["user"]


async def test_an_account_created_with_an_empty_role_list_holds_no_role(
    client: httpx.AsyncClient,
) -> None:
    headers = await admin_headers(client)

    account = await create_account(client, headers, roles=[])

    assert account["roles"] == []
    assert account["scopes"] == []


async def test_creating_an_account_with_an_unknown_role_is_404_and_creates_nothing(
    client: httpx.AsyncClient,
) -> None:
    headers = await admin_headers(client)

    response = await client.post(
        "/accounts",
        json={"username": "ghost_role", "password": PASSWORD, "roles": ["user", "nope"]},
        headers=headers,
    )

    assert response.status_code == 404
    assert await list_usernames(client, headers, q="ghost_role") == []


@pytest.mark.parametrize("variant", ["taken_name", "TAKEN_NAME", "ｔａｋｅｎ_ｎａｍｅ"])
async def test_creating_an_account_with_a_taken_username_is_409(
    client: httpx.AsyncClient, variant: str
) -> None:
    headers = await admin_headers(client)
    await create_account(client, headers, username="taken_name")

    response = await client.post(
        "/accounts", json={"username": variant, "password": PASSWORD}, headers=headers
    )

    assert response.status_code == 409
    assert await list_usernames(client, headers, q="taken") == ["taken_name"]


async def test_creating_an_account_with_a_taken_email_is_409(client: httpx.AsyncClient) -> None:
    headers = await admin_headers(client)
    await create_account(client, headers, email="same@example.com")

    response = await client.post(
        "/accounts",
        json={"username": unique_name(), "password": PASSWORD, "email": "SAME@example.com"},
        headers=headers,
    )

    assert response.status_code == 409


@pytest.mark.parametrize("password", ["short", "password", ""])
async def test_creating_an_account_with_a_weak_password_is_422(
    client: httpx.AsyncClient, password: str
) -> None:
    headers = await admin_headers(client)

    response = await client.post(
        "/accounts", json={"username": "weak_pw", "password": password}, headers=headers
    )

    assert response.status_code == 422
    assert await list_usernames(client, headers, q="weak_pw") == []


@pytest.mark.parametrize("username", ["has space", "zero\u200bwidth", "", "x" * 65])
async def test_creating_an_account_with_an_invalid_username_is_422(
    client: httpx.AsyncClient, username: str
) -> None:
    headers = await admin_headers(client)

    response = await client.post(
        "/accounts", json={"username": username, "password": PASSWORD}, headers=headers
    )

    assert response.status_code == 422


# Reading


async def test_reading_an_account_by_id_returns_it(client: httpx.AsyncClient) -> None:
    headers = await admin_headers(client)
    account = await create_account(client, headers)

    response = await client.get(f"/accounts/{account['id']}", headers=headers)

    assert response.status_code == 200
    assert response.json() == account


async def test_reading_an_unknown_account_id_is_404(client: httpx.AsyncClient) -> None:
    headers = await admin_headers(client)

    response = await client.get(f"/accounts/{uuid.uuid4()}", headers=headers)

    assert response.status_code == 404
    assert response.json() == {"detail": "Account not found"}


@pytest.mark.parametrize("bad_id", ["not-a-uuid", "123", "%00"])
async def test_reading_an_account_by_a_non_uuid_is_422(
    client: httpx.AsyncClient, bad_id: str
) -> None:
    headers = await admin_headers(client)

    response = await client.get(f"/accounts/{bad_id}", headers=headers)

    assert response.status_code == 422


async def test_account_json_has_exactly_the_contract_fields_and_no_hash(
    client: httpx.AsyncClient,
) -> None:
    headers = await admin_headers(client)
    created = await client.post(
        "/accounts",
        json={"username": "shape_check", "password": PASSWORD, "email": "s@example.com"},
        headers=headers,
    )
    account_id = created.json()["id"]
    responses = [
        created,
        await client.get(f"/accounts/{account_id}", headers=headers),
        await client.patch(f"/accounts/{account_id}", json={"email": None}, headers=headers),
        await client.put(f"/accounts/{account_id}/roles/admin", headers=headers),
        await client.delete(f"/accounts/{account_id}/roles/admin", headers=headers),
    ]
    listing = await client.get("/accounts", headers=headers)

    bodies = [r.json() for r in responses] + listing.json()["items"]
    for response in [*responses, listing]:
        assert response.status_code in (200, 201), response.text
        assert "argon2" not in response.text
        assert PASSWORD not in response.text
        assert "hash" not in response.text
    for body in bodies:
        assert set(body) == ACCOUNT_FIELDS
        uuid.UUID(body["id"])
        assert isinstance(body["is_active"], bool)
        assert isinstance(body["roles"], list)
        assert isinstance(body["scopes"], list)


# Enabling and disabling


async def test_disabling_an_account_refuses_its_access_token_on_the_next_request(
    client: httpx.AsyncClient,
) -> None:
    headers = await admin_headers(client)
    account, tokens = await create_user(client)
    assert (await client.get("/accounts/me", headers=bearer(tokens["access_token"]))).is_success

    response = await client.patch(
        f"/accounts/{account['id']}", json={"is_active": False}, headers=headers
    )

    assert response.status_code == 200
    assert response.json()["is_active"] is False
    assert_refused_token(await client.get("/accounts/me", headers=bearer(tokens["access_token"])))


async def test_disabling_an_account_ends_its_sessions(client: httpx.AsyncClient) -> None:
    headers = await admin_headers(client)
    account, tokens = await create_user(client)

    await client.patch(f"/accounts/{account['id']}", json={"is_active": False}, headers=headers)

    response = await refresh(client, tokens["refresh_token"])
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_grant"


async def test_a_disabled_account_cannot_log_in(client: httpx.AsyncClient) -> None:
    headers = await admin_headers(client)
    account, _ = await create_user(client)
    await client.patch(f"/accounts/{account['id']}", json={"is_active": False}, headers=headers)

    response = await client.post(
        "/auth/token",
        data={"grant_type": "password", "username": account["username"], "password": PASSWORD},
    )

    assert response.status_code == 400
    assert response.json()["error"] == "invalid_grant"


async def test_disabled_sessions_stay_ended_after_the_account_is_enabled_again(
    client: httpx.AsyncClient,
) -> None:
    headers = await admin_headers(client)
    account, tokens = await create_user(client)
    await client.patch(f"/accounts/{account['id']}", json={"is_active": False}, headers=headers)

    response = await client.patch(
        f"/accounts/{account['id']}", json={"is_active": True}, headers=headers
    )

    assert response.json()["is_active"] is True
    assert_refused_token(await client.get("/accounts/me", headers=bearer(tokens["access_token"])))
    assert (await refresh(client, tokens["refresh_token"])).status_code == 400
    assert (await login(client, account["username"]))["access_token"]


# Email


async def test_patching_a_valid_email_changes_it(client: httpx.AsyncClient) -> None:
    headers = await admin_headers(client)
    account = await create_account(client, headers)

    response = await client.patch(
        f"/accounts/{account['id']}", json={"email": "fresh@example.com"}, headers=headers
    )

    assert response.status_code == 200
    assert response.json()["email"] == "fresh@example.com"
    again = await client.get(f"/accounts/{account['id']}", headers=headers)
    assert again.json()["email"] == "fresh@example.com"


@pytest.mark.parametrize("email", ["not-an-email", "a@", "@b.com", "a b@c.com", 42])
async def test_patching_an_invalid_email_is_422_and_changes_nothing(
    client: httpx.AsyncClient, email: str | int
) -> None:
    headers = await admin_headers(client)
    account = await create_account(client, headers, email="kept@example.com")

    response = await client.patch(
        f"/accounts/{account['id']}", json={"email": email}, headers=headers
    )

    assert response.status_code == 422
    again = await client.get(f"/accounts/{account['id']}", headers=headers)
    assert again.json()["email"] == "kept@example.com"


async def test_patching_an_email_another_account_uses_is_409(client: httpx.AsyncClient) -> None:
    headers = await admin_headers(client)
    await create_account(client, headers, email="mine@example.com")
    other = await create_account(client, headers, email="other@example.com")

    response = await client.patch(
        f"/accounts/{other['id']}", json={"email": "Mine@Example.com"}, headers=headers
    )

    assert response.status_code == 409
    again = await client.get(f"/accounts/{other['id']}", headers=headers)
    assert again.json()["email"] == "other@example.com"


async def test_patching_email_to_null_clears_it(client: httpx.AsyncClient) -> None:
    headers = await admin_headers(client)
    account = await create_account(client, headers, email="gone@example.com")

    response = await client.patch(
        f"/accounts/{account['id']}", json={"email": None}, headers=headers
    )

    assert response.status_code == 200
    assert response.json()["email"] is None
    reuse = await create_account(client, headers, email="gone@example.com")
    assert reuse["email"] == "gone@example.com"


async def test_patching_an_unknown_field_is_422(client: httpx.AsyncClient) -> None:
    headers = await admin_headers(client)
    account = await create_account(client, headers)

    response = await client.patch(
        f"/accounts/{account['id']}", json={"password": "a new fine passphrase"}, headers=headers
    )

    assert response.status_code == 422


async def test_patching_an_unknown_account_is_404(client: httpx.AsyncClient) -> None:
    headers = await admin_headers(client)

    response = await client.patch(
        f"/accounts/{uuid.uuid4()}", json={"is_active": False}, headers=headers
    )

    assert response.status_code == 404


# Deleting


async def test_deleting_an_account_answers_204_and_then_it_is_gone(
    client: httpx.AsyncClient,
) -> None:
    headers = await admin_headers(client)
    account = await create_account(client, headers)

    response = await client.delete(f"/accounts/{account['id']}", headers=headers)

    assert response.status_code == 204
    assert response.content == b""
    assert (await client.get(f"/accounts/{account['id']}", headers=headers)).status_code == 404
    assert (await client.delete(f"/accounts/{account['id']}", headers=headers)).status_code == 404
    assert account["username"] not in await list_usernames(client, headers)


async def test_a_deleted_accounts_tokens_are_refused(client: httpx.AsyncClient) -> None:
    headers = await admin_headers(client)
    account, tokens = await create_user(client)

    await client.delete(f"/accounts/{account['id']}", headers=headers)

    assert_refused_token(await client.get("/accounts/me", headers=bearer(tokens["access_token"])))
    assert (await refresh(client, tokens["refresh_token"])).json()["error"] == "invalid_grant"


async def test_a_deleted_accounts_username_can_be_used_again(client: httpx.AsyncClient) -> None:
    headers = await admin_headers(client)
    account = await create_account(client, headers, username="reborn")
    await client.delete(f"/accounts/{account['id']}", headers=headers)

    again = await create_account(client, headers, username="reborn")

    assert again["id"] != account["id"]


async def test_deleting_an_unknown_account_is_404(client: httpx.AsyncClient) -> None:
    headers = await admin_headers(client)

    assert (await client.delete(f"/accounts/{uuid.uuid4()}", headers=headers)).status_code == 404


# The last active admin


async def _lose_admin(
    client: httpx.AsyncClient, headers: dict[str, str], account_id: str, how: str
) -> httpx.Response:
    if how == "disable":
        return await client.patch(
            f"/accounts/{account_id}", json={"is_active": False}, headers=headers
        )
    if how == "delete":
        return await client.delete(f"/accounts/{account_id}", headers=headers)
    return await client.delete(f"/accounts/{account_id}/roles/admin", headers=headers)


@pytest.mark.parametrize("how", ["disable", "delete", "unassign"])
async def test_the_last_active_admin_cannot_lose_admin_rights(
    client: httpx.AsyncClient, how: str
) -> None:
    headers = await admin_headers(client)
    admin = await admin_account(client, headers)

    response = await _lose_admin(client, headers, admin["id"], how)

    assert response.status_code == 409, response.text
    after = await client.get(f"/accounts/{admin['id']}", headers=headers)
    assert after.status_code == 200
    assert after.json()["is_active"] is True
    assert "admin" in after.json()["roles"]


@pytest.mark.parametrize("how", ["disable", "delete", "unassign"])
async def test_an_admin_can_lose_admin_rights_while_another_active_admin_remains(
    client: httpx.AsyncClient, how: str
) -> None:
    headers = await admin_headers(client)
    admin = await admin_account(client, headers)
    second = await make_second_admin(client, headers)

    response = await _lose_admin(client, headers, admin["id"], how)

    assert response.status_code in (200, 204), response.text
    second_headers = bearer((await login(client, second["username"]))["access_token"])
    active_admins = await list_usernames(client, second_headers, role="admin", is_active="true")
    assert active_admins == [second["username"]]


@pytest.mark.parametrize("how", ["disable", "delete", "unassign"])
async def test_a_disabled_second_admin_does_not_count_towards_keeping_the_last_one(
    client: httpx.AsyncClient, how: str
) -> None:
    headers = await admin_headers(client)
    admin = await admin_account(client, headers)
    second = await make_second_admin(client, headers)
    response = await client.patch(
        f"/accounts/{second['id']}", json={"is_active": False}, headers=headers
    )
    assert response.status_code == 200

    response = await _lose_admin(client, headers, admin["id"], how)

    assert response.status_code == 409, response.text


async def test_the_bootstrap_admin_password_is_not_echoed_anywhere_in_listings(
    client: httpx.AsyncClient,
) -> None:
    headers = await admin_headers(client)

    response = await client.get("/accounts", headers=headers)

    assert ADMIN_PASSWORD not in response.text
