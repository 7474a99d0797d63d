"""The OpenAPI document's OAuth2 scopes are the live catalogue: a custom scope
appears without a restart, on every instance, and goes when it is deleted."""

from typing import Any

from tests.factories import admin_login, bearer


def offered(document: dict[str, Any]) -> dict[str, str]:
    scheme = document["components"]["securitySchemes"]["OAuth2PasswordBearer"]
    scopes: dict[str, str] = scheme["flows"]["password"]["scopes"]
    return scopes


async def test_a_custom_scope_is_offered_at_once_on_every_instance(make_client):
    async with make_client() as first, make_client() as second:
        token = (await admin_login(first))["access_token"]
        assert "orders:read" not in offered((await second.get("/openapi.json")).json())
        created = await first.post(
            "/scopes",
            json={"name": "orders:read", "description": "Read orders"},
            headers=bearer(token),
        )
        assert created.status_code == 201
        assert offered((await second.get("/openapi.json")).json())["orders:read"] == "Read orders"
        await first.delete("/scopes/orders:read", headers=bearer(token))
        assert "orders:read" not in offered((await second.get("/openapi.json")).json())


async def test_the_document_still_offers_every_builtin_scope(client):
    from app.authz.catalogue import BUILTIN_SCOPES

    assert offered((await client.get("/openapi.json")).json()) == BUILTIN_SCOPES
