"""The test role of data in training: which approved test-set version a run is scored on, its items
as a split the encoders read, and the paired comparison of two runs scored on the same version.

Three roles: train (the version's train split), validation (the version's held-out split: early
stopping and the probe fallback only) and test (an approved test-set version, scored once at the end
of the run). A run's `metrics` then hold the test scores at the top level and the validation scores
under "validation"; `metrics["scored_on"]` says which.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.engine import Engine

from curation.errors import Conflict, CurationError, InputError
from curation.evaluation import generation_metrics as gm
from curation.evaluation import stats as es
from curation.models import TestSetVersion, TrainingRun, User
from curation.versions import test_sets
from curation.versions.diff import diff_versions


def resolve_test_set_version(engine: Engine, project_id: int, test_set_version_id: int | None) -> int | None:
    """The test-set version a new run names: the given one (it must belong to the project and verify),
    else the project's latest approved one, else None (no test set yet)."""

    if test_set_version_id is None:
        latest = test_sets.latest_test_set_version(engine, project_id)
        if latest is None:
            return None
        test_set_version_id = latest.id
    version = test_sets.get_test_set_version(engine, test_set_version_id)
    if version.project_id != project_id:
        raise InputError(f"test-set version {test_set_version_id} belongs to another project", field="testset")
    check = test_sets.verify_test_set_version(engine, test_set_version_id)
    if not check.ok:
        raise Conflict(f"Cannot score on it: {check.message}")
    return test_set_version_id


def test_split(engine: Engine, test_set_version_id: int) -> tuple[TestSetVersion, dict[str, list[Any]]]:
    """The version (verified: a changed one is refused) and its items as columns: external_id, text,
    label, messages (prompt/response items as a two-turn chat)."""

    check = test_sets.verify_test_set_version(engine, test_set_version_id)
    if not check.ok:
        raise Conflict(f"Refusing to score on a changed test set: {check.message}")
    version = test_sets.get_test_set_version(engine, test_set_version_id)
    items = test_sets.test_set_version_items(engine, test_set_version_id)
    messages = [i.messages or ([{"role": "user", "content": i.prompt or ""},
                                {"role": "assistant", "content": i.response or ""}] if i.prompt is not None else None)
                for i in items]
    return version, {"external_id": [i.external_id for i in items], "text": [i.text for i in items],
                     "label": [i.label for i in items], "messages": messages}


def scored_on(version: TestSetVersion | None, validation_items: int) -> dict[str, Any]:
    if version is None:
        return {"role": "validation", "items": validation_items,
                "text": f"the version's held-out split ({validation_items} items; no test set, so the score "
                        "moves with the data and also chose the early stopping)"}
    return {"role": "test", "test_set_version_id": version.id, "test_set_id": version.test_set_id,
            "number": version.number, "content_hash": version.content_hash, "items": version.item_count,
            "text": f"test set v{version.number} ({version.item_count} items, sha256 {version.content_hash[:12]})"}


# --------------------------------------------------------------------------- comparing two runs


def compare_runs(engine: Engine, actor: User, a: TrainingRun, b: TrainingRun) -> dict[str, Any]:
    """B vs A. On the same test-set version: each metric's paired difference with its interval and the
    test's verdict (accuracy: McNemar's exact test; F1: paired bootstrap), per-label F1 differences,
    and the dataset-version diff beside them. Otherwise {"comparable": False, "reason": ...}."""

    out: dict[str, Any] = {"a": a.id, "b": b.id, "comparable": False}
    sa, sb = (a.metrics or {}).get("scored_on") or {}, (b.metrics or {}).get("scored_on") or {}
    out["scored_on"] = {"a": sa, "b": sb}
    if sa.get("role") != "test" or sb.get("role") != "test":
        out["reason"] = ("A run without a test-set score cannot be compared: its held-out split changes with its "
                         "dataset version.")
    elif sa.get("test_set_version_id") != sb.get("test_set_version_id"):
        out["reason"] = (f"The runs were scored on different test sets ({sa.get('text')} vs {sb.get('text')}): "
                         "their scores cannot be compared directly. Score both on one with `eval RUN --testset N`.")
    else:
        pa, pb = a.metrics.get("predictions") or {}, b.metrics.get("predictions") or {}
        if str(a.task_type) == "classification" and pa.get("adapter") and pb.get("adapter"):
            if pa.get("item_ids") != pb.get("item_ids") or pa.get("y_true") != pb.get("y_true"):
                out["reason"] = "The runs' test items differ (same test-set version, different item order)."
            else:
                names = list(a.metrics.get("labels") or [])
                result = es.compare_classifiers(pa["y_true"], pa["adapter"], pb["adapter"], names)
                out.update(comparable=True, metrics={
                    key: {**result[key].to_dict(), "verdict": result[key].verdict} for key in ("accuracy", "macro_f1")},
                    per_label_f1={label: diff.to_dict() for label, diff in result["per_label_f1"].items()},
                    discordant={"only_a_right": sum(t == x != y for t, x, y in zip(pa["y_true"], pa["adapter"],
                                                                                 pb["adapter"])),
                                "only_b_right": sum(t == y != x for t, x, y in zip(pa["y_true"], pa["adapter"],
                                                                                 pb["adapter"]))})
        elif str(a.task_type) == "generation" and pa.get("loss_sums") and pb.get("loss_sums"):
            diff = es.ratio_difference(pa["loss_sums"], pa["token_counts"], pb["loss_sums"], pb["token_counts"],
                                       name="test_loss")
            out.update(comparable=True, metrics={"test_loss": {**diff.to_dict(),
                                                               "verdict": es.verdict(diff, higher_is_better=False)}})
            out["metrics"].update(_generation_differences(pa, pb))
        else:
            out["reason"] = "A run has no per-item test predictions stored (scored before they were kept)."
    if a.version_id == b.version_id:
        out["dataset_diff"] = {"same_version": a.version_id}
    else:
        try:

            out["dataset_diff"] = diff_versions(engine, actor, a.version_id, b.version_id).to_dict()
        except CurationError as error:
            out["dataset_diff"] = {"error": str(error)}
    return out


def _generation_differences(pa: dict[str, Any], pb: dict[str, Any]) -> dict[str, Any]:
    """B - A of each generation metric both runs scored per item on the same prompts (paired
    bootstrap), with the test's words; {} when either has no per-item scores or the prompts differ."""
    sa, sb = pa.get("generation_scores") or {}, pb.get("generation_scores") or {}
    if not sa or not sb or pa.get("references") != pb.get("references"):
        return {}
    return {metric: {**diff.to_dict(), "verdict": diff.verdict} for metric, diff in gm.compare(sa, sb).items()}
