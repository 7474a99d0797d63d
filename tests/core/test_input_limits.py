"""Input limits (issue 7): oversized bodies get 413 before they are parsed; NUL
bytes, lone surrogates and over-long strings get 422 on both databases; nothing
sent is echoed back when it is refused."""

import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from tests.conftest import ADMIN_PASSWORD, AppFactory, unique_name
from tests.factories import PASSWORD, admin_login, bearer

MAX_BODY = 2048
NUL = "bad\x00value"
LONE_SURROGATE = "bad\ud800value"
OVER_LONG = "a" * 5000


def bad_value(kind: str, field: str) -> str:
    if kind == "over_long" and "email" in field:
        return "a" * 5000 + "@example.com"
    if kind == "nul" and "email" in field:
        return "bad\x00value@example.com"
    if kind == "surrogate" and "email" in field:
        return "bad\ud800value@example.com"
    return {"nul": NUL, "surrogate": LONE_SURROGATE, "over_long": OVER_LONG}[kind]


def raw_json(body: Any) -> bytes:
    # ensure_ascii writes a lone surrogate as the escape `\ud800`: valid JSON text
    # that decodes to a string no UTF-8 encoder (nor PostgreSQL) accepts.
    return json.dumps(body, ensure_ascii=True).encode("ascii")


# (method, path, a valid body, the fields to spoil, which of them are lists)
JSON_BODIES: list[tuple[str, str, dict[str, Any], list[str]]] = [
    (
        "POST",
        "/auth/signup",
        {"username": "placeholder", "password": PASSWORD, "email": "x@example.com"},
        ["username", "password", "email"],
    ),
    (
        "POST",
        "/accounts",
        {
            "username": "placeholder",
            "password": PASSWORD,
            "email": "y@example.com",
            "roles": ["user"],
        },
        ["username", "password", "email", "roles"],
    ),
    ("PATCH", "/accounts/{admin_id}", {"email": "z@example.com"}, ["email"]),
    (
        "POST",
        "/accounts/me/password",
        {"current_password": ADMIN_PASSWORD, "new_password": "another fine passphrase"},
        ["current_password", "new_password"],
    ),
    (
        "POST",
        "/roles",
        {"name": "auditor", "description": "reads the log", "scopes": ["audit:read"]},
        ["name", "description", "scopes"],
    ),
    (
        "PATCH",
        "/roles/user",
        {"description": "ordinary users", "scopes": ["me:read", "me:write"]},
        ["description", "scopes"],
    ),
    (
        "POST",
        "/scopes",
        {"name": "billing:read", "description": "read invoices"},
        ["name", "description"],
    ),
]
LIST_FIELDS = {"roles", "scopes"}

CASES = [
    pytest.param(method, path, body, field, kind, id=f"{method} {path} {field} {kind}")
    for method, path, body, fields in JSON_BODIES
    for field in fields
    for kind in ("nul", "surrogate", "over_long")
]


@pytest.fixture
async def admin(client: httpx.AsyncClient) -> dict[str, Any]:
    tokens = await admin_login(client)
    me = await client.get("/accounts/me", headers=bearer(tokens["access_token"]))
    return {"headers": bearer(tokens["access_token"]), "id": me.json()["id"]}


@pytest.mark.parametrize(("method", "path", "body", "field", "kind"), CASES)
async def test_a_spoiled_field_in_a_json_body_is_refused_with_422(
    client: httpx.AsyncClient,
    admin: dict[str, Any],
    method: str,
    path: str,
    body: dict[str, Any],
    field: str,
    kind: str,
) -> None:
    spoiled = dict(body)
    if "username" in spoiled:
        spoiled["username"] = unique_name()
    value = bad_value(kind, field)
    spoiled[field] = [value] if field in LIST_FIELDS else value
    response = await client.request(
        method,
        path.format(admin_id=admin["id"]),
        content=raw_json(spoiled),
        headers={**admin["headers"], "Content-Type": "application/json"},
    )
    assert response.status_code == 422, response.text
    locations = [error["loc"] for error in response.json()["detail"]]
    assert any(field in loc for loc in locations), locations


@pytest.mark.parametrize(("method", "path", "body", "fields"), JSON_BODIES)
async def test_the_unspoiled_bodies_used_above_are_accepted(
    client: httpx.AsyncClient,
    admin: dict[str, Any],
    method: str,
    path: str,
    body: dict[str, Any],
    fields: list[str],
) -> None:
    response = await client.request(
        method,
        path.format(admin_id=admin["id"]),
        content=raw_json({**body, **({"username": unique_name()} if "username" in body else {})}),
        headers={**admin["headers"], "Content-Type": "application/json"},
    )
    assert response.status_code < 300, response.text


@pytest.mark.parametrize("field", ["username", "password", "scope", "refresh_token"])
@pytest.mark.parametrize("kind", ["nul", "over_long"])
async def test_a_spoiled_token_form_field_is_an_invalid_request(
    client: httpx.AsyncClient, field: str, kind: str
) -> None:
    grant = "refresh_token" if field == "refresh_token" else "password"
    form = {"grant_type": grant, "username": "someone", "password": PASSWORD}
    if grant == "refresh_token":
        form = {"grant_type": grant, "refresh_token": "x" * 43}
    form[field] = bad_value(kind, field)
    response = await client.post("/auth/token", data=form)
    assert response.status_code == 400, response.text
    assert response.json()["error"] == "invalid_request"


@pytest.mark.parametrize("raw", [b"%ED%A0%80", b"%FF%FE", b"%C0%80"])
async def test_undecodable_bytes_in_a_token_form_are_a_plain_failed_login(
    client: httpx.AsyncClient, raw: bytes
) -> None:
    body = b"grant_type=password&username=" + raw + b"&password=" + raw + b"xxxxxxxx"
    response = await client.post(
        "/auth/token",
        content=body,
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert response.status_code == 400, response.text
    assert response.json()["error"] in {"invalid_request", "invalid_grant"}


async def test_a_username_that_grows_past_the_limit_when_case_folded_is_refused(
    client: httpx.AsyncClient,
) -> None:
    # "ß" folds to "ss": 64 characters become a 128-character unique key.
    response = await client.post("/auth/signup", json={"username": "ß" * 64, "password": PASSWORD})
    assert response.status_code == 422, response.text


@pytest.mark.parametrize(
    ("method", "url"),
    [
        ("GET", "/accounts?q=a%00b"),
        ("GET", "/accounts?role=a%00b"),
        ("GET", "/accounts?cursor=a%00b"),
        ("GET", "/audit?action=a%00b"),
        ("GET", "/roles/a%00b"),
        ("PATCH", "/roles/a%00b"),
        ("DELETE", "/roles/a%00b"),
        ("DELETE", "/scopes/a%00b"),
        ("PUT", "/accounts/{admin_id}/roles/a%00b"),
        ("DELETE", "/accounts/{admin_id}/roles/a%00b"),
    ],
)
async def test_a_nul_in_the_url_is_refused_with_422(
    client: httpx.AsyncClient, admin: dict[str, Any], method: str, url: str
) -> None:
    response = await client.request(
        method, url.format(admin_id=admin["id"]), headers=admin["headers"], json={}
    )
    assert response.status_code == 422, response.text


async def test_an_over_long_query_parameter_is_refused_with_422(
    client: httpx.AsyncClient, admin: dict[str, Any]
) -> None:
    response = await client.get("/accounts", params={"q": OVER_LONG}, headers=admin["headers"])
    assert response.status_code == 422, response.text


async def test_a_validation_error_does_not_echo_the_password(client: httpx.AsyncClient) -> None:
    secret = "correct-horse-battery-staple-" + "x" * 2000
    response = await client.post(
        "/auth/signup", json={"username": "not a valid name", "password": secret}
    )
    assert response.status_code == 422
    assert "correct-horse" not in response.text


async def test_a_refused_password_change_does_not_echo_either_password(
    client: httpx.AsyncClient,
) -> None:
    tokens = await admin_login(client)
    response = await client.post(
        "/accounts/me/password",
        json={
            "current_password": "old-secret-" + "\x00",
            "new_password": "new-secret-" + "y" * 2000,
        },
        headers=bearer(tokens["access_token"]),
    )
    assert response.status_code == 422
    assert "old-secret" not in response.text
    assert "new-secret" not in response.text


async def test_an_unknown_field_carrying_a_secret_is_refused_without_echo(
    client: httpx.AsyncClient,
) -> None:
    response = await client.post(
        "/auth/signup",
        json={"username": unique_name(), "password": PASSWORD, "token": "leaky-secret-token"},
    )
    assert response.status_code == 422
    assert "leaky-secret-token" not in response.text
    assert PASSWORD not in response.text


async def test_a_refused_token_request_does_not_echo_the_refresh_token(
    client: httpx.AsyncClient,
) -> None:
    response = await client.post(
        "/auth/token",
        data={"grant_type": "refresh_token", "refresh_token": "leaky-refresh\x00" + "z" * 40},
    )
    assert response.status_code == 400
    assert "leaky-refresh" not in response.text


async def test_a_common_password_is_refused_without_echo(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/auth/signup", json={"username": unique_name(), "password": "password123"}
    )
    assert response.status_code == 422
    assert "password123" not in response.text


@pytest.mark.parametrize(
    ("content", "content_type"),
    [
        (b"this is not json", "application/json"),
        (b'{"username": "abc", "password": ', "application/json"),
        (b'["username", "password"]', "application/json"),
        (b"null", "application/json"),
        (b'"a string"', "application/json"),
        (b'{"username": 123, "password": "a fine passphrase"}', "application/json"),
        (b'{"username": "abc", "password": ["a", "list"]}', "application/json"),
        (b'{"username": "abc", "password": "a fine passphrase", "email": 5}', "application/json"),
        (b"username=abc&password=a+fine+passphrase", "application/x-www-form-urlencoded"),
    ],
)
async def test_a_malformed_signup_body_is_refused_with_422(
    client: httpx.AsyncClient, content: bytes, content_type: str
) -> None:
    response = await client.post(
        "/auth/signup", content=content, headers={"Content-Type": content_type}
    )
    assert response.status_code == 422, response.text


@pytest.mark.parametrize("content", [b"\xff\xfe\xfd", b'{"username": "\xc3\x28"}'])
async def test_a_body_that_is_not_text_is_a_client_error(
    client: httpx.AsyncClient, content: bytes
) -> None:
    # FastAPI answers 400 "error parsing the body" when the bytes do not decode at
    # all (json.loads raises UnicodeDecodeError, not a JSON error); either 4xx is fine.
    response = await client.post(
        "/auth/signup", content=content, headers={"Content-Type": "application/json"}
    )
    assert response.status_code in {400, 422}, response.text
    assert "detail" in response.json()


@pytest.mark.parametrize(
    "body",
    [
        b'{"is_active": "maybe"}',
        b'{"is_active": [true]}',
        b'{"email": {"a": 1}}',
        b"[]",
    ],
)
async def test_wrong_types_in_an_account_update_are_refused_with_422(
    client: httpx.AsyncClient, admin: dict[str, Any], body: bytes
) -> None:
    response = await client.patch(
        f"/accounts/{admin['id']}",
        content=body,
        headers={**admin["headers"], "Content-Type": "application/json"},
    )
    assert response.status_code == 422, response.text


@pytest.mark.parametrize(
    "body",
    [
        b'{"name": "x", "scopes": "audit:read"}',
        b'{"name": 7, "scopes": []}',
        b'{"name": "x", "scopes": [1, 2]}',
        b'{"name": "x"}',
    ],
)
async def test_wrong_types_in_a_role_body_are_refused_with_422(
    client: httpx.AsyncClient, admin: dict[str, Any], body: bytes
) -> None:
    response = await client.post(
        "/roles", content=body, headers={**admin["headers"], "Content-Type": "application/json"}
    )
    assert response.status_code == 422, response.text


# Bodies over the limit: 413, decided before anything parses them.


@pytest.fixture
async def small_client(make_client: AppFactory) -> AsyncIterator[httpx.AsyncClient]:
    async with make_client(max_body_bytes=MAX_BODY) as c:
        yield c


async def test_a_json_body_over_the_limit_is_refused_with_413(
    small_client: httpx.AsyncClient,
) -> None:
    response = await small_client.post(
        "/auth/signup", json={"username": unique_name(), "password": "p" * MAX_BODY}
    )
    assert response.status_code == 413
    assert response.json() == {"detail": "Request body too large"}


async def test_an_unparseable_body_over_the_limit_is_413_not_422(
    small_client: httpx.AsyncClient,
) -> None:
    response = await small_client.post(
        "/auth/signup",
        content=b"{" * (MAX_BODY + 1),
        headers={"Content-Type": "application/json"},
    )
    assert response.status_code == 413


async def test_a_body_over_the_limit_is_refused_before_authentication(
    small_client: httpx.AsyncClient,
) -> None:
    response = await small_client.post("/roles", content=b"x" * (MAX_BODY + 1))
    assert response.status_code == 413


async def test_a_form_body_over_the_limit_is_refused_with_413(
    small_client: httpx.AsyncClient,
) -> None:
    response = await small_client.post(
        "/auth/token",
        data={"grant_type": "password", "username": "someone", "password": "p" * MAX_BODY},
    )
    assert response.status_code == 413


async def test_a_body_just_under_the_limit_is_parsed(small_client: httpx.AsyncClient) -> None:
    body = {"username": "not a valid name", "password": ""}
    padding = MAX_BODY - len(json.dumps(body)) - 10
    response = await small_client.post(
        "/auth/signup",
        content=json.dumps({**body, "password": "p" * padding}).encode(),
        headers={"Content-Type": "application/json"},
    )
    assert response.status_code == 422


@pytest.mark.parametrize(
    ("path", "content_type"),
    [
        ("/auth/signup", "application/json"),
        ("/auth/token", "application/x-www-form-urlencoded"),
    ],
)
async def test_a_chunked_body_over_the_limit_is_cut_off_with_413(
    small_client: httpx.AsyncClient, path: str, content_type: str
) -> None:
    total_chunks = 1000
    sent = 0

    async def stream() -> AsyncIterator[bytes]:
        nonlocal sent
        for _ in range(total_chunks):
            sent += 1
            yield b"a" * 512

    request = small_client.build_request(
        "POST", path, content=stream(), headers={"Content-Type": content_type}
    )
    assert "content-length" not in request.headers
    response = await small_client.send(request)
    assert response.status_code == 413
    # The server stopped reading soon after the limit, not at the end of the stream.
    assert sent <= MAX_BODY // 512 + 2, sent
