"""The token endpoint's grant registry (RFC 6749 §4, §5.2): one grant per
`grant_type`, looked up exactly; and what every grant asks of its request."""

from collections.abc import Iterator

import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from app.clients.models import OAuthClient
from app.core.network import RequestOrigin
from app.oauth.client_auth import AuthenticatedClient
from app.oauth.errors import InvalidRequest, UnsupportedGrantType
from app.oauth.grants import GRANTS, TokenRequest, grant_for
from app.oauth.grants.base import Grant, grant
from app.oauth.grants.password import password_grant
from app.oauth.grants.refresh_token import refresh_token_grant
from app.sessions.schemas import TokenResponse
from app.state import State

ORIGIN = RequestOrigin(ip="192.0.2.1", user_agent="tests")


# The built-in public client, as the token endpoint hands it to a grant.
GATEHOUSE = AuthenticatedClient(
    client=OAuthClient(
        client_id="gatehouse",
        name="Gatehouse",
        type="public",
        redirect_uris=[],
        grant_types=["password", "refresh_token", "authorization_code"],
        allowed_scopes=[],
    ),
    scopes=frozenset(),
)


def token_request(**params: str) -> TokenRequest:
    return TokenRequest(params=params, origin=ORIGIN, client=GATEHOUSE)


@pytest.mark.parametrize("grant_type", sorted(GRANTS))
def test_every_registered_grant_type_dispatches_to_its_own_grant(grant_type: str) -> None:
    assert grant_for(grant_type) is GRANTS[grant_type]


@pytest.mark.parametrize(
    ("grant_type", "handler"),
    [("password", password_grant), ("refresh_token", refresh_token_grant)],
)
def test_each_grant_module_registers_under_its_rfc_name(grant_type: str, handler: Grant) -> None:
    assert grant_for(grant_type) is handler


@pytest.mark.parametrize(
    "grant_type", ["implicit", "PASSWORD", "password ", "Refresh_Token", "nonsense", "\u00e9"]
)
def test_an_unknown_grant_type_is_unsupported_grant_type(grant_type: str) -> None:
    with pytest.raises(UnsupportedGrantType) as raised:
        grant_for(grant_type)
    assert raised.value.body() == {
        "error": "unsupported_grant_type",
        "error_description": f"Supported grant types: {', '.join(sorted(GRANTS))}",
    }


@pytest.mark.parametrize("grant_type", [None, ""])
def test_a_missing_grant_type_is_invalid_request(grant_type: str | None) -> None:
    with pytest.raises(InvalidRequest, match="^grant_type is required$"):
        grant_for(grant_type)


@pytest.fixture
def registry() -> Iterator[dict[str, Grant]]:
    """The registry, restored afterwards: a test may register a grant of its own."""
    saved = dict(GRANTS)
    yield GRANTS
    GRANTS.clear()
    GRANTS.update(saved)


def test_a_newly_registered_grant_is_dispatched_and_listed_as_supported(
    registry: dict[str, Grant],
) -> None:
    @grant("urn:example:grant")
    async def example_grant(db: AsyncSession, request: TokenRequest, state: State) -> TokenResponse:
        raise AssertionError("not called")

    assert grant_for("urn:example:grant") is example_grant
    with pytest.raises(UnsupportedGrantType, match="urn:example:grant"):
        grant_for("urn:example:other")


def test_require_returns_the_named_parameters_in_the_order_asked() -> None:
    request = token_request(password="p", username="u", scope="me:read")
    assert request.require("username", "password") == ["u", "p"]


def test_require_of_one_missing_parameter_names_it() -> None:
    with pytest.raises(InvalidRequest) as raised:
        token_request().require("refresh_token")
    assert raised.value.detail == "refresh_token is required"


@pytest.mark.parametrize("params", [{}, {"username": "u"}, {"password": "p"}])
def test_require_names_every_parameter_asked_for_when_any_is_missing(
    params: dict[str, str],
) -> None:
    with pytest.raises(InvalidRequest) as raised:
        token_request(**params).require("username", "password")
    assert raised.value.detail == "username and password are required"


def test_require_counts_an_empty_parameter_as_missing() -> None:
    with pytest.raises(InvalidRequest, match="^refresh_token is required$"):
        token_request(refresh_token="").require("refresh_token")
