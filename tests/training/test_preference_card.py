"""The model card's blind human preference section (training/card.py) and its refresh after a round."""

from __future__ import annotations

from pathlib import Path

import yaml
from sqlalchemy.engine import Engine

from curation.db import write_session
from curation.models import TrainingRun, User
from tests.curation.preference_helpers import finished_run, generation_project
from training.card import PREFERENCE_END, PREFERENCE_START, read_card_metadata, with_preference_section
from training.preference_job import refresh_model_card

CARD = "---\nbase_model: tiny\nlibrary_name: peft\n---\n\n# LoRA adapter: training run 1\n\n## Evaluation\n\nloss\n"


def _record(value: float, round_id: int = 4) -> dict:
    return {"preference": {"round_id": round_id, "system_a": "run #1 adapter", "system_b": "base model", "prompts": 3,
                           "judgements": 6, "win_rate": {"value": value, "low": 0.5, "high": 0.9, "n": 3},
                           "tie_rate": 1 / 6, "both_bad_rate": 0.0, "alpha": 0.25, "verdict": "A preferred",
                           "prompt_source": "test set v1 (sha256 abc)"}}


def test_section_and_front_matter() -> None:
    card = with_preference_section(CARD, _record(0.75))
    _, front, body = card.split("---\n", 2)
    meta = yaml.safe_load(front)
    assert meta["base_model"] == "tiny"  # the rest of the front matter is kept
    assert meta["human_preference"]["win_rate"] == "0.7500 [0.5000, 0.9000] (95% bootstrap over prompts)"
    assert meta["human_preference"]["system_b"] == "base model" and meta["human_preference"]["krippendorff_alpha"] == 0.25
    assert "## Human preference (blind)" in body and "## Evaluation" in body
    assert "win rate of A: 0.7500 [0.5000, 0.9000]" in body
    again = with_preference_section(card, _record(0.8, round_id=5))
    assert again.count(PREFERENCE_START) == 1 and again.count(PREFERENCE_END) == 1  # replaced, not appended
    assert "Round 5:" in again and "Round 4:" not in again
    assert with_preference_section(CARD, {}) == CARD  # no round: unchanged
    assert with_preference_section(CARD, {"preference": {**_record(0.5)["preference"], "win_rate": None}}) == CARD


def test_refresh_rewrites_the_runs_card(engine: Engine, lead: User, tmp_path: Path) -> None:
    run_id = finished_run(engine, lead, generation_project(engine, lead))
    adapter = tmp_path / "adapter"
    adapter.mkdir()
    (adapter / "README.md").write_text(CARD, encoding="utf-8")
    assert refresh_model_card(engine, run_id) is False  # no adapter path recorded yet
    with write_session(engine) as session:
        run = session.get(TrainingRun, run_id)
        assert run is not None
        run.adapter_path, run.metrics = str(adapter), {**run.metrics, **_record(0.7)}
        session.add(run)
    assert refresh_model_card(engine, run_id) is True
    assert read_card_metadata(adapter)["human_preference"]["round_id"] == 4
    assert refresh_model_card(engine, run_id) is False  # nothing new
