"""Import and export of examples and annotations.

Reading gives an Arrow table (curation.data.formats: Arrow reads JSON Lines and Parquet directly,
`datasets` the rest through its memory-mapped cache), imported in batches. An import is one
transaction: it either adds everything or leaves the database as it was.

Shapes
- wide: one row per example (`text`, or `prompt`/`response`, or `messages`), with an optional
  `label` that becomes the example's final label.
- long: one row per (item, annotator) judgement, as annotation teams export them; rows with the
  same item id form one example, and each annotator becomes an (imported) account. The label is
  one column or a group of one-hot columns (`is_abuse.1`, `is_abuse.0`, ...: label = suffix).
- Label Studio JSON export: tasks with several annotations each, read as the long shape.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

os.environ.setdefault("HF_DATASETS_OFFLINE", "1")  # local files only; never reach for a hub here

import pyarrow as pa  # noqa: E402
import pyarrow.compute as pc  # noqa: E402
from sqlalchemy import bindparam, insert, select, update  # noqa: E402
from sqlalchemy.engine import Engine  # noqa: E402
from sqlmodel import Session  # noqa: E402

from curation.access import audit  # noqa: E402
from curation.access.roles import LEADS, require_role  # noqa: E402
from curation.data.bulk import drop_example_indexes, rebuild_indexes  # noqa: E402
from curation.data.columnar import columnar_batch, duplicate_groups, fast_path_applies  # noqa: E402
from curation.data.formats import ProgressCallback, Table, file_sha256  # noqa: E402
from curation.data.import_checks import id_conflicts  # noqa: E402
from curation.data.mapping import MESSAGE_ROLES, ColumnMapping, _truthy  # noqa: E402
from curation.data.rows import content_hash, executemany_parameters, final_response_of  # noqa: E402
from curation.data.rows import jsonable as _jsonable  # noqa: E402
from curation.data.rows import text_of as _text  # noqa: E402
from curation.db import write_session  # noqa: E402
from curation.errors import InputError, NotFound  # noqa: E402
from curation.models import (  # noqa: E402
    Annotation,
    Example,
    ExampleStatus,
    FinalLabelRule,
    ImportRecord,
    Project,
    Role,
    TaskType,
    User,
    utcnow,
)
from curation.review.rules import resolve_status  # noqa: E402
from curation.review.sources import (  # noqa: E402
    LABELS_AS,
    check_source_name,
    label_studio_predictions,
    store_predictions,
    store_source_labels,
)
from curation.settings import Settings, get_settings  # noqa: E402

# What an import keeps when one annotator judged one item more than once (by annotated_at when both
# judgements have one, else by row order).
REPEAT_POLICIES = {
    "first": "the first judgement kept",
    "latest": "the latest judgement kept",
    "history": "the latest judgement kept, every judgement in the audit log",
}
# What a generation file's responses are (issue 17): `review` (the default: experts review them
# before any version includes them) or `final` (already reviewed elsewhere: the items are final and
# experts never see them). Only an explicit choice skips review.
RESPONSES_AS = {
    "review": "responses for experts to review (a version includes an item once its response is reviewed)",
    "final": "responses imported as final: experts will not see them",
}


@dataclass
class ImportReport:
    project: str
    file: str
    rows: int = 0
    examples_added: int = 0
    examples_skipped_existing: int = 0
    annotations_added: int = 0
    annotations_skipped_existing: int = 0
    repeat_annotations: int = 0  # later judgements by an annotator already seen on the item
    repeat_policy: str = "latest"  # which judgement of a repeat is kept: first / latest / history
    annotators_created: list[str] = field(default_factory=list)
    labels: list[str] = field(default_factory=list)
    exact_duplicate_groups: list[list[int]] = field(default_factory=list)  # row numbers sharing content
    warnings: list[str] = field(default_factory=list)  # e.g. an id that merges rows with different texts
    import_id: int | None = None
    # Issue 12: what became of the file's labels (wide files): final labels, votes or suggestions.
    labels_as: str = "final"
    label_source: str | None = None
    source_labels: int = 0  # votes or suggestions stored
    source_labels_skipped_existing: int = 0
    final_labels: int = 0  # labels set as final labels (labels_as final)
    responses_as: str = "review"  # generation: review | final (issue 17)
    final_responses: int = 0  # responses set as final responses (responses_as final)
    responses_missing: int = 0  # responses_as final, but the item has no (non-empty) response: left for review
    suggestions_from_predictions: int = 0  # Label Studio predictions stored as suggestions

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def summary(self) -> str:
        parts = [
            f"{self.rows} rows read",
            f"{self.examples_added} examples added",
            f"{self.annotations_added} annotations added",
        ]
        if self.examples_skipped_existing:
            parts.append(f"{self.examples_skipped_existing} examples already present (skipped)")
        if self.annotations_skipped_existing:
            parts.append(f"{self.annotations_skipped_existing} annotations already present (skipped)")
        if self.repeat_annotations:
            parts.append(f"{self.repeat_annotations} repeat annotations resolved: "
                         + REPEAT_POLICIES.get(self.repeat_policy, self.repeat_policy))
        if self.annotators_created:
            parts.append(f"{len(self.annotators_created)} annotator accounts created")
        if self.exact_duplicate_groups:
            n = sum(len(group) for group in self.exact_duplicate_groups)
            parts.append(f"{len(self.exact_duplicate_groups)} groups of exact duplicates ({n} rows)")
        parts.extend(self.label_outcome())
        return "; ".join(parts)

    def label_outcome(self) -> list[str]:
        """What became of the file's labels, in words (issue 12)."""
        out = []
        if self.labels_as == "final" and self.final_labels:
            out.append(f"{self.final_labels} labels imported as final labels (experts will not review them)")
        elif self.labels_as in ("vote", "suggestion") and (self.source_labels or self.source_labels_skipped_existing):
            kind = "votes" if self.labels_as == "vote" else "suggestions"
            out.append(f"{self.source_labels} labels imported as {kind} of {self.label_source}")
            if self.source_labels_skipped_existing:
                out.append(f"{self.source_labels_skipped_existing} {kind} of {self.label_source} already present "
                           "(skipped)")
        if self.final_responses:
            n = self.final_responses
            out.append(f"{n} response{'s' if n != 1 else ''} imported as final: experts will not see them")
        if self.responses_missing:
            n = self.responses_missing
            out.append(f"{n} item{'s' if n != 1 else ''} without a response left for experts to review")
        if self.suggestions_from_predictions:
            out.append(f"{self.suggestions_from_predictions} Label Studio predictions imported as suggestions")
        return out


# --------------------------------------------------------------------------- importing
@dataclass
class _Item:
    row: int
    values: dict[str, Any]  # the Example column values
    annotations: dict[str, dict[str, Any]] = field(default_factory=dict)  # annotator -> annotation values
    history: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # annotator -> every judgement (repeats)
    inserted: bool = False


def import_table(
    engine: Engine,
    actor: User,
    table: Table,
    mapping: ColumnMapping,
    project_name: str,
    *,
    create: bool = False,
    task_type: TaskType | None = None,
    progress: ProgressCallback | None = None,
    settings: Settings | None = None,
    repeats: str = "latest",
    labels_as: str = "final",
    label_source: str | None = None,
    responses_as: str = "review",
    labels: Sequence[str] | None = None,
    overlap_k: int | None = None,
    final_label_rule: FinalLabelRule | str | None = None,
) -> ImportReport:
    """Import `table` into the project `project_name` in one transaction (leads and admins).

    With `create`, a missing project is made with `labels` (in that order; default: the file's label
    set in order of first appearance, or the one-hot column order), `overlap_k` and
    `final_label_rule`. Existing examples (same external id) are skipped, so importing a file twice
    adds nothing; annotations for existing examples are added.
    `repeats` (a key of REPEAT_POLICIES) decides which judgement is kept when an annotator judged an
    item more than once in the file; "history" also writes every one of them to the audit log.

    `labels_as` says what a wide file's label column means: `final` (the item is labelled; experts
    never see it), `vote` (one annotation by the source account `label_source`) or `suggestion`
    (a suggestion of `label_source`, with the `score` column when mapped). Label Studio predictions
    always become suggestions.

    `responses_as` says what a generation file's responses are: `review` (the default: the items
    wait for experts, and no version includes them until their response is reviewed) or `final`
    (the response, or a chat's last assistant turn, becomes the item's final response; experts never
    see it). One response per item (a wide file) only.
    """
    require_role(actor, *LEADS)
    settings = settings or get_settings()
    _check_mapping(table, mapping)
    if repeats not in REPEAT_POLICIES:
        raise InputError(f"repeat judgements: use one of {', '.join(REPEAT_POLICIES)}, not '{repeats}'",
                         field="repeats")

    if labels_as not in LABELS_AS:
        raise InputError(f"labels as '{labels_as}': use one of {', '.join(LABELS_AS)}", field="labels_as")
    if labels_as != "final":
        label_source = check_source_name(label_source)
        if mapping.long_format:
            raise InputError("labels as votes or suggestions apply to one label per item (a wide file); in a "
                             "long-format file each annotator's label is already a vote", file=table.name,
                             field="labels_as")
    if responses_as not in RESPONSES_AS:
        raise InputError(f"responses as '{responses_as}': use one of {', '.join(RESPONSES_AS)}",
                         field="responses_as")
    if responses_as == "final" and mapping.long_format:
        raise InputError("responses as final apply to one response per item (a wide file); in a long-format "
                         "file each annotator's response is already a review", file=table.name,
                         field="responses_as")
    if mapping.score and labels_as == "final":
        raise InputError("a score column goes with labels as votes or suggestions", file=table.name, field="score")
    report = ImportReport(project=project_name, file=table.name, warnings=mapping_warnings(table, mapping),
                          repeat_policy=repeats, labels_as=labels_as, responses_as=responses_as,
                          label_source=label_source if labels_as != "final" else None)
    with write_session(engine) as session:
        project = session.execute(select(Project).where(Project.name == project_name)).scalars().first()
        if project is None:
            if not create:
                raise NotFound(f"No project named '{project_name}' (use create to make it).")
            project = _new_project(project_name, task_type or _task_type_of(mapping), mapping, labels, overlap_k,
                                   final_label_rule)
            session.add(project)
            session.flush()
            audit.record(session, actor, "project.create", "project", project.id, project_id=project.id,
                         after={"name": project.name, "task_type": project.task_type, "by": "import"})
        elif task_type is not None and TaskType(project.task_type) is not task_type:
            raise InputError(f"project '{project_name}' is a {project.task_type} project, not {task_type.value}")
        _check_task_fields(table, mapping, TaskType(project.task_type))
        if responses_as == "final" and TaskType(project.task_type) is not TaskType.generation:
            raise InputError("responses as final apply to generation projects; a classification file's labels "
                             "are chosen with labels as", file=table.name, field="responses_as")
        record = ImportRecord(project_id=project.id, file_name=table.name, file_sha256=file_sha256(table.path),
                              file_format=table.file_format, mapping=mapping.to_dict(), actor_id=actor.id)
        session.add(record)
        session.flush()
        importer = _Importer(session, project, table, mapping, record, report, settings, progress, actor)
        importer.labels_as = labels_as
        importer.responses_final = responses_as == "final"
        importer.run()
        _store_labels_of_sources(session, project, table, mapping, importer, report, record.id)
        record.examples_added, record.annotations_added = report.examples_added, report.annotations_added
        session.add(record)
        audit.record(session, actor, "import", "import", record.id, project_id=project.id,
                     after={k: v for k, v in report.to_dict().items() if k != "exact_duplicate_groups"})
        report.import_id = record.id
    return report


def mapping_warnings(table: Table, mapping: ColumnMapping) -> list[str]:
    """What the dry run, the import page and the import report warn about before rows are written:
    an item id whose rows carry different texts in other columns (distinct items would be merged)."""

    conflict = id_conflicts(table, mapping)
    return [conflict.message()] if conflict else []


def _new_project(name: str, task_type: TaskType, mapping: ColumnMapping, labels: Sequence[str] | None,
                 overlap_k: int | None, final_label_rule: FinalLabelRule | str | None) -> Project:
    """The project `import --create` makes: the given label set (in order), k and rule (issue 12)."""
    chosen = [label.strip() for label in labels or [] if label and label.strip()]
    if len(set(chosen)) != len(chosen):
        raise InputError("the label set names a label twice", field="labels")
    if any(len(label) > 200 for label in chosen):
        raise InputError("a label is longer than 200 characters", field="labels")
    if overlap_k is not None and not 1 <= int(overlap_k) <= 20:
        raise InputError("k (labels per item) must be between 1 and 20", field="overlap_k")
    rule = FinalLabelRule(final_label_rule) if final_label_rule else FinalLabelRule.majority
    return Project(name=name, task_type=task_type, labels=chosen or mapping.onehot_labels(),
                   overlap_k=int(overlap_k) if overlap_k is not None else 2, final_label_rule=rule)


def _store_labels_of_sources(session: Session, project: Project, table: Table, mapping: ColumnMapping,
                             importer: _Importer, report: ImportReport, import_id: int | None) -> None:
    """After the rows: the file's labels as votes or suggestions, and Label Studio predictions as
    suggestions (issue 12). Same transaction as the import."""

    if report.labels_as != "final" and report.label_source:
        result = store_source_labels(session, project, report.label_source, report.labels_as,
                                     importer.source_rows, import_id, importer.now)
        report.source_labels, report.source_labels_skipped_existing = result.stored, result.skipped_existing
        if result.account_created:
            report.annotators_created.append(report.label_source)
    if table.file_format == "labelstudio" and "id" in table.columns:
        predictions = label_studio_predictions(table.path)
        if predictions:
            # Task id -> the item's external id under this import's mapping (rows keep the task id).
            external: dict[str, str] = {}
            number = 0
            for batch in table.batches(10_000):
                for row in batch.to_pylist():
                    number += 1
                    external.setdefault(str(row["id"]), importer._external_id(number, row))
            predictions = [(external[task], source, label, score) for task, source, label, score in predictions
                           if task in external]
            report.suggestions_from_predictions = store_predictions(session, project, predictions, import_id,
                                                                    importer.now)


def _task_type_of(mapping: ColumnMapping) -> TaskType:
    return TaskType.generation if (mapping.prompt or mapping.messages) and not mapping.text else TaskType.classification


def _check_mapping(table: Table, mapping: ColumnMapping) -> None:
    for field_name, column in mapping.mapped_columns().items():
        if column not in table.columns:
            raise InputError(f"column '{column}' is not in the file (columns: {', '.join(table.columns)})",
                             file=table.name, field=field_name)
    if mapping.label and mapping.label_onehot:
        raise InputError("map either one label column or one-hot label columns, not both", file=table.name,
                         field="label")
    if len(mapping.label_onehot) == 1:
        raise InputError("one-hot labels need at least two columns", file=table.name, field="label_onehot")
    if mapping.long_format and not mapping.id:
        raise InputError("a long-format file (one row per annotator) needs id column(s) that identify the item",
                         file=table.name, field="id")
    kinds = table.kinds
    for field_name in ("text", "prompt", "response", "source", "licence", "split", "annotator", "label"):
        column = getattr(mapping, field_name)
        if field_name == "label" and column and kinds[column] == "classlabel":
            continue  # class ids, read as their names
        if column and kinds[column] not in _SCALAR_KINDS:
            row, value = _first_odd_value(table, column, text_only=False)
            raise InputError(f"column '{column}' holds {kinds[column]}, not text; the first "
                             f"such value is {_value_preview(value)}", file=table.name, row=row, field=field_name)
    for field_name in ("text", "prompt", "response"):
        # Content is text: a typed column of numbers or booleans is a mis-mapped column, not content.
        column = getattr(mapping, field_name)
        if column and kinds[column] not in ("string", "large_string", "null"):
            row, value = _first_odd_value(table, column, text_only=True)
            raise InputError(f"column '{column}' holds {kinds[column]} values, not text; the first "
                             f"is {_value_preview(value)}", file=table.name, row=row, field=field_name)
    if mapping.messages and kinds[mapping.messages] not in ("list", "largelist"):
        raise InputError(f"column '{mapping.messages}' holds {kinds[mapping.messages]}, "
                         "not a list of {role, content} messages", file=table.name, field="messages")


def _check_task_fields(table: Table, mapping: ColumnMapping, task_type: TaskType) -> None:
    has_content = mapping.text or mapping.prompt or mapping.messages
    if task_type is TaskType.classification and (mapping.prompt or mapping.messages):
        raise InputError("a classification project takes a text column, not prompt/messages", file=table.name,
                         field="text")
    if task_type is TaskType.generation and mapping.text:
        raise InputError("a generation project takes prompt/response or messages columns, not text",
                         file=table.name, field="prompt")
    if not has_content and not mapping.long_format:
        field_name = "text" if task_type is TaskType.classification else "prompt"
        raise InputError("no content column is mapped", file=table.name, field=field_name)


def _first_odd_value(table: Table, column: str, *, text_only: bool) -> tuple[int | None, Any]:
    """(1-based row, value) of the first value in `column` that is not text (`text_only`) or not a
    single value: a JSON object or list, or (in a column of mixed JSON types) a value of another type
    than the column's first one. (None, None) when no row stands out."""
    first_type: type | None = None
    for number, value in enumerate(table.values(column), start=1):
        if value is None:
            continue
        if isinstance(value, (dict, list)) or (text_only and not isinstance(value, str)):
            return number, value
        if first_type is None:
            first_type = type(value)
        elif type(value) is not first_type:
            return number, value
    return None, None


def _value_preview(value: Any, limit: int = 60) -> str:
    try:
        text = json.dumps(value, ensure_ascii=False, default=str)
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


# Column kinds (curation.data.formats.Table.kinds) that hold one value per cell.
_SCALAR_KINDS = frozenset({"string", "large_string", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32",
                           "uint64", "bool", "float32", "float64", "null"})


_MAX_LENGTHS = {"source": 500, "licence": 200, "split": 20}

_NEW, _LABELLED = ExampleStatus.new.value, ExampleStatus.labelled.value


def _first_nul(batch: pa.Table) -> tuple[int, str] | None:
    """(row index, column) of the first text cell in the batch holding a NUL character, or None.
    PostgreSQL cannot store NUL in text; checked per column by Arrow instead of per cell in Python."""
    found: tuple[int, str] | None = None
    for name in batch.column_names:
        column = batch.column(name)
        if not (pa.types.is_string(column.type) or pa.types.is_large_string(column.type)):
            continue
        holds_nul = pc.match_substring(column, "\x00")
        if not pc.any(holds_nul).as_py():  # (pc.index would build a scalar, and that imports pandas: 0.8 s)
            continue
        index = holds_nul.to_pylist().index(True)
        if found is None or index < found[0]:
            found = (index, name)
    return found


class _Importer:
    """One import's row loop: validation, grouping of long-format rows, batched inserts."""

    def __init__(self, session: Session, project: Project, table: Table, mapping: ColumnMapping,
                 record: ImportRecord, report: ImportReport, settings: Settings,
                 progress: ProgressCallback | None, actor: User | None = None) -> None:
        self.session, self.project, self.table, self.mapping = session, project, table, mapping
        self.record, self.report, self.settings, self.progress = record, report, settings, progress
        self.task_type = TaskType(project.task_type)
        self.allowed_labels = list(project.labels)
        self.fixed_labels = bool(self.allowed_labels) and not mapping.label_onehot
        self.new_labels: list[str] = []
        self.onehot = list(zip(mapping.label_onehot, mapping.onehot_labels(), strict=True))
        mapped = set(mapping.mapped_columns().values())
        meta_columns = (mapping.metadata if mapping.metadata is not None
                        else [c for c in table.columns if c not in mapped])
        # A long file's unpicked Label Studio questions are answers per annotator: kept as
        # {column: {annotator: answer}} on the item, not as the first row's answer.
        self.answer_columns = ([c for c in meta_columns if c in table.control_columns]
                               if mapping.long_format else [])
        self.meta_columns = [c for c in meta_columns if c not in self.answer_columns]
        self.actor = actor
        self.existing: dict[str, int] = dict(session.execute(
            select(Example.external_id, Example.id).where(Example.project_id == project.id)).all())
        self.items: dict[str, _Item] = {}  # long format: the items, with their annotations
        self.wide_rows: list[dict[str, Any]] = []  # wide format: example values waiting for the batch insert
        self.connection: Any = None  # the session's connection, taken once before the first write
        self.insert_plans: dict[tuple[str, ...], Any] = {}  # the column path's compiled INSERTs (data.columnar)
        self.by_hash: dict[str, list[int]] = defaultdict(list)  # content hash -> rows (row path)
        self.hash_chunks: list[tuple[list[str], list[int]]] = []  # (content hashes, rows) per column-path batch
        self.first_row: dict[str, int] = {}  # wide format: id -> its row, for duplicate ids across batches
        self.now = utcnow()
        self.labels_as = "final"  # issue 12: final | vote | suggestion (set by import_table)
        self.responses_final = False  # issue 17: generation responses imported as final (set by import_table)
        self.source_rows: list[tuple[str, str, float | None]] = []  # (external id, label, score) of a source
        self.class_names = table.class_names.get(mapping.label) if mapping.label else None
        # Per-row constants, looked up once (the row loop runs 100k times and more).
        self.project_id, self.import_id, self.long_format = project.id, record.id, mapping.long_format
        self.single_id = mapping.id[0] if len(mapping.id) == 1 else None
        self.length_checks = [(name, column, _MAX_LENGTHS[name]) for name, column in
                              (("source", mapping.source), ("licence", mapping.licence), ("split", mapping.split))
                              if column]
        for name, default in (("source", mapping.default_source), ("licence", mapping.default_licence)):
            if default and not getattr(mapping, name) and len(default) > _MAX_LENGTHS[name]:
                raise InputError(f"default {name} '{default[:40]}...' is longer than {_MAX_LENGTHS[name]} "
                                 "characters", file=table.name, field=name)

    def run(self) -> None:
        total = self.table.n_rows
        row_number = 0
        columnar = fast_path_applies(self)
        dropped_indexes: list[str] = []
        if columnar:  # a large wide import into SQLite: indexes built once after the rows (curation.data.bulk)
            self.connection = self.session.connection()
            dropped_indexes = drop_example_indexes(self.connection, total)
        # Arrow batches to Python rows in one call each (much cheaper than the per-value formatter).
        for batch in self.table.batches(self.settings.import_batch_rows):
            nul = _first_nul(batch)  # (row in batch, column) of the first text holding a NUL, found by Arrow
            # A wide batch goes column by column (curation.data.columnar) unless a row in it needs the
            # row path, which then raises that row's error exactly as it always has.
            ready = columnar_batch(self, batch, row_number + 1) if columnar and nul is None else None
            if ready is not None:
                row_number += batch.num_rows
                if ready.params:
                    self._write(ready.statement, ready.params)
                    self.report.examples_added += ready.added
                if self.progress:
                    self.progress(row_number, total)
                continue
            for index, row in enumerate(batch.to_pylist()):
                row_number += 1
                if nul is not None and nul[0] == index:
                    raise InputError("contains a NUL character (0x00), which the database cannot store",
                                     file=self.table.name, row=row_number, field=nul[1])
                self._row(row_number, row)
            if not self.long_format:
                self._flush_examples()
            if self.progress:
                self.progress(row_number, total)
        self.report.rows = row_number
        self._flush_examples()
        rebuild_indexes(self.connection, dropped_indexes)
        if self.mapping.long_format:
            self._insert_annotations()
        if self.new_labels:
            self.project.labels = self.allowed_labels
            self.project.updated_at = self.now
            self.session.add(self.project)
        self.report.labels = list(self.allowed_labels)
        self.report.exact_duplicate_groups = duplicate_groups(self.by_hash, self.hash_chunks)

    # -- one row

    def _row(self, number: int, row: dict[str, Any]) -> None:
        external_id = self._external_id(number, row)
        label = self._label(number, row)
        if label is not None and self.labels_as != "final" and not self.long_format:
            # A vote or suggestion of a source, stored after the rows; the item itself stays unlabelled.
            self.source_rows.append((external_id, label, self._score(number, row)))
            label = None
        if not self.long_format:  # one row, one example: straight to the next batch insert
            first = self.first_row.setdefault(external_id, number)
            if first != number:
                raise InputError(f"id '{external_id}' is also on row {first}; ids must be unique",
                                 file=self.table.name, row=number,
                                 field=self.mapping.id[0] if self.mapping.id else "id")
            values = self._example_values(number, row, external_id, label)
            if values:
                self.wide_rows.append(values)
                self.by_hash[values["content_hash"]].append(number)
            return
        item = self.items.get(external_id)
        if item is None:
            item = _Item(row=number, values=self._example_values(number, row, external_id, label))
            self.items[external_id] = item
            if item.values:
                self.by_hash[item.values["content_hash"]].append(number)
        annotator = _text(row.get(self.mapping.annotator))
        if annotator and item.values:
            for column in self.answer_columns:
                answer = _jsonable(row.get(column))
                if answer not in (None, ""):
                    answers = item.values["meta"].setdefault(column, {})
                    if self.report.repeat_policy == "first":
                        answers.setdefault(annotator, answer)
                    else:
                        answers[annotator] = answer
        if annotator and (label is not None or self._response(row) is not None):
            judgement = {
                "label": label,
                "response": self._response(row),
                "created_at": _timestamp(row.get(self.mapping.annotated_at)) if self.mapping.annotated_at else None,
                "row": number,
            }
            kept = item.annotations.get(annotator)
            if kept is None:
                item.annotations[annotator] = judgement
                return
            self.report.repeat_annotations += 1
            if self.report.repeat_policy == "history":
                item.history.setdefault(annotator, [kept]).append(judgement)
            if _is_later(judgement, kept) != (self.report.repeat_policy == "first"):
                item.annotations[annotator] = judgement

    def _external_id(self, number: int, row: dict[str, Any]) -> str:
        if not self.mapping.id:
            return f"{self.table.path.stem}:{number}"
        if self.single_id is not None:  # one id column (the common case): no list, no join
            value = _text(row.get(self.single_id))
            if value is None:
                raise InputError("the id is empty", file=self.table.name, row=number, field=self.single_id)
            if len(value) <= 120:
                return value
        parts = []
        for column in self.mapping.id:
            value = _text(row.get(column))
            if value is None:
                raise InputError("the id is empty", file=self.table.name, row=number, field=column)
            parts.append(value)
        joined = "/".join(parts)
        if len(joined) > 120:  # long composite ids (e.g. conversation + text): keep them short and stable
            joined = f"{parts[0][:60]}/{hashlib.sha256(joined.encode()).hexdigest()[:16]}"
        return joined

    def _label(self, number: int, row: dict[str, Any]) -> str | None:
        if self.onehot:
            chosen = [label for column, label in self.onehot if _truthy(row.get(column))]
            if len(chosen) != 1:
                what = "none" if not chosen else f"{len(chosen)} ({', '.join(chosen)})"
                raise InputError(f"exactly one one-hot label column must be set, found {what}",
                                 file=self.table.name, row=number, field=self.mapping.label_onehot[0])
            return chosen[0]
        if not self.mapping.label:
            return None
        value = row.get(self.mapping.label)
        if self.class_names is not None and isinstance(value, int):  # a ClassLabel id; -1 means no label
            label = self.class_names[value] if 0 <= value < len(self.class_names) else None
        else:
            label = _text(value)
        if label is None:
            return None
        if label not in self.allowed_labels:
            if self.fixed_labels:
                raise InputError(f"unknown label '{label}' (project labels: {', '.join(self.allowed_labels)})",
                                 file=self.table.name, row=number, field=self.mapping.label)
            if len(label) > 200:
                raise InputError("a label is longer than 200 characters", file=self.table.name, row=number,
                                 field=self.mapping.label)
            self.allowed_labels.append(label)
            self.new_labels.append(label)
        return label

    def _score(self, number: int, row: dict[str, Any]) -> float | None:
        """The source's score for its label (the mapped score column), or None."""
        if not self.mapping.score:
            return None
        value = row.get(self.mapping.score)
        if value is None or (isinstance(value, str) and not value.strip()):
            return None
        try:
            score = float(value)
        except (TypeError, ValueError):
            raise InputError(f"'{value}' is not a number", file=self.table.name, row=number,
                             field=self.mapping.score) from None
        if not math.isfinite(score):
            raise InputError(f"'{value}' is not a finite number", file=self.table.name, row=number,
                             field=self.mapping.score)
        return score

    def _response(self, row: dict[str, Any]) -> str | None:
        return _text(row.get(self.mapping.response), strip=False) if self.mapping.response else None

    def _example_values(self, number: int, row: dict[str, Any], external_id: str, label: str | None) -> dict[str, Any]:
        """Column values of a new example, or {} for an item that exists already (or is only referenced)."""
        if external_id in self.existing:
            if not self.mapping.long_format:
                self.report.examples_skipped_existing += 1
            return {}
        text = prompt = response = messages = None
        field_name = self.mapping.text or self.mapping.prompt or self.mapping.messages
        if self.mapping.messages:
            messages = _messages(row.get(self.mapping.messages), self.table.name, number, self.mapping.messages)
        elif self.mapping.prompt:
            prompt = _text(row.get(self.mapping.prompt), strip=False)
            response = None if self.mapping.long_format else self._response(row)
        elif self.mapping.text:
            text = _text(row.get(self.mapping.text), strip=False)
        else:
            raise InputError(f"no example '{external_id}' in project '{self.project.name}', and no content column "
                             "is mapped to create it", file=self.table.name, row=number,
                             field=self.mapping.id[0] if self.mapping.id else "id")
        if not (text or prompt or messages) or not (text or prompt or "x").strip():
            raise InputError("empty content", file=self.table.name, row=number, field=field_name)
        mapping = self.mapping
        values: dict[str, Any] = {
            "project_id": self.project_id,
            "external_id": external_id,
            "text": text,
            "prompt": prompt,
            "response": response,
            "messages": messages,
            "meta": self._meta(row),
            "source": _text(row.get(mapping.source)) if mapping.source else mapping.default_source,
            "licence": _text(row.get(mapping.licence)) if mapping.licence else mapping.default_licence,
            "content_hash": content_hash(text, prompt, response, messages),
            "split": _text(row.get(mapping.split)) if mapping.split else None,
            "status": _NEW,
            "final_label": None,
            "final_response": None,
            "exclusion_reason": None,
            "import_id": self.import_id,
            "created_at": self.now,
            "updated_at": self.now,
        }
        for name, column, limit in self.length_checks:  # the column sizes (PostgreSQL enforces them, SQLite not)
            value = values[name]
            if value is not None and len(value) > limit:
                raise InputError(f"{name} '{value[:40]}...' is longer than {limit} characters",
                                 file=self.table.name, row=number, field=column)
        if label is not None and not self.long_format:
            values["status"], values["final_label"] = _LABELLED, label
            self.report.final_labels += 1
        if self.responses_final:
            final = final_response_of(response, messages)
            if final is None:  # nothing to be final with: the item waits for an expert to write one
                self.report.responses_missing += 1
            else:
                values["status"], values["final_response"] = _LABELLED, final
                self.report.final_responses += 1
        return values

    def _meta(self, row: dict[str, Any]) -> dict[str, Any]:
        """The metadata columns' non-empty values (strings as they are, other values made JSON-safe)."""
        meta = {}
        for column in self.meta_columns:
            value = row.get(column)
            if value.__class__ is not str:
                value = _jsonable(value)
                if value is None:
                    continue
            if value != "":
                meta[column] = value
        return meta

    # -- writing

    def _flush_examples(self) -> None:
        if self.long_format:
            pending = [item for item in self.items.values() if item.values and not item.inserted]
            for item in pending:
                item.inserted = True
            rows = [item.values for item in pending]
        else:  # wide rows are independent: written per batch, which keeps memory flat on big files
            rows, self.wide_rows = self.wide_rows, []
        if not rows:
            return
        if self.connection is None:
            self.connection = self.session.connection()
        statement, params = executemany_parameters(self.connection.dialect, Example.__table__, rows)
        self._write(statement, params)
        self.report.examples_added += len(rows)

    def _write(self, statement: str, params: list[Any]) -> None:
        """Insert one batch. In this thread: a writer thread overlapping the next batch's parsing was
        measured slower (4.2 s against 3.5 s to write 100k rows into SQLite, about equal on PostgreSQL),
        because binding each row needs the GIL the parsing thread holds."""
        self.connection.exec_driver_sql(statement, params)

    def _insert_annotations(self) -> None:
        ids = dict(self.session.execute(
            select(Example.external_id, Example.id).where(Example.project_id == self.project.id)).all())
        users = self._annotator_accounts({a for item in self.items.values() for a in item.annotations})
        existing_pairs = self._existing_pairs([ids[e] for e, item in self.items.items() if item.annotations])
        new_rows: list[dict[str, Any]] = []
        touched: set[int] = set()
        for external_id, item in self.items.items():
            example_id = ids[external_id]
            for annotator, values in item.annotations.items():
                key = (example_id, users[annotator])
                if key in existing_pairs:
                    self.report.annotations_skipped_existing += 1
                    continue
                stamp = values["created_at"] or self.now
                new_rows.append({"example_id": example_id, "annotator_id": users[annotator], "label": values["label"],
                                 "response": values["response"], "rating": None, "comment": "", "flags": [],
                                 "row_version": 1, "created_at": stamp, "updated_at": stamp})
                touched.add(example_id)
        for start in range(0, len(new_rows), self.settings.import_batch_rows):
            self.session.execute(insert(Annotation), new_rows[start:start + self.settings.import_batch_rows])
        self.report.annotations_added = len(new_rows)
        self._record_histories(ids)
        self._resolve(touched)

    def _record_histories(self, ids: dict[str, int]) -> None:
        """Repeat policy "history": one audit event per (item, annotator) judged more than once, with
        every judgement in time order and the one kept."""
        for external_id, item in self.items.items():
            for annotator, judgements in item.history.items():
                ordered = sorted(judgements, key=_judgement_order)
                audit.record(self.session, self.actor, "import.repeat_judgements", "example", ids[external_id],
                             project_id=self.project_id,
                             after={"annotator": annotator, "import_id": self.import_id,
                                    "kept": _judgement_json(item.annotations[annotator]),
                                    "history": [_judgement_json(j) for j in ordered]})

    def _annotator_accounts(self, names: set[str]) -> dict[str, int]:
        """username -> user id; unknown annotators become imported annotator accounts (no password)."""
        found = dict(self.session.execute(select(User.username, User.id).where(User.username.in_(names))).all())
        for name in sorted(names - set(found)):
            if len(name) > 120:
                raise InputError(f"annotator name '{name[:40]}...' is longer than 120 characters",
                                 file=self.table.name, field=self.mapping.annotator)
            user = User(username=name, display_name=name, role=Role.annotator, imported=True)
            self.session.add(user)
            self.session.flush()
            found[name] = user.id
            self.report.annotators_created.append(name)
        return found

    def _existing_pairs(self, example_ids: Sequence[int]) -> set[tuple[int, int]]:
        pairs: set[tuple[int, int]] = set()
        for start in range(0, len(example_ids), 1000):
            chunk = example_ids[start:start + 1000]
            pairs.update(self.session.execute(select(Annotation.example_id, Annotation.annotator_id)
                                              .where(Annotation.example_id.in_(chunk))).all())
        return pairs

    def _resolve(self, example_ids: set[int]) -> None:
        """Status and final label of each touched example from all its annotations (project rule)."""
        labels: dict[int, list[str | None]] = defaultdict(list)
        ordered = sorted(example_ids)
        for start in range(0, len(ordered), 1000):
            chunk = ordered[start:start + 1000]
            for example_id, label in self.session.execute(
                    select(Annotation.example_id, Annotation.label).where(Annotation.example_id.in_(chunk))):
                labels[example_id].append(label)
        rule, k = FinalLabelRule(self.project.final_label_rule), self.project.overlap_k
        updates = []
        for example_id in ordered:
            status, final = resolve_status(labels[example_id], k, rule)
            updates.append({"b_id": example_id, "b_status": status.value, "b_final": final, "b_now": self.now})
        if updates:
            self.session.execute(
                update(Example.__table__).where(Example.__table__.c.id == bindparam("b_id"))
                .where(Example.__table__.c.status != ExampleStatus.excluded.value)
                .values(status=bindparam("b_status"), final_label=bindparam("b_final"), updated_at=bindparam("b_now")),
                updates)


def _is_later(new: dict[str, Any], old: dict[str, Any]) -> bool:
    """Whether judgement `new` comes after `old`: by annotated_at when both have different ones, else
    by row order (a later row is the later judgement)."""
    if new["created_at"] is not None and old["created_at"] is not None and new["created_at"] != old["created_at"]:
        return bool(new["created_at"] > old["created_at"])
    return bool(new["row"] > old["row"])


def _judgement_order(judgement: dict[str, Any]) -> tuple[Any, ...]:
    stamp = judgement["created_at"]
    return (stamp is None, stamp.isoformat() if stamp is not None else "", judgement["row"])


def _judgement_json(judgement: dict[str, Any]) -> dict[str, Any]:
    stamp = judgement["created_at"]
    return {"row": judgement["row"], "label": judgement["label"], "response": judgement["response"],
            "annotated_at": stamp.isoformat() if stamp is not None else None}


def _timestamp(value: Any) -> Any:
    from datetime import datetime, timezone

    if value in (None, ""):
        return None
    if isinstance(value, datetime):
        return value.astimezone(timezone.utc) if value.tzinfo else value.replace(tzinfo=timezone.utc)
    try:
        parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None
    # Stored in UTC: SQLite keeps no offset, so 05:00+01:00 must be written as 04:00.
    return parsed.astimezone(timezone.utc) if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)


def _messages(value: Any, file: str, row: int, column: str) -> list[dict[str, str]]:
    if not isinstance(value, list) or not value:
        raise InputError("messages must be a non-empty list of {role, content}", file=file, row=row, field=column)
    out = []
    for i, message in enumerate(value):
        if not isinstance(message, dict) or message.get("role") not in MESSAGE_ROLES \
                or not isinstance(message.get("content"), str):
            raise InputError(f"message {i + 1} needs a role ({', '.join(sorted(MESSAGE_ROLES))}) and text content",
                             file=file, row=row, field=column)
        out.append({"role": message["role"], "content": message["content"]})
    return out
