"""Model pre-labels (issue 12, item 4): a linear probe on the sentence embeddings suggests a label
with its probability for every item without an expert label, and the active-learning queue orders
read those suggestions (curation.queue).

The probe is a multinomial logistic regression trained on the best label each item has: the
experts' label, else a source's vote or suggestion, else the final label. Items that trained it get
out-of-fold predictions (5-fold), so a noisy source label is judged by a model that never saw it;
items without a label get the mean of the five fold models.
The margin is that of the label the item carries (its probability minus the best other label's;
negative when the probe prefers another), or the top-2 margin for an item without one: see
`label_margins`. Suggestions are written as source
`model:probe`, replacing the previous run's. Test items never get a model's suggestion: their expert
labels are the runs' yardstick, and a model's opinion shown to their reviewers would bend it.

A finished classification run's adapter can suggest instead (`run_suggest_from_run`, source
`model:run-N`): the training package provides the prediction (`provide_run_predictor`), this module
writes the suggestions.

Runs in the background like the embedding job: `start_suggest_job` spawns
`python -m curation suggest --project-id N [--run R] --job-file F`, which writes its progress to F.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import delete, insert, select
from sqlalchemy.engine import Engine

from curation.access import audit
from curation.access.roles import LEADS, require_role
from curation.db import read_session, write_session
from curation.embeddings.encode import embed_texts, read_project_items
from curation.embeddings.jobs import FAILED, RUNNING, write_job
from curation.errors import InputError
from curation.models import (
    Annotation,
    Example,
    ExampleStatus,
    Project,
    QueueOrder,
    Suggestion,
    User,
    UserKind,
    utcnow,
)
from curation.process import alive
from curation.review.sources import expert_labels, list_sources, source_labels
from curation.settings import get_settings
from curation.versions.test_sets import test_item_ids  # a model never suggests on the test set's items

MODEL_SOURCE_PREFIX = "model:"
PROBE_SOURCE = "model:probe"

FOLDS = 5


@dataclass
class SuggestReport:
    project_id: int
    items: int  # items that got a suggestion
    trained_on: int  # items with a training label (the probe); 0 for a run's adapter (its version trained it)
    labels: int
    seconds: float
    source: str = PROBE_SOURCE
    run_id: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def summary(self) -> str:
        if self.run_id is not None:
            return (f"{self.items} suggestions of {self.source} written (run {self.run_id}'s adapter, "
                    f"{self.labels} labels, {self.seconds:.1f} s)")
        return (f"{self.items} suggestions of {PROBE_SOURCE} written (probe trained on {self.trained_on} items, "
                f"{self.labels} labels, {self.seconds:.1f} s)")


Progress = Callable[[int, int], None]
# (engine, project id, run id, texts, progress) -> (the run's labels, probabilities (len(texts), labels)).
# The training package provides it (training.suggest_run, registered by training.cli): the core never
# imports training, so without it `suggest --run` says the training package is missing.
RunPredictor = Callable[[Engine, int, int, list[str], "Progress | None"], tuple[list[str], np.ndarray]]
_run_predictors: list[RunPredictor] = []


def provide_run_predictor(predictor: RunPredictor) -> None:
    """Install the function that classifies texts with a finished run's adapter (one; the last wins)."""
    _run_predictors[:] = [predictor]


def run_source(run_id: int) -> str:
    """The suggestion source of a run's adapter: `model:run-7`."""
    return f"{MODEL_SOURCE_PREFIX}run-{run_id}"


def probe_predictions(vectors: np.ndarray, targets: list[str | None], *, folds: int = FOLDS,
                      seed: int = 0) -> tuple[list[str], np.ndarray, np.ndarray]:
    """(label, probability, margin) per row of `vectors` (N, D) from a logistic regression on the
    rows with a target. Rows with a target get out-of-fold predictions; a label with fewer than
    `folds` examples is still predicted (its folds simply lack it). Raises InputError with fewer
    than two labels or 2 * folds training rows."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import KFold

    known = np.array([t is not None for t in targets])
    labels = sorted({t for t in targets if t is not None})
    if len(labels) < 2 or known.sum() < 2 * folds:
        raise InputError(f"the probe needs at least two labels and {2 * folds} labelled items "
                         f"(has {len(labels)} labels, {int(known.sum())} items)")
    index = {label: i for i, label in enumerate(labels)}
    y = np.array([index[t] if t is not None else -1 for t in targets])
    probs = np.zeros((len(targets), len(labels)), dtype=np.float64)

    def fit(rows: np.ndarray) -> Any:
        # 150 iterations: on unit-norm sentence embeddings lbfgs is within noise of convergence by then.
        model = LogisticRegression(max_iter=150, C=4.0)
        model.fit(vectors[rows], y[rows])
        return model

    def put(model: Any, rows: np.ndarray, weight: float = 1.0) -> None:
        if len(rows):
            probs[np.ix_(rows, model.classes_)] += weight * model.predict_proba(vectors[rows])

    trained, unknown = np.flatnonzero(known), np.flatnonzero(~known)
    for train, test in KFold(folds, shuffle=True, random_state=seed).split(trained):
        model = fit(trained[train])
        put(model, trained[test])
        put(model, unknown, 1 / folds)  # items without a label: the mean of the fold models (no extra fit)
    return [labels[i] for i in probs.argmax(axis=1)], probs.max(axis=1), label_margins(probs, labels, targets)


def label_margins(probs: np.ndarray, labels: list[str], given: list[str | None]) -> np.ndarray:
    """Per row of `probs` (N, L) over `labels`: the margin of the label the item already carries,
    p(given) - max over the other labels, in [-1, 1] (negative: the model prefers another label; a given
    label outside `labels` counts as probability 0); rows without a given label get the top-2 margin,
    top - second, in [0, 1]. The lowest margins are the likeliest label errors first (the given label
    contradicted hardest), then the items the model is least sure about (uncertainty sampling); the top-2
    margin alone ranks ambiguous items, not wrong labels."""
    n = len(given)
    if n == 0:
        return np.zeros(0)
    order = np.sort(probs, axis=1)
    top, second = order[:, -1], order[:, -2] if probs.shape[1] > 1 else np.zeros(n)
    margin = top - second
    index = {label: i for i, label in enumerate(labels)}
    for row, label in enumerate(given):
        if label is None:
            continue
        column = index.get(label)
        own = float(probs[row, column]) if column is not None else 0.0
        # the best other label: the top one unless it is the given one, then the second
        best_other = second[row] if column is not None and own >= top[row] else top[row]
        margin[row] = own - best_other
    return margin


def cluster_coverage(vectors: np.ndarray, reviewed: np.ndarray, *, seed: int = 0) -> np.ndarray:
    """Per row: the share of its k-means cluster (k = clamp(n / 50, 2, 100)) that has an expert label.
    Rows of rarely reviewed regions of the embedding space get low values."""
    from sklearn.cluster import MiniBatchKMeans

    n = len(vectors)
    if n < 4:
        return np.full(n, float(reviewed.mean()) if n else 0.0)
    k = int(min(100, max(2, n // 50)))
    clusters = MiniBatchKMeans(n_clusters=k, random_state=seed, n_init=3, batch_size=1024).fit_predict(vectors)
    sizes = np.bincount(clusters, minlength=k)
    covered = np.bincount(clusters, weights=reviewed.astype(np.float64), minlength=k)
    return (covered / np.maximum(sizes, 1))[clusters]


def training_targets(engine: Engine, project_id: int, ids: list[int]) -> tuple[list[str | None], set[int]]:
    """(target per item, ids with an expert label): expert label, else a source's label, else the final one."""

    with read_session(engine) as session:
        experts = expert_labels(session, project_id)
        sourced: dict[int, str] = {}
        for source in list_sources(session, project_id):
            if not source.startswith(MODEL_SOURCE_PREFIX):  # a model's suggestions never train the probe
                for example_id, label in source_labels(session, project_id, source).items():
                    sourced.setdefault(example_id, label)
        finals = dict(session.execute(select(Example.id, Example.final_label).where(
            Example.project_id == project_id, Example.final_label.is_not(None))).all())
    targets = [experts.get(i) or sourced.get(i) or finals.get(i) for i in ids]
    return targets, set(experts) & set(ids)


def run_suggest(engine: Engine, actor: User | None, project_id: int, model: str | None = None,
                progress: Any = None) -> SuggestReport:
    """Embed the project (cached), fit the probe, write a suggestion and probability for every item
    without an expert label, test items excepted (`test_item_ids`). `actor` None: the background process started by a lead."""

    if actor is not None:
        require_role(actor, *LEADS)
    started = time.perf_counter()
    items = read_project_items(engine, project_id)
    vectors = embed_texts(items.texts, model, progress=progress).vectors
    targets, reviewed = training_targets(engine, project_id, items.ids)
    vectors = np.asarray(vectors, dtype=np.float32)
    labels, top, margin = probe_predictions(vectors, targets)
    test_items = test_item_ids(engine, project_id)
    coverage = cluster_coverage(vectors, np.array([i in reviewed for i in items.ids]))
    now = utcnow()
    rows = [{"project_id": project_id, "example_id": example_id, "source": PROBE_SOURCE, "label": label,
             "score": float(p), "margin": float(m), "cluster_coverage": float(c), "import_id": None,
             "created_at": now}
            for example_id, label, p, m, c in zip(items.ids, labels, top, margin, coverage, strict=True)
            if example_id not in reviewed and example_id not in test_items]
    _replace_suggestions(engine, actor, project_id, PROBE_SOURCE, rows, "suggest.probe",
                         {"suggestions": len(rows), "trained_on": sum(t is not None for t in targets)})
    return SuggestReport(project_id=project_id, items=len(rows), trained_on=sum(t is not None for t in targets),
                         labels=len(set(t for t in targets if t is not None)),
                         seconds=time.perf_counter() - started)


def _replace_suggestions(engine: Engine, actor: User | None, project_id: int, source: str,
                         rows: list[dict[str, Any]], action: str, after: dict[str, Any]) -> None:
    """The source's suggestions become `rows`, in one transaction with its audit record."""
    with write_session(engine) as session:
        session.execute(delete(Suggestion).where(Suggestion.project_id == project_id, Suggestion.source == source))
        for start in range(0, len(rows), 5000):
            session.execute(insert(Suggestion), rows[start:start + 5000])
        audit.record(session, actor, action, "project", project_id, project_id=project_id, after=after)


def run_suggest_from_run(engine: Engine, actor: User | None, project_id: int, run_id: int,
                         progress: Progress | None = None, predictor: RunPredictor | None = None) -> SuggestReport:
    """A finished classification run's adapter suggests a label with its probability for every item
    without an expert label (unlabelled or carrying only a source's or the final label) and outside the
    test set (`test_item_ids`), written as source
    `model:run-N`, replacing that run's previous suggestions. The margin is that of the item's own label
    (`label_margins`). Items of the run's own training split were seen with their labels: there the
    adapter's suggestion is not out-of-fold (the probe's is), so it finds fewer of their label errors.
    `predictor` defaults to the one the training package provided; `actor` None: the background process
    started by a lead."""
    if actor is not None:
        require_role(actor, *LEADS)
    predict = predictor or (_run_predictors[0] if _run_predictors else None)
    if predict is None:
        raise InputError("suggestions from a run's adapter need the training package (python -m curation loads "
                         "it through the curation.commands entry point); the linear probe needs nothing")
    started = time.perf_counter()
    items = read_project_items(engine, project_id)
    targets, reviewed = training_targets(engine, project_id, items.ids)
    test_items = test_item_ids(engine, project_id)
    todo = [i for i, example_id in enumerate(items.ids) if example_id not in reviewed and example_id not in test_items]
    if not todo:
        raise InputError("every item of the project has an expert label: nothing to suggest")
    labels, probs = predict(engine, project_id, run_id, [items.texts[i] for i in todo], progress)
    probs = np.asarray(probs, dtype=np.float64)
    if probs.shape != (len(todo), len(labels)):
        raise ValueError(f"the run predictor returned {probs.shape} probabilities for {len(todo)} texts "
                         f"and {len(labels)} labels")
    margin = label_margins(probs, labels, [targets[i] for i in todo])
    best = probs.argmax(axis=1)
    now = utcnow()
    source = run_source(run_id)
    rows = [{"project_id": project_id, "example_id": items.ids[i], "source": source, "label": labels[int(b)],
             "score": float(probs[row, b]), "margin": float(margin[row]), "cluster_coverage": None,
             "import_id": None, "created_at": now}
            for row, (i, b) in enumerate(zip(todo, best, strict=True))]
    _replace_suggestions(engine, actor, project_id, source, rows, "suggest.run",
                         {"suggestions": len(rows), "run_id": run_id})
    return SuggestReport(project_id=project_id, items=len(rows), trained_on=0, labels=len(labels),
                         seconds=time.perf_counter() - started, source=source, run_id=run_id)


# --------------------------------------------------------------------------- why an item came next
def queue_reason(engine: Engine, actor: User, example_id: int) -> str:
    """For a lead: why the queue served this item, in words (audit, suspicion, margin, disagreement)."""
    require_role(actor, *LEADS)
    with read_session(engine) as session:
        example = session.get(Example, example_id)
        if example is None:
            return ""
        project = session.get(Project, example.project_id)
        assert project is not None
        order = QueueOrder(project.queue_order)
        if example.audit_id is not None:
            return f"in label audit #{example.audit_id}: audit items come first, reviewed blind"
        probe = session.execute(select(Suggestion).where(Suggestion.example_id == example_id,
                                                         Suggestion.source == PROBE_SOURCE)).scalars().first()
        if order is QueueOrder.suspected_first and example.priority is not None:
            return f"suspected label problem (score {example.priority:.3f}); suspected items come first"
        if order is QueueOrder.lowest_margin and probe is not None and probe.margin is not None:
            if probe.margin < 0:
                return (f"the probe contradicts the item's label: margin {probe.margin:.3f} (the label's probability "
                        f"minus the best other's; the probe says {probe.label} {probe.score:.2f}); lowest margins "
                        "come first")
            return (f"the probe is unsure: margin {probe.margin:.3f} (the item's label, or its likeliest one, over "
                    f"the next; top: {probe.label} {probe.score:.2f}); lowest margins come first")
        if order is QueueOrder.uncovered_clusters and probe is not None and probe.cluster_coverage is not None:
            return (f"its embedding cluster is little reviewed: {probe.cluster_coverage:.0%} of it has an expert "
                    "label; the least covered clusters come first")
        if order is QueueOrder.disagreement and probe is not None:

            given = session.execute(select(User.username, Annotation.label).join(
                Annotation, Annotation.annotator_id == User.id).where(
                Annotation.example_id == example_id, User.kind == UserKind.source.value)).first()
            if given is not None and given[1] != probe.label:
                return (f"source {given[0]} says {given[1]}, the probe says {probe.label} ({probe.score:.2f}); "
                        "disagreements with the most confident probe come first")
        status = ExampleStatus(example.status).value
        return f"next in the {order.value.replace('_', ' ')} order ({status}, by id)"


# --------------------------------------------------------------------------- background job
def suggest_job_path(project_id: int, run_id: int | None = None) -> Path:
    """The job file of the probe (`run_id` None) or of one run's adapter."""
    name = f"suggest-{project_id}.json" if run_id is None else f"suggest-{project_id}-run-{run_id}.json"
    return get_settings().data_dir / "jobs" / name


def start_suggest_job(engine: Engine, actor: User, project_id: int, run_id: int | None = None) -> dict[str, Any]:
    """Start the probe (or run `run_id`'s adapter) in the background (leads), unless that job is
    already running for the project."""
    require_role(actor, *LEADS)
    current = read_suggest_job(project_id, run_id)
    if current and current.get("status") == RUNNING:
        return current
    path = suggest_job_path(project_id, run_id)
    path.parent.mkdir(parents=True, exist_ok=True)
    command = [sys.executable, "-m", "curation", "--user", actor.username, "suggest", "--project-id",
               str(project_id), "--job-file", str(path)]
    if run_id is not None:
        command += ["--run", str(run_id)]
    with open(path.with_suffix(".log"), "ab") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                   start_new_session=True, cwd=os.getcwd(), env=os.environ.copy())
    state = {"status": RUNNING, "done": 0, "total": 0, "error": None, "pid": process.pid,
             "started_at": time.time(), "updated_at": time.time()}
    write_job(path, state)
    return state


def read_suggest_job(project_id: int, run_id: int | None = None) -> dict[str, Any] | None:
    """The latest state of the probe's (or run `run_id`'s) suggest job; a running one whose process is
    gone reads as failed. None when there never was one."""
    try:
        state = json.loads(suggest_job_path(project_id, run_id).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if state.get("status") == RUNNING and not alive(state.get("pid")):
        state = {**state, "status": FAILED, "error": state.get("error") or "the suggest process ended unexpectedly"}
    return state
