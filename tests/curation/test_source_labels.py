"""Issue 12, item 1: what an imported label means (final, vote of a source account, suggestion),
source accounts that never log in, source votes counting towards k or not, Label Studio predictions
as suggestions, and `import --create` taking the label set, k and rule."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import select, update
from sqlalchemy.engine import Engine

from curation.access.accounts import authenticate, hash_password
from curation.access.roles import require_role
from curation.cli.main import main
from curation.data.formats import open_table
from curation.data.importer import import_table
from curation.data.mapping import guess_mapping
from curation.db import read_session, write_session
from curation.errors import InputError, PermissionDenied
from curation.models import Example, Project, Role, Suggestion, User, UserKind
from curation.review.annotate import submit_annotation
from curation.review.queue import next_item
from tests.curation.test_io import annotations_of, status_of, table_counts, write_csv, write_jsonl

ROWS = [
    {"id": "a", "text": "where is my card", "label": "card", "conf": 0.9},
    {"id": "b", "text": "refund please", "label": "refund", "conf": 0.6},
    {"id": "c", "text": "card arrived broken", "label": "refund", "conf": 0.3},
]


def _import(engine: Engine, actor: User, path: Path, project: str, **kwargs: object):  # type: ignore[no-untyped-def]
    table = open_table(path)
    mapping = guess_mapping(table)
    if kwargs.pop("score", False):
        mapping.score = "conf"
    return import_table(engine, actor, table, mapping, project, create=True, **kwargs)  # type: ignore[arg-type]


def _project(engine: Engine, name: str) -> Project:
    with read_session(engine) as session:
        return session.execute(select(Project).where(Project.name == name)).scalars().one()


def test_labels_as_final_is_todays_behaviour_and_the_summary_warns(engine: Engine, lead: User, tmp_path: Path) -> None:
    report = _import(engine, lead, write_jsonl(tmp_path / "f.jsonl", ROWS), "p")
    assert report.final_labels == 3 and report.source_labels == 0
    assert "3 labels imported as final labels (experts will not review them)" in report.summary()
    assert status_of(engine, "p") == {"a": ("labelled", "card"), "b": ("labelled", "refund"),
                                      "c": ("labelled", "refund")}


def test_labels_as_votes_of_a_source_account_that_does_not_count_by_default(engine: Engine, lead: User,
                                                                           annotator: User, tmp_path: Path) -> None:
    report = _import(engine, lead, write_jsonl(tmp_path / "v.jsonl", ROWS), "p", labels_as="vote",
                     label_source="vendor-2024", labels=["refund", "card", "other"], overlap_k=1)
    assert "3 labels imported as votes of vendor-2024" in report.summary()
    assert report.annotators_created == ["vendor-2024"]
    project = _project(engine, "p")
    assert (project.labels, project.overlap_k) == (["refund", "card", "other"], 1)
    assert annotations_of(engine, "p") == {("a", "vendor-2024"): "card", ("b", "vendor-2024"): "refund",
                                           ("c", "vendor-2024"): "refund"}
    # Not counted: every item still waits for its one expert label, and the queue hands them out.
    assert status_of(engine, "p") == {"a": ("new", None), "b": ("new", None), "c": ("new", None)}
    item = next_item(engine, annotator, project.id)
    assert item is not None
    submit_annotation(engine, annotator, item.example.id, label="other")
    assert status_of(engine, "p")[item.example.external_id] == ("labelled", "other")
    # Importing again adds nothing.
    again = _import(engine, lead, write_jsonl(tmp_path / "v.jsonl", ROWS), "p", labels_as="vote",
                    label_source="vendor-2024")
    assert (again.source_labels, again.source_labels_skipped_existing) == (0, 3)


def test_source_votes_that_count_fill_a_slot(engine: Engine, lead: User, annotator: User, tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "v.jsonl", ROWS)
    _import(engine, lead, path, "p", labels_as="vote", label_source="vendor", labels=["card", "refund"], overlap_k=2)
    with write_session(engine) as session:
        session.execute(update(Project).values(source_votes_count=True))
    # A second import re-resolves nothing new; a fresh project shows the counting rule at import.
    _import(engine, lead, path, "q", labels_as="vote", label_source="vendor", labels=["card", "refund"], overlap_k=1)
    assert status_of(engine, "q") == {"a": ("new", None), "b": ("new", None), "c": ("new", None)}
    project = _project(engine, "p")
    assert project.source_votes_count
    item = next_item(engine, annotator, project.id)
    assert item is not None
    submit_annotation(engine, annotator, item.example.id, label="card")
    # k = 2: the source's vote and the annotator's fill both slots.
    expected = "labelled" if item.example.external_id == "a" else "disputed"
    assert status_of(engine, "p")[item.example.external_id][0] == expected


def test_labels_as_suggestions_with_scores(engine: Engine, lead: User, tmp_path: Path) -> None:
    report = _import(engine, lead, write_jsonl(tmp_path / "s.jsonl", ROWS), "p", labels_as="suggestion",
                     label_source="model-x", score=True)
    assert "3 labels imported as suggestions of model-x" in report.summary()
    assert annotations_of(engine, "p") == {}
    assert status_of(engine, "p") == {"a": ("new", None), "b": ("new", None), "c": ("new", None)}
    with read_session(engine) as session:
        rows = session.execute(select(Example.external_id, Suggestion.source, Suggestion.label, Suggestion.score)
                               .join(Example, Example.id == Suggestion.example_id).order_by(Example.external_id)).all()
        assert session.execute(select(User).where(User.username == "model-x")).first() is None
    assert [tuple(r) for r in rows] == [("a", "model-x", "card", 0.9), ("b", "model-x", "refund", 0.6),
                                        ("c", "model-x", "refund", 0.3)]


def test_bad_score_names_file_row_and_field_and_writes_nothing(engine: Engine, lead: User, tmp_path: Path) -> None:
    path = write_csv(tmp_path / "bad.csv", [["id", "text", "label", "conf"], ["a", "x", "card", "0.5"],
                                            ["b", "y", "card", "high"]])
    before = table_counts(engine)
    with pytest.raises(InputError) as error:
        _import(engine, lead, path, "p", labels_as="suggestion", label_source="m", score=True)
    assert str(error.value) == "bad.csv, row 2, field 'conf': 'high' is not a number"
    assert table_counts(engine) == before


def test_votes_need_a_source_and_a_person_cannot_be_one(engine: Engine, lead: User, annotator: User,
                                                        tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "v.jsonl", ROWS)
    with pytest.raises(InputError, match="need a source name"):
        _import(engine, lead, path, "p", labels_as="vote", label_source=" ")
    before = table_counts(engine)
    with pytest.raises(InputError, match="is a person's account, not a source"):
        _import(engine, lead, path, "p", labels_as="vote", label_source=annotator.username)
    assert table_counts(engine) == before


def test_a_source_account_can_never_log_in_or_act(engine: Engine, lead: User, tmp_path: Path) -> None:
    _import(engine, lead, write_jsonl(tmp_path / "v.jsonl", ROWS), "p", labels_as="vote", label_source="vendor")
    with write_session(engine) as session:  # even with a password set behind the product's back
        session.execute(update(User).where(User.username == "vendor").values(password_hash=hash_password("secret-pw1")))
    assert authenticate(engine, "vendor", "secret-pw1") is None
    with read_session(engine) as session:
        vendor = session.execute(select(User).where(User.username == "vendor")).scalars().one()
    assert vendor.kind == UserKind.source and vendor.role == Role.annotator
    with pytest.raises(PermissionDenied, match="source account"):
        require_role(vendor, Role.annotator, Role.lead, Role.admin)
    with pytest.raises(PermissionDenied):
        next_item(engine, vendor, _project(engine, "p").id)


def test_label_studio_predictions_become_suggestions(engine: Engine, lead: User, tmp_path: Path) -> None:
    tasks = [
        {"id": 11, "data": {"text": "refund please"},
         "predictions": [{"model_version": "v3", "score": 0.8,
                          "result": [{"type": "choices", "value": {"choices": ["refund"]}}]}],
         "annotations": [{"id": 1, "completed_by": 3, "result": [{"type": "choices",
                                                                   "value": {"choices": ["refund"]}}]}]},
        {"id": 12, "data": {"text": "app crashes"},
         "predictions": [{"model_version": "v3", "result": [{"type": "choices", "score": 0.4,
                                                              "value": {"choices": ["bug"]}}]}],
         "annotations": []},
    ]
    path = tmp_path / "ls.json"
    path.write_text(json.dumps(tasks), encoding="utf-8")
    table = open_table(path)
    report = import_table(engine, lead, table, guess_mapping(table), "ls", create=True, labels=["refund", "bug"])
    assert report.suggestions_from_predictions == 2
    assert "2 Label Studio predictions imported as suggestions" in report.summary()
    with read_session(engine) as session:
        rows = session.execute(select(Example.external_id, Suggestion.source, Suggestion.label, Suggestion.score)
                               .join(Example, Example.id == Suggestion.example_id).order_by(Example.external_id)).all()
    assert [tuple(r) for r in rows] == [("app crashes", "labelstudio:v3", "bug", 0.4),
                                        ("refund please", "labelstudio:v3", "refund", 0.8)]


def test_create_takes_label_set_k_and_rule_and_refuses_bad_ones(engine: Engine, lead: User, tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "v.jsonl", ROWS)
    _import(engine, lead, path, "p", labels=["refund", "card", "spare"], overlap_k=3, final_label_rule="unanimous")
    project = _project(engine, "p")
    assert (project.labels, project.overlap_k, project.final_label_rule) == (["refund", "card", "spare"], 3,
                                                                             "unanimous")
    with pytest.raises(InputError, match="unknown label 'card'"):
        _import(engine, lead, path, "q", labels=["refund"])
    with pytest.raises(InputError, match="names a label twice"):
        _import(engine, lead, path, "r", labels=["a", "a"])


def test_cli_import_labels_as_vote_and_create_options(engine: Engine, lead: User, tmp_path: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    path = write_jsonl(tmp_path / "v.jsonl", ROWS)
    code = main(["--user", lead.username, "import", str(path), "--project", "cli", "--create",
                 "--labels-as", "vote", "--source", "vendor-2024", "--labels", "refund,card", "--k", "1",
                 "--rule", "unanimous"])
    out = capsys.readouterr()
    assert code == 0, out.err
    assert "3 labels imported as votes of vendor-2024" in out.out
    project = _project(engine, "cli")
    assert (project.labels, project.overlap_k, project.final_label_rule) == (["refund", "card"], 1, "unanimous")
    code = main(["--user", lead.username, "import", str(path), "--project", "cli2", "--create"])
    assert code == 0
    assert "experts will not review them" in capsys.readouterr().err
    assert main(["--user", lead.username, "import", str(path), "--project", "cli", "--k", "2"]) == 2
    assert "use them with --create" in capsys.readouterr().err
