"""Redirect URI matching and redirect building, as functions."""

import pytest

from app.authorization.requests import matches, redirect_to


@pytest.mark.parametrize(
    ("registered", "given", "expected"),
    [
        ("https://app.example/cb", "https://app.example/cb", True),
        ("https://app.example/cb", "https://app.example/cb/", False),
        ("https://app.example/cb", "https://app.example:443/cb", False),
        ("http://127.0.0.1:8080/cb", "http://127.0.0.1:1/cb", True),
        ("http://127.0.0.1/cb", "http://127.0.0.1:65535/cb", True),
        ("http://[::1]:80/cb", "http://[::1]:5000/cb", True),
        ("http://localhost:80/cb?a=1", "http://localhost:81/cb?a=1", True),
        ("http://localhost:80/cb?a=1", "http://localhost:81/cb?a=2", False),
        ("http://127.0.0.1:8080/cb", "http://127.0.0.1:8080/cb#x", False),
        ("http://127.0.0.1:8080/cb", "http://u@127.0.0.1:8080/cb", False),
        ("http://127.0.0.1:8080/cb", "http://127.0.0.1:8080@evil.example/cb", False),
        ("http://127.0.0.1:8080/cb", "http://127.0.0.2:8080/cb", False),
        ("https://app.example:8443/cb", "https://app.example:9443/cb", False),
    ],
)
def test_matching_is_exact_except_a_loopback_port(
    registered: str, given: str, expected: bool
) -> None:
    assert matches(registered, given) is expected


def test_parameters_are_added_to_an_existing_query_and_fully_encoded() -> None:
    location = redirect_to(
        "https://app.example/cb?x=1", {"code": "abc", "state": "a b&c/+é", "error": None}
    )
    assert location == "https://app.example/cb?x=1&code=abc&state=a%20b%26c%2F%2B%C3%A9"


def test_a_uri_without_a_query_gets_one() -> None:
    assert redirect_to("https://app.example/cb", {"code": "x"}) == "https://app.example/cb?code=x"
