import httpx

from tests.factories import bearer, create_user


async def test_signed_up_account_reads_itself_with_its_token(client: httpx.AsyncClient) -> None:
    account, tokens = await create_user(client)
    response = await client.get("/accounts/me", headers=bearer(tokens["access_token"]))
    assert response.status_code == 200
    assert response.json()["id"] == account["id"]
