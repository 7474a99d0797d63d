"""Client authentication at the token endpoint (RFC 6749 §2.3, §5.2):
client_secret_basic with the §2.3.1 form-url-encoding, client_secret_post, public
clients by id alone, and the answers to each way of getting it wrong."""

import base64

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from app.clients.service import hash_secret
from tests.factories import (
    PASSWORD,
    admin_headers,
    basic_auth,
    client_credentials,
    create_user,
    register_client,
    signup,
)

# Every character RFC 6749 §2.3.1's encoding exists for.
AWKWARD_SECRET = "s3cr:et%41+plus/=&space here"


async def set_secret(client: httpx.AsyncClient, client_id: str, secret: str) -> None:
    """Give a client a chosen secret (generated ones are URL-safe), as its hash."""
    engine = create_async_engine(client.app.state.settings.database_url)  # type: ignore[attr-defined]
    async with engine.begin() as conn:
        await conn.execute(
            text("UPDATE oauth_client SET secret_hash = :h WHERE client_id = :c"),
            {"h": hash_secret(secret), "c": client_id},
        )
    await engine.dispose()


def raw_basic(client_id: str, secret: str) -> dict[str, str]:
    """Basic the way many clients do it wrongly: no form-url-encoding first."""
    return {"Authorization": "Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode()}


async def service(client: httpx.AsyncClient) -> dict[str, str]:
    return await register_client(client, await admin_headers(client), roles=["user"])


async def test_a_secret_with_colon_percent_and_plus_authenticates_through_basic(client):
    created = await service(client)
    await set_secret(client, created["client_id"], AWKWARD_SECRET)

    response = await client.post(
        "/auth/token",
        data={"grant_type": "client_credentials"},
        headers=basic_auth(created["client_id"], AWKWARD_SECRET),
    )

    assert response.status_code == 200, response.text


async def test_the_same_secret_sent_without_the_encoding_is_refused(client):
    # Unencoded, `+` would read as a space and `%41` as `A`: it is not the secret.
    created = await service(client)
    await set_secret(client, created["client_id"], AWKWARD_SECRET)

    response = await client.post(
        "/auth/token",
        data={"grant_type": "client_credentials"},
        headers=raw_basic(created["client_id"], AWKWARD_SECRET),
    )

    assert response.status_code == 401
    assert response.json()["error"] == "invalid_client"


async def test_the_awkward_secret_also_works_through_client_secret_post(client):
    created = await service(client)
    await set_secret(client, created["client_id"], AWKWARD_SECRET)
    response = await client_credentials(client, created["client_id"], AWKWARD_SECRET, method="post")
    assert response.status_code == 200, response.text


async def test_both_methods_at_once_is_invalid_client_with_a_basic_challenge(client):
    created = await service(client)
    secret = created["client_secret"]

    response = await client.post(
        "/auth/token",
        data={"grant_type": "client_credentials", "client_secret": secret},
        headers=basic_auth(created["client_id"], secret),
    )

    assert response.status_code == 401
    assert response.json()["error"] == "invalid_client"
    assert response.headers["www-authenticate"].startswith("Basic")
    assert response.headers["cache-control"] == "no-store"


async def test_a_wrong_secret_through_basic_is_401_with_a_basic_challenge(client):
    created = await service(client)
    response = await client_credentials(client, created["client_id"], "wrong")
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_client"
    assert response.headers["www-authenticate"].startswith("Basic")


async def test_a_wrong_secret_through_the_form_is_401_without_a_basic_challenge(client):
    created = await service(client)
    response = await client_credentials(client, created["client_id"], "wrong", method="post")
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_client"
    assert "www-authenticate" not in response.headers


async def test_a_confidential_client_without_its_secret_is_invalid_client(client):
    created = await service(client)
    response = await client.post(
        "/auth/token", data={"grant_type": "client_credentials", "client_id": created["client_id"]}
    )
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_client"


async def test_an_unknown_client_and_a_wrong_secret_answer_alike(client):
    created = await service(client)
    unknown = await client_credentials(client, "no-such-client", "whatever")
    wrong = await client_credentials(client, created["client_id"], "whatever")
    assert (unknown.status_code, unknown.json()) == (wrong.status_code, wrong.json())


async def test_a_public_client_sending_a_secret_is_invalid_client(client):
    account = await signup(client)
    form = {"grant_type": "password", "username": account["username"], "password": PASSWORD}

    by_post = await client.post(
        "/auth/token", data={**form, "client_id": "gatehouse", "client_secret": "guess"}
    )
    by_basic = await client.post("/auth/token", data=form, headers=basic_auth("gatehouse", "guess"))

    assert (by_post.status_code, by_post.json()["error"]) == (401, "invalid_client")
    assert (by_basic.status_code, by_basic.json()["error"]) == (401, "invalid_client")


async def test_basic_with_a_public_client_id_and_an_empty_secret_is_the_id_alone(client):
    """What Swagger UI's password flow sends once its client id is set: no secret."""
    account = await signup(client)
    form = {"grant_type": "password", "username": account["username"], "password": PASSWORD}
    response = await client.post("/auth/token", data=form, headers=basic_auth("gatehouse", ""))
    assert response.status_code == 200, response.text


async def test_basic_with_a_confidential_client_id_and_an_empty_secret_is_invalid_client(
    client,
):
    headers = await admin_headers(client)
    created = await register_client(client, headers)
    response = await client.post(
        "/auth/token",
        data={"grant_type": "client_credentials"},
        headers=basic_auth(created["client_id"], ""),
    )
    assert (response.status_code, response.json()["error"]) == (401, "invalid_client")
    assert response.headers["www-authenticate"].startswith("Basic")


@pytest.mark.parametrize(
    "header",
    ["Basic !!!notbase64", "Basic " + base64.b64encode(b"no-colon").decode(), "Basic ", "Basic"],
)
async def test_malformed_basic_credentials_are_invalid_client(client, header):
    response = await client.post(
        "/auth/token",
        data={"grant_type": "client_credentials"},
        headers={"Authorization": header},
    )
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_client"
    assert response.headers["www-authenticate"].startswith("Basic")


async def test_basic_credentials_that_are_not_utf8_are_invalid_client(client):
    header = "Basic " + base64.b64encode(b"\xff\xfe:%FF").decode()
    response = await client.post(
        "/auth/token", data={"grant_type": "client_credentials"}, headers={"Authorization": header}
    )
    assert response.status_code == 401


async def test_a_client_id_in_the_form_differing_from_basic_is_invalid_client(client):
    created = await service(client)
    response = await client.post(
        "/auth/token",
        data={"grant_type": "client_credentials", "client_id": "gatehouse"},
        headers=basic_auth(created["client_id"], created["client_secret"]),
    )
    assert response.status_code == 401


async def test_a_client_secret_sent_twice_is_invalid_request(client):
    created = await service(client)
    response = await client.post(
        "/auth/token",
        content=(
            f"grant_type=client_credentials&client_id={created['client_id']}"
            f"&client_secret={created['client_secret']}&client_secret=other"
        ),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"


async def test_a_disabled_client_cannot_authenticate(client):
    headers = await admin_headers(client)
    created = await register_client(client, headers)
    await client.patch(
        f"/clients/{created['client_id']}", json={"is_active": False}, headers=headers
    )
    response = await client_credentials(client, created["client_id"], created["client_secret"])
    assert response.status_code == 401


async def test_a_grant_the_client_is_not_registered_for_is_unauthorized_client(client):
    headers = await admin_headers(client)
    created = await register_client(client, headers, grant_types=["password"])
    account = await signup(client)

    cc = await client_credentials(client, created["client_id"], created["client_secret"])
    refresh = await client.post(
        "/auth/token",
        data={"grant_type": "refresh_token", "refresh_token": "x"},
        headers=basic_auth(created["client_id"], created["client_secret"]),
    )
    password = await client.post(
        "/auth/token",
        data={"grant_type": "password", "username": account["username"], "password": PASSWORD},
        headers=basic_auth(created["client_id"], created["client_secret"]),
    )

    assert (cc.status_code, cc.json()["error"]) == (400, "unauthorized_client")
    assert (refresh.status_code, refresh.json()["error"]) == (400, "unauthorized_client")
    assert password.status_code == 200, password.text


async def test_the_builtin_public_client_may_not_use_client_credentials(client):
    response = await client.post(
        "/auth/token", data={"grant_type": "client_credentials", "client_id": "gatehouse"}
    )
    assert response.status_code == 400
    assert response.json()["error"] == "unauthorized_client"


async def test_switching_the_password_grant_off_is_unsupported_grant_type_for_every_client(
    make_client,
):
    async with make_client(password_grant_enabled=False) as client:
        account = await signup(client)
        form = {"grant_type": "password", "username": account["username"], "password": PASSWORD}
        response = await client.post("/auth/token", data=form)
        metadata = (await client.get("/.well-known/oauth-authorization-server")).json()
    assert response.status_code == 400
    assert response.json()["error"] == "unsupported_grant_type"
    assert "password" not in metadata["grant_types_supported"]


async def test_a_confidential_client_logs_users_in_and_their_tokens_name_it(client):
    headers = await admin_headers(client)
    created = await register_client(
        client, headers, grant_types=["password", "refresh_token"], allowed_scopes=["me:read"]
    )
    account, _ = await create_user(client)

    response = await client.post(
        "/auth/token",
        data={"grant_type": "password", "username": account["username"], "password": PASSWORD},
        headers=basic_auth(created["client_id"], created["client_secret"]),
    )

    assert response.status_code == 200, response.text
    # Capped by the client's allowed_scopes although the account also holds me:write.
    assert response.json()["scope"] == "me:read"


async def test_empty_client_fields_and_an_empty_basic_pair_mean_no_client(client):
    # What a client with nothing configured sends (Swagger UI among them).
    account = await signup(client)
    form = {"grant_type": "password", "username": account["username"], "password": PASSWORD}
    empty_fields = await client.post(
        "/auth/token", data={**form, "client_id": "", "client_secret": ""}
    )
    empty_basic = await client.post(
        "/auth/token", data=form, headers={"Authorization": "Basic Og=="}
    )
    assert empty_fields.status_code == 200, empty_fields.text
    assert empty_basic.status_code == 200, empty_basic.text
