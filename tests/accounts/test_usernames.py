"""Usernames that render as another name are refused (CONTRACT.md, Guardrails):
the PRECIS `UsernameCaseMapped` profile (RFC 8265 §3.3) on top of NFKC, case
folding and the Z*/Cc/Cf rule, for signup, admin creation and sign-in alike.
Accounts stored before the rule keep signing in."""

import uuid

import httpx
import pytest
from sqlalchemy import insert
from sqlalchemy.ext.asyncio import create_async_engine

from app.accounts.models import Account
from app.core.models import utcnow
from app.roles.models import AccountRole
from tests.conftest import ADMIN_USERNAME
from tests.factories import PASSWORD, admin_login, bearer, login

# Each renders as "admin": a blank, a filler, a combining grapheme joiner, variation
# selectors, a Mongolian free variation selector, a Khmer inherent vowel.
LOOKALIKE_SUFFIXES = {
    "braille blank U+2800": "\u2800",
    "hangul filler U+3164": "\u3164",
    "hangul choseong filler U+115F": "\u115f",
    "combining grapheme joiner U+034F": "\u034f",
    "variation selector 16 U+FE0F": "\ufe0f",
    "variation selector 1 U+FE00": "\ufe00",
    "mongolian fvs1 U+180B": "\u180b",
    "khmer vowel inherent aq U+17B4": "\u17b4",
    "variation selector 17 U+E0100": "\U000e0100",
}
# Symbols and emoji are not identifier characters in PRECIS.
OTHER_REFUSED = {"emoji": "bob\U0001f600", "symbol": "bob\u2605", "dingbat": "\u2713ok"}
ACCEPTED = ["alice", "José", "user_1", "a.b-c", "bob@example", "Ωmega", "名前"]


def assert_refused_username(response: httpx.Response) -> None:
    assert response.status_code == 422, response.text
    assert [e["loc"] for e in response.json()["detail"]] == [["body", "username"]]


@pytest.mark.parametrize("suffix", LOOKALIKE_SUFFIXES.values(), ids=LOOKALIKE_SUFFIXES.keys())
async def test_signup_refuses_a_name_that_renders_as_an_existing_one(client, suffix):
    response = await client.post(
        "/auth/signup", json={"username": ADMIN_USERNAME + suffix, "password": PASSWORD}
    )
    assert_refused_username(response)


@pytest.mark.parametrize("username", OTHER_REFUSED.values(), ids=OTHER_REFUSED.keys())
async def test_signup_refuses_what_precis_refuses(client, username):
    response = await client.post("/auth/signup", json={"username": username, "password": PASSWORD})
    assert_refused_username(response)


@pytest.mark.parametrize("suffix", LOOKALIKE_SUFFIXES.values(), ids=LOOKALIKE_SUFFIXES.keys())
async def test_admin_creation_refuses_a_name_that_renders_as_an_existing_one(client, suffix):
    headers = bearer((await admin_login(client))["access_token"])
    response = await client.post(
        "/accounts", json={"username": "alice" + suffix, "password": PASSWORD}, headers=headers
    )
    assert_refused_username(response)


@pytest.mark.parametrize("username", ACCEPTED)
async def test_ordinary_names_in_any_script_are_accepted_and_sign_in(client, username):
    response = await client.post("/auth/signup", json={"username": username, "password": PASSWORD})
    assert response.status_code == 201, response.text
    assert (await login(client, username.upper()))["access_token"]


async def test_a_lookalike_of_an_account_does_not_sign_in_as_it(client):
    response = await client.post(
        "/auth/token",
        data={
            "grant_type": "password",
            "username": ADMIN_USERNAME + "\u034f",
            "password": "admin-password-for-tests",
        },
    )
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_grant"


async def test_an_account_stored_before_the_rule_keeps_signing_in(client, database_url):
    # Written the way the previous rules would have stored it: NFKC as given, and
    # NFKC + case fold as the unique key.
    legacy = "Legacy\u2800"
    hasher = client.app.state.gatehouse.hasher
    account_id = uuid.uuid4()
    engine = create_async_engine(database_url)
    try:
        async with engine.begin() as conn:
            await conn.execute(
                insert(Account.__table__).values(  # type: ignore[attr-defined]
                    id=account_id,
                    username=legacy,
                    username_key=legacy.casefold(),
                    password_hash=await hasher.hash(PASSWORD),
                    is_active=True,
                    authz_version=1,
                    created_at=utcnow(),
                    updated_at=utcnow(),
                )
            )
            await conn.execute(
                insert(AccountRole.__table__).values(account_id=account_id, role_name="user")  # type: ignore[attr-defined]
            )
    finally:
        await engine.dispose()

    tokens = await login(client, "LEGACY\u2800")
    me = await client.get("/accounts/me", headers=bearer(tokens["access_token"]))
    changed = await client.post(
        "/accounts/me/password",
        json={"current_password": PASSWORD, "new_password": "an entirely new passphrase"},
        headers=bearer(tokens["access_token"]),
    )
    again = await client.post("/auth/signup", json={"username": legacy, "password": PASSWORD})

    assert me.status_code == 200 and me.json()["username"] == legacy
    assert changed.status_code == 204, changed.text
    # Nobody can create another account of that name, nor take it once it is gone.
    assert again.status_code == 422, again.text
