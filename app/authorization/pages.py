"""The hosted pages: Jinja2 templates with autoescaping, one stylesheet served by
the service itself, and the headers that keep them from being framed or from
loading anything from elsewhere.

Templates and the stylesheet are read once, at import: no file is read while a
request waits."""

from pathlib import Path
from urllib.parse import urlsplit

from fastapi.responses import HTMLResponse, Response
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

SERVICE_NAME = "Gatehouse"
_HERE = Path(__file__).parent
_ENV = Environment(
    loader=FileSystemLoader(_HERE / "templates"),
    autoescape=select_autoescape(default=True, default_for_string=True),
    undefined=StrictUndefined,
    auto_reload=False,
)
_TEMPLATES = {
    name: _ENV.get_template(f"{name}.html")
    for name in ("sign_in", "consent", "error", "signed_out")
}
STYLESHEET = (_HERE / "static" / "gatehouse.css").read_bytes()


def origin_of(uri: str) -> str | None:
    """`scheme://host[:port]` of an http(s) URI, for the CSP's form-action."""
    parts = urlsplit(uri)
    if parts.scheme not in ("http", "https") or not parts.netloc or "@" in parts.netloc:
        return None
    return f"{parts.scheme}://{parts.netloc}"


def security_headers(form_targets: tuple[str, ...] = ()) -> dict[str, str]:
    """CSP: nothing but this service's stylesheet; forms post here and, since a
    browser checks form-action along redirects, to the client's redirect origin
    once the request named one; never framed (frame-ancestors, and
    X-Frame-Options for browsers without CSP 2)."""
    form_action = " ".join(("'self'", *sorted(set(form_targets))))
    return {
        "Content-Security-Policy": (
            "default-src 'none'; style-src 'self'; img-src 'self'; "
            f"form-action {form_action}; frame-ancestors 'none'; base-uri 'none'"
        ),
        "X-Frame-Options": "DENY",
        "Cache-Control": "no-store",
        "Pragma": "no-cache",
    }


def render(
    name: str,
    *,
    status_code: int = 200,
    form_targets: tuple[str, ...] = (),
    headers: dict[str, str] | None = None,
    **context: object,
) -> HTMLResponse:
    html = _TEMPLATES[name].render(service=SERVICE_NAME, **context)
    return HTMLResponse(
        html,
        status_code=status_code,
        headers={**security_headers(form_targets), **(headers or {})},
    )


def error_page(message: str, *, status_code: int = 400) -> HTMLResponse:
    return render("error", status_code=status_code, message=message)


def stylesheet() -> Response:
    return Response(
        STYLESHEET,
        media_type="text/css",
        headers={"Cache-Control": "public, max-age=3600", "X-Content-Type-Options": "nosniff"},
    )
