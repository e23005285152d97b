"""Suspected label errors: two independent signals on the sentence embeddings, ranked together.

1. *Confident learning*: a logistic-regression classifier on the embeddings gives out-of-sample class
   probabilities by stratified k-fold cross-validation (each item scored by a model that never saw
   it); cleanlab's `find_label_issues` flags items whose given label is unlikely under them.
2. *k-nearest-neighbour disagreement*: the share of an item's k most similar labelled items (cosine)
   that carry a different label.

Score = mean of (1 - out-of-sample probability of the given label) and the kNN disagreement, in [0, 1].
Suspected (`LabelIssueReport.flagged`): cleanlab flags it, or more than half of its neighbours carry
another label and the classifier also prefers another label. Every scored item stays in `issues`.
Only labelled items (a final label) take part; classes with fewer than 2 items cannot be
cross-validated and are left out (said in `LabelIssueReport.skipped_labels`).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, TYPE_CHECKING

import numpy as np

from curation.embeddings import ProjectItems, load_items, project_vectors

if TYPE_CHECKING:
    from curation.embeddings import Progress
    from curation.models import User
    from sqlalchemy.engine import Engine


K_NEIGHBOURS = 10


@dataclass(frozen=True)
class LabelIssue:
    example_id: int
    external_id: str
    text: str
    given_label: str
    predicted_label: str  # the classifier's most likely label (out of sample)
    given_probability: float  # out-of-sample probability of the given label
    knn_disagreement: float  # share of the k nearest labelled items with another label
    neighbour_label: str  # the most common label among those neighbours
    flagged_by_cleanlab: bool
    score: float


@dataclass
class LabelIssueReport:
    project_id: int
    fingerprint: str
    labelled: int
    issues: list[LabelIssue] = field(default_factory=list)  # every scored item, highest score first
    skipped_labels: list[str] = field(default_factory=list)
    folds: int = 0

    @property
    def flagged(self) -> list[LabelIssue]:
        """The suspected errors: items cleanlab flags, and items whose neighbours mostly carry another
        label that the classifier also prefers (both signals agree)."""
        return [
            i
            for i in self.issues
            if i.flagged_by_cleanlab or (i.knn_disagreement > 0.5 and i.predicted_label != i.given_label)
        ]

    def to_dict(self, limit: int | None = None) -> dict[str, Any]:
        flagged = self.flagged
        return {
            "project_id": self.project_id,
            "fingerprint": self.fingerprint,
            "labelled": self.labelled,
            "folds": self.folds,
            "skipped_labels": self.skipped_labels,
            "suspected": len(flagged),
            "issues": [
                {
                    "example_id": i.example_id,
                    "id": i.external_id,
                    "given_label": i.given_label,
                    "predicted_label": i.predicted_label,
                    "given_probability": round(i.given_probability, 4),
                    "knn_disagreement": round(i.knn_disagreement, 4),
                    "neighbour_label": i.neighbour_label,
                    "cleanlab": i.flagged_by_cleanlab,
                    "score": round(i.score, 4),
                    "text": i.text,
                }
                for i in flagged[:limit]
            ],
        }


def out_of_sample_probabilities(
    vectors: np.ndarray, labels: np.ndarray, *, folds: int = 5, seed: int = 0
) -> tuple[np.ndarray, int]:
    """(n x classes) probabilities from stratified k-fold cross-validation of a logistic regression,
    and the number of folds used (at most the smallest class size)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold, cross_val_predict

    smallest = int(np.bincount(labels).min())
    folds = max(2, min(folds, smallest))
    model = LogisticRegression(max_iter=1000, C=10.0)
    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    return cross_val_predict(model, vectors, labels, cv=splitter, method="predict_proba"), folds


def knn_disagreement(
    vectors: np.ndarray, labels: np.ndarray, k: int = K_NEIGHBOURS
) -> tuple[np.ndarray, np.ndarray]:
    """For each row: the share of its k nearest other rows (cosine) with another label, and the most
    common label among them."""
    n = len(vectors)
    k = max(1, min(k, n - 1))
    share = np.zeros(n)
    majority = np.zeros(n, dtype=np.int64)
    for start in range(0, n, 2048):
        sims = vectors[start : start + 2048] @ vectors.T
        for row in range(len(sims)):
            sims[row, start + row] = -np.inf
        nearest = np.argpartition(-sims, k - 1, axis=1)[:, :k]
        neighbour_labels = labels[nearest]
        own = labels[start : start + len(sims)][:, None]
        share[start : start + len(sims)] = (neighbour_labels != own).mean(axis=1)
        majority[start : start + len(sims)] = [np.bincount(row).argmax() for row in neighbour_labels]
    return share, majority


def label_issue_report(
    items: ProjectItems, vectors: np.ndarray, *, folds: int = 5, k: int = K_NEIGHBOURS, seed: int = 0
) -> LabelIssueReport:
    """Score every labelled item of `items` (vectors: their unit embeddings, row for row)."""
    from cleanlab.filter import find_label_issues

    report = LabelIssueReport(items.project_id, items.fingerprint, 0)
    counts = Counter(label for label in items.labels if label)
    report.skipped_labels = sorted(label for label, n in counts.items() if n < 2)
    classes = sorted(label for label, n in counts.items() if n >= 2)
    rows = [i for i, label in enumerate(items.labels) if label in classes]
    report.labelled = len(rows)
    if len(classes) < 2 or len(rows) < 4:
        return report
    index = {label: c for c, label in enumerate(classes)}
    y = np.array([index[items.labels[i]] for i in rows])
    x = vectors[rows]
    probs, report.folds = out_of_sample_probabilities(x, y, folds=folds, seed=seed)
    flagged = find_label_issues(labels=y, pred_probs=probs, filter_by="prune_by_noise_rate")
    share, majority = knn_disagreement(x, y, k)
    given = probs[np.arange(len(y)), y]
    scores = 0.5 * (1 - given) + 0.5 * share
    for j in np.argsort(-scores, kind="stable"):
        i = rows[j]
        report.issues.append(
            LabelIssue(
                example_id=items.ids[i],
                external_id=items.external_ids[i],
                text=items.texts[i],
                given_label=classes[y[j]],
                predicted_label=classes[int(probs[j].argmax())],
                given_probability=float(given[j]),
                knn_disagreement=float(share[j]),
                neighbour_label=classes[int(majority[j])],
                flagged_by_cleanlab=bool(flagged[j]),
                score=float(scores[j]),
            )
        )
    return report


def find_label_issues_in_project(
    engine: Engine, actor: User, project_id: int, model: str | None = None, *, progress: Progress | None = None
) -> LabelIssueReport:
    """Suspected label errors among the project's labelled examples (leads)."""
    from curation.auth import LEADS, require_role

    require_role(actor, *LEADS)
    items = load_items(engine, actor, project_id)
    keep = [i for i, label in enumerate(items.labels) if label]
    vectors = project_vectors(items, model, progress=progress) if keep else np.zeros((len(items), 0))
    return label_issue_report(items, vectors)


def send_to_rereview(
    engine: Engine, actor: User, project_id: int, issues: Sequence[LabelIssue], reason: str = ""
) -> int:
    """Send suspected items back to expert review (`curation.queue.request_rereview`): each gets its
    suspicion score as queue priority and goes to the leads' adjudication queue. Audited there."""
    from curation.queue import request_rereview

    reason = reason or "suspected label error (cleanlab / kNN disagreement)"
    return request_rereview(engine, actor, project_id, {i.example_id: i.score for i in issues}, reason)
