"""`python -m curation train`, `runs list --json`, `runs cancel`."""

from __future__ import annotations

import json

import pytest
from sqlalchemy.engine import Engine

from curation.cli.main import main
from curation.models import User


def test_train_list_and_cancel(engine: Engine, admin: User, lead: User, classification_version: int,
                               tiny_models: dict[str, str], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["train", "--version", str(classification_version), "--preset", "quick", "--base",
                 tiny_models["bert"], "--set", "max_steps=4", "--set", "batch_size=8", "--json"]) == 0
    finished = json.loads(capsys.readouterr().out)
    assert finished["status"] == "succeeded" and finished["adapter_path"]
    assert main(["train", "--version", str(classification_version), "--base", tiny_models["bert"], "--detach",
                 "--set", "max_steps=100000", "--set", "batch_size=4"]) == 0
    capsys.readouterr()
    assert main(["runs", "list", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["status"] for r in rows][1] == "succeeded" and rows[0]["status"] in ("running", "queued")
    assert main(["runs", "cancel", str(rows[0]["id"])]) == 0
    assert "run" in capsys.readouterr().out
    assert main(["train", "--version", str(classification_version), "--set", "rank=0"]) == 2
    assert "rank must be between" in capsys.readouterr().err
