"""Objective types for generation: the metrics a lead can state, the format validated when set, and
the objective's line for a run (including the human win rate before and after a preference round)."""

from __future__ import annotations

import pytest
from sqlalchemy.engine import Engine

from curation.data.projects import create_project
from curation.errors import InputError
from curation.evaluation.objective import GENERATION_METRICS, objective_result, set_objective
from curation.models import TaskType, User


def test_generation_metrics_are_offered() -> None:
    assert list(GENERATION_METRICS) == ["exact_match", "chrf", "rouge_l", "embedding_cosine", "format_validity",
                                        "human_win_rate", "test_loss"]


def test_format_validity_needs_a_valid_format(engine: Engine, lead: User) -> None:
    project = create_project(engine, lead, "Replies", task_type=TaskType.generation)
    with pytest.raises(InputError, match="needs a format") as missing:
        set_objective(engine, lead, project.id, "format_validity", 0.9)
    assert missing.value.field == "format"
    with pytest.raises(InputError, match="not a valid regular expression") as bad:
        set_objective(engine, lead, project.id, "format_validity", 0.9, format_kind="regex", format_spec="(")
    assert bad.value.field == "format"
    saved = set_objective(engine, lead, project.id, "format_validity", 0.9, format_kind="regex",
                          format_spec=r"\{.*\}")
    assert saved.objective["format"] == {"kind": "regex", "spec": r"\{.*\}"}
    chrf = set_objective(engine, lead, project.id, "chrf", 0.5, format_kind="regex", format_spec="(")
    assert "format" not in chrf.objective  # a format only goes with format validity
    with pytest.raises(InputError, match="metric must be one of"):
        set_objective(engine, lead, project.id, "accuracy", 0.9)


def test_objective_lines_for_generation_metrics() -> None:
    metrics = {"adapter": {"intervals": {"exact_match": {"value": 0.6, "low": 0.5, "high": 0.7, "n": 300}}},
               "scored_on_text": "test set v1"}
    line = objective_result({"metric": "exact_match", "target": 0.55}, metrics)
    assert line["met"] is True and line["interval_met"] is False
    assert line["text"].startswith("exact_match 0.600 [0.500, 0.700] on 300 items of test set v1 · target 0.55 · MET")
    assert objective_result({"metric": "chrf", "target": 0.5}, metrics)["text"] == \
        "chrf: not measured on this run · target 0.5"


def test_human_win_rate_before_and_after_a_preference_round() -> None:
    objective = {"metric": "human_win_rate", "target": 0.6}
    before = objective_result(objective, {"adapter": {"intervals": {}}})
    assert before["met"] is None and before["text"] == "human_win_rate: no preference round yet · target 0.6"
    after = objective_result(objective, {"preference": {"win_rate": {"value": 0.7, "low": 0.62, "high": 0.78,
                                                                      "n": 50}}})
    assert after["met"] is True and after["interval_met"] is True
    assert after["text"] == "human_win_rate 0.700 [0.620, 0.780] on 50 judged prompts (blind preference round) · " \
                            "target 0.6 · MET (the whole interval)"
