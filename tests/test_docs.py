"""Tests that fail when the docs fall behind the code (README against settings, CLI and CI)."""

from __future__ import annotations

import re

from curation.cli.main import build_parser
from curation.settings import Settings
from tests.conftest import REPO

README = (REPO / "README.md").read_text(encoding="utf-8")


def test_every_setting_is_documented() -> None:
    missing = [name.upper() for name in Settings.model_fields if name.upper() not in README]
    assert not missing, f"README's configuration table lacks {missing}"


def test_every_cli_command_is_documented() -> None:
    parser = build_parser()
    commands = parser._subparsers._group_actions[0].choices  # type: ignore[union-attr]
    missing = [name for name in commands if f"python -m curation {name}" not in README]
    assert not missing, f"README's command-line section lacks {missing}"


def test_readme_gives_the_two_setup_commands_and_ci_runs_the_test_one() -> None:
    setup = README.split("## Set up", 1)[1].split("##", 1)[0]
    assert re.findall(r"^make (\w+)", setup, flags=re.M) == ["run", "test"]
    assert "make test" in (REPO / ".ci" / "run").read_text()


def test_readme_images_exist() -> None:
    for path in re.findall(r"!\[[^\]]*\]\(([^)]+)\)", README):
        assert (REPO / path).is_file(), f"README shows {path}, which is missing"
