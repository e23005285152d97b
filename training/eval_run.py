"""`eval RUN [--testset N]`: score a finished run on an approved test-set version, after the fact.

For runs trained before the project had a test set, or to put two runs on the same test-set version so
they can be compared. The adapter, the majority class of the run's train split and a linear probe
refitted on the same frozen embeddings (deterministic: the same probe the run trained against) are
scored on the same items, each with intervals and paired comparisons. The run's top-level scores
become these test scores; what it held before is kept under "earlier_scores". Runs synchronously
(generation: the loss and the generated responses scored on the test items, as at the end of a run).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.engine import Engine

from curation.access import audit
from curation.access.roles import LEADS, require_role
from curation.data.projects import get_project_by_id
from curation.db import write_session
from curation.errors import Conflict
from curation.evaluation.objective import objective_result
from curation.models import TrainingRun, User
from curation.versions.records import version_dataset_dict
from training import jobs
from training.config import TrainConfig
from training.store import update_run
from training.test_scoring import resolve_test_set_version, scored_on, test_split


def evaluate_run(engine: Engine, actor: User, run_id: int, test_set_version_id: int | None = None) -> TrainingRun:
    from training import data, evaluate, models

    require_role(actor, *LEADS)
    run = jobs.get_run(engine, run_id)
    if str(run.status) != "succeeded" or not run.output_dir:
        raise Conflict(f"Run {run_id} is {run.status}: only a finished run with its adapter can be scored.")
    version_id = resolve_test_set_version(engine, run.project_id, test_set_version_id)
    if version_id is None:
        raise Conflict("The project has no approved test-set version to score on.")
    test_version, test_data = test_split(engine, version_id)
    model, tokenizer, meta = models.load_adapter(run.output_dir)
    config = TrainConfig.from_dict(run.config)
    dataset = version_dataset_dict(engine, run.version_id)
    if meta["task_type"] == "classification":
        names = list(meta["labels"])
        unknown = sorted({label for label in test_data["label"] if label not in names})
        if unknown:
            raise Conflict(f"The run's adapter has no class for test labels {unknown}: it cannot be scored on "
                           f"test-set version {test_version.number}.")
        test_rows = data.encode_classification(test_data, tokenizer, names, config.max_length).rows
        train_rows = data.encode_classification(dataset["train"], tokenizer, names, config.max_length).rows
        base = models.load_classifier(meta["base_path"], len(names), meta.get("pooling", "mean"))
        probe = evaluate.fit_probe(base, train_rows, None, len(names), test_rows)
        metrics = evaluate.evaluate_classification(model, test_rows, names, train_rows, probe,
                                                   probe_pred=probe["test_pred"])
    else:
        test_rows = data.encode_generation(test_data, tokenizer, config.max_length).rows
        metrics = evaluate.evaluate_generation(model, tokenizer, test_rows, list(test_data["messages"]),
                                               **evaluate.generation_options(
                                                   get_project_by_id(engine, run.project_id).objective))
    previous = dict(run.metrics or {})
    metrics["predictions"] = {**metrics.get("predictions", {}), "item_ids": list(test_data["external_id"])}
    metrics["validation"] = previous.get("validation") or {
        k: v for k, v in previous.items() if k not in ("predictions", "samples", "earlier_scores", "scored_on",
                                                        "scored_on_text", "objective")}
    metrics["earlier_scores"] = [*previous.get("earlier_scores", []),
                                 {"scored_on": previous.get("scored_on"),
                                  "adapter": {k: v for k, v in (previous.get("adapter") or {}).items()
                                              if k in ("accuracy", "macro_f1", "eval_loss")}}]
    metrics["scored_on"] = scored_on(test_version, 0)
    metrics["scored_on_text"] = metrics["scored_on"]["text"]
    metrics["objective"] = objective_result(get_project_by_id(engine, run.project_id).objective, metrics)
    for key in ("train_seconds", "trainable_params", "train_examples", "precision", "device", "final_step",
                "preference"):  # the blind human preference round stays on the run's record
        if key in previous:
            metrics[key] = previous[key]
    warnings = evaluate.verdict(str(run.task_type), metrics)
    update_run(engine, run_id, metrics=metrics, warnings=warnings, test_set_version_id=version_id)

    with write_session(engine) as session:
        audit.record(session, actor, "training.eval", "training_run", run_id, project_id=run.project_id,
                     after={"test_set_version_id": version_id, "content_hash": test_version.content_hash})
    return jobs.get_run(engine, run_id)


def summary(run: TrainingRun) -> dict[str, Any]:
    metrics = run.metrics or {}
    return {"id": run.id, "scored_on": metrics.get("scored_on"), "objective": metrics.get("objective"),
            "adapter": {k: v for k, v in (metrics.get("adapter") or {}).items() if k != "confusion"},
            "comparisons": metrics.get("comparisons"), "beats_baseline": metrics.get("beats_baseline"),
            "warnings": run.warnings}
