"""`gatehouse create-admin` adds an admin even when admins exist;
`gatehouse reset-password` recovers a lost password: a generated one, printed
once, every session of the account ended, audited."""

from pathlib import Path

from tests.cli.helpers import gatehouse
from tests.conftest import ADMIN_USERNAME, TEST_SECRET, unique_name
from tests.factories import PASSWORD, admin_login, bearer, create_user, login, refresh


def command(database_url: str, tmp_path: Path, *args: str, **variables: str):
    return gatehouse(
        tmp_path,
        *args,
        GATEHOUSE_DATABASE_URL=database_url,
        GATEHOUSE_SECRET_KEY=TEST_SECRET,
        GATEHOUSE_ARGON2_TIME_COST="1",
        GATEHOUSE_ARGON2_MEMORY_KIB="1024",
        GATEHOUSE_ARGON2_PARALLELISM="1",
        **variables,
    )


def printed_password(stdout: str) -> str:
    [line] = [line for line in stdout.splitlines() if "password:" in line]
    return line.split("password:", 1)[1].split()[0]


async def test_create_admin_adds_an_admin_when_one_exists(make_client, database_url, tmp_path):
    async with make_client():  # the bootstrap admin exists
        pass
    name = unique_name("ops")
    result = command(database_url, tmp_path, "create-admin", name)
    assert result.returncode == 0, result.stderr
    password = printed_password(result.stdout)
    async with make_client() as client:
        tokens = await login(client, name, password)
        me = await client.get("/accounts/me", headers=bearer(tokens["access_token"]))
        assert "admin" in me.json()["roles"]
        audit = await client.get(
            "/audit?action=account.create",
            headers=bearer((await admin_login(client))["access_token"]),
        )
    [entry] = [e for e in audit.json()["items"] if e["detail"].get("username") == name]
    assert entry["detail"]["via"] == "cli"


async def test_create_admin_refuses_a_taken_name_and_says_what_to_do(
    make_client, database_url, tmp_path
):
    async with make_client():
        pass
    result = command(database_url, tmp_path, "create-admin", ADMIN_USERNAME)
    assert result.returncode == 1
    assert "already exists" in result.stderr
    assert f"make reset-password USERNAME={ADMIN_USERNAME}" in result.stderr
    assert "Traceback" not in result.stderr


async def test_reset_password_prints_a_new_password_once_and_ends_every_session(
    make_client, database_url, tmp_path
):
    async with make_client() as client:
        account, first = await create_user(client)
        second = await login(client, account["username"])
    result = command(database_url, tmp_path, "reset-password", account["username"])
    assert result.returncode == 0, result.stderr
    password = printed_password(result.stdout)
    assert result.stdout.count(password) == 1
    assert len(password) >= 24
    async with make_client() as client:
        for tokens in (first, second):
            me = await client.get("/accounts/me", headers=bearer(tokens["access_token"]))
            assert me.status_code == 401
            assert (await refresh(client, tokens["refresh_token"])).status_code == 400
        refused = await client.post(
            "/auth/token",
            data={"grant_type": "password", "username": account["username"], "password": PASSWORD},
        )
        assert refused.status_code == 400
        await login(client, account["username"], password)
        audit = await client.get(
            "/audit?action=account.password_reset",
            headers=bearer((await admin_login(client))["access_token"]),
        )
    [entry] = audit.json()["items"]
    assert entry["target"] == account["id"]
    assert password not in str(entry)


async def test_reset_password_of_an_unknown_account_fails_in_one_line(
    make_client, database_url, tmp_path
):
    async with make_client():
        pass
    result = command(database_url, tmp_path, "reset-password", "nobody-" + unique_name())
    assert result.returncode == 1
    assert result.stderr.startswith("No account named")
    assert "Traceback" not in result.stderr
