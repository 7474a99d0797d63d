"""Transport hygiene (issue 7): CORS only for configured origins, no-store on
token responses, security headers, and docs that production keeps switched off."""

import secrets
from collections.abc import AsyncIterator

import httpx
import pytest

from tests.conftest import AppFactory
from tests.factories import PASSWORD, admin_login, bearer, signup

ORIGIN = "https://app.example"
OTHER_ORIGIN = "https://evil.example"


def cors_headers(response: httpx.Response) -> dict[str, str]:
    return {k: v for k, v in response.headers.items() if k.lower().startswith("access-control-")}


async def preflight(
    client: httpx.AsyncClient, origin: str, path: str = "/accounts/me"
) -> httpx.Response:
    return await client.options(
        path,
        headers={
            "Origin": origin,
            "Access-Control-Request-Method": "GET",
            "Access-Control-Request-Headers": "authorization, content-type",
        },
    )


async def test_a_configured_origin_is_allowed_by_name(make_client: AppFactory) -> None:
    async with make_client(cors_origins=[ORIGIN]) as client:
        response = await client.get("/healthz", headers={"Origin": ORIGIN})
    assert response.headers["Access-Control-Allow-Origin"] == ORIGIN
    assert "origin" in response.headers.get("Vary", "").lower()


async def test_a_configured_origin_may_send_authorization_and_content_type(
    make_client: AppFactory,
) -> None:
    async with make_client(cors_origins=[ORIGIN]) as client:
        response = await preflight(client, ORIGIN)
    assert response.status_code == 200
    assert response.headers["Access-Control-Allow-Origin"] == ORIGIN
    allowed = {
        h.strip().lower() for h in response.headers["Access-Control-Allow-Headers"].split(",")
    }
    assert {"authorization", "content-type"} <= allowed
    assert "GET" in response.headers["Access-Control-Allow-Methods"]


async def test_a_configured_origin_reads_an_authorised_answer(make_client: AppFactory) -> None:
    async with make_client(cors_origins=[ORIGIN]) as client:
        tokens = await admin_login(client)
        response = await client.get(
            "/accounts/me", headers={"Origin": ORIGIN, **bearer(tokens["access_token"])}
        )
    assert response.status_code == 200
    assert response.headers["Access-Control-Allow-Origin"] == ORIGIN


async def test_an_unlisted_origin_gets_no_cors_headers(make_client: AppFactory) -> None:
    async with make_client(cors_origins=[ORIGIN]) as client:
        response = await client.get("/healthz", headers={"Origin": OTHER_ORIGIN})
    assert response.status_code == 200
    assert cors_headers(response) == {}


async def test_an_unlisted_origin_is_not_allowed_by_a_preflight(make_client: AppFactory) -> None:
    async with make_client(cors_origins=[ORIGIN]) as client:
        response = await preflight(client, OTHER_ORIGIN)
    assert response.status_code == 400
    assert cors_headers(response) == {}


async def test_without_configured_origins_no_origin_gets_cors_headers(
    client: httpx.AsyncClient,
) -> None:
    response = await client.get("/healthz", headers={"Origin": ORIGIN})
    assert cors_headers(response) == {}
    options = await preflight(client, ORIGIN)
    assert cors_headers(options) == {}


@pytest.mark.parametrize("origins", [[ORIGIN], ["*"]])
async def test_credentials_are_never_allowed_together_with_a_wildcard_or_reflected_origin(
    make_client: AppFactory, origins: list[str]
) -> None:
    async with make_client(cors_origins=origins) as client:
        answers = [
            await client.get("/healthz", headers={"Origin": origin})
            for origin in (ORIGIN, OTHER_ORIGIN)
        ] + [await preflight(client, ORIGIN), await preflight(client, OTHER_ORIGIN)]
    for response in answers:
        allow_origin = response.headers.get("Access-Control-Allow-Origin")
        credentials = response.headers.get("Access-Control-Allow-Credentials", "").lower()
        assert not (credentials == "true" and allow_origin == "*")
        if allow_origin not in (None, "*"):
            assert allow_origin == ORIGIN or "*" in origins
        if allow_origin == OTHER_ORIGIN:
            # A reflected origin is only acceptable without credentials.
            assert credentials != "true"


# Cache-Control: no-store on every answer of the token endpoint.


def assert_not_stored(response: httpx.Response) -> None:
    assert "no-store" in response.headers.get("Cache-Control", ""), (
        response.status_code,
        dict(response.headers),
    )


async def test_a_successful_token_response_is_not_stored(client: httpx.AsyncClient) -> None:
    account = await signup(client)
    response = await client.post(
        "/auth/token",
        data={"grant_type": "password", "username": account["username"], "password": PASSWORD},
    )
    assert response.status_code == 200
    assert_not_stored(response)


async def test_a_refreshed_token_response_is_not_stored(client: httpx.AsyncClient) -> None:
    tokens = await admin_login(client)
    response = await client.post(
        "/auth/token",
        data={"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]},
    )
    assert response.status_code == 200
    assert_not_stored(response)


@pytest.mark.parametrize(
    "form",
    [
        {"grant_type": "password", "username": "nobody", "password": "wrong password"},
        {"grant_type": "password"},
        {"grant_type": "client_credentials"},
        {},
        {"grant_type": "refresh_token", "refresh_token": "not-a-token"},
        {"grant_type": "password", "username": "x", "password": "y", "scope": "no-such-scope"},
    ],
)
async def test_a_token_error_response_is_not_stored(
    client: httpx.AsyncClient, form: dict[str, str]
) -> None:
    response = await client.post("/auth/token", data=form)
    assert response.status_code == 400
    assert_not_stored(response)


async def test_a_throttled_token_response_is_not_stored(make_client: AppFactory) -> None:
    async with make_client(login_max_failures=1) as client:
        form = {"grant_type": "password", "username": "nobody", "password": "wrong password"}
        await client.post("/auth/token", data=form)
        response = await client.post("/auth/token", data=form)
    assert response.status_code == 429
    assert_not_stored(response)


async def test_an_oversized_token_request_answer_is_not_stored_either(
    make_client: AppFactory,
) -> None:
    async with make_client(max_body_bytes=1024) as client:
        response = await client.post(
            "/auth/token",
            data={"grant_type": "password", "username": "x", "password": "p" * 2000},
        )
    assert response.status_code == 413
    assert_not_stored(response)


async def test_a_revocation_response_is_not_stored(client: httpx.AsyncClient) -> None:
    response = await client.post("/auth/revoke", data={"token": "whatever"})
    assert response.status_code == 200
    assert_not_stored(response)


# Cache-Control: no-store on every answer to an authenticated request.

AUTHENTICATED_GETS = [
    "/accounts",
    "/accounts/me",
    "/accounts/{me}",
    "/auth/sessions",
    "/roles",
    "/roles/admin",
    "/scopes",
    "/audit",
]


@pytest.mark.parametrize("path", AUTHENTICATED_GETS)
async def test_an_authenticated_answer_is_not_stored(client, path):
    tokens = await admin_login(client)
    me = (await client.get("/accounts/me", headers=bearer(tokens["access_token"]))).json()

    response = await client.get(path.format(me=me["id"]), headers=bearer(tokens["access_token"]))

    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store"


@pytest.mark.parametrize("path", ["/accounts/me", "/roles"])
async def test_an_answer_refusing_a_token_is_not_stored(client, path):
    response = await client.get(path, headers=bearer("not-a-token"))

    assert response.status_code == 401
    assert response.headers["cache-control"] == "no-store"


# No redirect built from the Host header: a trailing slash the API does not define is 404.


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/auth/token/"),
        ("POST", "/auth/signup/"),
        ("GET", "/accounts/"),
        ("GET", "/accounts/me/"),
        ("GET", "/roles/"),
        ("GET", "/healthz/"),
    ],
)
async def test_a_trailing_slash_is_404_and_never_a_redirect(client, method, path):
    tokens = await admin_login(client)

    response = await client.request(
        method,
        path,
        headers={"Host": "evil.example", **bearer(tokens["access_token"])},
        data={"grant_type": "password", "username": "x", "password": "y"}
        if method == "POST"
        else None,
    )

    assert response.status_code == 404, response.text
    assert "location" not in response.headers
    assert "evil.example" not in response.text


# Security headers.

SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
}


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/healthz"),
        ("GET", "/accounts/me"),
        ("GET", "/no/such/path"),
        ("POST", "/auth/token"),
        ("GET", "/.well-known/jwks.json"),
        ("GET", "/accounts?q=a%00b"),
        ("GET", "/docs"),
        ("GET", "/openapi.json"),
    ],
)
async def test_every_answer_carries_the_security_headers(
    client: httpx.AsyncClient, method: str, path: str
) -> None:
    response = await client.request(method, path)
    for name, value in SECURITY_HEADERS.items():
        assert response.headers.get(name) == value, (name, response.status_code)
    assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"]


async def test_an_oversized_body_answer_carries_the_security_headers(
    make_client: AppFactory,
) -> None:
    async with make_client(max_body_bytes=1024) as client:
        response = await client.post("/auth/signup", content=b"x" * 2000)
    assert response.status_code == 413
    assert response.headers.get("X-Content-Type-Options") == "nosniff"


async def test_api_answers_allow_no_content_to_load(client: httpx.AsyncClient) -> None:
    response = await client.get("/healthz")
    assert response.headers["Content-Security-Policy"].startswith("default-src 'none'")


async def test_the_docs_page_loads_only_from_its_own_origin(client: httpx.AsyncClient) -> None:
    response = await client.get("/docs")
    assert response.status_code == 200
    policy = response.headers["Content-Security-Policy"]
    assert "default-src 'self'" in policy
    assert "http" not in policy
    assert "cdn" not in response.text.lower()
    assert "/docs/static/swagger-ui-bundle.js" in response.text


async def test_development_sends_no_hsts(client: httpx.AsyncClient) -> None:
    response = await client.get("/healthz")
    assert "Strict-Transport-Security" not in response.headers


# Docs switched off.

DOCS_PATHS = ["/docs", "/openapi.json", "/redoc", "/docs/static/swagger-ui-bundle.js"]


@pytest.mark.parametrize("path", DOCS_PATHS)
async def test_docs_answer_404_when_switched_off(make_client: AppFactory, path: str) -> None:
    async with make_client(docs_enabled=False) as client:
        response = await client.get(path)
    assert response.status_code == 404


@pytest.mark.parametrize("path", ["/docs", "/openapi.json", "/docs/static/swagger-ui-bundle.js"])
async def test_docs_are_served_in_development_by_default(
    client: httpx.AsyncClient, path: str
) -> None:
    response = await client.get(path)
    assert response.status_code == 200


@pytest.fixture
async def production_client(
    make_client: AppFactory, backend: str
) -> AsyncIterator[httpx.AsyncClient]:
    if backend != "postgresql":
        pytest.skip("production refuses SQLite, so it is tested on PostgreSQL only")
    async with make_client(
        env="production", secret_key=secrets.token_urlsafe(36), issuer="https://auth.example.test"
    ) as client:
        yield client


@pytest.mark.parametrize("path", DOCS_PATHS)
async def test_production_serves_no_docs_by_default(
    production_client: httpx.AsyncClient, path: str
) -> None:
    response = await production_client.get(path)
    assert response.status_code == 404


async def test_production_still_serves_the_api(production_client: httpx.AsyncClient) -> None:
    assert (await production_client.get("/healthz")).status_code == 200
    tokens = await admin_login(production_client)
    me = await production_client.get("/accounts/me", headers=bearer(tokens["access_token"]))
    assert me.status_code == 200


async def test_production_asks_for_https(production_client: httpx.AsyncClient) -> None:
    response = await production_client.get("/healthz")
    assert "max-age=" in response.headers["Strict-Transport-Security"]
