"""The wide import's column path (curation.data.columnar) stores exactly what the row path stores,
hands a batch with a bad row to the row path (same error, nothing written), and the SQLite bulk load
(curation.data.bulk) leaves the example table's indexes as they were, also after a failed import."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Engine

import curation.data.bulk
import curation.data.importer
from curation.data.formats import open_table
from curation.data.importer import import_table
from curation.data.mapping import guess_mapping
from curation.data.rows import content_hash, prompt_hashes, text_hashes
from curation.db import _MIGRATIONS, _head_revision
from curation.errors import InputError
from curation.models import TaskType, User
from tests.conftest import BOTH_BACKENDS
from tests.curation.test_io import do_import, examples_of, set_batch_rows, table_counts, write_jsonl

STORED = ("text", "prompt", "response", "messages", "meta", "source", "licence", "content_hash", "split", "status",
          "final_label", "final_response", "exclusion_reason")

FIRST = [
    {"id": " a1 ", "text": "Where is my parcel?", "label": "shipping", "source": " email ", "tier": "pro", "note": "",
     "stars": 3, "split": "train"},
    {"id": "a2", "text": "  charged twice  ", "label": "billing", "source": None, "tier": None, "note": "vip",
     "stars": None, "split": None},
    {"id": "a3", "text": "Where is my parcel?", "label": None, "source": "chat", "tier": "free", "note": "x",
     "stars": 0, "split": " test "},
    {"id": "a4", "text": 'café "quoted" \\ ünï', "label": "refund", "source": "", "tier": "pro", "note": "",
     "stars": 1.5, "split": "train"},
    {"id": "a5", "text": "Where is my parcel?", "label": "shipping", "source": "chat", "tier": "pro", "note": "",
     "stars": 2, "split": None},
    {"id": "a6", "text": "plain", "label": " billing ", "source": "chat", "tier": "", "note": "n", "stars": -1,
     "split": None},
    {"id": "a7", "text": "last one", "label": "", "source": "phone", "tier": "pro", "note": "", "stars": 7,
     "split": None},
]
SECOND = [  # a3 exists already; b2 repeats a1's text
    {"id": "a3", "text": "changed text is ignored", "label": "refund", "source": "chat", "tier": "pro", "note": "",
     "stars": 1, "split": None},
    {"id": "b1", "text": "new item", "label": "billing", "source": "chat", "tier": "free", "note": "", "stars": 4,
     "split": None},
    {"id": "b2", "text": "Where is my parcel?", "label": None, "source": "email", "tier": "pro", "note": "",
     "stars": 5, "split": "train"},
]


class ColumnPathSpy:
    """Counts the batches the column path accepted (so a comparison cannot pass with it unused)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.accepted = 0
        real = curation.data.importer.columnar_batch

        def counting(*args: Any) -> Any:
            ready = real(*args)
            self.accepted += ready is not None
            return ready

        monkeypatch.setattr(curation.data.importer, "columnar_batch", counting)


def stored(engine: Engine, project: str) -> dict[str, dict[str, Any]]:
    return {external_id: {name: getattr(example, name) for name in STORED}
            for external_id, example in examples_of(engine, project).items()}


def comparable(report: Any) -> dict[str, Any]:
    """The report less what differs by design between the two projects (the source account is
    created by the first import only)."""
    return {key: value for key, value in report.to_dict().items()
            if key not in ("project", "import_id", "file", "annotators_created")}


def import_both_ways(engine: Engine, lead: User, monkeypatch: pytest.MonkeyPatch, files: list[Path],
                     **options: Any) -> tuple[list[Any], list[Any]]:
    """Import `files` into project 'columns' (column path on) and 'rows' (column path off), with the
    guessed mapping and `options` for import_table."""

    def run(path: Path, project: str) -> Any:
        table = open_table(path)
        return import_table(engine, lead, table, guess_mapping(table), project, create=True, **options)

    by_columns = [run(path, "columns") for path in files]
    with monkeypatch.context() as off:
        off.setattr(curation.data.importer, "fast_path_applies", lambda importer: False)
        by_rows = [run(path, "rows") for path in files]
    return by_columns, by_rows


@BOTH_BACKENDS
def test_column_path_stores_exactly_what_the_row_path_stores(engine: Engine, lead: User, tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    set_batch_rows(monkeypatch, 3)
    spy = ColumnPathSpy(monkeypatch)
    files = [write_jsonl(tmp_path / "first.jsonl", FIRST), write_jsonl(tmp_path / "second.jsonl", SECOND)]
    by_columns, by_rows = import_both_ways(engine, lead, monkeypatch, files)
    assert spy.accepted == 4  # 3 + 1 batches; the row-path project never asks
    assert [comparable(r) for r in by_columns] == [comparable(r) for r in by_rows]
    assert stored(engine, "columns") == stored(engine, "rows")
    # And what that is, spelled out for a few items.
    items = stored(engine, "columns")
    assert sorted(items) == ["a1", "a2", "a3", "a4", "a5", "a6", "a7", "b1", "b2"]
    assert items["a1"]["meta"] == {"tier": "pro", "stars": 3} and items["a1"]["source"] == "email"
    assert items["a2"]["meta"] == {"note": "vip"} and items["a2"]["text"] == "  charged twice  "
    assert items["a3"]["text"] == "Where is my parcel?" and items["a3"]["split"] == "test"
    assert items["a4"]["content_hash"] == content_hash('café "quoted" \\ ünï', None, None, None)
    assert (items["a6"]["final_label"], items["a6"]["status"]) == ("billing", "labelled")
    assert (items["a7"]["final_label"], items["a7"]["status"]) == (None, "new")
    first, second = by_columns
    assert first.exact_duplicate_groups == [[1, 3, 5]] and first.final_labels == 5
    assert second.examples_added == 2 and second.examples_skipped_existing == 1
    assert second.labels == ["shipping", "billing", "refund"]  # the file's labels in order of first appearance


def test_column_path_labels_as_votes_and_generation_match_the_row_path(engine: Engine, lead: User, tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    set_batch_rows(monkeypatch, 2)
    spy = ColumnPathSpy(monkeypatch)
    votes = write_jsonl(tmp_path / "votes.jsonl", [{"id": f"v{i}", "text": f"text {i % 3}", "label": "ab"[i % 2]}
                                                   for i in range(5)])
    by_columns, by_rows = import_both_ways(engine, lead, monkeypatch, [votes], labels_as="vote", label_source="model-x")
    assert spy.accepted == 3
    assert [comparable(r) for r in by_columns] == [comparable(r) for r in by_rows]
    assert by_columns[0].source_labels == 5 and by_columns[0].final_labels == 0
    assert by_columns[0].annotators_created == ["model-x"]
    assert stored(engine, "columns") == stored(engine, "rows")

    pairs = [{"id": "g1", "prompt": "Say hi", "response": "Hi!"}, {"id": "g2", "prompt": "Say bye", "response": ""},
             {"id": "g3", "prompt": "Say hi", "response": "Hi!"}]
    path = write_jsonl(tmp_path / "gen.jsonl", pairs)
    gen_columns = do_import(engine, lead, path, "gen-columns", task_type=TaskType.generation)
    with monkeypatch.context() as off:
        off.setattr(curation.data.importer, "fast_path_applies", lambda importer: False)
        gen_rows = do_import(engine, lead, path, "gen-rows", task_type=TaskType.generation)
    assert comparable(gen_columns) == comparable(gen_rows) and gen_columns.exact_duplicate_groups == [[1, 3]]
    assert stored(engine, "gen-columns") == stored(engine, "gen-rows")
    assert stored(engine, "gen-columns")["g2"]["response"] is None

    # Responses imported as final (issue 17): the same final responses and statuses either way.
    def import_final(project: str) -> Any:
        table = open_table(path)
        return import_table(engine, lead, table, guess_mapping(table, TaskType.generation), project, create=True,
                            task_type=TaskType.generation, responses_as="final")

    accepted = spy.accepted
    final_columns = import_final("final-columns")
    assert spy.accepted > accepted
    with monkeypatch.context() as off:
        off.setattr(curation.data.importer, "fast_path_applies", lambda importer: False)
        final_rows = import_final("final-rows")
    assert comparable(final_columns) == comparable(final_rows)
    assert (final_columns.final_responses, final_columns.responses_missing) == (2, 1)
    assert stored(engine, "final-columns") == stored(engine, "final-rows")
    assert [(r["status"], r["final_response"]) for r in stored(engine, "final-columns").values()] == [
        ("labelled", "Hi!"), ("new", None), ("labelled", "Hi!")]


def test_vectorised_hashes_equal_content_hash() -> None:
    texts = ["a", " spaced ", 'quote " and \\ backslash', "ünï\ncode", "\u2028"]
    assert text_hashes(texts) == [content_hash(t, None, None, None) for t in texts]
    assert prompt_hashes(texts, [None, "", "r", "ü", None]) == [
        content_hash(None, p, r, None) for p, r in zip(texts, [None, "", "r", "ü", None], strict=True)]
    assert prompt_hashes(texts, None) == [content_hash(None, p, None, None) for p in texts]


@pytest.mark.parametrize(("bad", "message"), [
    ({"id": "r2", "text": "again"}, "bad.jsonl, row 5, field 'id': id 'r2' is also on row 2; ids must be unique"),
    ({"id": "r5", "text": "   "}, "bad.jsonl, row 5, field 'text': empty content"),
    ({"id": "  ", "text": "x"}, "bad.jsonl, row 5, field 'id': the id is empty"),
    ({"id": "r5", "text": "x", "split": "s" * 21}, "bad.jsonl, row 5, field 'split': split '"
     + "s" * 21 + "...' is longer than 20 characters"),
])
def test_a_bad_row_after_column_batches_names_its_row_and_writes_nothing(
        engine: Engine, lead: User, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, bad: dict[str, Any],
        message: str) -> None:
    set_batch_rows(monkeypatch, 2)
    spy = ColumnPathSpy(monkeypatch)
    rows = [{"id": f"r{i}", "text": f"text {i}", "split": "train"} for i in range(1, 5)] + [{"split": None, **bad}]
    before = table_counts(engine)
    with pytest.raises(InputError) as caught:
        do_import(engine, lead, write_jsonl(tmp_path / "bad.jsonl", rows), "doomed")
    assert str(caught.value) == message
    assert spy.accepted == 2  # rows 1-4 went column by column, row 5's batch through the row path
    assert table_counts(engine) == before


def example_indexes(engine: Engine) -> list[tuple[str, str | None]]:
    with engine.connect() as connection:
        return connection.exec_driver_sql(
            "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = 'example' ORDER BY name").all()


def test_bulk_load_rebuilds_the_indexes_and_a_failed_one_keeps_them(engine: Engine, lead: User, tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(curation.data.bulk, "BULK_MIN_ROWS", 1)
    dropped: list[list[str]] = []
    real_drop = curation.data.bulk.drop_example_indexes
    monkeypatch.setattr(curation.data.importer, "drop_example_indexes",
                        lambda connection, rows: dropped.append(real_drop(connection, rows)) or dropped[-1])
    indexes = example_indexes(engine)
    assert len(indexes) == 8  # the unique (project, external id) index and seven secondary ones
    partial = {name for name, sql in indexes if sql and " WHERE " in sql}
    assert partial == {"ix_example_audit_id", "ix_example_test_set_id", "ix_example_project_priority"}

    report = do_import(engine, lead, write_jsonl(tmp_path / "ok.jsonl", FIRST), "bulk")
    # The partial indexes stay: imported rows are in no test set and no audit, so they never enter them.
    assert report.examples_added == 7 and len(dropped[-1]) == 4
    assert not any(name in statement for statement in dropped[-1] for name in partial)
    assert example_indexes(engine) == indexes
    with engine.connect() as connection:
        assert connection.exec_driver_sql("PRAGMA integrity_check").scalar_one() == "ok"
        plan = connection.exec_driver_sql(
            "EXPLAIN QUERY PLAN SELECT id FROM example WHERE project_id = 1 AND content_hash = 'x'").all()
        assert "ix_example_project_hash" in str(plan)
        for column in ("audit_id", "test_set_id"):  # a lookup by id is served by the partial index
            plan = connection.exec_driver_sql(f"EXPLAIN QUERY PLAN SELECT id FROM example WHERE {column} = 3").all()
            assert f"ix_example_{column}" in str(plan)
        plan = connection.exec_driver_sql(  # the suspected-first queue walks the scored items in order
            "EXPLAIN QUERY PLAN SELECT id FROM example WHERE project_id = 1 AND priority IS NOT NULL "
            "ORDER BY priority DESC, id").all()
        assert "SEARCH example USING COVERING INDEX ix_example_project_priority" in str(plan)

    before = table_counts(engine)
    rows = [{"id": f"z{i}", "text": f"z {i}"} for i in range(8)] + [{"id": "z8", "text": ""}]
    with pytest.raises(InputError, match="row 9, field 'text': empty content"):
        do_import(engine, lead, write_jsonl(tmp_path / "bad.jsonl", rows), "bulk-doomed")
    assert len(dropped[-1]) == 4  # 9 rows coming, 7 in the table: dropped, then rolled back
    assert table_counts(engine) == before and example_indexes(engine) == indexes

    do_import(engine, lead, write_jsonl(tmp_path / "small.jsonl", SECOND), "bulk-small")
    assert dropped[-1] == []  # 3 rows coming into a table of 7: indexes stay, rows go in one by one


def test_bulk_load_is_sqlite_only_and_for_large_imports(engine: Engine) -> None:
    with engine.connect() as connection:
        assert curation.data.bulk.drop_example_indexes(connection, curation.data.bulk.BULK_MIN_ROWS - 1) == []


def test_head_revision_read_from_the_files_is_alembics_head() -> None:
    config = Config()
    config.set_main_option("script_location", str(_MIGRATIONS))
    assert _head_revision() == ScriptDirectory.from_config(config).get_current_head()
