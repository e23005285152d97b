"""Issue 12, item 4: a finished classification run's adapter writes a suggestion with its probability
for every item without an expert label (`suggest --project P --run N`), in the background with progress."""

from __future__ import annotations

import time

import numpy as np
import pytest
from sqlalchemy import select
from sqlalchemy.engine import Engine

from curation.cli.main import main
from curation.db import read_session
from curation.embeddings.suggest import (
    read_suggest_job,
    run_source,
    run_suggest_from_run,
    start_suggest_job,
)
from curation.errors import Conflict, InputError, PermissionDenied
from curation.models import Example, Suggestion, TrainingRun, User
from tests.training.helpers import WORDS, items_with_a_vendor
from training import jobs, run
from training.suggest_run import predict_with_run

FAST = {"max_steps": 12, "batch_size": 8, "max_length": 32, "eval_steps": 6}
LABELS = list(WORDS)


def _trained(engine: Engine, lead: User, version_id: int, base: str) -> int:
    queued = jobs.start_run(engine, lead, version_id, "quick", base=base, overrides=FAST, launch=False)
    run.work(engine, queued.id)
    done = jobs.get_run(engine, queued.id)
    assert done.status == "succeeded", done.error
    return int(queued.id)  # type: ignore[arg-type]


def _suggestions(engine: Engine, source: str) -> dict[str, tuple[str, float, float]]:
    with read_session(engine) as session:
        return {e: (label, score, margin) for e, label, score, margin in session.execute(
            select(Example.external_id, Suggestion.label, Suggestion.score, Suggestion.margin)
            .join(Example, Example.id == Suggestion.example_id).where(Suggestion.source == source))}


def test_a_runs_adapter_suggests_a_label_for_every_item_without_an_expert_label(
        engine: Engine, lead: User, annotator: User, classification_version: int, tiny_models: dict[str, str],
        capsys: pytest.CaptureFixture[str]) -> None:
    run_id = _trained(engine, lead, classification_version, tiny_models["bert"])
    project_id = jobs.get_run(engine, run_id).project_id
    ids, truth, vendor = items_with_a_vendor(engine, lead, project_id)

    # The CLI's `suggest --run` finds the training package's predictor through the entry point.
    capsys.readouterr()  # the training's own output
    assert main(["--user", lead.username, "suggest", "--project", "Tickets", "--run", str(run_id)]) == 0
    assert capsys.readouterr().out.splitlines()[-1].startswith(f"18 suggestions of model:run-{run_id} written (run {run_id}'s adapter")
    rows = _suggestions(engine, run_source(run_id))
    assert sorted(rows) == sorted(e for e in truth if e not in ("s18", "s19"))  # experts' items get none

    # Exactly what the adapter says: its probabilities for these texts, top label and score.
    with read_session(engine) as session:
        text_of = dict(session.execute(select(Example.external_id, Example.text)
                                       .where(Example.project_id == project_id)).all())
    order = sorted(rows)
    labels, probs = predict_with_run(engine, project_id, run_id, [text_of[e] for e in order])
    assert labels == LABELS and probs.shape == (18, 2) and np.allclose(probs.sum(axis=1), 1, atol=1e-5)
    for e, p in zip(order, probs, strict=True):
        label, score, margin = rows[e]
        assert label == labels[int(p.argmax())] and score == pytest.approx(float(p.max()), abs=1e-5)
        # two labels: the vendor label's margin is p(vendor) - p(other) = 2 p(vendor) - 1; no label: top-2
        own = p[labels.index(vendor[e])] if e in vendor else p.max()
        assert margin == pytest.approx(2 * float(own) - 1, abs=1e-5)

    # Running again replaces the run's suggestions; the probe's and other sources are untouched.
    report = run_suggest_from_run(engine, lead, project_id, run_id)
    assert (report.items, report.labels, report.source) == (18, 2, f"model:run-{run_id}")
    assert len(_suggestions(engine, run_source(run_id))) == 18

    with pytest.raises(PermissionDenied):
        run_suggest_from_run(engine, annotator, project_id, run_id)
    with pytest.raises(InputError, match="belongs to another project"):
        predict_with_run(engine, project_id + 1, run_id, ["a"])
    queued = jobs.start_run(engine, lead, classification_version, "quick", base=tiny_models["bert"],
                            overrides=FAST, launch=False)
    with pytest.raises(Conflict, match="only a finished run"):
        run_suggest_from_run(engine, lead, project_id, int(queued.id))  # type: ignore[arg-type]


def test_the_run_suggest_job_runs_in_the_background_and_records_its_report(
        engine: Engine, lead: User, classification_version: int, tiny_models: dict[str, str]) -> None:
    run_id = _trained(engine, lead, classification_version, tiny_models["bert"])
    with read_session(engine) as session:
        project_id = session.get(TrainingRun, run_id).project_id
    items_with_a_vendor(engine, lead, project_id)
    state = start_suggest_job(engine, lead, project_id, run_id)
    assert state["status"] == "running" and state["pid"]
    assert read_suggest_job(project_id) is None  # the probe's job is another one
    deadline = time.monotonic() + 240
    while (state := read_suggest_job(project_id, run_id) or {}).get("status") == "running":
        assert time.monotonic() < deadline, "the suggest job did not finish"
        time.sleep(0.5)
    assert state["status"] == "done", state.get("error")
    assert state["done"] == state["total"] == 18
    assert (state["report"]["items"], state["report"]["run_id"]) == (18, run_id)
    assert len(_suggestions(engine, run_source(run_id))) == 18
