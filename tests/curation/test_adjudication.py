"""Adjudication (curation.adjudication) and the review CLI commands: the disagreement queue, every
label with its annotator, settling with a reason, relabelling, excluding and including, the
long-format export, and the audit trail of each decision."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.engine import Engine

from curation.access.audit import EventFilter, example_history, query_events
from curation.cli.main import main
from curation.db import read_session
from curation.errors import Conflict, InputError
from curation.models import Adjudication, ExampleStatus, FinalLabelRule, TaskType, User
from curation.review.adjudication import (
    adjudicate,
    adjudication_queue,
    adjudication_queue_size,
    annotation_rows,
    example_detail,
    exclude_example,
    export_annotations,
    include_example,
)
from curation.review.annotate import submit_annotation, update_annotation
from tests.curation.test_review_queue import example_ids, fast_passwords, get_example, make_project, users

__all__ = ["fast_passwords"]


def _disputed_world(engine: Engine, admin: User, lead: User):  # type: ignore[no-untyped-def]
    """k=3, unanimous: item 0 agrees, item 1 splits 2-1, item 2 three ways, item 3 has 2 labels."""
    project = make_project(engine, lead, 4, k=3, rule=FinalLabelRule.unanimous)
    a, b, c = users(engine, admin, "ana", "ben", "cy")
    ids = example_ids(engine, project)
    votes = {ids[0]: ["billing"] * 3, ids[1]: ["billing", "billing", "refund"],
             ids[2]: ["billing", "refund", "shipping"], ids[3]: ["refund", "shipping"]}
    for example_id, labels in votes.items():
        for person, label in zip((a, b, c), labels, strict=False):
            submit_annotation(engine, person, example_id, label=label,
                              comment=f"{person.username} thinks {label}")
    return project, ids, (a, b, c)


def test_queue_holds_disputed_items_most_disputed_first(engine: Engine, admin: User, lead: User) -> None:
    project, ids, _ = _disputed_world(engine, admin, lead)
    queue = adjudication_queue(engine, lead, project.id)
    assert [item.example_id for item in queue] == [ids[2], ids[1]]
    assert queue[0].votes == {"billing": 1, "refund": 1, "shipping": 1}
    assert queue[0].disagreement == pytest.approx(2 / 3) and queue[1].disagreement == pytest.approx(1 / 3)
    assert adjudication_queue_size(engine, lead, project.id) == 2
    assert adjudication_queue(engine, lead, project.id, limit=1)[0].example_id == ids[2]


def test_detail_shows_every_label_with_annotator_and_comment(engine: Engine, admin: User, lead: User) -> None:
    project, ids, _ = _disputed_world(engine, admin, lead)
    detail = example_detail(engine, lead, ids[2])
    assert [(v.annotator, v.annotation.label, v.annotation.comment) for v in detail.annotations] == [
        ("ana", "billing", "ana thinks billing"), ("ben", "refund", "ben thinks refund"),
        ("cy", "shipping", "cy thinks shipping")]
    assert detail.example.status == ExampleStatus.disputed and detail.project.id == project.id


def test_settling_a_dispute_needs_a_reason_and_is_audited(engine: Engine, admin: User, lead: User) -> None:
    project, ids, (a, _, _) = _disputed_world(engine, admin, lead)
    with pytest.raises(InputError, match="give a reason"):
        adjudicate(engine, lead, ids[2], final_label="refund", reason="  ")
    with pytest.raises(InputError, match="one of the project's labels"):
        adjudicate(engine, lead, ids[2], final_label="spam", reason="x")
    with pytest.raises(InputError, match="not a response"):
        adjudicate(engine, lead, ids[2], final_response="text", reason="x")
    settled = adjudicate(engine, lead, ids[2], final_label="refund", reason="asks for the money back")
    assert (settled.status, settled.final_label) == (ExampleStatus.labelled, "refund")
    assert [i.example_id for i in adjudication_queue(engine, lead, project.id)] == [ids[1]]
    history = example_history(engine, lead, ids[2])
    assert [row.event.action for row in history] == ["annotation.create"] * 3 + ["example.adjudicate"]
    assert history[-1].actor == "lena"
    assert history[-1].event.before["status"] == "disputed"
    assert history[-1].event.after == {"status": "labelled", "final_label": "refund", "final_response": None,
                                       "exclusion_reason": None, "reason": "asks for the money back"}
    # The lead's decision stands when an annotator changes their label afterwards.
    mine = example_detail(engine, lead, ids[2]).annotations[0].annotation
    update_annotation(engine, a, mine.id, mine.row_version, label="shipping")
    assert get_example(engine, ids[2]).final_label == "refund"


def test_leads_relabel_any_item(engine: Engine, admin: User, lead: User) -> None:
    project, ids, _ = _disputed_world(engine, admin, lead)
    assert get_example(engine, ids[0]).final_label == "billing"  # agreed: final by the rule
    adjudicate(engine, lead, ids[0], final_label="shipping", reason="the guideline says shipping")
    adjudicate(engine, lead, ids[3], final_label="refund", reason="clear enough")  # not even k labels yet
    assert (get_example(engine, ids[0]).final_label, get_example(engine, ids[3]).status) == (
        "shipping", ExampleStatus.labelled)
    with read_session(engine) as session:
        assert len(session.execute(select(Adjudication)).all()) == 2
    assert len(example_detail(engine, lead, ids[0]).adjudications) == 1


def test_exclude_and_include_again(engine: Engine, admin: User, lead: User) -> None:
    project, ids, _ = _disputed_world(engine, admin, lead)
    with pytest.raises(InputError, match="must be one of"):
        exclude_example(engine, lead, ids[1], "boring")
    with pytest.raises(InputError, match="say why"):
        exclude_example(engine, lead, ids[1], "other")
    excluded = exclude_example(engine, lead, ids[1], "personal_data", "phone number in the text")
    assert (excluded.status, excluded.exclusion_reason) == (ExampleStatus.excluded,
                                                            "personal_data: phone number in the text")
    assert adjudication_queue_size(engine, lead, project.id) == 1
    with pytest.raises(Conflict, match="already excluded"):
        exclude_example(engine, lead, ids[1], "off_task")
    with pytest.raises(InputError, match="give a reason"):
        include_example(engine, lead, ids[1], "")
    back = include_example(engine, lead, ids[1], "the number is the shop's")
    assert (back.status, back.exclusion_reason) == (ExampleStatus.disputed, None)  # from its labels again
    with pytest.raises(Conflict, match="not excluded"):
        include_example(engine, lead, ids[1], "again")
    actions = [row.event.action for row in query_events(engine, lead, EventFilter(entity="example",
                                                                                   entity_id=ids[1]))]
    assert actions[:2] == ["example.include", "example.exclude"]  # newest first


def test_generation_disputes_are_settled_with_a_response(engine: Engine, admin: User, lead: User) -> None:
    project = make_project(engine, lead, 1, k=2, task=TaskType.generation)
    a, b = users(engine, admin, "ana", "ben")
    only = example_ids(engine, project)[0]
    submit_annotation(engine, a, only, response="Short reply.", rating=2)
    submit_annotation(engine, b, only, response="A longer, kinder reply.", rating=3)
    (item,) = adjudication_queue(engine, lead, project.id)
    assert item.votes == {"Short reply.": 1, "A longer, kinder reply.": 1}
    with pytest.raises(InputError, match="not a label"):
        adjudicate(engine, lead, only, final_label="billing", reason="x")
    settled = adjudicate(engine, lead, only, final_response="A longer, kinder reply.\r\n", reason="kinder")
    assert (settled.status, settled.final_response) == (ExampleStatus.labelled, "A longer, kinder reply.")


def test_long_format_export(engine: Engine, admin: User, lead: User, tmp_path: Path) -> None:
    project, ids, _ = _disputed_world(engine, admin, lead)
    rows = list(annotation_rows(engine, lead, project.id))
    assert len(rows) == 11
    assert set(rows[0]) >= {"item", "annotator", "label", "time"}
    assert (rows[0]["item"], rows[0]["annotator"], rows[0]["label"]) == ("T-001", "ana", "billing")
    out = tmp_path / "labels.csv"
    assert export_annotations(engine, lead, project.id, out) == 11
    with out.open(encoding="utf-8") as handle:
        table = list(csv.DictReader(handle))
    assert [(r["item"], r["annotator"], r["label"]) for r in table] == [
        (r["item"], r["annotator"], r["label"]) for r in rows]
    assert all(r["time"] for r in table)
    jsonl = tmp_path / "labels.jsonl"
    assert export_annotations(engine, lead, project.id, jsonl, "jsonl") == 11
    assert json.loads(jsonl.read_text().splitlines()[-1])["comment"] == "ben thinks shipping"
    with pytest.raises(InputError, match="format must be one of"):
        export_annotations(engine, lead, project.id, tmp_path / "x.xml", "xml")


# --------------------------------------------------------------------------- CLI


def test_cli_review_commands(engine: Engine, admin: User, lead: User, tmp_path: Path,
                             capsys: pytest.CaptureFixture[str]) -> None:
    project, ids, _ = _disputed_world(engine, admin, lead)
    name = project.name
    assert main(["adjudication", "--project", name]) == 0
    assert capsys.readouterr().out.strip() == f"{name}: 2 items wait for adjudication"
    assert main(["adjudication", "--project", name, "--list", "1", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["disputed"] == 2 and report["most_disputed"][0]["example_id"] == ids[2]

    assert main(["--user", "lena", "annotations", "--project", name, "--out", str(tmp_path / "a.csv")]) == 0
    assert capsys.readouterr().err.strip() == f"11 annotations -> {tmp_path / 'a.csv'} (csv)"
    assert main(["annotations", "--project", name, "--out", "-"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("item,example_id,annotator,label,time") and len(lines) == 12

    users(engine, admin, "dee")
    assert main(["--user", "lena", "assign", "--project", name, "--annotator", "dee", "--count", "5"]) == 0
    assert capsys.readouterr().out.strip() == f"assigned 1 items of {name} to dee for 7 days"
    assert main(["queue", "--project", name, "--order", "suspected_first", "--json"]) == 0
    stats = json.loads(capsys.readouterr().out)
    assert (stats["queue_order"], stats["needs_labels"], stats["live_leases"]) == ("suspected_first", 1, 1)

    assert main(["users", "set", "dee", "--role", "lead"]) == 0
    assert capsys.readouterr().out.strip() == "dee: lead, active"
    assert main(["users", "set", "dee", "--inactive"]) == 0
    assert capsys.readouterr().out.strip() == "dee: lead, inactive"
    assert main(["users", "set", "dee"]) == 2
    assert "say what to change" in capsys.readouterr().err


def test_cli_refuses_annotators(engine: Engine, admin: User, lead: User, annotator: User,
                                capsys: pytest.CaptureFixture[str]) -> None:
    project = make_project(engine, lead, 1)
    for command, needs in ((["adjudication", "--project", project.name], "lead or admin"),
                           (["queue", "--project", project.name], "lead or admin"),
                           (["annotations", "--project", project.name, "--out", "-"], "lead or admin"),
                           (["assign", "--project", project.name, "--annotator", "anna"], "lead or admin"),
                           (["users", "set", "lena", "--role", "annotator"], "admin")):
        assert main(["--user", "anna", *command]) == 2
        assert capsys.readouterr().err.strip() == f"error: User 'anna' is annotator; this needs {needs}."
