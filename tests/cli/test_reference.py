"""docs/api.md and docs/openapi.json say what the code does: both are generated
from the OpenAPI document (`make openapi`), and this test fails when they lag."""

import json
from typing import Any

from app.cli import reference
from app.core.config import Settings
from app.main import create_app
from tests.conftest import ROOT

HINT = "out of date: run `make openapi` and commit the result"


def document() -> dict[str, Any]:
    return create_app(Settings.model_construct(docs_enabled=True)).openapi()


def test_docs_api_md_holds_the_generated_reference() -> None:
    current = (ROOT / "docs" / "api.md").read_text()
    assert reference.splice(current, reference.markdown(document())) == current, HINT


def test_docs_openapi_json_is_the_served_document() -> None:
    assert json.loads((ROOT / "docs" / "openapi.json").read_text()) == document(), HINT


def test_every_operation_is_in_the_reference() -> None:
    text = (ROOT / "docs" / "api.md").read_text()
    for path, item in document()["paths"].items():
        for method in item:
            assert f"### `{method.upper()} {path}`" in text


def test_no_link_in_the_docs_leaves_the_repository_except_to_rfcs_and_libraries() -> None:
    import re

    allowed = (
        "https://www.rfc-editor.org/",
        "https://datatracker.ietf.org/",
        "https://pyjwt.readthedocs.io/",
        "https://prometheus.io/",
        "https://fastapi.tiangolo.com/",
        "https://www.uvicorn.org/",
        "https://alembic.sqlalchemy.org/",
        "https://docs.sqlalchemy.org/",
        "https://argon2-cffi.readthedocs.io/",
        "https://typer.tiangolo.com/",
        "https://prometheus.github.io/client_python/",
    )
    files = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
    for path in files:
        text = path.read_text()
        for target in re.findall(r"\]\(([^)\s]+)\)", text):
            if target.startswith("#"):
                continue
            if target.startswith(("http://", "https://")):
                local = target.startswith(("http://localhost", "http://127.0.0.1"))
                assert local or target.startswith(allowed), (path.name, target)
            else:
                assert (path.parent / target.split("#")[0]).exists(), (path.name, target)
