"""Issue 12, items 4-5: the linear probe's suggestions (out-of-fold for items it trained on), the
active-learning queue orders that read them, why an item came next, and the CLI."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import select
from sqlalchemy.engine import Engine

from curation.cli.main import main
from curation.data.projects import create_project
from curation.db import read_session, write_session
from curation.embeddings.suggest import (
    PROBE_SOURCE,
    label_margins,
    probe_predictions,
    queue_reason,
    run_suggest,
)
from curation.errors import InputError, PermissionDenied
from curation.models import Example, Project, QueueOrder, Suggestion, User
from curation.review.queue import next_item, set_queue_order
from curation.review.sources import store_source_labels
from tests.curation.embedding_helpers import fill_cache, labelled_clusters

NOW = datetime(2026, 11, 29, tzinfo=timezone.utc)
LABELS = ["billing", "shipping", "refund"]


def test_probe_out_of_fold_prediction_contradicts_a_planted_wrong_label() -> None:
    x, y = labelled_clusters(20, LABELS, seed=3)
    targets: list[str | None] = list(y)
    targets[5] = "refund"  # a billing item labelled wrong
    targets[59] = None  # an unlabelled refund item
    labels, top, margin = probe_predictions(x, targets)
    assert labels[5] == "billing" and labels[59] == "refund"
    assert sum(a == b for a, b in zip(labels, y, strict=True)) >= 58
    assert np.all((top > 1 / 3) & (top <= 1)) and np.all((margin >= -1) & (margin <= top))
    assert margin[5] < 0 and margin[59] >= 0  # the wrong label is contradicted; the unlabelled item: top-2
    assert int(np.argmin(margin)) == 5
    with pytest.raises(InputError, match="at least two labels"):
        probe_predictions(x[:20], ["billing"] * 20)


def test_label_margins_measure_the_given_label_against_the_best_other() -> None:
    probs = np.array([[0.7, 0.2, 0.1],   # given billing: 0.7 - 0.2
                      [0.7, 0.2, 0.1],   # given shipping: contradicted, 0.2 - 0.7
                      [0.5, 0.3, 0.2],   # no label: top-2 margin 0.5 - 0.3
                      [0.6, 0.4, 0.0],   # a label the model does not know: 0 - 0.6
                      [0.45, 0.45, 0.1]])  # a tie at the top, given billing: 0.45 - 0.45
    margins = label_margins(probs, LABELS, ["billing", "shipping", None, "other", "billing"])
    assert np.allclose(margins, [0.5, -0.5, 0.2, -0.6, 0.0])
    assert label_margins(np.zeros((0, 3)), LABELS, []).shape == (0,)


def _project_with_vendor(engine: Engine, lead: User, tmp_path: Path) -> tuple[Project, list[str], list[str]]:
    """60 items in three clusters; the vendor's vote is wrong on items 0-3 (they say refund)."""
    x, truth = labelled_clusters(20, LABELS, spread=0.15, seed=1)
    texts = [f"item text {i}" for i in range(60)]
    fill_cache(texts, x)
    project = create_project(engine, lead, "AL", labels=LABELS, overlap_k=1)
    with write_session(engine) as session:
        for i, text in enumerate(texts):
            session.add(Example(project_id=project.id, external_id=f"e{i:02d}", text=text, content_hash=f"h{i}"))
    vendor = ["refund" if i < 4 else label for i, label in enumerate(truth)]
    with write_session(engine) as session:
        store_source_labels(session, session.get(Project, project.id), "vendor", "vote",
                            [(f"e{i:02d}", label, None) for i, label in enumerate(vendor)], None, NOW)
    return project, truth, vendor


def test_suggest_writes_probe_suggestions_and_the_queue_orders_read_them(engine: Engine, lead: User, admin: User,
                                                                         tmp_path: Path) -> None:
    project, truth, vendor = _project_with_vendor(engine, lead, tmp_path)
    report = run_suggest(engine, lead, project.id)
    assert (report.items, report.trained_on, report.labels) == (60, 60, 3)
    with read_session(engine) as session:
        rows = {e: (label, score, margin) for e, label, score, margin in session.execute(
            select(Example.external_id, Suggestion.label, Suggestion.score, Suggestion.margin)
            .join(Example, Example.id == Suggestion.example_id).where(Suggestion.source == PROBE_SOURCE))}
    assert len(rows) == 60
    assert [rows[f"e{i:02d}"][0] for i in range(4)] == truth[:4]  # out-of-fold: the vendor's errors are caught
    # The margin is the vendor label's: its four errors have the four lowest (negative) margins.
    assert sorted(sorted(rows, key=lambda e: rows[e][2])[:4]) == ["e00", "e01", "e02", "e03"]
    assert all(rows[f"e{i:02d}"][2] < 0 for i in range(4)) and all(r[2] >= 0 for e, r in rows.items() if e > "e03")

    # Disagreement order: exactly the four contradicted items first, most confident probe first.
    set_queue_order(engine, lead, project.id, QueueOrder.disagreement)
    served = []
    for _ in range(4):
        item = next_item(engine, lead, project.id)
        assert item is not None
        served.append(item.example.external_id)
        reason = queue_reason(engine, lead, item.example.id)
        assert reason.startswith(f"source vendor says refund, the probe says {truth[int(item.example.external_id[1:])]}")
        from curation.review.annotate import submit_annotation

        submit_annotation(engine, lead, item.example.id, label=truth[int(item.example.external_id[1:])])
    assert sorted(served) == ["e00", "e01", "e02", "e03"]
    assert served == sorted(served, key=lambda e: -rows[e][1])
    following = next_item(engine, lead, project.id)
    assert following is not None and following.example.external_id not in served  # then the plain order

    # Lowest margin: the smallest margin first.
    set_queue_order(engine, lead, project.id, QueueOrder.lowest_margin)
    anna = _annotator(engine, admin)
    item = next_item(engine, anna, project.id)
    assert item is not None
    open_rows = {e: r for e, r in rows.items() if e not in served}
    assert item.example.external_id == min(open_rows, key=lambda e: (open_rows[e][2], e))
    assert queue_reason(engine, lead, item.example.id).startswith("the probe is unsure: margin ")
    with pytest.raises(PermissionDenied):
        queue_reason(engine, anna, item.example.id)


def test_a_model_never_suggests_on_test_items(engine: Engine, lead: User, tmp_path: Path) -> None:
    from curation.models import TestSet

    project, _, _ = _project_with_vendor(engine, lead, tmp_path)
    with write_session(engine) as session:
        test_set = TestSet(project_id=project.id, name="test", created_by_id=lead.id)
        session.add(test_set)
        session.flush()
        for example in session.execute(select(Example).where(Example.external_id.in_(["e00", "e30"]))).scalars():
            example.test_set_id = test_set.id
    report = run_suggest(engine, lead, project.id)
    assert report.items == 58
    with read_session(engine) as session:
        suggested = set(session.execute(select(Example.external_id).join(
            Suggestion, Suggestion.example_id == Example.id)).scalars())
    assert len(suggested) == 58 and not suggested & {"e00", "e30"}


def _annotator(engine: Engine, admin: User) -> User:
    from curation.access.accounts import create_user
    from curation.models import Role

    return create_user(engine, admin, "anna2", Role.annotator, "annotator-password")


def test_cli_suggest_and_queue_order(engine: Engine, lead: User, tmp_path: Path,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    project, _, _ = _project_with_vendor(engine, lead, tmp_path)
    assert main(["--user", lead.username, "suggest", "--project", "AL"]) == 0
    assert capsys.readouterr().out.startswith("60 suggestions of model:probe written (probe trained on 60 items")
    assert main(["--user", lead.username, "queue", "--project", "AL", "--order", "lowest_margin"]) == 0
    assert "queue_order: lowest_margin" in capsys.readouterr().out
    assert main(["--user", lead.username, "suggest", "--project", "AL", "--run", "3"]) == 2
    assert "No training run with id 3." in capsys.readouterr().err  # the run variant: training's predictor
    with read_session(engine) as session:
        assert session.get(Project, project.id).queue_order == "lowest_margin"


def test_cluster_coverage_and_the_uncovered_clusters_order(engine: Engine, lead: User, tmp_path: Path) -> None:
    from curation.embeddings.suggest import cluster_coverage
    from curation.review.annotate import submit_annotation

    x, truth = labelled_clusters(20, LABELS, spread=0.15, seed=1)
    reviewed = np.array([i < 15 for i in range(60)])  # most of the billing cluster, nothing else
    coverage = cluster_coverage(x, reviewed)
    assert coverage.shape == (60,) and np.all((coverage >= 0) & (coverage <= 1))
    assert coverage[:20].mean() > 0.5 and coverage[20:].max() < 0.2

    project, truth, _ = _project_with_vendor(engine, lead, tmp_path)
    ids = {}
    with read_session(engine) as session:
        ids = dict(session.execute(select(Example.external_id, Example.id)
                                   .where(Example.project_id == project.id)).all())
    for i in range(15):  # experts label most of the billing cluster
        submit_annotation(engine, lead, ids[f"e{i:02d}"], label=truth[i])
    run_suggest(engine, lead, project.id)
    set_queue_order(engine, lead, project.id, QueueOrder.uncovered_clusters)
    item = next_item(engine, lead, project.id)
    assert item is not None and int(item.example.external_id[1:]) >= 20  # not the well-covered billing cluster
    assert queue_reason(engine, lead, item.example.id).startswith("its embedding cluster is little reviewed: ")
