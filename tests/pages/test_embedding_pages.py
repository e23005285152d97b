"""AppTest of the embedding pages: Duplicates, Label issues, Diversity, Split leakage. Vectors are put
into the embedding cache up front (EMBEDDING_MODEL=test-vectors), so no model loads; the background-job
panel is driven through its job file."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sqlalchemy.engine import Engine
from sqlmodel import select
from streamlit.testing.v1 import AppTest

from curation.data.formats import open_table
from curation.data.importer import import_table
from curation.data.mapping import ColumnMapping
from curation.data.projects import create_project
from curation.db import read_session
from curation.embeddings.encode import read_project_items
from curation.embeddings.jobs import RUNNING, job_path, write_job
from curation.models import Example, User
from curation.settings import get_settings
from tests.curation.embedding_helpers import fill_cache, labelled_clusters, unit
from tests.pages.helpers import by_label, by_label_prefix, logged_in, markup_values, no_exception, values

IMG = "<img src=x onerror=alert(1)>"


@pytest.fixture(autouse=True)
def test_vectors(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EMBEDDING_MODEL", "test-vectors")
    get_settings.cache_clear()


def _import(
    engine: Engine, lead: User, tmp_path: Path, name: str, rows: list[dict[str, Any]], labels: list[str]
) -> int:
    project = create_project(engine, lead, name, labels=labels)
    path = tmp_path / f"{name}.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    split = "split" if "split" in rows[0] else None
    import_table(
        engine,
        lead,
        open_table(path),
        ColumnMapping(id=["id"], text="text", label="label", split=split, metadata=[]),
        name,
    )
    assert project.id is not None
    return project.id


def _dups(engine: Engine, lead: User, tmp_path: Path) -> int:
    texts = ["card lost", "card lost!!", IMG, IMG.upper(), "refund", "pin", "limits", "fees"]
    labels = ["billing", "shipping", "billing", "billing", "shipping", "billing", "shipping", "billing"]
    project_id = _import(
        engine,
        lead,
        tmp_path,
        "Dups",
        [{"id": f"d{i}", "text": t, "label": lab} for i, (t, lab) in enumerate(zip(texts, labels))],
        ["billing", "shipping"],
    )
    rng = np.random.default_rng(0)
    vectors = unit(rng.normal(size=(len(texts), 32)))
    vectors[1] = unit(vectors[0] + 0.05 * rng.normal(size=32))
    vectors[3] = vectors[2]
    fill_cache(texts, vectors)
    return project_id


def _open(page: str, title: str, user: str = "lena", password: str = "lead-password") -> AppTest:
    at = logged_in(user, password)
    at.switch_page(page).run()
    no_exception(at)
    assert values(at.title) == [title]
    return at


def _metric(at: AppTest, label: str) -> str:
    return str(by_label(at.metric, label).value)


def test_duplicates_page_groups_conflicts_and_exclusion(engine: Engine, lead: User, tmp_path: Path) -> None:
    _dups(engine, lead, tmp_path)
    at = _open("pages/duplicates.py", "Duplicates")
    assert (_metric(at, "Duplicate groups"), _metric(at, "Groups with conflicting labels")) == ("2", "1")
    assert any("conflicting labels: billing, shipping" in c for c in values(at.caption))
    assert IMG in values(at.text) and IMG not in markup_values(at)  # dataset text stays literal
    with read_session(engine) as session:
        ids = {e.external_id: e.id for e in session.exec(select(Example)).all()}
    by_label(at.button, f"Keep #{ids['d2']}, exclude the rest").click().run()
    no_exception(at)
    assert _metric(at, "Duplicate groups") == "1"
    assert any(f"excluded #{ids['d3']} as duplicates of #{ids['d2']}" in s for s in values(at.success))
    with read_session(engine) as session:
        gone = session.get(Example, ids["d3"])
    assert gone.status == "excluded" and gone.exclusion_reason == f"duplicate: duplicate of #{ids['d2']}"

    # The threshold slider: at 1.0 only exact copies group (none left).
    by_label(at.slider, "Near-duplicate threshold (cosine)").set_value(1.0).run()
    assert _metric(at, "Duplicate groups") == "0"


def test_a_large_duplicate_group_shows_a_few_members_and_excludes_all(engine: Engine, lead: User,
                                                                      tmp_path: Path) -> None:
    """Eleven paraphrases in one group: eight are shown (the suggested keep among them), the rest are
    counted, and keeping one excludes all ten others."""
    rng = np.random.default_rng(3)
    base = unit(rng.normal(size=16))
    vectors = np.stack([unit(base + 0.01 * rng.normal(size=16)) for _ in range(11)])
    texts = [f"where is my card, version {i}" for i in range(11)]
    _import(engine, lead, tmp_path, "Big", [{"id": f"p{i}", "text": t, "label": "card"} for i, t in enumerate(texts)],
            ["card", "other"])
    fill_cache(texts, vectors)
    at = _open("pages/duplicates.py", "Duplicates")
    assert _metric(at, "Duplicate groups") == "1"
    assert "... and 3 more examples in this group (excluded with the rest when you keep one)." in values(at.caption)
    keep = by_label(at.radio, "Keep")
    assert len(keep.options) == 8
    by_label(at.button, f"Keep {keep.options[0]}, exclude the rest").click().run()
    no_exception(at)
    with read_session(engine) as session:
        statuses = [e.status for e in session.exec(select(Example)).all()]
    assert statuses.count("excluded") == 10


def test_duplicates_bulk_keeps_conflicts_for_a_person(engine: Engine, lead: User, tmp_path: Path) -> None:
    _dups(engine, lead, tmp_path)
    at = _open("pages/duplicates.py", "Duplicates")
    by_label(at.button, "Keep one per group, exclude the rest").click().run()
    no_exception(at)
    assert "Excluded 1 duplicates." in values(at.success)
    assert (_metric(at, "Duplicate groups"), _metric(at, "Groups with conflicting labels")) == ("1", "1")


def test_missing_embeddings_go_to_the_background_job(
    engine: Engine, lead: User, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import ui.embedding

    project_id = _dups(engine, lead, tmp_path)
    monkeypatch.setattr(ui.embedding, "INLINE_MAX", 0)
    path = tmp_path / "new.jsonl"
    path.write_text(json.dumps({"id": "n1", "text": "a brand new text", "label": "billing"}) + "\n")
    import_table(
        engine,
        lead,
        open_table(path),
        ColumnMapping(id=["id"], text="text", label="label", metadata=[]),
        "Dups",
    )
    at = _open("pages/duplicates.py", "Duplicates")
    assert any("1 of 9 texts have no embedding yet" in w for w in values(at.warning))
    assert by_label(at.button, "Embed in the background") is not None
    assert not at.metric  # no results computed on incomplete data
    # A running job (as after a reload): the page reattaches to its progress from the job file.
    write_job(
        job_path(project_id), {"status": RUNNING, "done": 4, "total": 9, "pid": os.getpid(), "error": None}
    )
    at.run()
    no_exception(at)
    assert any("a background job is embedding them" in i for i in values(at.info))
    assert not at.metric


def test_label_issues_page_sends_suspects_back(engine: Engine, lead: User, tmp_path: Path) -> None:
    labels_set = ["billing", "shipping", "refund"]
    vectors, labels = labelled_clusters(12, labels_set, seed=3)
    flips = {0: "shipping", 13: "refund", 26: "billing"}
    labels = [flips.get(i, label) for i, label in enumerate(labels)]
    texts = [f"ticket {i}" for i in range(len(labels))]
    _import(
        engine,
        lead,
        tmp_path,
        "Flips",
        [{"id": f"f{i}", "text": t, "label": lab} for i, (t, lab) in enumerate(zip(texts, labels))],
        labels_set,
    )
    fill_cache(texts, vectors)
    at = _await_scoring(_open("pages/label_issues.py", "Label issues"))
    assert _metric(at, "Labelled examples scored") == "36"
    suspected = int(_metric(at, "Suspected label errors"))
    table = at.dataframe[0].value
    assert {"f0", "f13", "f26"} <= set(table["id"])
    assert {"proposed", "confidence"} <= set(table.columns)
    assert table.set_index("id").loc["f0", "proposed"] == "billing"  # f0 was billing before the flip
    by_label_prefix(at.button, "Send all").click().run()
    no_exception(at)
    assert any(f"Sent {suspected} items back for re-review (the leads' adjudication queue" in s
               for s in values(at.success))
    _await_scoring(at)  # the labels changed: the rest is scored again in the background
    with read_session(engine) as session:
        disputed = session.exec(select(Example).where(Example.status == "disputed")).all()
    assert len(disputed) == suspected and all(e.priority is not None for e in disputed)
    assert _metric(at, "Labelled examples scored") == str(36 - suspected)  # recomputed on the new data
    assert _metric(at, "Waiting for re-review") == str(suspected)
    # The Adjudication page lists them, highest suspicion first, with the evidence.
    adj = _open("pages/adjudicate.py", "Adjudication")
    queue = adj.dataframe[0].value
    assert len(queue) == suspected and list(queue["suspicion"]) == sorted(queue["suspicion"], reverse=True)
    assert set(queue["id"]) >= {"f0", "f13", "f26"}
    assert "billing" in set(queue.set_index("id").loc[["f0"], "proposed"])


def test_label_issues_page_shows_expert_decisions_apart(engine: Engine, lead: User, tmp_path: Path) -> None:
    from curation.review.adjudication import adjudicate

    labels_set = ["billing", "shipping", "refund"]
    vectors, labels = labelled_clusters(12, labels_set, seed=3)
    flips = {0: "shipping", 13: "refund", 26: "billing"}
    labels = [flips.get(i, label) for i, label in enumerate(labels)]
    texts = [f"ticket {i}" for i in range(len(labels))]
    project_id = _import(engine, lead, tmp_path, "Flips",
                         [{"id": f"f{i}", "text": t, "label": lab} for i, (t, lab) in enumerate(zip(texts, labels))],
                         labels_set)
    fill_cache(texts, vectors)
    with read_session(engine) as session:
        f0 = session.exec(select(Example).where(Example.external_id == "f0")).one()
    # A lead looked at f0 and kept its (flipped) label: the page shows it apart and does not count it.
    adjudicate(engine, lead, f0.id, final_label="shipping", reason="checked")
    at = _await_scoring(_open("pages/label_issues.py", "Label issues"))
    assert _metric(at, "Confirmed by experts") == "1"
    left = int(_metric(at, "Suspected label errors"))
    assert "f0" not in set(at.dataframe[1].value["id"]) and "f0" in set(at.dataframe[0].value["id"])
    by_label_prefix(at.button, "Send all").click().run()
    no_exception(at)
    assert any(f"Sent {left} items back" in s for s in values(at.success))
    with read_session(engine) as session:
        assert session.get(Example, f0.id).final_label == "shipping"  # the expert's decision stuck
    assert project_id


def test_label_issues_rows_are_chosen_by_clicking_them(engine: Engine, lead: User, tmp_path: Path) -> None:
    """Issue 14: the items to send are the rows selected in the table, not picked from a separate list."""
    labels_set = ["billing", "shipping", "refund"]
    vectors, labels = labelled_clusters(12, labels_set, seed=3)
    flips = {0: "shipping", 13: "refund", 26: "billing"}
    labels = [flips.get(i, label) for i, label in enumerate(labels)]
    texts = [f"ticket {i}" for i in range(len(labels))]
    _import(engine, lead, tmp_path, "Flips",
            [{"id": f"f{i}", "text": t, "label": lab} for i, (t, lab) in enumerate(zip(texts, labels))], labels_set)
    fill_cache(texts, vectors)
    at = _await_scoring(_open("pages/label_issues.py", "Label issues"))
    assert not [m for m in at.multiselect if m.label == "Items to send back to expert review"]
    assert by_label_prefix(at.button, "Send 0 selected").disabled
    table = at.dataframe[0]
    ids = table.value["id"].tolist()
    picked = [ids.index("f13"), ids.index("f26")]
    at.session_state[table.key] = {"selection": {"rows": picked, "columns": [], "cells": []}}
    at.run()
    no_exception(at)
    by_label(at.button, "Send 2 selected to re-review").click().run()
    no_exception(at)
    assert any("Sent 2 items back for re-review" in s for s in values(at.success))  # issue 13's message
    with read_session(engine) as session:
        disputed = session.exec(select(Example).where(Example.status == "disputed")).all()
    assert sorted(e.external_id for e in disputed) == ["f13", "f26"]
    _await_scoring(at)  # the labels changed: scored again
    assert by_label_prefix(at.button, "Send 0 selected").disabled  # the selection was cleared


def _await_background(at: AppTest, waiting: str, seconds: float = 180) -> AppTest:
    """Rerun while the page says `waiting` (a background task runs; polling a process, no timing asserted)."""
    import time

    deadline = time.monotonic() + seconds
    while any(waiting in v for v in values(at.info)):
        assert time.monotonic() < deadline, values(at.info)
        time.sleep(0.5)
        at.run()
        no_exception(at)
    assert not at.error, values(at.error)
    return at


def _await_scoring(at: AppTest) -> AppTest:
    return _await_background(at, "Scoring the labelled examples in the background")


def test_label_issues_score_in_a_background_task_with_progress(engine: Engine, lead: User, tmp_path: Path) -> None:
    """The page never scores in its script: it starts the task, shows the task file's progress (the same
    after a reload), and shows the report once the task is done."""
    from curation.embeddings.label_issues_job import label_issues_key, label_issues_path
    from curation.embeddings.tasks import RUNNING as TASK_RUNNING
    from curation.embeddings.tasks import read_task

    labels_set = ["billing", "shipping", "refund"]
    vectors, labels = labelled_clusters(12, labels_set, seed=3)
    labels = [{0: "shipping"}.get(i, label) for i, label in enumerate(labels)]
    texts = [f"ticket {i}" for i in range(len(labels))]
    project_id = _import(engine, lead, tmp_path, "Flips",
                         [{"id": f"f{i}", "text": t, "label": lab} for i, (t, lab) in enumerate(zip(texts, labels))],
                         labels_set)
    fill_cache(texts, vectors)
    fingerprint = read_project_items(engine, project_id).fingerprint
    path = label_issues_path(project_id, fingerprint)
    # A scoring in progress (this process stands in for the worker, so it counts as alive).
    write_job(path, {"status": TASK_RUNNING, "key": label_issues_key(project_id, fingerprint), "pid": os.getpid(),
                     "started_at": 0, "updated_at": 0, "done": 2, "total": 5, "note": "cross-validation folds",
                     "error": None, "result": None})
    for at in (_open("pages/label_issues.py", "Label issues"), _open("pages/label_issues.py", "Label issues")):
        assert any("Scoring the labelled examples in the background" in v for v in values(at.info))
        bars = at.get("progress")
        assert [(b.proto.value, b.proto.text) for b in bars] == [(40, "cross-validation folds: 2/5")]
        assert not at.metric and not at.dataframe  # nothing scored in the page's script
    path.unlink()  # that worker is gone: the next visit starts the real one
    at = _open("pages/label_issues.py", "Label issues")
    state = read_task(path)
    assert state is not None and state["pid"] != os.getpid()  # a background process was started
    _await_scoring(at)
    assert read_task(path)["status"] == "done"
    assert _metric(at, "Labelled examples scored") == "36"
    assert "f0" in set(at.dataframe[0].value["id"])
    again = _open("pages/label_issues.py", "Label issues")  # a reload reads the finished report at once
    assert _metric(again, "Labelled examples scored") == "36"
    # New data (an expert decision) gets a new scoring; the stale report's file is deleted then.
    from curation.review.adjudication import adjudicate

    with read_session(engine) as session:
        f0 = session.exec(select(Example).where(Example.external_id == "f0")).one()
    adjudicate(engine, lead, f0.id, final_label="billing", reason="checked")
    _await_scoring(_open("pages/label_issues.py", "Label issues"))
    assert not path.exists()
    assert len(list(path.parent.glob(f"label-issues-{project_id}-*.json"))) == 1


def _await_diversity(at: AppTest) -> AppTest:
    return _await_background(at, "in the background")


def _map_spec(at: AppTest) -> dict:
    return json.loads(at.get("plotly_chart")[0].proto.spec)


def _points(spec: dict) -> int:
    """Points drawn over every trace (plotly sends large arrays as typed base64 data)."""
    import base64

    return sum(len(base64.b64decode(x["bdata"])) // np.dtype(x["dtype"]).itemsize if isinstance(x, dict) else len(x)
               for x in (trace["x"] for trace in spec["data"]))


def test_diversity_page(engine: Engine, lead: User, tmp_path: Path) -> None:
    vectors, labels = labelled_clusters(8, ["billing", "shipping"], spread=0.1, seed=1)
    texts = [f"{'invoice' if lab == 'billing' else 'parcel'} question {i}" for i, lab in enumerate(labels)]
    texts[0] = IMG
    _import(
        engine,
        lead,
        tmp_path,
        "Div",
        [{"id": f"v{i}", "text": t, "label": lab} for i, (t, lab) in enumerate(zip(texts, labels))],
        ["billing", "shipping"],
    )
    fill_cache(texts, vectors)
    at = _open("pages/diversity.py", "Diversity")
    # First open: the map and clusters are computed in the background, the page does not block.
    assert any("in the background" in v for v in values(at.info)) and not at.get("plotly_chart")
    _await_diversity(at)
    assert _metric(at, "Labels in use") == "2" and _metric(at, "Label balance") == "1.00"
    assert len(at.get("plotly_chart")) == 2
    spec = _map_spec(at)
    assert spec["layout"]["title"]["text"].endswith("map of 16 examples")
    assert _points(spec) == 16
    by_label(at.number_input, "Clusters (k-means)").set_value(2).run()
    _await_diversity(at)
    by_label(at.selectbox, "Colour by").set_value("cluster").run()  # display only: no recomputation
    no_exception(at)
    assert not any("in the background" in v for v in values(at.info))
    # A reload (a new session) or another lead reads the finished result at once.
    again = _open("pages/diversity.py", "Diversity")
    assert not any("in the background" in v for v in values(again.info))
    assert _metric(again, "Labels in use") == "2"
    clusters = at.dataframe[1].value
    assert sorted(clusters["size"]) == [8, 8] and set(clusters["label mix"]) == {"billing 8", "shipping 8"}
    assert IMG not in markup_values(at)


def test_leakage_page_finds_and_fixes_a_leak(engine: Engine, lead: User, tmp_path: Path) -> None:
    texts = [f"item {i}" for i in range(12)]
    _import(
        engine,
        lead,
        tmp_path,
        "Leaky",
        [
            {"id": f"l{i}", "text": t, "label": "ab"[i % 2], "split": "test" if i in (1, 4) else "train"}
            for i, t in enumerate(texts)
        ],
        ["a", "b"],
    )
    rng = np.random.default_rng(0)
    vectors = unit(rng.normal(size=(12, 16)))
    vectors[1] = unit(vectors[0] + 0.02 * rng.normal(size=16))
    fill_cache(texts, vectors)
    at = _open("pages/leakage.py", "Split leakage")
    assert "1 eval item duplicates a train item." in values(at.error)
    assert any("0 leaks in this split" in c for c in values(at.caption))
    by_label(at.button, "Apply this split to the examples").click().run()
    no_exception(at)
    assert "Split applied to 12 examples." in values(at.success)
    assert "No eval item duplicates a train item at this threshold." in values(at.success)


@pytest.mark.parametrize(
    "page", ["pages/duplicates.py", "pages/label_issues.py", "pages/diversity.py", "pages/leakage.py"]
)
def test_annotators_cannot_open(engine: Engine, annotator: User, page: str) -> None:
    at = logged_in("anna", "annotator-password")
    with pytest.raises(ValueError):  # not in an annotator's navigation
        at.switch_page(page)


def test_leakage_page_shows_duplicates_of_test_items(engine: Engine, lead: User, tmp_path: Path) -> None:
    from curation.versions import test_sets

    texts = [f"item {i}" for i in range(8)]
    project_id = _import(engine, lead, tmp_path, "Tested",
                         [{"id": f"x{i}", "text": t, "label": "ab"[i % 2]} for i, t in enumerate(texts)], ["a", "b"])
    rng = np.random.default_rng(1)
    vectors = unit(rng.normal(size=(8, 16)))
    vectors[5] = unit(vectors[2] + 0.02 * rng.normal(size=16))  # x5 nearly duplicates the test item x2
    fill_cache(texts, vectors)
    at = _open("pages/leakage.py", "Split leakage")
    assert any(i.startswith("The project has no test set yet") for i in values(at.info))
    test_set = test_sets.create_test_set(engine, lead, project_id)
    with read_session(engine) as session:
        x2 = session.exec(select(Example.id).where(Example.external_id == "x2")).one()
    test_sets.add_items(engine, lead, test_set.id, [x2])
    at = _open("pages/leakage.py", "Split leakage")
    assert any(e.startswith("1 test items are duplicated") for e in values(at.error))
    table = [d.value for d in at.dataframe if "test #" in d.value.columns][0]
    assert table["test #"].tolist() == [x2] and table["duplicate text"].tolist() == ["item 5"]
