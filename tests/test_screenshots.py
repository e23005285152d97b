"""`make test` leaves tracked files alone: the README's screenshots are written only by
`make screenshots` (E2E_SCREENSHOTS=1), through one helper that checks the switch."""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import REPO
from tests.e2e import conftest as e2e


class _RecordingPage:
    """Stands in for Playwright's page at the browser boundary: records where a screenshot would go."""

    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []

    def screenshot(self, **options: Any) -> None:
        self.calls.append(options)
        Path(options["path"]).write_bytes(b"png")


def test_screenshots_are_written_only_when_asked(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(e2e, "SCREENSHOTS", tmp_path / "shots")
    page = _RecordingPage()
    monkeypatch.delenv("E2E_SCREENSHOTS", raising=False)
    assert e2e.save_screenshot(page, "browse.png") is None
    assert page.calls == [] and not (tmp_path / "shots").exists()
    monkeypatch.setenv("E2E_SCREENSHOTS", "1")
    assert e2e.save_screenshot(page, "browse.png", full_page=True) == tmp_path / "shots" / "browse.png"
    assert page.calls == [{"path": str(tmp_path / "shots" / "browse.png"), "full_page": True}]


def test_browser_tests_write_screenshots_only_through_the_helper() -> None:
    """Every `.screenshot(...)` call in tests/e2e outside the helper writes under /tmp (debugging aids)."""
    offenders = []
    for path in sorted((REPO / "tests" / "e2e").glob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        helper = next((node for node in ast.walk(tree) if isinstance(node, ast.FunctionDef)
                       and node.name == "save_screenshot"), None)
        inside = {id(n) for n in ast.walk(helper)} if helper else set()
        for node in ast.walk(tree):
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                    and node.func.attr == "screenshot" and id(node) not in inside):
                target = next((kw.value for kw in node.keywords if kw.arg == "path"), None)
                if not (isinstance(target, ast.JoinedStr) and isinstance(target.values[0], ast.Constant)
                        and str(target.values[0].value).startswith("/tmp/")):
                    offenders.append(f"{path.name}:{node.lineno}")
    assert offenders == []


def test_makefile_has_a_screenshots_target_and_test_does_not_set_the_switch() -> None:
    makefile = (REPO / "Makefile").read_text(encoding="utf-8")
    test_recipe = makefile.split("\ntest:", 1)[1].split("\n\n", 1)[0]
    assert "E2E_SCREENSHOTS" not in test_recipe
    screenshots_recipe = makefile.split("\nscreenshots:", 1)[1].split("\n\n", 1)[0]
    assert "E2E_SCREENSHOTS=1" in screenshots_recipe
