"""Helpers that drive the authorization code flow the way a browser and a client
would: over HTTP, reading the hosted pages' forms."""

import base64
import hashlib
import secrets
from html.parser import HTMLParser
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx

from tests.factories import register_client

REDIRECT_URI = "https://app.example/callback"


def pkce() -> tuple[str, str]:
    """(code_verifier, S256 code_challenge), RFC 7636 §4.1-4.2."""
    verifier = secrets.token_urlsafe(48)
    digest = hashlib.sha256(verifier.encode()).digest()
    return verifier, base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


class _Forms(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.forms: list[dict[str, Any]] = []
        self.alerts: list[str] = []
        self._alert = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        if tag == "form":
            self.forms.append({"action": attributes.get("action"), "fields": {}, "buttons": []})
        elif tag == "input" and self.forms and attributes.get("name"):
            self.forms[-1]["fields"][attributes["name"]] = attributes.get("value") or ""
        elif tag == "button" and self.forms:
            self.forms[-1]["buttons"].append((attributes.get("name"), attributes.get("value")))
        if attributes.get("role") == "alert":
            self._alert = True
            self.alerts.append("")

    def handle_endtag(self, tag: str) -> None:
        self._alert = False

    def handle_data(self, data: str) -> None:
        if self._alert:
            self.alerts[-1] += data


def forms(html: str) -> _Forms:
    parser = _Forms()
    parser.feed(html)
    return parser


def form_to(html: str, action: str) -> dict[str, str]:
    """The hidden and visible fields of the form posting to `action`."""
    for form in forms(html).forms:
        if form["action"] == action:
            return dict(form["fields"])
    raise AssertionError(f"no form posting to {action}")


def query_of(location: str) -> dict[str, str]:
    parsed = parse_qs(urlsplit(location).query, keep_blank_values=True)
    return {name: values[0] for name, values in parsed.items()}


def authorize_params(
    client_id: str, challenge: str, redirect_uri: str | None = REDIRECT_URI, **extra: str
) -> dict[str, str]:
    params = {
        "response_type": "code",
        "client_id": client_id,
        "code_challenge": challenge,
        "code_challenge_method": "S256",
        "state": "st-" + secrets.token_hex(4),
        **extra,
    }
    if redirect_uri is not None:
        params["redirect_uri"] = redirect_uri
    return params


async def register_app(
    client: httpx.AsyncClient,
    headers: dict[str, str],
    *,
    first_party: bool = True,
    confidential: bool = False,
    redirect_uris: list[str] | None = None,
    **body: Any,
) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "type": "confidential" if confidential else "public",
        "grant_types": ["authorization_code", "refresh_token"],
        "redirect_uris": redirect_uris or [REDIRECT_URI],
        "first_party": first_party,
        **body,
    }
    return await register_client(client, headers, **payload)


async def sign_in(
    client: httpx.AsyncClient, params: dict[str, str], username: str, password: str
) -> httpx.Response:
    """GET the authorize URL, expect the sign-in page, post the credentials."""
    page = await client.get("/oauth/authorize", params=params)
    assert page.status_code == 200, page.text
    fields = form_to(page.text, "/oauth/authorize")
    fields |= {"username": username, "password": password}
    return await client.post("/oauth/authorize", data=fields)


async def code_for(
    client: httpx.AsyncClient, params: dict[str, str], username: str, password: str
) -> str:
    """Sign in and return the code from the redirect (first-party client)."""
    response = await sign_in(client, params, username, password)
    assert response.status_code == 302, response.text
    query = query_of(response.headers["location"])
    assert query["state"] == params["state"]
    return query["code"]


async def exchange(
    client: httpx.AsyncClient,
    code: str,
    verifier: str,
    client_id: str,
    redirect_uri: str | None = REDIRECT_URI,
    **extra: str,
) -> httpx.Response:
    data = {"grant_type": "authorization_code", "code": code, "code_verifier": verifier}
    if client_id:
        data["client_id"] = client_id
    if redirect_uri is not None:
        data["redirect_uri"] = redirect_uri
    data |= extra
    return await client.post("/auth/token", data=data)
