"""Pages are thin: they read widgets, call the core (which checks the acting user's role) and render.
A page that queried the database itself would skip those role checks (issue 14)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tests.pages.helpers import REPO

PAGES = sorted((REPO / "pages").glob("*.py")) + [REPO / "app.py"]
FORBIDDEN = ("sqlalchemy", "sqlmodel", "curation.db")


def _imports(path: Path) -> list[str]:
    names: list[str] = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.append(node.module)
    return names


@pytest.mark.parametrize("page", PAGES, ids=[p.name for p in PAGES])
def test_pages_import_nothing_from_the_database_layer(page: Path) -> None:
    bad = [name for name in _imports(page) if any(name == f or name.startswith(f + ".") for f in FORBIDDEN)]
    assert bad == [], f"{page.name} imports {bad}: call a core function that takes the acting user instead"
