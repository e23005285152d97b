"""curation.quality: planted label flips on synthetic clusters are found; re-review sends them back."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy.engine import Engine
from sqlmodel import select

from curation.data.projects import create_project
from curation.db import read_session
from curation.embeddings.encode import ProjectItems
from curation.embeddings.quality import (
    find_label_issues_in_project,
    knn_disagreement,
    label_issue_report,
)
from curation.errors import PermissionDenied
from curation.models import AuditEvent, Example, User
from curation.review.rereview import send_for_rereview
from curation.settings import get_settings
from tests.curation.embedding_helpers import fill_cache, import_texts, labelled_clusters

LABELS = ["billing", "shipping", "refund", "access"]
NEXT = {"billing": "shipping", "shipping": "refund", "refund": "access", "access": "billing"}


def _flipped(n_per: int, flips: int, seed: int = 0) -> tuple[np.ndarray, list[str], set[int]]:
    vectors, labels = labelled_clusters(n_per, LABELS, seed=seed)
    rng = np.random.default_rng(seed + 1)
    planted = set(rng.choice(len(labels), flips, replace=False).tolist())
    return vectors, [NEXT[label] if i in planted else label for i, label in enumerate(labels)], planted


def _items(labels: list[str | None]) -> ProjectItems:
    n = len(labels)
    return ProjectItems(
        1,
        list(range(n)),
        [f"e{i}" for i in range(n)],
        [f"text {i}" for i in range(n)],
        labels,
        ["labelled"] * n,
        [None] * n,
        "fp",
    )


def test_planted_flips_recall() -> None:
    vectors, labels, planted = _flipped(50, 12)
    report = label_issue_report(_items(labels), vectors)
    flagged = {issue.example_id for issue in report.flagged}
    assert len(flagged & planted) / len(planted) >= 0.9
    assert len(flagged - planted) <= 6  # few false alarms
    top = {issue.example_id for issue in report.issues[: len(planted)]}
    assert len(top & planted) >= 10  # the planted flips rank first
    flip = next(i for i in report.issues if i.example_id in planted)
    assert flip.predicted_label != flip.given_label and flip.neighbour_label == flip.predicted_label


def test_knn_disagreement() -> None:
    x = np.array([[1, 0], [0.99, 0.14], [0, 1], [0.14, 0.99]], dtype=np.float32)
    share, majority = knn_disagreement(x, np.array([0, 1, 1, 1]), k=1)
    assert share.tolist() == [1.0, 1.0, 0.0, 0.0] and majority.tolist() == [1, 0, 1, 1]


def test_small_classes_are_left_out() -> None:
    vectors, labels = labelled_clusters(6, ["a", "b"])
    labels = [*labels, "lonely"]
    vectors = np.vstack([vectors, vectors[:1]])
    report = label_issue_report(_items(labels), vectors)
    assert report.skipped_labels == ["lonely"] and report.labelled == 12 and report.folds == 5


@pytest.fixture
def flipped_project(
    engine: Engine, lead: User, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> tuple[int, set[str]]:
    monkeypatch.setenv("EMBEDDING_MODEL", "test-vectors")
    get_settings.cache_clear()
    create_project(engine, lead, "Flips", labels=LABELS)
    vectors, labels, planted = _flipped(20, 5, seed=4)
    texts = [f"ticket number {i}" for i in range(len(labels))]
    import_texts(engine, lead, tmp_path, "Flips", texts, labels, prefix="f")
    fill_cache(texts, vectors)
    with read_session(engine) as session:
        project_id = session.exec(select(Example.project_id)).first()
    return int(project_id), {f"f{i}" for i in planted}


def test_rereview_sends_suspects_to_adjudication(
    engine: Engine, lead: User, annotator: User, flipped_project: tuple[int, set[str]]
) -> None:
    from curation.review.adjudication import adjudication_queue

    project_id, planted = flipped_project
    with pytest.raises(PermissionDenied):
        find_label_issues_in_project(engine, annotator, project_id)
    report = find_label_issues_in_project(engine, lead, project_id)
    suspects = report.flagged
    assert len({i.external_id for i in suspects} & planted) >= 4
    assert len(send_for_rereview(engine, lead, project_id, suspects).sent) == len(suspects)
    queued = {item.example_id for item in adjudication_queue(engine, lead, project_id)}
    with read_session(engine) as session:
        rows = session.exec(select(Example).where(Example.id.in_([i.example_id for i in suspects]))).all()
        events = session.exec(select(AuditEvent).where(AuditEvent.action == "example.rereview")).all()
    assert all(r.status == "disputed" and r.priority is not None and r.final_label is None for r in rows)
    assert len(events) == len(suspects)
    assert {r.id for r in rows} <= queued | {r.id for r in rows}  # disputed: in the adjudication queue
    # The report is recomputed on the changed data: the items sent back are no longer scored.
    again = find_label_issues_in_project(engine, lead, project_id)
    assert again.fingerprint != report.fingerprint
    assert not {i.example_id for i in again.issues} & {i.example_id for i in suspects}


def test_cli_label_issues_json(
    engine: Engine, lead: User, flipped_project: tuple[int, set[str]], capsys: pytest.CaptureFixture[str]
) -> None:
    from curation.cli.main import main

    assert main(["--user", "lena", "label-issues", "--project", "Flips", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["labelled"] == 80 and len({i["id"] for i in out["issues"]} & flipped_project[1]) >= 4


def test_a_report_survives_the_task_file() -> None:
    """The background task stores the report as JSON; the page reads back the same report."""
    import json

    from curation.embeddings.label_issues_job import report_from_result, report_to_result
    from curation.embeddings.quality import LabelIssue, LabelIssueReport

    issue = LabelIssue(example_id=7, external_id="x7", text="<b>t</b>", given_label="a", predicted_label="b",
                       given_probability=0.1, knn_disagreement=0.8, neighbour_label="b", flagged_by_cleanlab=True,
                       score=0.85, proposed_label="b", proposed_confidence=0.7, top_probabilities={"b": 0.9},
                       disagreeing_neighbours=[("x1", "b"), ("x2", "b")])
    report = LabelIssueReport(3, "fp", 40, [issue], ["rare"], 5)
    again = report_from_result(json.loads(json.dumps(report_to_result(report))))
    assert again == report and again.flagged == [issue]
