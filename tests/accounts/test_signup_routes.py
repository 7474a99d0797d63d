"""POST /auth/signup: the account it creates, and everything it refuses."""

import uuid
from datetime import datetime
from typing import Any

import httpx
import pytest

from tests.conftest import AppFactory, unique_name
from tests.factories import PASSWORD, login, signup


async def post_signup(client: httpx.AsyncClient, **body: Any) -> httpx.Response:
    return await client.post("/auth/signup", json={"password": PASSWORD, **body})


def assert_refused_field(response: httpx.Response, field: str) -> None:
    assert response.status_code == 422, response.text
    assert [e["loc"] for e in response.json()["detail"]] == [["body", field]]


async def test_signup_answers_201_with_exactly_the_contract_account(
    client: httpx.AsyncClient,
) -> None:
    response = await post_signup(client, username="alice")
    assert response.status_code == 201, response.text
    body = response.json()
    assert set(body) == {"id", "username", "email", "is_active", "roles", "scopes", "created_at"}
    assert uuid.UUID(body["id"])
    assert body["username"] == "alice"
    assert body["email"] is None
    assert body["is_active"] is True
    assert body["roles"] == ["user"]
    assert body["scopes"] == ["me:read", "me:write"]
    assert datetime.fromisoformat(body["created_at"]).tzinfo is not None


async def test_signup_response_carries_no_password_or_hash(client: httpx.AsyncClient) -> None:
    response = await post_signup(client, username="alice")
    assert PASSWORD not in response.text
    assert "argon2" not in response.text
    assert "password" not in response.text


async def test_signup_keeps_the_email(client: httpx.AsyncClient) -> None:
    account = await signup(client, "alice", email="alice@example.com")
    assert account["email"] == "alice@example.com"


async def test_signed_up_account_can_log_in(client: httpx.AsyncClient) -> None:
    account = await signup(client, "alice")
    assert (await login(client, "alice"))["scope"] == "me:read me:write"
    assert account["is_active"] is True


@pytest.mark.parametrize(
    "second",
    ["bob", "Bob", "BOB", "ｂｏｂ", "ＢＯＢ"],
    ids=["same", "title", "upper", "fullwidth", "fullwidth upper"],
)
async def test_username_taken_in_another_case_or_width_answers_409(
    client: httpx.AsyncClient, second: str
) -> None:
    await signup(client, "Bob")
    response = await post_signup(client, username=second)
    assert response.status_code == 409, response.text
    assert "username" in response.json()["detail"]


async def test_username_of_the_bootstrap_admin_is_taken(client: httpx.AsyncClient) -> None:
    response = await post_signup(client, username="ADMIN")
    assert response.status_code == 409, response.text


async def test_username_differing_by_ligature_is_the_same_username(
    client: httpx.AsyncClient,
) -> None:
    await signup(client, "fish")
    response = await post_signup(client, username="\ufb01sh")
    assert response.status_code == 409, response.text


@pytest.mark.parametrize("second", ["carol@example.com", "CAROL@EXAMPLE.COM", "Carol@Example.com"])
async def test_email_taken_in_another_case_answers_409(
    client: httpx.AsyncClient, second: str
) -> None:
    await signup(client, "carol", email="carol@example.com")
    response = await post_signup(client, username="carol2", email=second)
    assert response.status_code == 409, response.text
    assert "email" in response.json()["detail"]


async def test_refused_duplicate_leaves_the_first_account_able_to_log_in(
    client: httpx.AsyncClient,
) -> None:
    await signup(client, "bob")
    await post_signup(client, username="BOB", password="another fine passphrase")
    await login(client, "bob")


BAD_USERNAMES = {
    "space": "a b",
    "leading space": " bob",
    "trailing space": "bob ",
    "tab": "a\tb",
    "newline": "a\nb",
    "nul": "a\u0000b",
    "escape": "a\u001bb",
    "zero-width space": "a\u200bb",
    "zero-width joiner": "a\u200db",
    "bidi override": "a\u202eb",
    "byte order mark": "\ufeffbob",
    "no-break space": "a\u00a0b",
    "ideographic space": "a\u3000b",
    "line separator": "a\u2028b",
    "empty": "",
    "65 characters": "a" * 65,
}


@pytest.mark.parametrize("username", BAD_USERNAMES.values(), ids=BAD_USERNAMES.keys())
async def test_username_with_whitespace_control_or_format_characters_answers_422(
    client: httpx.AsyncClient, username: str
) -> None:
    assert_refused_field(await post_signup(client, username=username), "username")


async def test_refused_username_creates_no_account(client: httpx.AsyncClient) -> None:
    await post_signup(client, username="a\u200bb")
    response = await post_signup(client, username="ab")
    assert response.status_code == 201, response.text


@pytest.mark.parametrize(
    "email", ["not-an-email", "a@", "@example.com", "a@@example.com", "a b@example.com", "a@b"]
)
async def test_invalid_email_answers_422(client: httpx.AsyncClient, email: str) -> None:
    assert_refused_field(await post_signup(client, username="alice", email=email), "email")


@pytest.mark.parametrize(
    "password",
    ["password1", "iloveyou", "short", "", "x" * 257],
    ids=["common", "common 2", "short", "empty", "too long"],
)
async def test_weak_or_oversized_password_answers_422(
    client: httpx.AsyncClient, password: str
) -> None:
    response = await post_signup(client, username="alice", password=password)
    assert_refused_field(response, "password")


async def test_password_equal_to_the_username_answers_422(client: httpx.AsyncClient) -> None:
    response = await post_signup(client, username="Alice.Liddell", password="alice.liddell")
    assert_refused_field(response, "password")


async def test_validation_errors_do_not_echo_the_password(client: httpx.AsyncClient) -> None:
    response = await post_signup(client, username="a b", password="iloveyou")
    assert response.status_code == 422
    assert "iloveyou" not in response.text


@pytest.mark.parametrize(
    "extra",
    [{"roles": ["admin"]}, {"is_active": False}, {"scopes": ["accounts:write"]}, {"id": "x"}],
    ids=["roles", "is_active", "scopes", "id"],
)
async def test_unknown_field_answers_422(client: httpx.AsyncClient, extra: dict[str, Any]) -> None:
    response = await post_signup(client, username=unique_name(), **extra)
    assert response.status_code == 422, response.text
    assert response.json()["detail"][0]["loc"] == ["body", next(iter(extra))]


@pytest.mark.parametrize(
    "body",
    [{"password": PASSWORD}, {"username": "alice"}, {}],
    ids=["username", "password", "both"],
)
async def test_missing_field_answers_422(client: httpx.AsyncClient, body: dict[str, Any]) -> None:
    response = await client.post("/auth/signup", json=body)
    assert response.status_code == 422, response.text


async def test_non_json_body_answers_422(client: httpx.AsyncClient) -> None:
    response = await client.post("/auth/signup", data={"username": "alice", "password": PASSWORD})
    assert response.status_code == 422, response.text


async def test_signup_answers_403_when_switched_off(make_client: AppFactory) -> None:
    async with make_client(signup_enabled=False) as client:
        response = await post_signup(client, username="alice")
    assert response.status_code == 403, response.text
    assert list(response.json()) == ["detail"]


async def test_switched_off_signup_creates_no_account(make_client: AppFactory) -> None:
    async with make_client(signup_enabled=False) as client:
        await post_signup(client, username="alice")
    async with make_client() as client:
        response = await client.post(
            "/auth/token",
            data={"grant_type": "password", "username": "alice", "password": PASSWORD},
        )
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_grant"
