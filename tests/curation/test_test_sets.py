"""Test sets: building (pick, sample, import), blind review through the queue, approval into an
immutable hashed version, verify, and no leakage into dataset versions (checklist row, approval refused)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.engine import Engine

from curation.access.accounts import create_user
from curation.data.formats import open_table
from curation.data.importer import import_table
from curation.data.mapping import ColumnMapping
from curation.db import read_session, write_session
from curation.errors import Conflict, PermissionDenied
from curation.models import Example, ExampleStatus, Role, User
from curation.review.annotate import submit_annotation
from curation.review.queue import next_item
from curation.versions import test_sets as ts
from curation.versions.approve import approve_version
from curation.versions.build import create_candidate
from curation.versions.records import version_items
from tests.conftest import BOTH_BACKENDS
from tests.curation.test_versions import EXACT, example_id, make_project


def _status(engine: Engine, external_id: str) -> Example:
    with read_session(engine) as session:
        return session.get(Example, example_id(engine, external_id))


@BOTH_BACKENDS
def test_picked_items_go_through_blind_review_then_freeze(engine: Engine, lead: User, annotator: User,
                                                          admin: User, tmp_path: Path) -> None:
    project_id = make_project(engine, lead, tmp_path)
    second = create_user(engine, admin, "olga", Role.annotator, "annotator-password")
    test_set = ts.create_test_set(engine, lead, project_id, "frozen")
    picked = [example_id(engine, e) for e in ("t003", "t004")]
    assert ts.add_items(engine, lead, test_set.id, picked) == 2
    # imported in one label column, without k reviews: back to the review queue, the label kept aside
    item = _status(engine, "t003")
    assert item.status == ExampleStatus.new and item.final_label is None
    assert item.meta["label_before_test"] == "shipping"
    with pytest.raises(Conflict, match="still wait for review"):
        ts.approve_test_set(engine, lead, test_set.id)
    for who in (annotator, second):
        served = set()
        while (got := next_item(engine, who, project_id)) is not None:
            served.add(got.example.external_id)
            submit_annotation(engine, who, got.example.id, label="billing" if got.example.external_id == "t004"
                              else "shipping")
            if served >= {"t003", "t004"}:
                break
        assert {"t003", "t004"} <= served  # the queue serves the test items
    version = ts.approve_test_set(engine, lead, test_set.id, note="expert labels")
    assert version.number == 1 and version.item_count == 2 and len(version.content_hash) == 64
    assert {i.external_id: i.label for i in ts.test_set_version_items(engine, version.id)} == \
        {"t003": "shipping", "t004": "billing"}
    assert ts.verify_test_set_version(engine, version.id).ok
    with pytest.raises(Conflict, match="Nothing changed"):
        ts.approve_test_set(engine, lead, test_set.id)
    # tampering is caught by verify
    with write_session(engine) as session:
        session.execute(text("update testsetitem set label = 'billing' where external_id = 't003'"))
    check = ts.verify_test_set_version(engine, version.id)
    assert not check.ok and "t003" in check.message
    # annotators cannot build test sets
    with pytest.raises(PermissionDenied):
        ts.create_test_set(engine, annotator, project_id, "mine")


@BOTH_BACKENDS
def test_dataset_versions_never_contain_test_items_or_their_duplicates(engine: Engine, lead: User,
                                                                       tmp_path: Path) -> None:
    project_id = make_project(engine, lead, tmp_path)
    test_set = ts.create_test_set(engine, lead, project_id)
    # t002 has an exact duplicate d002 in the project: planted in the training data
    with write_session(engine) as session:
        row = session.get(Example, example_id(engine, "t002"))
        row.test_set_id = test_set.id  # already reviewed: keep its label (k=1 project path)
        session.add(row)
    candidate = create_candidate(engine, lead, project_id, EXACT)
    ids = {item.external_id for item in version_items(engine, lead, candidate.id)}
    assert "t002" not in ids and "d002" in ids
    assert candidate.stats["left_out"]["test item"] == 1
    check = {i["key"]: i for i in candidate.checklist["items"]}["test_leakage"]
    assert check["status"] == "fail" and "d002" in check["detail"] and check["measured"] == 1.0
    with pytest.raises(Conflict, match="cannot be overridden"):
        approve_version(engine, lead, candidate.id, attest=True, override_reason="I really want this one")


def test_no_test_items_means_a_warning_not_a_pass(engine: Engine, lead: User, tmp_path: Path) -> None:
    project_id = make_project(engine, lead, tmp_path)
    candidate = create_candidate(engine, lead, project_id, EXACT)
    check = {i["key"]: i for i in candidate.checklist["items"]}["test_leakage"]
    assert check["status"] == "warn" and check["value"] == "no test set yet"


def test_stratified_sample_is_seeded_and_keeps_duplicate_groups_whole(engine: Engine, lead: User,
                                                                      tmp_path: Path) -> None:
    project_id = make_project(engine, lead, tmp_path)
    first = ts.create_test_set(engine, lead, project_id, "a")
    result = ts.sample_items(engine, lead, first.id, 10, seed=3, use_embeddings=False)
    assert 9 <= result["added"] <= 11 and {"billing", "shipping"} <= set(result["by_label"])
    assert abs(result["by_label"]["billing"] - result["by_label"]["shipping"]) <= 1  # stratified
    chosen = {e.external_id for e in ts.test_items(engine, first.id)}
    # exact duplicates t002/d002 go together or not at all
    assert ("t002" in chosen) == ("d002" in chosen)
    # the same seed on the same items draws the same sample
    twin = ts.create_test_set(engine, lead, make_project(engine, lead, tmp_path, name="Twin"), "a")
    again = ts.sample_items(engine, lead, twin.id, 10, seed=3, use_embeddings=False)
    assert {e.external_id for e in ts.test_items(engine, twin.id)} == chosen and again == result


def test_trained_items_cannot_become_test_items_and_import_marks_a_file(engine: Engine, lead: User,
                                                                        tmp_path: Path) -> None:
    project_id = make_project(engine, lead, tmp_path)
    version = create_candidate(engine, lead, project_id, EXACT)
    approve_version(engine, lead, version.id, attest=True, override_reason="test fixture: not all checks pass")
    test_set = ts.create_test_set(engine, lead, project_id)
    with pytest.raises(Conflict, match="already trained on"):
        ts.add_items(engine, lead, test_set.id, [example_id(engine, "t005")])
    path = tmp_path / "held.jsonl"
    path.write_text("".join(json.dumps({"id": f"h{i}", "text": f"held out question {i} about refunds",
                                        "source": "helpdesk", "licence": "CC0-1.0"}) + "\n" for i in range(3)))
    with read_session(engine) as session:
        name = session.execute(text("select name from project where id = :p"), {"p": project_id}).scalar_one()
    report = import_table(engine, lead, open_table(path), ColumnMapping(id=["id"], text="text", source="source",
                                                                        licence="licence", metadata=[]), name)
    assert ts.mark_import(engine, lead, test_set.id, report.import_id) == 3
    status = ts.test_set_status(engine, test_set.id)
    assert status.items == 3 and status.waiting == 3 and status.latest is None


def test_cli_create_approve_verify_show_list(engine: Engine, lead: User, tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    from curation.cli.main import main

    make_project(engine, lead, tmp_path)
    with write_session(engine) as session:  # a k=1 project: imported labels count as reviewed
        session.execute(text("update project set overlap_k = 1"))
        session.execute(text("insert into annotation (example_id, annotator_id, label, comment, flags, row_version, "
                             "created_at, updated_at) select id, :u, final_label, '', '[]', 1, created_at, created_at "
                             "from example where final_label is not null"), {"u": lead.id})
    assert main(["--user", "lena", "testset", "create", "--project", "Tickets", "--sample", "6", "--seed", "1",
                 "--labelled-only", "--no-embeddings", "--json"]) == 0
    created = json.loads(capsys.readouterr().out)
    assert created["items"] == created["added"] >= 5 and created["waiting_for_review"] == 0
    assert main(["--user", "lena", "testset", "approve", "--project", "Tickets", "--note", "v1"]) == 0
    assert "approved test set v1" in capsys.readouterr().out
    assert main(["--user", "lena", "testset", "list", "--project", "Tickets", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    version_id = listed[0]["versions"][0]["id"]
    assert listed[0]["versions"][0]["items"] == created["items"]
    assert main(["testset", "verify", str(version_id)]) == 0
    assert "matches" in capsys.readouterr().out
    assert main(["testset", "show", str(version_id), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["number"] == 1
    assert main(["--user", "lena", "testset", "approve", "--project", "Tickets"]) == 2
    assert "Nothing changed" in capsys.readouterr().err


def test_the_demo_ships_an_objective_and_an_approved_test_set(engine: Engine) -> None:
    from curation.data.bootstrap import DEMO_CLASSIFICATION, load_demo
    from curation.data.projects import get_project
    from curation.versions.build import BuildOptions

    load_demo(engine)
    project = get_project(engine, DEMO_CLASSIFICATION)
    assert project.objective["metric"] == "accuracy" and project.objective["before_review"] is True
    version = ts.latest_test_set_version(engine, project.id)
    assert version is not None and version.item_count >= 25 and ts.verify_test_set_version(engine, version.id).ok
    assert len(version.stats["labels"]) == len(project.labels)  # every label is in the test set
    from curation.access.accounts import get_user

    lead = get_user(engine, "lead")
    candidate = create_candidate(engine, lead, project.id, BuildOptions(use_embeddings=False))
    assert candidate.stats["left_out"]["test item"] == version.item_count
    check = {i["key"]: i for i in candidate.checklist["items"]}["test_leakage"]
    assert check["status"] == "pass" and check["value"] == "0 items"
