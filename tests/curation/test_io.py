"""Import and export against a real database, with hand-made files whose answers are known exactly.

Glossary: a *wide* file has one row per example; a *long* file one row per (item, annotator).
Every bad-input case checks the message (file, row, field) and that no table changed.
"""

from __future__ import annotations

import csv
import hashlib
import json
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import datasets
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import func, inspect, select, update
from sqlalchemy.engine import Engine

from curation.data.browse import ExampleFilter
from curation.data.export import export_project
from curation.data.formats import open_table
from curation.data.import_checks import id_conflicts
from curation.data.importer import ImportReport, content_hash, import_table, mapping_warnings
from curation.data.mapping import ColumnMapping, guess_mapping
from curation.data.projects import create_project, get_project
from curation.db import read_session, write_session
from curation.errors import InputError, NotFound, PermissionDenied
from curation.models import (
    Annotation,
    AuditEvent,
    Example,
    ExampleStatus,
    FinalLabelRule,
    ImportRecord,
    Project,
    Role,
    TaskType,
    User,
)
from curation.review.rules import resolve_status
from curation.settings import get_settings
from tests.conftest import BOTH_BACKENDS, SHARED

CONVABUSE = SHARED / "datasets/convabuse/1_full/ConvAbuseEMNLPfull.csv"


# --------------------------------------------------------------------------- helpers


def write_jsonl(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows), encoding="utf-8")
    return path


def write_csv(path: Path, rows: list[list[Any]], delimiter: str = ",") -> Path:
    with path.open("w", encoding="utf-8", newline="") as handle:
        csv.writer(handle, delimiter=delimiter).writerows(rows)
    return path


def do_import(engine: Engine, actor: User, path: Path, project: str, *, create: bool = True,
              task_type: TaskType | None = None, mapping: ColumnMapping | None = None,
              **overrides: Any) -> ImportReport:
    """open_table + guess_mapping (+ field overrides) + import_table, as the import page does."""
    table = open_table(path)
    mapping = mapping or guess_mapping(table, task_type)
    for key, value in overrides.items():
        setattr(mapping, key, value)
    return import_table(engine, actor, table, mapping, project, create=create, task_type=task_type)


def table_counts(engine: Engine) -> dict[str, int]:
    """Rows in every table of the database (what a failed import must leave untouched)."""
    with engine.connect() as connection:
        names = [n for n in inspect(connection).get_table_names() if n != "alembic_version"]
        return {name: connection.exec_driver_sql(f'SELECT COUNT(*) FROM "{name}"').scalar_one() for name in names}


def examples_of(engine: Engine, project: str) -> dict[str, Example]:
    with read_session(engine) as session:
        project_id = session.execute(select(Project.id).where(Project.name == project)).scalar_one()
        rows = session.execute(select(Example).where(Example.project_id == project_id)).scalars()
        return {example.external_id: example for example in rows}


def annotations_of(engine: Engine, project: str) -> dict[tuple[str, str], str | None]:
    """(external id, username) -> label."""
    with read_session(engine) as session:
        rows = session.execute(
            select(Example.external_id, User.username, Annotation.label)
            .join(Annotation, Annotation.example_id == Example.id).join(User, User.id == Annotation.annotator_id)
            .join(Project, Project.id == Example.project_id).where(Project.name == project)).all()
    return {(e, u): label for e, u, label in rows}


def status_of(engine: Engine, project: str) -> dict[str, tuple[str, str | None]]:
    return {k: (ExampleStatus(e.status).value, e.final_label) for k, e in examples_of(engine, project).items()}


def as_utc_naive(value: datetime) -> datetime:
    """SQLite hands back naive UTC, PostgreSQL aware values in the session zone: compare in naive UTC."""
    return value.astimezone(timezone.utc).replace(tzinfo=None) if value.tzinfo else value


def set_batch_rows(monkeypatch: pytest.MonkeyPatch, rows: int) -> None:
    monkeypatch.setenv("IMPORT_BATCH_ROWS", str(rows))
    get_settings.cache_clear()


TICKETS = [
    {"id": "t1", "text": "Where is my parcel?", "label": "shipping", "source": "email", "licence": "CC0-1.0",
     "lang": "en"},
    {"id": "t2", "text": "I was charged twice", "label": "billing", "source": "chat", "licence": "CC0-1.0",
     "lang": "en"},
    {"id": "t3", "text": "App crashes on start", "label": None, "source": "chat", "licence": "CC0-1.0",
     "lang": "de"},
    {"id": "t4", "text": "Where is my parcel?", "label": "shipping", "source": "email", "licence": "CC0-1.0",
     "lang": "en"},
]


# --------------------------------------------------------------------------- wide imports


def test_jsonl_wide_import_guess_report_rows_and_provenance(engine: Engine, lead: User, tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "tickets.jsonl", TICKETS)
    table = open_table(path)
    assert (table.file_format, table.n_rows, table.columns) == (
        "jsonl", 4, ["id", "text", "label", "source", "licence", "lang"])
    mapping = guess_mapping(table)
    assert mapping == ColumnMapping(id=["id"], text="text", label="label", source="source", licence="licence")

    report = import_table(engine, lead, table, mapping, "tickets", create=True)

    assert report.to_dict() == {
        "project": "tickets", "file": "tickets.jsonl", "rows": 4, "examples_added": 4,
        "examples_skipped_existing": 0, "annotations_added": 0, "annotations_skipped_existing": 0,
        "repeat_annotations": 0, "repeat_policy": "latest", "annotators_created": [], "labels": ["shipping", "billing"],
        "exact_duplicate_groups": [[1, 4]], "warnings": [], "import_id": report.import_id,
        "labels_as": "final", "label_source": None, "source_labels": 0, "source_labels_skipped_existing": 0,
        "final_labels": 3, "responses_as": "review", "final_responses": 0, "responses_missing": 0,
        "suggestions_from_predictions": 0,
    }
    project = get_project(engine, "tickets")
    assert (project.task_type, project.labels) == (TaskType.classification, ["shipping", "billing"])
    examples = examples_of(engine, "tickets")
    assert {k: (e.text, e.source, e.licence, e.meta, e.split) for k, e in examples.items()} == {
        "t1": ("Where is my parcel?", "email", "CC0-1.0", {"lang": "en"}, None),
        "t2": ("I was charged twice", "chat", "CC0-1.0", {"lang": "en"}, None),
        "t3": ("App crashes on start", "chat", "CC0-1.0", {"lang": "de"}, None),
        "t4": ("Where is my parcel?", "email", "CC0-1.0", {"lang": "en"}, None),
    }
    assert status_of(engine, "tickets") == {
        "t1": ("labelled", "shipping"), "t2": ("labelled", "billing"), "t3": ("new", None),
        "t4": ("labelled", "shipping")}
    assert examples["t1"].content_hash == examples["t4"].content_hash != examples["t2"].content_hash
    assert {e.import_id for e in examples.values()} == {report.import_id}

    with read_session(engine) as session:
        record = session.get(ImportRecord, report.import_id)
        events = session.execute(select(AuditEvent.action, AuditEvent.actor_id)
                                 .where(AuditEvent.project_id == project.id).order_by(AuditEvent.id)).all()
    assert (record.file_name, record.file_format, record.examples_added, record.annotations_added) == (
        "tickets.jsonl", "jsonl", 4, 0)
    assert record.file_sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    assert record.mapping == mapping.to_dict() and record.actor_id == lead.id
    assert events == [("project.create", lead.id), ("import", lead.id)]


def test_reimporting_the_same_file_adds_nothing(engine: Engine, lead: User, tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "tickets.jsonl", TICKETS)
    do_import(engine, lead, path, "tickets")
    before = table_counts(engine)

    again = do_import(engine, lead, path, "tickets", create=False)

    assert (again.rows, again.examples_added, again.examples_skipped_existing, again.annotations_added) == (4, 0, 4, 0)
    after = table_counts(engine)
    assert after["example"] == before["example"] == 4 and after["annotation"] == before["annotation"] == 0
    assert after["importrecord"] == before["importrecord"] + 1  # the attempt itself is on record


def test_file_without_id_column_gets_stable_row_ids_so_reimport_skips(engine: Engine, lead: User,
                                                                      tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "plain.jsonl", [{"text": "one"}, {"text": "two"}])
    first = do_import(engine, lead, path, "plain")
    assert sorted(examples_of(engine, "plain")) == ["plain:1", "plain:2"] and first.examples_added == 2
    assert do_import(engine, lead, path, "plain").examples_skipped_existing == 2


@pytest.mark.parametrize("file_format,delimiter", [("csv", ","), ("tsv", "\t")])
def test_csv_and_tsv_keep_text_ids_quotes_and_empty_cells(engine: Engine, lead: User, tmp_path: Path,
                                                          file_format: str, delimiter: str) -> None:
    path = write_csv(tmp_path / f"greetings.{file_format}", [
        ["id", "text", "label", "note"],
        ["007", "Hello, world", "greeting", "first"],
        ["008", 'Bye "now"\nsee you', "farewell", ""],
    ], delimiter)
    report = do_import(engine, lead, path, "greetings")
    assert (report.rows, report.examples_added, report.labels) == (2, 2, ["greeting", "farewell"])
    examples = examples_of(engine, "greetings")
    assert {k: (e.text, e.final_label, e.meta) for k, e in examples.items()} == {
        "007": ("Hello, world", "greeting", {"note": "first"}),
        "008": ('Bye "now"\nsee you', "farewell", {}),
    }


def test_parquet_typed_columns(engine: Engine, lead: User, tmp_path: Path) -> None:
    path = tmp_path / "scores.parquet"
    pq.write_table(pa.table({"id": [1, 2, 3], "text": ["good", "bad", "fine"], "label": [1, 0, 1],
                             "score": [0.5, 1.25, float("nan")], "flag": [True, False, True]}), path)
    report = do_import(engine, lead, path, "scores")
    assert (report.rows, report.examples_added, report.labels) == (3, 3, ["1", "0"])
    assert {k: (e.text, e.final_label, e.meta) for k, e in examples_of(engine, "scores").items()} == {
        "1": ("good", "1", {"score": 0.5, "flag": True}),
        "2": ("bad", "0", {"score": 1.25, "flag": False}),
        "3": ("fine", "1", {"flag": True}),  # NaN is an empty cell
    }


def test_save_to_disk_dataset_folder(engine: Engine, lead: User, tmp_path: Path) -> None:
    datasets.Dataset.from_dict({"text": ["a cat", "a dog"], "label": ["cat", "dog"], "extra": [1, 2]}) \
        .save_to_disk(str(tmp_path / "pets"))
    table = open_table(tmp_path / "pets")
    assert (table.file_format, table.n_rows) == ("hf", 2)
    report = do_import(engine, lead, tmp_path / "pets", "pets")
    assert (report.examples_added, report.labels) == (2, ["cat", "dog"])
    assert {k: (e.text, e.final_label, e.meta) for k, e in examples_of(engine, "pets").items()} == {
        "pets:1": ("a cat", "cat", {"extra": 1}), "pets:2": ("a dog", "dog", {"extra": 2})}


def test_class_label_column_is_read_as_label_names(engine: Engine, lead: User, tmp_path: Path) -> None:
    features = datasets.Features({"text": datasets.Value("string"),
                                  "label": datasets.ClassLabel(names=["negative", "positive"])})
    datasets.Dataset.from_dict({"text": ["awful", "great", "unrated"], "label": [0, 1, -1]}, features=features) \
        .save_to_disk(str(tmp_path / "sst"))
    report = do_import(engine, lead, tmp_path / "sst", "sst")
    assert report.labels == ["negative", "positive"]
    assert {k: (e.text, e.status, e.final_label) for k, e in examples_of(engine, "sst").items()} == {
        "sst:1": ("awful", "labelled", "negative"), "sst:2": ("great", "labelled", "positive"),
        "sst:3": ("unrated", "new", None)}


def test_dataset_dict_folder_fills_split_from_split_names(engine: Engine, lead: User, tmp_path: Path) -> None:
    datasets.DatasetDict({
        "train": datasets.Dataset.from_dict({"id": ["a", "b"], "text": ["one", "two"], "label": ["x", "y"]}),
        "test": datasets.Dataset.from_dict({"id": ["c"], "text": ["three"], "label": ["x"]}),
    }).save_to_disk(str(tmp_path / "dd"))
    table = open_table(tmp_path / "dd")
    mapping = guess_mapping(table)
    assert mapping.split == "split" and mapping.id == ["id"]
    report = do_import(engine, lead, tmp_path / "dd", "dd")
    assert report.examples_added == 3
    assert {k: (e.text, e.split, e.final_label) for k, e in examples_of(engine, "dd").items()} == {
        "a": ("one", "train", "x"), "b": ("two", "train", "y"), "c": ("three", "test", "x")}


def test_meta_keeps_unmapped_columns_or_a_chosen_list_and_defaults_apply(engine: Engine, lead: User,
                                                                          tmp_path: Path) -> None:
    rows = [{"id": "a", "text": "alpha", "lang": "en", "channel": "web", "nested": {"k": [1, 2]}},
            {"id": "b", "text": "beta", "lang": "fr", "channel": "", "nested": {"k": []}}]
    path = write_jsonl(tmp_path / "meta.jsonl", rows)
    do_import(engine, lead, path, "all-meta", default_source="crm export", default_licence="CC-BY-4.0")
    assert {k: (e.meta, e.source, e.licence) for k, e in examples_of(engine, "all-meta").items()} == {
        "a": ({"lang": "en", "channel": "web", "nested": {"k": [1, 2]}}, "crm export", "CC-BY-4.0"),
        "b": ({"lang": "fr", "nested": {"k": []}}, "crm export", "CC-BY-4.0"),
    }
    do_import(engine, lead, path, "some-meta", metadata=["lang"])
    assert {k: (e.meta, e.source) for k, e in examples_of(engine, "some-meta").items()} == {
        "a": ({"lang": "en"}, None), "b": ({"lang": "fr"}, None)}
    # a source column wins over the default
    path2 = write_jsonl(tmp_path / "src.jsonl", [{"id": "s", "text": "x", "source": "forum"}])
    do_import(engine, lead, path2, "src", default_source="ignored")
    assert examples_of(engine, "src")["s"].source == "forum"


def test_exact_duplicates_are_reported_by_row_number_across_batches(engine: Engine, lead: User, tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    set_batch_rows(monkeypatch, 2)
    texts = ["same", "other", "same", "third", "other", "same", "unique"]
    path = write_jsonl(tmp_path / "dups.jsonl", [{"id": f"r{i}", "text": t} for i, t in enumerate(texts, 1)])
    report = do_import(engine, lead, path, "dups")
    assert report.examples_added == 7
    assert sorted(report.exact_duplicate_groups) == [[1, 3, 6], [2, 5]]
    assert "2 groups of exact duplicates (5 rows)" in report.summary()


def test_generation_prompt_response(engine: Engine, lead: User, tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "pairs.jsonl", [
        {"id": "g1", "prompt": "Say hi", "response": "Hi!", "source": "synthetic"},
        {"id": "g2", "prompt": "  Count to two  ", "response": "1, 2", "source": "synthetic"}])
    mapping = guess_mapping(open_table(path))
    assert (mapping.prompt, mapping.response, mapping.text, mapping.messages) == ("prompt", "response", None, None)
    report = do_import(engine, lead, path, "pairs")
    assert report.examples_added == 2 and get_project(engine, "pairs").task_type == TaskType.generation
    assert {k: (e.prompt, e.response, e.text, e.status) for k, e in examples_of(engine, "pairs").items()} == {
        "g1": ("Say hi", "Hi!", None, ExampleStatus.new),
        "g2": ("  Count to two  ", "1, 2", None, ExampleStatus.new),  # content keeps its whitespace
    }


def test_generation_chat_messages(engine: Engine, lead: User, tmp_path: Path) -> None:
    conversation = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"},
                    {"role": "assistant", "content": "Hello."}]
    path = write_jsonl(tmp_path / "chats.jsonl", [{"id": "c1", "messages": conversation},
                                                 {"id": "c2", "messages": conversation[1:]}])
    assert guess_mapping(open_table(path)).messages == "messages"
    do_import(engine, lead, path, "chats", task_type=TaskType.generation)
    examples = examples_of(engine, "chats")
    assert examples["c1"].messages == conversation and examples["c2"].messages == conversation[1:]
    assert examples["c1"].content_hash != examples["c2"].content_hash


def test_batches_keep_row_numbers_and_catch_duplicate_ids_across_batches(engine: Engine, lead: User,
                                                                         tmp_path: Path,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    set_batch_rows(monkeypatch, 2)
    ids = ["a", "b", "c", "d", "b", "e"]
    path = write_jsonl(tmp_path / "ids.jsonl", [{"id": i, "text": f"text {n}"} for n, i in enumerate(ids)])
    before = table_counts(engine)
    with pytest.raises(InputError) as caught:
        do_import(engine, lead, path, "ids")
    assert str(caught.value) == "ids.jsonl, row 5, field 'id': id 'b' is also on row 2; ids must be unique"
    assert table_counts(engine) == before


@settings(max_examples=300, deadline=None)
@given(text=st.one_of(st.none(), st.text()), prompt=st.one_of(st.none(), st.text()),
       response=st.one_of(st.none(), st.text()))
def test_content_hash_is_sha256_of_the_canonical_json(text: str | None, prompt: str | None,
                                                      response: str | None) -> None:
    """The fast path must keep every stored hash valid: the same digest as json.dumps(sort_keys)."""
    def reference(payload: dict[str, Any]) -> str:
        return hashlib.sha256(json.dumps(payload, sort_keys=True, ensure_ascii=False).encode()).hexdigest()

    assert content_hash(text, None, None, None) == reference({"text": text})
    if prompt is not None:
        assert content_hash(None, prompt, response, None) == reference({"prompt": prompt, "response": response or ""})
    messages = [{"role": "user", "content": prompt or ""}, {"role": "assistant", "content": response or ""}]
    assert content_hash(text, prompt, response, messages) == reference({"messages": messages})


# --------------------------------------------------------------------------- long format


LONG_ROWS = [
    ["item_id", "text", "annotator", "label"],
    ["i1", "alpha", "ann1", "pos"],
    ["i1", "alpha", "ann2", "pos"],
    ["i2", "beta", "ann1", "pos"],
    ["i2", "beta", "ann2", "neg"],
    ["i3", "gamma", "ann1", "neg"],
    ["i4", "delta", "ann1", "neg"],
    ["i4", "delta", "ann2", "pos"],
    ["i4", "delta", "ann3", "neg"],
    ["i5", "epsilon", "ann1", "pos"],
    ["i5", "epsilon", "ann1", "neg"],  # a repeat: the later row wins
    ["i6", "zeta", "", ""],  # an item nobody labelled
]


def test_long_format_label_column(engine: Engine, lead: User, tmp_path: Path) -> None:
    path = write_csv(tmp_path / "long.csv", LONG_ROWS)
    mapping = guess_mapping(open_table(path))
    assert (mapping.id, mapping.text, mapping.annotator, mapping.label) == (["item_id"], "text", "annotator", "label")
    report = do_import(engine, lead, path, "long")
    assert (report.rows, report.examples_added, report.annotations_added, report.repeat_annotations) == (11, 6, 9, 1)
    assert report.annotators_created == ["ann1", "ann2", "ann3"] and report.labels == ["pos", "neg"]
    assert annotations_of(engine, "long")[("i5", "ann1")] == "neg"
    # created project: k=2, majority
    assert status_of(engine, "long") == {
        "i1": ("labelled", "pos"), "i2": ("disputed", None), "i3": ("in_review", None),
        "i4": ("labelled", "neg"), "i5": ("in_review", None), "i6": ("new", None)}
    with read_session(engine) as session:
        imported = session.execute(select(User.username, User.imported, User.password_hash, User.role)
                                   .where(User.username.like("ann%")).order_by(User.username)).all()
    assert imported == [("ann1", True, None, "annotator"), ("ann2", True, None, "annotator"),
                        ("ann3", True, None, "annotator")]

    again = do_import(engine, lead, path, "long", create=False)
    assert (again.examples_added, again.annotations_added, again.annotations_skipped_existing,
            again.annotators_created) == (0, 0, 9, [])


@pytest.mark.parametrize("rule,k,expected", [
    (FinalLabelRule.majority, 3, {"i1": ("in_review", None), "i2": ("in_review", None), "i3": ("in_review", None),
                                  "i4": ("labelled", "neg"), "i5": ("in_review", None), "i6": ("new", None)}),
    (FinalLabelRule.unanimous, 2, {"i1": ("labelled", "pos"), "i2": ("disputed", None), "i3": ("in_review", None),
                                   "i4": ("disputed", None), "i5": ("in_review", None), "i6": ("new", None)}),
    (FinalLabelRule.unanimous, 1, {"i1": ("labelled", "pos"), "i2": ("disputed", None), "i3": ("labelled", "neg"),
                                   "i4": ("disputed", None), "i5": ("labelled", "neg"), "i6": ("new", None)}),
])
def test_long_format_status_follows_the_project_rule(engine: Engine, lead: User, tmp_path: Path,
                                                     rule: FinalLabelRule, k: int,
                                                     expected: dict[str, tuple[str, str | None]]) -> None:
    create_project(engine, lead, "rules", labels=["pos", "neg"], overlap_k=k, final_label_rule=rule)
    do_import(engine, lead, write_csv(tmp_path / "long.csv", LONG_ROWS), "rules", create=False)
    assert status_of(engine, "rules") == expected
    # the same answer as the shared rule applied to each item's stored labels
    labels: dict[str, list[str | None]] = {}
    for (item, _who), label in annotations_of(engine, "rules").items():
        labels.setdefault(item, []).append(label)
    for item, (status, final) in expected.items():
        got = resolve_status(labels.get(item, []), k, rule)
        assert (got[0].value, got[1]) == (status, final)


def test_long_format_one_hot_columns(engine: Engine, lead: User, tmp_path: Path) -> None:
    path = write_csv(tmp_path / "onehot.csv", [
        ["item_id", "text", "annotator", "lab.yes", "lab.no", "lab.maybe"],
        ["q1", "is it on?", "ann1", "1", "0", "0"],
        ["q1", "is it on?", "ann2", "1", "0", "0"],
        ["q2", "is it off?", "ann1", "0", "0", "1"],
        ["q2", "is it off?", "ann2", "0", "1", "0"],
    ])
    mapping = guess_mapping(open_table(path))
    assert (mapping.label, mapping.label_onehot) == (None, ["lab.yes", "lab.no", "lab.maybe"])
    assert mapping.onehot_labels() == ["yes", "no", "maybe"]
    report = do_import(engine, lead, path, "onehot")
    assert (report.examples_added, report.annotations_added, report.labels) == (2, 4, ["yes", "no", "maybe"])
    assert get_project(engine, "onehot").labels == ["yes", "no", "maybe"]
    assert annotations_of(engine, "onehot") == {("q1", "ann1"): "yes", ("q1", "ann2"): "yes",
                                                ("q2", "ann1"): "maybe", ("q2", "ann2"): "no"}
    assert status_of(engine, "onehot") == {"q1": ("labelled", "yes"), "q2": ("disputed", None)}


def test_long_format_labels_attach_to_examples_imported_earlier(engine: Engine, admin: User, lead: User,
                                                                tmp_path: Path) -> None:
    """The demo's two-step load: examples first, then a label file that names them by id."""
    from curation.access.accounts import create_user

    alice = create_user(engine, admin, "alice", Role.annotator, "alice-password")  # a real account already
    create_project(engine, lead, "tickets", labels=["billing", "shipping"], overlap_k=2)
    examples = write_jsonl(tmp_path / "tickets.jsonl", [{"ticket_id": f"T{i}", "text": f"ticket {i}"}
                                                        for i in (1, 2, 3)])
    import_table(engine, lead, open_table(examples), ColumnMapping(id=["ticket_id"], text="text"), "tickets")
    labels = write_csv(tmp_path / "labels.csv", [
        ["ticket_id", "annotator", "label", "labelled_at"],
        ["T1", "alice", "billing", "2024-01-02T03:04:05Z"],
        ["T1", "bob", "billing", "2024-01-02T05:00:00+01:00"],
        ["T2", "alice", "shipping", ""],
        ["T2", "bob", "billing", "not a date"],
    ])
    mapping = ColumnMapping(id=["ticket_id"], annotator="annotator", label="label", annotated_at="labelled_at",
                            metadata=[])
    report = import_table(engine, lead, open_table(labels), mapping, "tickets")
    assert (report.rows, report.examples_added, report.examples_skipped_existing, report.annotations_added,
            report.annotators_created) == (4, 0, 0, 4, ["bob"])
    assert status_of(engine, "tickets") == {"T1": ("labelled", "billing"), "T2": ("disputed", None),
                                            "T3": ("new", None)}
    with read_session(engine) as session:
        stamps = dict(session.execute(
            select(Annotation.annotator_id, Annotation.created_at).join(Example)
            .where(Example.external_id == "T1")).all())
    bob = session_user_id(engine, "bob")
    assert as_utc_naive(stamps[alice.id]) == datetime(2024, 1, 2, 3, 4, 5)
    assert as_utc_naive(stamps[bob]) == datetime(2024, 1, 2, 4, 0, 0)

    again = import_table(engine, lead, open_table(labels), mapping, "tickets")
    assert (again.annotations_added, again.annotations_skipped_existing) == (0, 4)


def session_user_id(engine: Engine, username: str) -> int:
    with read_session(engine) as session:
        return session.execute(select(User.id).where(User.username == username)).scalar_one()


def test_label_studio_export(engine: Engine, lead: User, tmp_path: Path) -> None:
    tasks = [
        {"id": 11, "data": {"text": "refund please", "channel": "email"}, "meta": {}, "predictions": [],
         "annotations": [
             {"id": 1, "completed_by": 3, "was_cancelled": False, "created_at": "2024-05-01T10:00:00.000000Z",
              "result": [{"type": "choices", "from_name": "intent", "to_name": "text",
                          "value": {"choices": ["refund"]}}]},
             {"id": 2, "completed_by": {"id": 4, "email": "bo@example.com", "first_name": "Bo"},
              "created_at": "2024-05-01T11:00:00Z",
              "result": [{"type": "choices", "from_name": "intent", "value": {"choices": ["refund"]}}]},
         ]},
        {"id": 12, "data": {"text": "app crashes", "channel": "chat"}, "annotations": [
            {"id": 3, "completed_by": 3, "created_at": "2024-05-02T10:00:00Z",
             "result": [{"type": "choices", "from_name": "intent", "value": {"choices": ["bug"]}}]},
            {"id": 4, "completed_by": {"id": 4, "email": "bo@example.com"},
             "result": [{"type": "choices", "from_name": "intent", "value": {"choices": ["refund"]}}]},
            {"id": 5, "completed_by": 7, "was_cancelled": True,
             "result": [{"type": "choices", "from_name": "intent", "value": {"choices": ["spam"]}}]},
        ]},
        {"id": 13, "data": {"text": "hello", "channel": "chat"}, "annotations": []},
    ]
    path = tmp_path / "project-1-at-2024.json"
    path.write_text(json.dumps(tasks, indent=2), encoding="utf-8")
    table = open_table(path)
    assert table.file_format == "labelstudio" and table.n_rows == 5  # 4 kept annotations + 1 bare task
    mapping = guess_mapping(table)
    assert [(c.name, c.type, c.column) for c in table.controls] == [("intent", "choices", "intent")]
    assert (mapping.id, mapping.text, mapping.annotator, mapping.label, mapping.annotated_at) == (
        ["id"], "text", "annotator", "intent", "annotated_at")

    report = import_table(engine, lead, table, mapping, "ls", create=True)

    assert (report.rows, report.examples_added, report.annotations_added, report.repeat_annotations) == (5, 3, 4, 0)
    assert report.annotators_created == ["labelstudio:3", "labelstudio:bo@example.com"]
    assert report.labels == ["refund", "bug"]  # the cancelled "spam" never arrives
    assert annotations_of(engine, "ls") == {
        ("11", "labelstudio:3"): "refund", ("11", "labelstudio:bo@example.com"): "refund",
        ("12", "labelstudio:3"): "bug", ("12", "labelstudio:bo@example.com"): "refund"}
    assert status_of(engine, "ls") == {"11": ("labelled", "refund"), "12": ("disputed", None), "13": ("new", None)}
    assert {k: (e.text, e.meta) for k, e in examples_of(engine, "ls").items()} == {
        "11": ("refund please", {"channel": "email"}), "12": ("app crashes", {"channel": "chat"}),
        "13": ("hello", {"channel": "chat"})}


def test_convabuse_real_long_format_file(engine: Engine, lead: User) -> None:
    table = open_table(CONVABUSE)
    assert table.n_rows == 12768
    mapping = guess_mapping(table)
    assert mapping.id == ["conv_id", "user"] and mapping.annotator == "annotator_id"
    assert mapping.label_onehot == ["is_abuse.1", "is_abuse.0", "is_abuse.-1", "is_abuse.-2", "is_abuse.-3"]
    report = import_table(engine, lead, table, mapping, "convabuse", create=True)
    assert (report.rows, report.examples_added, report.annotations_added, report.repeat_annotations) == (
        12768, 4059, 12225, 543)
    assert report.annotators_created == [f"Annotator{i}" for i in range(1, 9)]
    assert report.labels == ["1", "0", "-1", "-2", "-3"]
    counts = table_counts(engine)
    assert (counts["example"], counts["annotation"]) == (4059, 12225)
    with read_session(engine) as session:
        assert session.execute(select(func.count(func.distinct(Annotation.annotator_id)))).scalar_one() == 8


def test_an_id_that_merges_rows_with_different_texts_is_warned_about(engine: Engine, lead: User,
                                                                    tmp_path: Path) -> None:
    path = write_csv(tmp_path / "turns.csv", [
        ["row", "conv", "agent", "user", "annotator", "label", "score"],
        ["1", "c1", "How can I help?", "hi", "A1", "ok", "0.5"],
        ["2", "c1", "How can I help?", "hi", "A2", "ok", "0.7"],
        ["3", "c1", "Anything else?", "hi", "A1", "rude", "0.1"],  # another turn with the same user text
        ["4", "c2", "Hello", "bye", "A1", "ok", "0.2"]])
    table = open_table(path)
    mapping = ColumnMapping(id=["conv", "user"], text="user", annotator="annotator", label="label")
    conflict = id_conflicts(table, mapping)
    assert conflict is not None
    # row numbers and scores differ per judgement but are not texts; only `agent` is named
    assert (conflict.items, conflict.conflicting_items, conflict.columns, conflict.example_ids) == (
        2, 1, {"agent": 1}, ["c1/hi"])
    assert mapping_warnings(table, mapping) == [
        "the id (conv, user) merges rows with different texts: 1 of 2 items carry several values in agent "
        "(1 items), e.g. c1/hi. Rows with one id become one item (its text from the first row) and their "
        "judgements overwrite each other; add the columns that tell the items apart to the id "
        "(e.g. --map id=conv,user,agent)."]
    report = import_table(engine, lead, table, mapping, "turns", create=True)
    assert report.warnings == mapping_warnings(table, mapping) and report.repeat_annotations == 1
    # the key with the context keeps the turns apart: nothing to warn about
    assert id_conflicts(table, ColumnMapping(id=["conv", "agent", "user"], text="user", annotator="annotator",
                                             label="label")) is None
    assert id_conflicts(table, ColumnMapping(id=["row"], text="user", label="label")) is None  # wide: no check


def test_convabuse_key_with_the_conversation_context(engine: Engine, lead: User) -> None:
    """README's key: the whole context (conv_id, prev_agent, prev_user, agent, user) gives the data set's
    own item count, 2,501 + 831 + 853 = 4,185; conv_id + user folds 88 of them into others (4,059)."""
    table = open_table(CONVABUSE)
    mapping = guess_mapping(table)
    conflict = id_conflicts(table, mapping)
    assert conflict is not None and (conflict.items, conflict.conflicting_items) == (4059, 88)
    assert list(conflict.columns) == ["prev_agent", "prev_user", "agent"]
    mapping.id = ["conv_id", "prev_agent", "prev_user", "agent", "user"]
    assert id_conflicts(table, mapping) is None
    report = import_table(engine, lead, table, mapping, "convabuse", create=True)
    assert (report.examples_added, report.warnings) == (4185, [])


# --------------------------------------------------------------------------- bad input


def _bytes(text: str) -> bytes:
    return text.encode("utf-8")


def _jsonl(rows: list[Any]) -> bytes:
    return _bytes("".join(json.dumps(row) + "\n" for row in rows))


def _parquet(columns: dict[str, list[Any]]) -> bytes:
    sink = pa.BufferOutputStream()
    pq.write_table(pa.table(columns), sink)
    return sink.getvalue().to_pybytes()


LONG_HEAD = "item_id,text,annotator,lab.a,lab.b\n"

# name, file content, mapping overrides, expected message (exact)
BAD_INPUTS: list[tuple[str, bytes, dict[str, Any], str]] = [
    ("empty.csv", b"", {}, "empty.csv: the file is empty"),
    ("header.csv", b"text,label\n", {}, "header.csv: the file has no data rows (only a header)"),
    ("blank.jsonl", b"\n\n  \n", {}, "blank.jsonl: the file has no data rows"),
    ("broken.jsonl", _bytes('{"text": "a"}\n{"text": "b"}\n{"text": "c"\n{"text": "d"}\n'), {},
     "broken.jsonl: line 3: malformed JSON (Expecting ',' delimiter)"),
    ("array.jsonl", _bytes('{"text": "a"}\n[1, 2]\n'), {}, "array.jsonl: line 2: expected a JSON object, got list"),
    ("fields.csv", _bytes('text,label\n"a, quoted",x\n"multi\nline",y\nc,x,extra\n'), {},
     "fields.csv, row 3: line 5: expected 2 fields like the header, found 3"),
    ("latin1.csv", b"text,label\nfine,a\nalso fine,b\ncaf\xe9,a\n", {},
     "latin1.csv: line 4: not valid UTF-8 (byte 0xe9 at offset 33); save the file as UTF-8"),
    ("latin1.jsonl", b'{"text": "ok"}\n{"text": "caf\xe9"}\n', {},
     "latin1.jsonl: line 2: not valid UTF-8 (byte 0xe9 at offset 28); save the file as UTF-8"),
    ("nocolumn.jsonl", _jsonl([{"body": "a"}]), {"text": "content"},
     "nocolumn.jsonl, field 'text': column 'content' is not in the file (columns: body)"),
    ("ints.parquet", _parquet({"text": [1, 2], "label": ["a", "b"]}), {},
     "ints.parquet, row 1, field 'text': column 'text' holds int64 values, not text; the first is 1"),
    ("listlabel.jsonl", _jsonl([{"text": "a", "label": ["x", "y"]}]), {},
     "listlabel.jsonl, row 1, field 'label': column 'label' holds list, not text; the first such value is "
     '["x", "y"]'),
    # Issue 14: a row that lost a field named its file, row and the missing field (it imported as an
    # unlabelled item); a wrong-typed value names the first row that holds one.
    ("short.csv", _bytes("id,text,label\ns0,a,billing\ns1,b,bug\ns2,c\ns3,d,bug\n"), {},
     "short.csv, row 3, field 'label': line 4: 2 fields but the header has 3; the value of 'label' is missing"),
    ("short2.tsv", _bytes("id\ttext\tlabel\ns0\ta\tbilling\ns1\n"), {},
     "short2.tsv, row 2, field 'text': line 3: 1 fields but the header has 3; the value of 'text' is missing"),
    ("objlabel.jsonl", _jsonl([{"id": "a", "text": "x", "label": "billing"}, {"id": "b", "text": "y", "label": "bug"},
                               {"id": "c", "text": "z", "label": "bug"},
                               {"id": "d", "text": "w", "label": {"name": "billing"}}]), {},
     "objlabel.jsonl, row 4, field 'label': column 'label' holds json, not text; the first such value is "
     '{"name": "billing"}'),
    ("msgstring.jsonl", _jsonl([{"messages": "hello"}]), {},
     "msgstring.jsonl, field 'messages': column 'messages' holds string, not a list of {role, content} messages"),
    ("msgrole.jsonl", _jsonl([{"messages": [{"role": "user", "content": "a"}]},
                              {"messages": [{"role": "robot", "content": "b"}]}]), {},
     "msgrole.jsonl, row 2, field 'messages': message 1 needs a role (assistant, system, tool, user) and text "
     "content"),
    ("emptytext.csv", _bytes("id,text\na,fine\nb,\nc,ok\n"), {},
     "emptytext.csv, row 2, field 'text': empty content"),
    ("blanktext.jsonl", _jsonl([{"text": "fine"}, {"text": "   "}]), {},
     "blanktext.jsonl, row 2, field 'text': empty content"),
    ("dupid.csv", _bytes("id,text\na,one\nb,two\na,three\n"), {},
     "dupid.csv, row 3, field 'id': id 'a' is also on row 1; ids must be unique"),
    ("emptyid.csv", _bytes("id,text\na,one\n,two\n"), {}, "emptyid.csv, row 2, field 'id': the id is empty"),
    ("nul.jsonl", _jsonl([{"text": "a"}, {"text": "b\u0000c"}]), {},
     "nul.jsonl, row 2, field 'text': contains a NUL character (0x00), which the database cannot store"),
    ("longsplit.jsonl", _jsonl([{"text": "a", "split": "train"}, {"text": "b", "split": "s" * 21}]), {},
     "longsplit.jsonl, row 2, field 'split': split 'sssssssssssssssssssss...' is longer than 20 characters"),
    ("onehot0.csv", _bytes(LONG_HEAD + "i1,x,ann1,1,0\ni1,x,ann2,0,0\n"), {},
     "onehot0.csv, row 2, field 'lab.a': exactly one one-hot label column must be set, found none"),
    ("onehot2.csv", _bytes(LONG_HEAD + "i1,x,ann1,1,0\ni2,y,ann1,0,1\ni2,y,ann2,1,1\n"), {},
     "onehot2.csv, row 3, field 'lab.a': exactly one one-hot label column must be set, found 2 (a, b)"),
    ("noid.csv", _bytes("text,annotator,label\nx,ann1,a\n"), {"id": []},
     "noid.csv, field 'id': a long-format file (one row per annotator) needs id column(s) that identify the item"),
    ("longann.csv", _bytes("item_id,text,annotator,label\ni1,x,ann1,a\ni1,x," + "z" * 130 + ",b\n"), {},
     "longann.csv, field 'annotator': annotator name 'zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz...' is longer "
     "than 120 characters"),
    ("both.csv", _bytes("text,label,l.a,l.b\nx,a,1,0\n"), {"label_onehot": ["l.a", "l.b"]},
     "both.csv, field 'label': map either one label column or one-hot label columns, not both"),
]


@pytest.mark.parametrize("name,content,overrides,message", BAD_INPUTS, ids=[case[0] for case in BAD_INPUTS])
def test_bad_input_names_file_row_field_and_changes_nothing(engine: Engine, admin: User, tmp_path: Path,
                                                            name: str, content: bytes, overrides: dict[str, Any],
                                                            message: str) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    before = table_counts(engine)
    with pytest.raises(InputError) as caught:
        do_import(engine, admin, path, "fresh", create=True, **overrides)
    assert str(caught.value) == message
    assert caught.value.file == name
    assert table_counts(engine) == before
    with pytest.raises(NotFound):
        get_project(engine, "fresh")


def test_unknown_label_for_a_fixed_label_set_names_the_row(engine: Engine, lead: User, tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    set_batch_rows(monkeypatch, 3)  # the bad row sits in the third batch, after two were written
    create_project(engine, lead, "fixed", labels=["billing", "shipping"])
    labels = ["billing", "shipping", "billing", "billing", "shipping", "shipping", "refund", "billing"]
    path = write_jsonl(tmp_path / "fixed.jsonl", [{"id": f"x{i}", "text": f"t{i}", "label": label}
                                                  for i, label in enumerate(labels, 1)])
    before = table_counts(engine)
    with pytest.raises(InputError) as caught:
        do_import(engine, lead, path, "fixed", create=False)
    assert str(caught.value) == ("fixed.jsonl, row 7, field 'label': unknown label 'refund' "
                                 "(project labels: billing, shipping)")
    assert (caught.value.row, caught.value.field) == (7, "label")
    assert table_counts(engine) == before
    assert get_project(engine, "fixed").labels == ["billing", "shipping"]


def test_labels_for_an_unknown_example_without_content_column(engine: Engine, lead: User, tmp_path: Path) -> None:
    create_project(engine, lead, "tickets", labels=["a", "b"])
    import_table(engine, lead, open_table(write_jsonl(tmp_path / "t.jsonl", [{"id": "T1", "text": "x"}])),
                 ColumnMapping(id=["id"], text="text"), "tickets")
    path = write_csv(tmp_path / "labels.csv", [["id", "annotator", "label"], ["T1", "ann", "a"], ["T9", "ann", "b"]])
    before = table_counts(engine)
    with pytest.raises(InputError) as caught:
        import_table(engine, lead, open_table(path), ColumnMapping(id=["id"], annotator="annotator", label="label"),
                     "tickets")
    assert str(caught.value) == ("labels.csv, row 2, field 'id': no example 'T9' in project 'tickets', and no "
                                 "content column is mapped to create it")
    assert table_counts(engine) == before


def test_file_over_the_size_limit(engine: Engine, lead: User, tmp_path: Path,
                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MAX_IMPORT_MB", "1")
    get_settings.cache_clear()
    path = write_jsonl(tmp_path / "big.jsonl", [{"text": "x" * 1000}] * 1600)  # about 1.5 MiB
    with pytest.raises(InputError) as caught:
        open_table(path)
    assert str(caught.value).startswith("big.jsonl: the file is 1.5 MiB, over the import limit of 1 MiB")
    monkeypatch.setenv("MAX_IMPORT_MB", "0")
    get_settings.cache_clear()
    with pytest.raises(InputError, match=r"^big\.jsonl: the file is .* over the import limit of 0 MiB"):
        open_table(path)


def test_missing_file_and_unknown_type(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no such file or folder"):
        open_table(tmp_path / "nope.csv")
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(InputError, match=r"^notes\.txt: unknown file type '\.txt'"):
        open_table(tmp_path / "notes.txt")
    (tmp_path / "folder").mkdir()
    with pytest.raises(InputError, match=r"^folder: folder is not a dataset saved with save_to_disk"):
        open_table(tmp_path / "folder")


@BOTH_BACKENDS
@pytest.mark.parametrize("case", ["wide-after-batches", "long-after-accounts", "nul", "long-split"])
def test_failed_import_leaves_the_database_exactly_as_before(engine: Engine, lead: User, tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch, case: str) -> None:
    """The failure comes after rows (or annotator accounts, or the project) were written in the
    transaction: every one of them must be rolled back, on both databases."""
    set_batch_rows(monkeypatch, 2)
    do_import(engine, lead, write_jsonl(tmp_path / "seed.jsonl", TICKETS), "seed")  # something to keep
    if case == "wide-after-batches":
        rows = [{"id": f"w{i}", "text": f"text {i}", "label": "a"} for i in range(1, 6)] + [{"id": "w6", "text": ""}]
        path, message = write_jsonl(tmp_path / "wide.jsonl", rows), "wide.jsonl, row 6, field 'text': empty content"
    elif case == "long-after-accounts":
        path = write_csv(tmp_path / "long.csv", [["item_id", "text", "annotator", "label"], ["i1", "x", "aa", "a"],
                                                 ["i1", "x", "bb", "a"], ["i2", "y", "z" * 121, "b"]])
        message = "long.csv, field 'annotator': annotator name '" + "z" * 40 + "...' is longer than 120 characters"
    elif case == "nul":
        path = write_jsonl(tmp_path / "nul.jsonl", [{"text": "fine"}] * 4 + [{"text": "a\u0000"}])
        message = "nul.jsonl, row 5, field 'text': contains a NUL character (0x00), which the database cannot store"
    else:
        path = write_jsonl(tmp_path / "split.jsonl", [{"text": f"t{i}", "split": "train"} for i in range(4)]
                           + [{"text": "t5", "split": "validation-and-more!"[:21] + "x"}])
        message = "split.jsonl, row 5, field 'split': split 'validation-and-more!x...' is longer than 20 characters"
    before = table_counts(engine)
    with pytest.raises(InputError) as caught:
        do_import(engine, lead, path, "doomed", create=True)
    assert str(caught.value) == message
    assert table_counts(engine) == before
    with pytest.raises(NotFound):
        get_project(engine, "doomed")


# --------------------------------------------------------------------------- export


@pytest.fixture
def labelled_project(engine: Engine, lead: User, tmp_path: Path) -> Project:
    """Five tickets: two train, two test, one without split; one excluded; one with no label."""
    rows = [
        {"id": "a", "text": "charged twice", "label": "billing", "split": "train", "source": "email", "lang": "en"},
        {"id": "b", "text": "parcel late", "label": "shipping", "split": "train", "source": "chat", "lang": "en"},
        {"id": "c", "text": "invoice copy", "label": "billing", "split": "test", "source": "email", "lang": "de"},
        {"id": "d", "text": "spam spam", "label": "billing", "split": "test", "source": "chat", "lang": "en"},
        {"id": "e", "text": "hello?", "label": None, "split": None, "source": "chat", "lang": "fr"},
    ]
    do_import(engine, lead, write_jsonl(tmp_path / "export-src.jsonl", rows), "exp", default_licence="CC0-1.0")
    with write_session(engine) as session:
        session.execute(update(Example).where(Example.external_id == "d")
                        .values(status=ExampleStatus.excluded.value, exclusion_reason="spam"))
    return get_project(engine, "exp")


def _record(i: str, text: str, label: str | None, status: str, split: str | None, source: str,
            lang: str) -> dict[str, Any]:
    return {"id": i, "text": text, "label": label, "status": status, "split": split, "source": source,
            "licence": "CC0-1.0", "metadata": json.dumps({"lang": lang})}


EXPORTED = [
    _record("a", "charged twice", "billing", "labelled", "train", "email", "en"),
    _record("b", "parcel late", "shipping", "labelled", "train", "chat", "en"),
    _record("c", "invoice copy", "billing", "labelled", "test", "email", "de"),
    _record("e", "hello?", None, "new", None, "chat", "fr"),
]
EXCLUDED_D = _record("d", "spam spam", "billing", "excluded", "test", "chat", "en")
STRING_FEATURES = datasets.Features({name: datasets.Value("string") for name in EXPORTED[0]})


def test_export_classification_all_formats_read_back_exactly(engine: Engine, lead: User, tmp_path: Path,
                                                             labelled_project: Project) -> None:
    pid = labelled_project.id
    for file_format in ("jsonl", "csv", "parquet"):
        out = tmp_path / "out" / f"exp.{file_format}"
        assert export_project(engine, lead, pid, out, file_format) == 4
        loader = {"jsonl": "json"}.get(file_format, file_format)
        extra = {"features": STRING_FEATURES} if file_format == "csv" else {}
        back = datasets.load_dataset(loader, data_files=str(out), split="train",
                                     cache_dir=str(tmp_path / "cache"), **extra)
        assert back.to_list() == EXPORTED, file_format
        if file_format == "parquet":
            assert back.features == STRING_FEATURES
    assert [json.loads(line) for line in (tmp_path / "out/exp.jsonl").read_text().splitlines()] == EXPORTED
    assert not list((tmp_path / "out").glob("*.partial"))


def test_export_hf_dataset_dict_with_splits(engine: Engine, lead: User, tmp_path: Path,
                                            labelled_project: Project) -> None:
    out = tmp_path / "exp-hf"
    assert export_project(engine, lead, labelled_project.id, out, "hf", include_excluded=True) == 5
    back = datasets.load_from_disk(str(out))
    assert isinstance(back, datasets.DatasetDict) and sorted(back) == ["test", "train"]
    assert back["train"].to_list() == [EXPORTED[0], EXPORTED[1], EXPORTED[3]]  # no split -> train
    assert back["test"].to_list() == [EXPORTED[2], EXCLUDED_D]
    assert back["train"].features == back["test"].features == STRING_FEATURES


def test_export_selection_and_excluded(engine: Engine, lead: User, tmp_path: Path,
                                       labelled_project: Project) -> None:
    pid = labelled_project.id

    def ids(selection: ExampleFilter | None = None, include_excluded: bool = False) -> list[str]:
        out = tmp_path / "sel.jsonl"
        export_project(engine, lead, pid, out, "jsonl", selection, include_excluded)
        return [json.loads(line)["id"] for line in out.read_text().splitlines()]

    assert ids() == ["a", "b", "c", "e"]
    assert ids(include_excluded=True) == ["a", "b", "c", "d", "e"]
    assert ids(ExampleFilter(labels=("billing",))) == ["a", "c"]
    assert ids(ExampleFilter(labels=("billing",)), include_excluded=True) == ["a", "c", "d"]
    assert ids(ExampleFilter(statuses=("new",))) == ["e"]
    assert ids(ExampleFilter(sources=("chat",), splits=("train",))) == ["b"]
    assert ids(ExampleFilter(search="PARCEL")) == ["b"]
    assert ids(ExampleFilter(labels=("no-such-label",))) == []


def test_export_generation_as_chat_messages(engine: Engine, lead: User, tmp_path: Path) -> None:
    do_import(engine, lead, write_jsonl(tmp_path / "pairs.jsonl", [
        {"id": "p1", "prompt": "Say hi", "response": "Hi!", "split": "train"},
        {"id": "p2", "prompt": "Count to two", "response": "1 2", "split": "test"},
    ]), "gen", task_type=TaskType.generation, default_source="synthetic")
    do_import(engine, lead, write_jsonl(tmp_path / "chats.jsonl", [
        {"id": "m1", "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Yo"},
                                  {"role": "assistant", "content": "Hey."}]},
    ]), "gen", create=False, task_type=TaskType.generation)
    with write_session(engine) as session:  # a lead's edited response, as adjudication stores it
        session.execute(update(Example).where(Example.external_id.in_(["p2", "m1"]))
                        .values(final_response="One, two."))
    pid = get_project(engine, "gen").id
    out = tmp_path / "gen.jsonl"
    assert export_project(engine, lead, pid, out, "jsonl") == 3
    lines = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert lines == [
        {"id": "p1", "messages": [{"role": "user", "content": "Say hi"}, {"role": "assistant", "content": "Hi!"}],
         "split": "train", "source": "synthetic", "licence": None, "metadata": "{}"},
        {"id": "p2", "messages": [{"role": "user", "content": "Count to two"},
                                  {"role": "assistant", "content": "One, two."}],
         "split": "test", "source": "synthetic", "licence": None, "metadata": "{}"},
        {"id": "m1", "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Yo"},
                                  {"role": "assistant", "content": "One, two."}],
         "split": None, "source": None, "licence": None, "metadata": "{}"},
    ]
    hf = tmp_path / "gen-hf"
    export_project(engine, lead, pid, hf, "hf")
    back = datasets.load_from_disk(str(hf))
    assert sorted(back) == ["test", "train"]
    assert back["train"].to_list() == [lines[0], lines[2]] and back["test"].to_list() == [lines[1]]
    parquet = tmp_path / "gen.parquet"
    export_project(engine, lead, pid, parquet, "parquet")
    assert datasets.load_dataset("parquet", data_files=str(parquet), split="train",
                                 cache_dir=str(tmp_path / "cache")).to_list() == lines
    csv_out = tmp_path / "gen.csv"
    export_project(engine, lead, pid, csv_out, "csv")
    with csv_out.open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [json.loads(row["messages"]) for row in rows] == [line["messages"] for line in lines]


def test_export_of_an_empty_selection_keeps_the_schema(engine: Engine, lead: User, tmp_path: Path,
                                                       labelled_project: Project) -> None:
    out = tmp_path / "none.parquet"
    assert export_project(engine, lead, labelled_project.id, out, "parquet",
                          ExampleFilter(labels=("no-such-label",))) == 0
    back = pq.read_table(out)  # (datasets' parquet reader refuses a file without rows)
    assert back.num_rows == 0 and datasets.Features.from_arrow_schema(back.schema) == STRING_FEATURES


def test_failing_export_leaves_no_partial_file(engine: Engine, lead: User, annotator: User, tmp_path: Path,
                                               labelled_project: Project) -> None:
    pid = labelled_project.id
    out = tmp_path / "exports" / "exp.jsonl"
    with pytest.raises(PermissionDenied):
        export_project(engine, annotator, pid, out, "jsonl")
    assert not (tmp_path / "exports").exists()  # refused before anything is written
    with pytest.raises(NotFound):
        export_project(engine, lead, 999, out, "jsonl")
    with pytest.raises(InputError, match="unknown export format 'xlsx'"):
        export_project(engine, lead, pid, out, "xlsx")
    assert not out.exists()

    # A write that fails half-way (the hf writer cannot create its folder where a stale file lies):
    # the earlier export stays as it was and the partial output is gone.
    out_hf = tmp_path / "exports" / "exp-hf"
    export_project(engine, lead, pid, out_hf, "hf")
    before = sorted(p.relative_to(out_hf) for p in out_hf.rglob("*"))
    stale = out_hf.with_name(out_hf.name + ".partial")
    stale.write_text("left over")
    with pytest.raises(Exception):  # noqa: B017 - whatever the writer raises, nothing may be left
        export_project(engine, lead, pid, out_hf, "hf")
    assert not stale.exists()
    assert sorted(p.relative_to(out_hf) for p in out_hf.rglob("*")) == before
    assert datasets.load_from_disk(str(out_hf))["train"].num_rows == 3


def test_metadata_values_keep_their_types_across_rows(engine: Engine, lead: User, tmp_path: Path) -> None:
    """The JSON of repeated all-text metadata is remembered per import (speed): numbers, booleans, empty
    cells and key order must come out as each row has them."""
    path = tmp_path / "meta.parquet"
    pq.write_table(pa.table({"id": ["a", "b", "c", "d", "e"], "text": ["one", "two", "three", "four", "five"],
                             "tier": ["1", "1", None, "pro", "1"], "n": [None, 1, 1, None, None],
                             "flag": [None, None, True, None, None]}), path)
    table = open_table(path, settings=get_settings())
    import_table(engine, lead, table, ColumnMapping(id=["id"], text="text"), "meta", create=True)
    metas = {k: e.meta for k, e in examples_of(engine, "meta").items()}
    assert metas == {"a": {"tier": "1"}, "b": {"tier": "1", "n": 1}, "c": {"n": 1, "flag": True},
                     "d": {"tier": "pro"}, "e": {"tier": "1"}}
    assert [list(m) for m in metas.values()] == [["tier"], ["tier", "n"], ["n", "flag"], ["tier"], ["tier"]]


def _ls_annotation(who: int, at: str, results: list[tuple[str, str, Any]]) -> dict[str, Any]:
    """A Label Studio annotation; results as (from_name, type, value)."""
    return {"completed_by": who, "created_at": at, "result": [
        {"from_name": name, "to_name": "text", "type": kind, "value": value} for name, kind, value in results]}


def test_label_studio_export_with_several_questions(engine: Engine, lead: User, tmp_path: Path) -> None:
    """Two annotators answer "topic" and "sentiment" in different orders: the label is the picked
    question, never whichever result comes first; the other question is kept per annotator."""
    def topic(v: str) -> tuple[str, str, dict[str, list[str]]]:
        return ("topic", "choices", {"choices": [v]})

    def mood(v: str) -> tuple[str, str, dict[str, list[str]]]:
        return ("sentiment", "choices", {"choices": [v]})

    tasks = [
        {"id": 1, "data": {"text": "charged twice"}, "annotations": [
            _ls_annotation(3, "2024-05-01T10:00:00Z", [topic("Billing"), mood("Negative")]),
            _ls_annotation(4, "2024-05-01T11:00:00Z", [mood("Negative"), topic("Billing")])]},
        {"id": 2, "data": {"text": "love the app"}, "annotations": [
            _ls_annotation(3, "2024-05-02T10:00:00Z", [mood("Positive"), topic("Praise")]),
            _ls_annotation(4, "2024-05-02T11:00:00Z", [topic("Praise")])]},
    ]
    path = tmp_path / "two-questions.json"
    path.write_text(json.dumps(tasks), encoding="utf-8")
    table = open_table(path)
    assert [(c.name, c.type, c.column) for c in table.controls] == [
        ("topic", "choices", "topic"), ("sentiment", "choices", "sentiment")]
    guess = guess_mapping(table)
    assert guess.label is None  # two choice questions: the user picks
    guess.label = "topic"
    report = import_table(engine, lead, table, guess, "ls2", create=True)
    assert report.labels == ["Billing", "Praise"]
    assert status_of(engine, "ls2") == {"1": ("labelled", "Billing"), "2": ("labelled", "Praise")}
    assert {k: e.meta for k, e in examples_of(engine, "ls2").items()} == {
        "1": {"sentiment": {"labelstudio:3": "Negative", "labelstudio:4": "Negative"}},
        "2": {"sentiment": {"labelstudio:3": "Positive"}}}

    # One choices question is the guess; a textarea answers a generation project's response.
    single = [{"id": 7, "data": {"prompt": "Where is my order?"}, "annotations": [
        _ls_annotation(3, "2024-05-03T10:00:00Z", [("quality", "choices", {"choices": ["ok"]}),
                                                   ("rewrite", "textarea", {"text": ["It ships today."]})])]}]
    path = tmp_path / "replies.json"
    path.write_text(json.dumps(single), encoding="utf-8")
    table = open_table(path)
    assert guess_mapping(table).label == "quality"
    mapping = guess_mapping(table, TaskType.generation)
    assert (mapping.prompt, mapping.response) == ("prompt", "rewrite")
    import_table(engine, lead, table, mapping, "ls-gen", create=True, task_type=TaskType.generation)
    with read_session(engine) as session:
        responses = session.execute(select(Annotation.response).join(Example).join(Project)
                                    .where(Project.name == "ls-gen")).scalars().all()
    assert responses == ["It ships today."]


def _repeat_file(tmp_path: Path) -> Path:
    return write_csv(tmp_path / "repeats.csv", [
        ["item", "text", "annotator", "label", "at"],
        ["i1", "refund please", "A", "billing", "2024-05-01T12:00:00Z"],
        ["i1", "refund please", "A", "refund", "2024-05-01T10:00:00Z"],  # later row, earlier judgement
        ["i1", "refund please", "A", "other", "2024-05-01T11:00:00Z"],
        ["i2", "app crashes", "A", "bug", ""],
        ["i2", "app crashes", "A", "crash", ""],  # no timestamps: row order decides
    ])


@pytest.mark.parametrize(("policy", "kept", "summary"), [
    ("first", {"i1": "refund", "i2": "bug"}, "3 repeat annotations resolved: the first judgement kept"),
    ("latest", {"i1": "billing", "i2": "crash"}, "3 repeat annotations resolved: the latest judgement kept"),
    ("history", {"i1": "billing", "i2": "crash"},
     "3 repeat annotations resolved: the latest judgement kept, every judgement in the audit log"),
])
def test_repeat_judgements_policy(engine: Engine, lead: User, tmp_path: Path, policy: str,
                                  kept: dict[str, str], summary: str) -> None:
    table = open_table(_repeat_file(tmp_path))
    mapping = ColumnMapping(id=["item"], text="text", annotator="annotator", label="label", annotated_at="at")
    report = import_table(engine, lead, table, mapping, "rep", create=True, repeats=policy)
    assert (report.repeat_annotations, report.repeat_policy) == (3, policy)
    assert summary in report.summary()
    assert {item: label for (item, _), label in annotations_of(engine, "rep").items()} == kept
    with read_session(engine) as session:
        events = session.execute(select(AuditEvent).where(AuditEvent.action == "import.repeat_judgements")
                                 .order_by(AuditEvent.id)).scalars().all()
    if policy != "history":
        assert events == []
        return
    histories = {event.after["kept"]["label"]: [j["label"] for j in event.after["history"]] for event in events}
    assert histories == {"billing": ["refund", "other", "billing"], "crash": ["bug", "crash"]}
    assert all(event.actor_id == lead.id and event.after["annotator"] == "A" for event in events)


def test_unknown_repeat_policy_is_refused(engine: Engine, lead: User, tmp_path: Path) -> None:
    table = open_table(_repeat_file(tmp_path))
    mapping = ColumnMapping(id=["item"], text="text", annotator="annotator", label="label")
    with pytest.raises(InputError, match="repeat judgements: use one of first, latest, history"):
        import_table(engine, lead, table, mapping, "rep", create=True, repeats="newest")
    assert table_counts(engine)["example"] == 0


# --------------------------------------------------------------------------- how files are read


def _rich_rows() -> list[dict[str, Any]]:
    """Rows with every kind of cell the direct Arrow read must agree with `datasets` on: nulls, numbers,
    booleans, nested metadata, a field only some rows have, and enough rows for several batches."""
    rows: list[dict[str, Any]] = []
    for i in range(23):
        row: dict[str, Any] = {"id": f"r{i}", "text": f"  ticket {i} about {'billing' if i % 3 else 'shipping'} ",
                               "label": None if i % 5 == 0 else ("billing" if i % 3 else "shipping"),
                               "score": i / 4, "urgent": i % 2 == 0, "tags": [f"t{i % 4}"],
                               "customer": {"tier": "pro" if i % 2 else "free", "years": i}}
        if i % 7 == 0:
            row["note"] = f"note {i}"
        rows.append(row)
    rows[4]["text"] = rows[3]["text"]  # an exact duplicate
    return rows


@pytest.mark.parametrize("file_format", ["jsonl", "parquet"])
def test_arrow_reads_jsonl_and_parquet_directly_and_imports_what_datasets_would(
        engine: Engine, lead: User, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, file_format: str) -> None:
    from curation.data import formats

    set_batch_rows(monkeypatch, 5)
    path = tmp_path / f"rich.{file_format}"
    if file_format == "jsonl":
        write_jsonl(path, _rich_rows())
    else:
        pq.write_table(pa.Table.from_pylist(_rich_rows()), path)
    direct = open_table(path)
    assert direct.dataset is None  # Arrow alone read it
    assert direct.kinds == {"id": "string", "text": "string", "label": "string", "score": "float64",
                            "urgent": "bool", "tags": "list", "customer": "dict", "note": "string"}
    direct_report = do_import(engine, lead, path, "direct")
    monkeypatch.setattr(formats, "_DIRECT_READ_BYTES", -1)  # every file through `datasets`, as before
    through_datasets = open_table(path)
    assert through_datasets.dataset is not None and through_datasets.kinds == direct.kinds
    assert through_datasets.preview(30) == direct.preview(30)
    datasets_report = do_import(engine, lead, path, "through datasets")

    def kept(report: ImportReport) -> dict[str, Any]:
        return {k: v for k, v in report.to_dict().items() if k not in ("project", "project_id", "import_id")}

    assert kept(direct_report) == kept(datasets_report)
    assert (direct_report.examples_added, direct_report.exact_duplicate_groups) == (23, [[4, 5]])

    def rows(project: str) -> dict[str, tuple[Any, ...]]:
        return {k: (e.text, e.final_label, e.status, e.meta, e.content_hash)
                for k, e in examples_of(engine, project).items()}

    assert rows("direct") == rows("through datasets")
    assert rows("direct")["r1"] == ("  ticket 1 about billing ", "billing", "labelled",  # content is kept as is
                                    {"score": 0.25, "urgent": False, "tags": ["t1"],
                                     "customer": {"tier": "pro", "years": 1}},
                                    examples_of(engine, "direct")["r1"].content_hash)


def test_a_jsonl_file_arrow_cannot_vouch_for_goes_through_datasets(tmp_path: Path) -> None:
    """A column whose JSON type changes between rows: `datasets` reads it (as JSON values) and the
    importer's message stays the one it always was (see BAD_INPUTS' objlabel.jsonl)."""
    path = write_jsonl(tmp_path / "mixed.jsonl", [{"text": "x", "label": "billing"},
                                                  {"text": "y", "label": {"name": "billing"}}])
    table = open_table(path)
    assert table.dataset is not None and table.kinds["label"] == "json"


def test_a_parquet_file_with_class_labels_keeps_their_names(engine: Engine, lead: User, tmp_path: Path) -> None:
    features = datasets.Features({"text": datasets.Value("string"),
                                  "label": datasets.ClassLabel(names=["negative", "positive"])})
    datasets.Dataset.from_dict({"text": ["bad", "good"], "label": [0, 1]}, features=features) \
        .to_parquet(str(tmp_path / "reviews.parquet"))
    table = open_table(tmp_path / "reviews.parquet")
    assert (table.kinds["label"], table.class_names) == ("classlabel", {"label": ["negative", "positive"]})
    do_import(engine, lead, tmp_path / "reviews.parquet", "reviews")
    assert {e.text: e.final_label for e in examples_of(engine, "reviews").values()} == {
        "bad": "negative", "good": "positive"}


def test_the_cli_starts_without_datasets(tmp_path: Path) -> None:
    """`python -m curation import` of a JSON Lines file never pays for importing `datasets` (1.7 s of
    CPU): only what reads other formats or builds a DatasetDict imports it."""
    import subprocess
    import sys

    from tests.conftest import REPO

    probe = ("import sys, curation.cli.main, curation.data.importer, curation.data.export, "
             "curation.versions.export; print(sorted(m for m in ('datasets', 'pandas') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", probe], cwd=REPO, capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"
