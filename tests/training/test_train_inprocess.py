"""Training in this process with tiny models: adapter saved in PEFT format, evaluation against the
baselines, model card, reload, and the rule that a run never succeeds without its adapter."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy.engine import Engine

from curation.errors import Conflict
from curation.models import RunStatus, TaskType, User, VersionStatus
from tests.training.helpers import classification_rows, make_version
from training import jobs, run
from training.card import read_card_metadata
from training.models import load_adapter

FAST = {"max_steps": 12, "batch_size": 8, "max_length": 32, "early_stopping": True, "eval_steps": 6}


def _train(engine: Engine, lead: User, version_id: int, base: str, expect: RunStatus = RunStatus.succeeded,
           **overrides: object) -> int:
    """Queue and run a training run in this process; the worker's exit code and the run's final status
    must match `expect` (0 and a finish time for a success, 1 and the traceback for a failure)."""
    queued = jobs.start_run(engine, lead, version_id, "quick", base=base, overrides={**FAST, **overrides},
                            launch=False)
    assert queued.status == RunStatus.queued
    code = run.work(engine, queued.id)
    done = jobs.get_run(engine, queued.id)
    assert done.status == expect, done.error
    assert code == (0 if expect == RunStatus.succeeded else 1)
    assert done.finished_at is not None
    assert (done.error is None) == (expect == RunStatus.succeeded)
    return queued.id  # type: ignore[return-value]


def test_classification_run_saves_evaluates_and_reloads(engine: Engine, lead: User, classification_version: int,
                                                        tiny_models: dict[str, str]) -> None:
    run_id = _train(engine, lead, classification_version, tiny_models["bert"], learning_rate=5e-3)
    done = jobs.get_run(engine, run_id)
    assert done.status == RunStatus.succeeded, done.error
    adapter = Path(done.adapter_path)
    assert (adapter / "adapter_model.safetensors").exists() and (adapter / "adapter_config.json").exists()
    assert done.step > 0 and done.max_steps == 12 and done.loss is not None and done.tokens_per_s
    assert any("loss" in p for p in done.history) and any("eval_loss" in p for p in done.history)
    metrics = done.metrics
    assert set(metrics["adapter"]) >= {"accuracy", "macro_f1", "per_label_f1", "confusion"}
    assert set(metrics["adapter"]["per_label_f1"]) == {"billing", "shipping"}
    assert metrics["majority_baseline"]["accuracy"] == pytest.approx(0.5)
    assert "probe_baseline" in metrics and isinstance(metrics["beats_baseline"], bool)
    assert sum(map(sum, metrics["adapter"]["confusion"])) == 12
    assert metrics["adapter"]["intervals"]["accuracy"]["low"] <= metrics["adapter"]["accuracy"] \
        <= metrics["adapter"]["intervals"]["accuracy"]["high"]
    assert metrics["comparisons"]["probe_baseline"]["accuracy"]["test"] == "McNemar exact"
    if not metrics["beats_baseline"]:  # a tie with a baseline is not a win: it is said
        assert done.warnings and ("WORSE" in done.warnings[0] or "does not beat" in done.warnings[0])
    card = read_card_metadata(adapter)
    assert card["base_model"] == tiny_models["bert"] and card["lora"]["rank"] == 8
    assert card["dataset_version"]["version_id"] == classification_version
    assert card["dataset_version"]["approved_by"] == "lena" and card["dataset_version"]["content_hash"]
    assert card["dataset_version"]["licences"] == {"CC0-1.0": 52}
    assert card["metrics"]["accuracy"] == metrics["adapter"]["accuracy"]
    # Reload: the PEFT folder over the rebuilt base gives the same predictions.
    from curation.versions.records import version_dataset_dict
    from training.data import encode_classification
    from training.evaluate import predict_proba

    model, tokenizer, meta = load_adapter(done.output_dir)
    assert meta["labels"] == ["billing", "shipping"]
    rows = encode_classification(version_dataset_dict(engine, classification_version)["eval"], tokenizer,
                                 meta["labels"], 32).rows
    accuracy = float((predict_proba(model, rows).argmax(-1) == [r["labels"] for r in rows]).mean())
    assert accuracy == pytest.approx(metrics["adapter"]["accuracy"])


def test_generation_run_compares_base_and_adapter(engine: Engine, lead: User, generation_version: int,
                                                  tiny_models: dict[str, str]) -> None:
    run_id = _train(engine, lead, generation_version, tiny_models["llama"], learning_rate=5e-3, merge=True)
    done = jobs.get_run(engine, run_id)
    assert done.status == RunStatus.succeeded, done.error
    metrics = done.metrics
    assert metrics["adapter"]["eval_loss"] < metrics["base"]["eval_loss"]
    assert metrics["adapter"]["perplexity"] > 1
    # responses to every eval prompt, scored against the references with intervals; the verdict follows
    # the paired difference on the verdict metric (exact match: the references are short), not the loss
    assert metrics["generation"]["items"] == 4 and metrics["generation"]["tokens_per_s"] > 0
    assert {"exact_match", "chrf", "rouge_l"} <= set(metrics["adapter"]["intervals"])
    assert metrics["verdict_metric"]["metric"] == "exact_match"
    from curation.evaluation import stats as es

    diff = es.Difference.from_dict(metrics["comparisons"]["base"]["exact_match"])
    assert metrics["beats_baseline"] is es.beats(diff)
    assert "exact match (short references)" in metrics["verdict_text"]
    assert len(metrics["samples"]) == 4 and {"prompt", "base", "adapter", "reference"} <= set(metrics["samples"][0])
    assert Path(done.merged_path, "config.json").exists()
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    model = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(tiny_models["llama"]), done.adapter_path)
    assert model.peft_config["default"].r == 8


def test_only_approved_versions_train(engine: Engine, lead: User, tiny_models: dict[str, str]) -> None:
    candidate = make_version(engine, lead, "Draft", TaskType.classification, classification_rows(),
                             labels=["billing", "shipping"], status=VersionStatus.candidate)
    with pytest.raises(Conflict, match="Only approved versions"):
        jobs.start_run(engine, lead, candidate, "quick", base=tiny_models["bert"], launch=False)


def test_no_success_without_the_adapter_on_disk(engine: Engine, lead: User, classification_version: int,
                                                tiny_models: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    from peft import PeftModel

    monkeypatch.setattr(PeftModel, "save_pretrained", lambda self, *a, **k: None)
    run_id = _train(engine, lead, classification_version, tiny_models["bert"], RunStatus.failed, max_steps=2,
                    early_stopping=False)
    done = jobs.get_run(engine, run_id)
    assert done.status == RunStatus.failed and "adapter was not written" in done.error


def test_batched_inference_keeps_row_order(tiny_models: dict[str, str]) -> None:
    """Rows are batched by length for speed; each row still gets what it gets on its own."""
    from training.evaluate import embeddings, predict_proba
    from training.models import load_classifier

    model = load_classifier(tiny_models["bert"], 3)
    lengths = [9, 2, 14, 5, 2, 11, 7, 3]
    rows = [{"input_ids": [5 + (i * 7 + j) % 40 for j in range(n)], "attention_mask": [1] * n, "labels": 0}
            for i, n in enumerate(lengths)]
    together = predict_proba(model, rows, batch_size=3)
    alone = [predict_proba(model, [row])[0] for row in rows]
    assert together.shape == (8, 3)
    assert together == pytest.approx(np.stack(alone), abs=1e-5)
    assert embeddings(model, rows, batch_size=3)[2] == pytest.approx(embeddings(model, [rows[2]])[0], abs=1e-5)
    assert predict_proba(model, []).shape[0] == 0


def test_a_tampered_version_does_not_train(engine: Engine, lead: User, classification_version: int,
                                           tiny_models: dict[str, str], capsys: pytest.CaptureFixture[str]) -> None:
    """Issue 14: rows changed behind the workbench's back after approval. The start refuses; a run
    queued before the change is refused by the worker, on the rows it reads, with no adapter written."""
    from sqlalchemy import text

    from curation.versions.records import verify_version

    queued = jobs.start_run(engine, lead, classification_version, "quick", base=tiny_models["bert"],
                            overrides=FAST, launch=False)
    with engine.begin() as conn:
        changed = conn.execute(text("update datasetversionitem set label = 'shipping' where version_id = :v "
                                    "and split = 'train' and label = 'billing'"),
                               {"v": classification_version}).rowcount
    assert changed > 0
    message = verify_version(engine, lead, classification_version).message
    assert "was changed after it was built" in message
    with pytest.raises(Conflict) as refused:
        jobs.start_run(engine, lead, classification_version, "quick", base=tiny_models["bert"], launch=False)
    assert str(refused.value) == f"Refusing to train: {message}"
    assert run.work(engine, queued.id) == 1
    done = jobs.get_run(engine, queued.id)
    assert done.status == RunStatus.failed and f"Refusing to train: {message}" in done.error
    assert done.adapter_path is None and done.metrics in (None, {})


def test_runs_are_scored_on_the_named_test_set_and_compared_paired(engine: Engine, lead: User,
                                                                   classification_version: int,
                                                                   tiny_models: dict[str, str],
                                                                   capsys: pytest.CaptureFixture[str]) -> None:
    from curation.cli.main import main
    from curation.evaluation.objective import set_objective
    from curation.versions.records import get_version
    from tests.training.helpers import make_test_set_version, test_rows
    from training.test_scoring import compare_runs

    project_id = get_version(engine, classification_version).project_id
    set_objective(engine, lead, project_id, "accuracy", 0.6)
    test_version = make_test_set_version(engine, lead, project_id, test_rows(20))
    first = _train(engine, lead, classification_version, tiny_models["bert"], learning_rate=5e-3)
    second = _train(engine, lead, classification_version, tiny_models["bert"], learning_rate=5e-3, rank=4)
    a, b = jobs.get_run(engine, first), jobs.get_run(engine, second)
    assert a.status == RunStatus.succeeded, a.error
    assert a.test_set_version_id == test_version  # the project's latest approved test set, by default
    m = a.metrics
    assert m["scored_on"]["role"] == "test" and m["scored_on"]["items"] == 20
    assert m["predictions"]["item_ids"] == [f"x{i:04d}" for i in range(20)]
    assert sum(map(sum, m["adapter"]["confusion"])) == 20  # test items, not the 12 held-out ones
    assert m["validation"]["adapter"]["accuracy"] is not None and "predictions" not in m["validation"]
    assert m["majority_baseline"]["accuracy"] == pytest.approx(0.5)
    assert m["objective"]["metric"] == "accuracy" and m["objective"]["target"] == 0.6
    assert m["objective"]["text"].startswith("accuracy ") and "target 0.6" in m["objective"]["text"]
    assert m["objective"]["low"] <= m["objective"]["value"] <= m["objective"]["high"]
    card = read_card_metadata(Path(a.adapter_path))
    assert card["evaluation"]["scored_on"]["content_hash"] == m["scored_on"]["content_hash"]
    assert card["evaluation"]["objective"] == m["objective"]["text"]
    assert "95% bootstrap" in card["evaluation"]["intervals"]["adapter"]["accuracy"]
    assert "probe_baseline" in card["evaluation"]["versus_baselines"]
    readme = (Path(a.adapter_path) / "README.md").read_text()
    assert "test set v1" in readme and m["scored_on"]["content_hash"] in readme

    comparison = compare_runs(engine, lead, a, b)
    assert comparison["comparable"] is True
    accuracy = comparison["metrics"]["accuracy"]
    assert accuracy["test"] == "McNemar exact" and accuracy["low"] <= accuracy["value"] <= accuracy["high"]
    assert accuracy["value"] == pytest.approx(b.metrics["adapter"]["accuracy"] - m["adapter"]["accuracy"])
    assert set(comparison["per_label_f1"]) == {"billing", "shipping"}
    assert comparison["dataset_diff"] == {"same_version": classification_version}
    # a run compared with itself: exactly no difference
    same = compare_runs(engine, lead, a, a)["metrics"]["accuracy"]
    assert same["value"] == 0.0 and same["verdict"] == "no detectable difference (p = 1.00)"
    capsys.readouterr()  # the trainer's own logging
    assert main(["--user", "lena", "runs", "compare", str(first), str(second), "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["metrics"]["accuracy"]["verdict"] == accuracy["verdict"]


def test_runs_on_different_test_sets_are_not_compared(engine: Engine, lead: User, classification_version: int,
                                                      tiny_models: dict[str, str]) -> None:
    from curation.versions.records import get_version
    from tests.training.helpers import make_test_set_version, test_rows
    from training.test_scoring import compare_runs

    project_id = get_version(engine, classification_version).project_id
    old = make_test_set_version(engine, lead, project_id, test_rows(10))
    first = _train(engine, lead, classification_version, tiny_models["bert"])
    make_test_set_version(engine, lead, project_id, test_rows(12))
    second = _train(engine, lead, classification_version, tiny_models["bert"])
    a, b = jobs.get_run(engine, first), jobs.get_run(engine, second)
    assert a.test_set_version_id == old and b.test_set_version_id != old
    result = compare_runs(engine, lead, a, b)
    assert result["comparable"] is False and "different test sets" in result["reason"]


def test_eval_scores_an_earlier_run_on_a_test_set_so_runs_become_comparable(
        engine: Engine, lead: User, classification_version: int, tiny_models: dict[str, str],
        capsys: pytest.CaptureFixture[str]) -> None:
    from curation.cli.main import main
    from curation.versions.records import get_version
    from tests.training.helpers import make_test_set_version, test_rows
    from training.test_scoring import compare_runs

    project_id = get_version(engine, classification_version).project_id
    before = _train(engine, lead, classification_version, tiny_models["bert"])  # no test set yet
    assert jobs.get_run(engine, before).metrics["scored_on"]["role"] == "validation"
    test_version = make_test_set_version(engine, lead, project_id, test_rows(14))
    after = _train(engine, lead, classification_version, tiny_models["bert"])
    assert compare_runs(engine, lead, jobs.get_run(engine, before), jobs.get_run(engine, after))["comparable"] is False
    capsys.readouterr()
    assert main(["--user", "lena", "eval", str(before), "--testset", str(test_version), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["scored_on"]["test_set_version_id"] == test_version and result["scored_on"]["items"] == 14
    rescored = jobs.get_run(engine, before)
    assert rescored.test_set_version_id == test_version
    assert rescored.metrics["earlier_scores"][0]["scored_on"]["role"] == "validation"
    assert rescored.metrics["probe_baseline"]["accuracy"] == pytest.approx(
        jobs.get_run(engine, after).metrics["probe_baseline"]["accuracy"])  # the same probe, refitted
    assert compare_runs(engine, lead, rescored, jobs.get_run(engine, after))["comparable"] is True
