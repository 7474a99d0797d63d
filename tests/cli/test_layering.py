"""The command sits above the app: nothing in app/ outside app/cli imports it."""

import ast

from tests.conftest import ROOT


def test_no_app_module_imports_the_cli() -> None:
    offenders = []
    for path in (ROOT / "app").rglob("*.py"):
        if path.is_relative_to(ROOT / "app" / "cli"):
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            if any(name == "app.cli" or name.startswith("app.cli.") for name in names):
                offenders.append(str(path.relative_to(ROOT)))
    assert offenders == []
