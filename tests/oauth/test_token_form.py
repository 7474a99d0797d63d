"""The token endpoint takes form-encoded parameters, each at most once (RFC 6749
§3.2): a JSON body and a repeated parameter are `invalid_request` saying so."""

import pytest

from tests.conftest import ADMIN_PASSWORD, ADMIN_USERNAME
from tests.oauth.test_token_routes import assert_oauth_error

FORM = "application/x-www-form-urlencoded"


async def test_a_json_body_is_invalid_request_naming_the_form_encoding(client):
    response = await client.post(
        "/auth/token",
        json={"grant_type": "password", "username": ADMIN_USERNAME, "password": ADMIN_PASSWORD},
    )
    assert_oauth_error(response, "invalid_request")
    assert FORM in response.json()["error_description"]
    assert response.headers["cache-control"] == "no-store"


async def test_a_multipart_body_is_invalid_request_too(client):
    response = await client.post(
        "/auth/token",
        files={"grant_type": (None, "password")},
        data={"username": ADMIN_USERNAME, "password": ADMIN_PASSWORD},
    )
    assert_oauth_error(response, "invalid_request")
    assert FORM in response.json()["error_description"]


@pytest.mark.parametrize("name", ["grant_type", "username", "password", "scope"])
async def test_a_parameter_sent_twice_is_invalid_request(client, name):
    params = [
        ("grant_type", "password"),
        ("username", ADMIN_USERNAME),
        ("password", ADMIN_PASSWORD),
        ("scope", "me:read"),
        (name, "me:read" if name == "scope" else "again"),
    ]
    response = await client.post(
        "/auth/token",
        content="&".join(f"{k}={v}" for k, v in params),
        headers={"content-type": FORM},
    )
    assert_oauth_error(response, "invalid_request")
    assert response.json()["error_description"].startswith(f"{name} was sent more than once")
    assert ADMIN_PASSWORD not in response.text


async def test_an_unknown_repeated_parameter_is_not_echoed(client):
    response = await client.post(
        "/auth/token",
        content="grant_type=password&x%3Cscript%3E=1&x%3Cscript%3E=2",
        headers={"content-type": FORM},
    )
    assert_oauth_error(response, "invalid_request")
    assert "<script" not in response.text and "%3C" not in response.text


async def test_a_form_with_a_charset_is_accepted(client):
    response = await client.post(
        "/auth/token",
        content=f"grant_type=password&username={ADMIN_USERNAME}&password={ADMIN_PASSWORD}",
        headers={"content-type": f"{FORM}; charset=utf-8"},
    )
    assert response.status_code == 200, response.text
