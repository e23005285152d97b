"""Import and export of examples and annotations.

Reading goes through `datasets` (Arrow files, memory-mapped), so a file larger than memory streams
in batches. An import is one transaction: it either adds everything or leaves the database as it was.

Shapes
- wide: one row per example (`text`, or `prompt`/`response`, or `messages`), with an optional
  `label` that becomes the example's final label.
- long: one row per (item, annotator) judgement, as annotation teams export them; rows with the
  same item id form one example, and each annotator becomes an (imported) account. The label is
  one column or a group of one-hot columns (`is_abuse.1`, `is_abuse.0`, ...: label = suffix).
- Label Studio JSON export: tasks with several annotations each, read as the long shape.
"""

from __future__ import annotations

import codecs
import csv
import hashlib
import json
import math
import operator
import os
import re
import shutil
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_DATASETS_OFFLINE", "1")  # local files only; never reach for a hub here

import datasets  # noqa: E402
import pyarrow as pa  # noqa: E402
import pyarrow.compute as pc  # noqa: E402
from sqlalchemy import bindparam, insert, select, update  # noqa: E402
from sqlalchemy import types as sa_types  # noqa: E402
from sqlalchemy.engine import Engine  # noqa: E402
from sqlmodel import Session  # noqa: E402

from curation import audit  # noqa: E402
from curation.auth import LEADS, require_role  # noqa: E402
from curation.browse import ExampleFilter, filtered_query  # noqa: E402
from curation.db import read_session, write_session  # noqa: E402
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
from curation.projects import get_project_by_id  # noqa: E402
from curation.review import resolve_status  # noqa: E402
from curation.settings import Settings, get_settings  # noqa: E402

datasets.disable_progress_bars()
datasets.logging.set_verbosity_error()

FORMATS = ("jsonl", "json", "csv", "tsv", "parquet", "hf", "labelstudio")
EXPORT_FORMATS = ("jsonl", "csv", "parquet", "hf")
MESSAGE_ROLES = frozenset({"system", "user", "assistant", "tool"})
ProgressCallback = Callable[[int, int], None]
# What an import keeps when one annotator judged one item more than once (by annotated_at when both
# judgements have one, else by row order).
REPEAT_POLICIES = {
    "first": "the first judgement kept",
    "latest": "the latest judgement kept",
    "history": "the latest judgement kept, every judgement in the audit log",
}

# Column names the mapping guess looks for, most likely first.
_GUESSES: dict[str, tuple[str, ...]] = {
    "id": ("id", "example_id", "item_id", "ticket_id", "uid", "guid", "task_id", "example_no", "idx"),
    "text": ("text", "sentence", "content", "message", "utterance", "input_text", "user", "query", "body"),
    "prompt": ("prompt", "instruction", "question", "input"),
    "response": ("response", "output", "answer", "completion", "chosen"),
    "messages": ("messages", "conversation", "conversations", "chat"),
    "label": ("label", "category", "intent", "class", "labels", "gold_label", "target"),
    "annotator": ("annotator", "annotator_id", "annotator_name", "rater", "rater_id", "worker_id", "labeler"),
    "annotated_at": ("labelled_at", "labeled_at", "annotated_at", "created_at", "timestamp"),
    "source": ("source", "origin", "dataset"),
    "licence": ("licence", "license"),
    "split": ("split",),
}
_CONVERSATION_COLUMNS = ("conv_id", "conversation_id", "dialog_id", "dialogue_id", "thread_id", "session_id")


@dataclass
class ColumnMapping:
    """Which file column feeds which field. Column names, or None when the file has no such column.

    `id` may name several columns: together they identify an item (e.g. `conv_id` + `user` when
    every row of a long-format export has its own row number). `label_onehot` lists one-hot
    columns; the label is the part after their common prefix. `metadata` None keeps every column
    not mapped elsewhere; a list keeps just those.
    """

    id: list[str] = field(default_factory=list)
    text: str | None = None
    prompt: str | None = None
    response: str | None = None
    messages: str | None = None
    label: str | None = None
    label_onehot: list[str] = field(default_factory=list)
    annotator: str | None = None
    annotated_at: str | None = None
    source: str | None = None
    licence: str | None = None
    split: str | None = None
    score: str | None = None  # the source's confidence in its label (labels as suggestions or votes)
    metadata: list[str] | None = None
    default_source: str | None = None
    default_licence: str | None = None

    SINGLE = ("text", "prompt", "response", "messages", "label", "annotator", "annotated_at", "source", "licence",
              "split", "score")

    def mapped_columns(self) -> dict[str, str]:
        """field name -> column, for every mapped single column plus each id and one-hot column."""
        out = {name: getattr(self, name) for name in self.SINGLE if getattr(self, name)}
        out.update({f"id[{i}]": column for i, column in enumerate(self.id)})
        out.update({f"label_onehot[{i}]": column for i, column in enumerate(self.label_onehot)})
        return out

    @property
    def long_format(self) -> bool:
        return self.annotator is not None

    def onehot_labels(self) -> list[str]:
        """Label names of the one-hot columns: each column with the group's common prefix removed."""
        if not self.label_onehot:
            return []
        prefix = os.path.commonprefix(self.label_onehot) if len(self.label_onehot) > 1 else ""
        prefix = prefix[: max(prefix.rfind("."), prefix.rfind("_"), prefix.rfind(":")) + 1]
        return [column[len(prefix):] or column for column in self.label_onehot]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ColumnMapping:
        known = {key: value for key, value in data.items() if key in cls.__dataclass_fields__}
        for key in ("id", "label_onehot"):
            if isinstance(known.get(key), str):
                known[key] = [part.strip() for part in known[key].split(",") if part.strip()]
        return cls(**known)


@dataclass(frozen=True)
class LabelStudioControl:
    """One question of a Label Studio labelling config, as its export shows it: the control's
    `from_name`, its type (choices, textarea, rating, ...) and the column that holds its answers."""

    name: str
    type: str
    column: str


@dataclass
class Table:
    """A file opened for import: its rows as a (memory-mapped) `datasets.Dataset`. A Label Studio
    export also lists its controls (one answer column each)."""

    path: Path
    file_format: str
    dataset: datasets.Dataset
    controls: list[LabelStudioControl] = field(default_factory=list)

    @property
    def control_columns(self) -> list[str]:
        return [control.column for control in self.controls]

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def columns(self) -> list[str]:
        return list(self.dataset.column_names)

    @property
    def n_rows(self) -> int:
        return self.dataset.num_rows

    def preview(self, n: int = 20) -> list[dict[str, Any]]:
        return self.dataset.select(range(min(n, self.n_rows))).to_list()


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
        if self.suggestions_from_predictions:
            out.append(f"{self.suggestions_from_predictions} Label Studio predictions imported as suggestions")
        return out


# --------------------------------------------------------------------------- reading


def detect_format(path: Path) -> str:
    if path.is_dir():
        if (path / "dataset_dict.json").exists() or (path / "dataset_info.json").exists():
            return "hf"
        raise InputError("folder is not a dataset saved with save_to_disk (no dataset_dict.json or "
                         "dataset_info.json)", file=path.name)
    suffix = path.suffix.lower()
    if suffix in (".jsonl", ".ndjson"):
        return "jsonl"
    if suffix == ".json":
        with path.open("rb") as handle:
            head = handle.read(65536)
        looks_like_tasks = head.lstrip().startswith(b"[") and b'"data"' in head
        return "labelstudio" if looks_like_tasks and b'"annotations"' in head else "json"
    if suffix in (".csv", ".tsv", ".parquet"):
        return suffix[1:]
    raise InputError(f"unknown file type '{suffix or '(none)'}'; use one of .jsonl .json .csv .tsv "
                     ".parquet or a save_to_disk folder", file=path.name)


def open_table(path: str | Path, file_format: str | None = None, *, settings: Settings | None = None) -> Table:
    """Open a file or a `save_to_disk` folder for import. Raises InputError naming the file and,
    where it can, the line for: missing or empty files, bad encoding, malformed rows, files too
    large for the disk space the Arrow copy needs."""
    settings = settings or get_settings()
    path = Path(path)
    if not path.exists():
        raise InputError("no such file or folder", file=str(path))
    file_format = file_format or detect_format(path)
    if file_format not in FORMATS:
        raise InputError(f"unknown format '{file_format}'; use one of {', '.join(FORMATS)}", file=path.name)
    if path.is_file():
        _check_size(path, settings)
        if file_format != "parquet":
            _check_utf8(path)
    cache = str(settings.cache_dir / "datasets")
    controls: list[LabelStudioControl] = []
    try:
        if file_format == "hf":
            dataset = _load_saved(path)
        elif file_format == "labelstudio":
            rows, controls = _label_studio_rows(path)
            dataset = datasets.Dataset.from_list(rows)
        elif file_format in ("csv", "tsv"):
            dataset = _load_csv(path, file_format, cache)
        else:
            builder = "parquet" if file_format == "parquet" else "json"
            dataset = datasets.load_dataset(builder, data_files=str(path), split="train", cache_dir=cache)
    except InputError:
        raise
    except Exception as error:  # the loaders' own errors, reworded with file and line where possible
        raise _explain_load_error(path, file_format, error) from error
    if dataset.num_rows == 0:
        raise InputError("the file has no data rows", file=path.name)
    return Table(path=path, file_format=file_format, dataset=dataset,
                 controls=controls if file_format == "labelstudio" else [])


def _check_size(path: Path, settings: Settings) -> None:
    size = path.stat().st_size
    if size == 0:
        raise InputError("the file is empty", file=path.name)
    limit = settings.max_import_mb * 1024 * 1024
    if size > limit:
        raise InputError(f"the file is {size / 2**20:.1f} MiB, over the import limit of {settings.max_import_mb} MiB "
                         "(MAX_IMPORT_MB); split it or raise the limit", file=path.name)
    settings.cache_dir.mkdir(parents=True, exist_ok=True)
    free = shutil.disk_usage(settings.cache_dir).free
    if size * 2 > free:  # the Arrow copy needs about the file's size again, plus headroom
        raise InputError(f"the file is {size / 2**30:.1f} GiB but only {free / 2**30:.1f} GiB is free under "
                         f"{settings.cache_dir} for its Arrow copy; free disk space or set DATA_DIR elsewhere",
                         file=path.name)


def _check_utf8(path: Path) -> None:
    """Stream the file through a UTF-8 decoder; on failure name the line and the byte."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    line, offset = 1, 0
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            try:
                decoder.decode(chunk)
            except UnicodeDecodeError as error:
                bad_at = offset + max(error.start, 0)
                with path.open("rb") as again:
                    before = again.read(bad_at)
                line = before.count(b"\n") + 1
                raise InputError(f"line {line}: not valid UTF-8 (byte 0x{chunk[error.start]:02x} at offset {bad_at}); "
                                 "save the file as UTF-8", file=path.name) from None
            offset += len(chunk)
        try:
            decoder.decode(b"", final=True)
        except UnicodeDecodeError:
            raise InputError("the file ends in the middle of a UTF-8 character", file=path.name) from None


def _load_csv(path: Path, file_format: str, cache: str) -> datasets.Dataset:
    delimiter = "\t" if file_format == "tsv" else ","
    with path.open(encoding="utf-8-sig", newline="") as handle:
        reader = csv.reader(handle, delimiter=delimiter)
        header = next(reader, None)
        has_rows = any(any(cell.strip() for cell in row) for row in reader)
    if not header or not any(name.strip() for name in header):
        raise InputError("the file has no header row", file=path.name)
    if not has_rows:
        raise InputError("the file has no data rows (only a header)", file=path.name)
    blank = [i + 1 for i, name in enumerate(header) if not name.strip()]
    if blank:
        raise InputError(f"header column {blank[0]} has no name", file=path.name)
    duplicated = [name for name, n in Counter(header).items() if n > 1]
    if duplicated:
        raise InputError(f"the header names column '{duplicated[0]}' twice", file=path.name)
    # The CSV reader fills a short row's missing fields with nulls without a word: a row that lost a
    # field (a missing comma, a cut-off line) would import as an unlabelled item. Refuse it here.
    ragged = _first_ragged_csv_row(path, delimiter)
    if ragged is not None:
        row, line, expected, found = ragged
        if found < expected:
            raise InputError(f"line {line}: {found} fields but the header has {expected}; the value of "
                             f"'{header[found]}' is missing", file=path.name, row=row, field=header[found])
        raise InputError(f"line {line}: expected {expected} fields like the header, found {found}",
                         file=path.name, row=row)
    # Every column as text: ids like "007" keep their zeros and no chunk guesses a different type.
    features = datasets.Features({name: datasets.Value("string") for name in header})
    return datasets.load_dataset("csv", data_files=str(path), split="train", cache_dir=cache, features=features,
                                 delimiter=delimiter, encoding="utf-8-sig", keep_default_na=False,
                                 na_values=[""])


def _load_saved(path: Path) -> datasets.Dataset:
    loaded = datasets.load_from_disk(str(path))
    if isinstance(loaded, datasets.DatasetDict):
        parts = []
        for split_name, part in loaded.items():
            if "split" not in part.column_names:
                part = part.add_column("split", [split_name] * part.num_rows)
            parts.append(part)
        return datasets.concatenate_datasets(parts)
    return loaded


_LS_RESERVED = ("id", "annotator", "annotated_at")


def _label_studio_value(result: dict[str, Any]) -> Any:
    """The answer of one Label Studio result as one cell: the (first) choice, the text, the rating or
    number; other result types (regions, taxonomies, ...) as their value's JSON."""
    kind, value = result.get("type"), result.get("value") or {}
    if kind == "choices":
        choices = value.get("choices") or []
        return str(choices[0]) if choices else None
    if kind == "textarea":
        texts = value.get("text")
        if not texts:
            return None
        return "\n".join(map(str, texts)) if isinstance(texts, list) else str(texts)
    if kind in ("rating", "number") and value.get(kind) is not None:
        return str(value[kind])
    return json.dumps(value, ensure_ascii=False, sort_keys=True) if value else None


def _label_studio_rows(path: Path) -> tuple[list[dict[str, Any]], list[LabelStudioControl]]:
    """Label Studio JSON export -> long-format rows: one per (task, annotation), or one per task
    without annotations. Columns: id, the task's data fields, annotator, annotated_at, and one column
    per control (question) of the labelling config, named by its `from_name` (`name (type)` when that
    name is taken by a data field). Returns the rows and the controls in order of first appearance."""
    try:
        tasks = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise InputError(f"line {error.lineno}: malformed JSON ({error.msg})", file=path.name) from None
    if not isinstance(tasks, list):
        raise InputError("a Label Studio export is a JSON list of tasks", file=path.name)
    data_keys: set[str] = {key for task in tasks if isinstance(task, dict) and isinstance(task.get("data"), dict)
                           for key in task["data"]}
    controls: dict[tuple[str, str], LabelStudioControl] = {}

    def column_of(result: dict[str, Any]) -> str:
        kind = str(result.get("type") or "result")
        name = str(result.get("from_name") or kind)
        control = controls.get((name, kind))
        if control is None:
            column = name if name not in data_keys and name not in _LS_RESERVED else f"{name} ({kind})"
            taken = {c.column for c in controls.values()}
            if column in taken:  # one from_name with two result types
                column = f"{name} ({kind})"
            control = controls[(name, kind)] = LabelStudioControl(name=name, type=kind, column=column)
        return control.column

    rows: list[dict[str, Any]] = []
    for number, task in enumerate(tasks, start=1):
        if not isinstance(task, dict) or not isinstance(task.get("data"), dict):
            raise InputError("each task needs a 'data' object", file=path.name, row=number, field="data")
        base = {"id": str(task.get("id", number)), **{k: v for k, v in task["data"].items() if not isinstance(v, (dict, list))}}
        kept = [a for a in task.get("annotations") or [] if not a.get("was_cancelled")]
        if not kept:
            rows.append({**base, "annotator": None, "annotated_at": None})
        for annotation in kept:
            answers: dict[str, Any] = {}
            for result in annotation.get("result") or []:
                if isinstance(result, dict):
                    column = column_of(result)
                    if answers.get(column) is None:  # several results of one control: the first answer
                        answers[column] = _label_studio_value(result)
            who = annotation.get("completed_by")
            if isinstance(who, dict):
                who = who.get("email") or who.get("username") or who.get("id")
            rows.append({**base, "annotator": f"labelstudio:{who}", "annotated_at": annotation.get("created_at"),
                         **answers})
    # Columns must be the same in every row for Arrow: fill the gaps.
    columns = list(dict.fromkeys([*(key for row in rows for key in row),
                                  *(c.column for c in controls.values())]))
    return [{column: row.get(column) for column in columns} for row in rows], list(controls.values())


def _explain_load_error(path: Path, file_format: str, error: Exception) -> InputError:
    if file_format in ("jsonl", "json"):
        with path.open(encoding="utf-8") as handle:
            if file_format == "json":
                try:
                    json.load(handle)
                except json.JSONDecodeError as bad:
                    return InputError(f"line {bad.lineno}: malformed JSON ({bad.msg})", file=path.name)
            else:
                seen_data = False
                for number, line in enumerate(handle, start=1):
                    if not line.strip():
                        continue
                    seen_data = True
                    try:
                        value = json.loads(line)
                    except json.JSONDecodeError as bad:
                        return InputError(f"line {number}: malformed JSON ({bad.msg})", file=path.name)
                    if not isinstance(value, dict):
                        return InputError(f"line {number}: expected a JSON object, got {type(value).__name__}",
                                          file=path.name)
                if not seen_data:
                    return InputError("the file has no data rows", file=path.name)
    if file_format in ("csv", "tsv"):
        bad_row = _first_ragged_csv_row(path, "\t" if file_format == "tsv" else ",")
        if bad_row is not None:
            row, line, expected, found = bad_row
            return InputError(f"line {line}: expected {expected} fields like the header, found {found}",
                              file=path.name, row=row)
    # `datasets` wraps the reader's error ("An error occurred while generating the dataset"): the
    # innermost cause says what is wrong.
    while error.__cause__ is not None or error.__context__ is not None:
        error = error.__cause__ or error.__context__  # type: ignore[assignment]
    message = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    message = re.sub(r"^Error tokenizing data\. C error: ", "", message)
    return InputError(f"cannot read the file as {file_format}: {message}", file=path.name)


def _first_ragged_csv_row(path: Path, delimiter: str) -> tuple[int, int, int, int] | None:
    """(row, line, header fields, row fields) of the first data row with more or fewer fields than the
    header (blank lines are not rows)."""
    with path.open(encoding="utf-8-sig", newline="") as handle:
        reader = csv.reader(handle, delimiter=delimiter)
        header = next(reader, None) or []
        row_number, start_line = 0, reader.line_num + 1
        for row in reader:
            if not row:  # blank lines are skipped by the reader too; they are not rows
                start_line = reader.line_num + 1
                continue
            row_number += 1
            if len(row) != len(header):
                return row_number, start_line, len(header), len(row)
            start_line = reader.line_num + 1
    return None


# --------------------------------------------------------------------------- mapping


def guess_mapping(table: Table, task_type: TaskType | None = None) -> ColumnMapping:
    """A first mapping from column names. The import page and the CLI let the user correct it."""
    columns = table.columns
    lower = {column.lower(): column for column in columns}

    def find(kind: str, exclude: Iterable[str] = ()) -> str | None:
        for name in _GUESSES[kind]:
            column = lower.get(name)
            if column is not None and column not in exclude:
                return column
        return None

    mapping = ColumnMapping()
    mapping.annotator = find("annotator")
    if task_type is not TaskType.classification:
        mapping.messages = find("messages")
        mapping.prompt = find("prompt")
        mapping.response = find("response")
    if task_type is not TaskType.generation or not (mapping.prompt or mapping.messages):
        mapping.text = find("text", exclude=[c for c in (mapping.prompt, mapping.response) if c])
    if task_type is TaskType.classification:
        mapping.prompt = mapping.response = mapping.messages = None
    mapping.label = find("label")
    if mapping.label is None:
        mapping.label_onehot = _first_onehot_group(table)
    if table.controls:
        _guess_label_studio_controls(table, mapping, task_type)
    mapping.annotated_at = find("annotated_at") if mapping.long_format else None
    mapping.source = find("source")
    mapping.licence = find("licence")
    mapping.split = find("split")
    id_column = find("id")
    if id_column and mapping.long_format and _unique(table, id_column):
        # A row number, not an item id: in a long export an item repeats once per annotator.
        id_column = None
    if id_column:
        mapping.id = [id_column]
    elif mapping.long_format:
        conversation = next((lower[c] for c in _CONVERSATION_COLUMNS if c in lower), None)
        content = mapping.text or mapping.prompt or mapping.messages
        mapping.id = [c for c in (conversation, content) if c]
    return mapping


def _guess_label_studio_controls(table: Table, mapping: ColumnMapping, task_type: TaskType | None) -> None:
    """A Label Studio export answers one or more questions (controls). The label is the only `choices`
    control when there is one (with several, the user picks); a generation project's response is the
    only `textarea` control. Content never comes from a control, and unpicked controls go to metadata."""
    answers = set(table.control_columns)
    for name in ("text", "prompt", "response", "messages"):
        if getattr(mapping, name) in answers:
            setattr(mapping, name, None)
    if mapping.text is None and task_type is not TaskType.generation:
        lower = {c.lower(): c for c in table.columns if c not in answers}
        mapping.text = next((lower[n] for n in _GUESSES["text"] if n in lower), None)
    choices = [c.column for c in table.controls if c.type == "choices"]
    mapping.label = choices[0] if len(choices) == 1 else None
    mapping.label_onehot = []
    textareas = [c.column for c in table.controls if c.type == "textarea"]
    if task_type is not TaskType.classification and len(textareas) == 1 and not mapping.text:
        mapping.response = textareas[0]


def _unique(table: Table, column: str) -> bool:
    values = table.dataset.unique(column)
    return len(values) == table.n_rows


def _first_onehot_group(table: Table) -> list[str]:
    """The first group of 0/1 columns sharing a prefix ending in '.', '_' or ':'."""
    groups: dict[str, list[str]] = defaultdict(list)
    for column in table.columns:
        match = re.match(r"^(.+?[._:])[^._:]+$", column)
        if match:
            groups[match.group(1)].append(column)
    sample = table.preview(200)
    for members in groups.values():
        if len(members) >= 2 and all(_is_flag_column(sample, column) for column in members):
            return members
    return []


def _is_flag_column(sample: list[dict[str, Any]], column: str) -> bool:
    return all(str(row[column]).strip() in ("0", "1", "True", "False", "0.0", "1.0", "") for row in sample)


def _truthy(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in ("1", "1.0", "true", "yes", "x")
    return bool(value) and value == value  # NaN is not a set flag


# --------------------------------------------------------------------------- importing


@dataclass
class _Item:
    row: int
    values: dict[str, Any]  # the Example column values
    annotations: dict[str, dict[str, Any]] = field(default_factory=dict)  # annotator -> annotation values
    history: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # annotator -> every judgement (repeats)
    inserted: bool = False


_HASH_JSON = json.JSONEncoder(sort_keys=True, ensure_ascii=False)  # = json.dumps(..., sort_keys, ensure_ascii=False)
_json_string = json.encoder.encode_basestring  # how that encoder writes a str (ensure_ascii=False)


def content_hash(text: str | None, prompt: str | None, response: str | None, messages: Any) -> str:
    """SHA-256 of the example's content in a canonical JSON form (exact duplicates share it)."""
    if messages is not None:
        canonical = _HASH_JSON.encode({"messages": messages})
    elif prompt is not None:  # the same text as the encoder makes for {"prompt": ..., "response": ...}
        canonical = f'{{"prompt": {_json_string(prompt)}, "response": {_json_string(response or "")}}}'
    else:
        canonical = "{\"text\": null}" if text is None else f'{{"text": {_json_string(text)}}}'
    return hashlib.sha256(canonical.encode()).hexdigest()


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    for file in files:
        with file.open("rb") as handle:
            for chunk in iter(lambda: handle.read(1 << 20), b""):
                digest.update(chunk)
    return digest.hexdigest()


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
    """
    require_role(actor, *LEADS)
    settings = settings or get_settings()
    _check_mapping(table, mapping)
    if repeats not in REPEAT_POLICIES:
        raise InputError(f"repeat judgements: use one of {', '.join(REPEAT_POLICIES)}, not '{repeats}'",
                         field="repeats")
    from curation.sources import LABELS_AS, check_source_name

    if labels_as not in LABELS_AS:
        raise InputError(f"labels as '{labels_as}': use one of {', '.join(LABELS_AS)}", field="labels_as")
    if labels_as != "final":
        label_source = check_source_name(label_source)
        if mapping.long_format:
            raise InputError("labels as votes or suggestions apply to one label per item (a wide file); in a "
                             "long-format file each annotator's label is already a vote", file=table.name,
                             field="labels_as")
    if mapping.score and labels_as == "final":
        raise InputError("a score column goes with labels as votes or suggestions", file=table.name, field="score")
    report = ImportReport(project=project_name, file=table.name, warnings=mapping_warnings(table, mapping),
                          repeat_policy=repeats, labels_as=labels_as,
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
        record = ImportRecord(project_id=project.id, file_name=table.name, file_sha256=file_sha256(table.path),
                              file_format=table.file_format, mapping=mapping.to_dict(), actor_id=actor.id)
        session.add(record)
        session.flush()
        importer = _Importer(session, project, table, mapping, record, report, settings, progress, actor)
        importer.labels_as = labels_as
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
    from curation.import_checks import id_conflicts

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
    from curation.sources import label_studio_predictions, store_predictions, store_source_labels

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
            for batch in table.dataset.with_format("arrow").iter(batch_size=10_000):
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
    features = table.dataset.features
    for field_name in ("text", "prompt", "response", "source", "licence", "split", "annotator", "label"):
        column = getattr(mapping, field_name)
        if field_name == "label" and column and isinstance(features[column], datasets.ClassLabel):
            continue  # class ids, read as their names
        if column and not _is_scalar_feature(features[column]):
            row, value = _first_odd_value(table, column, text_only=False)
            raise InputError(f"column '{column}' holds {_describe(features[column])}, not text; the first "
                             f"such value is {_value_preview(value)}", file=table.name, row=row, field=field_name)
    for field_name in ("text", "prompt", "response"):
        # Content is text: a typed column of numbers or booleans is a mis-mapped column, not content.
        column = getattr(mapping, field_name)
        if column and features[column].dtype not in ("string", "large_string", "null"):
            row, value = _first_odd_value(table, column, text_only=True)
            raise InputError(f"column '{column}' holds {_describe(features[column])} values, not text; the first "
                             f"is {_value_preview(value)}", file=table.name, row=row, field=field_name)
    if mapping.messages and not isinstance(features[mapping.messages], (datasets.List, datasets.LargeList, list)):
        raise InputError(f"column '{mapping.messages}' holds {_describe(features[mapping.messages])}, "
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
    for number, value in enumerate(table.dataset[column], start=1):
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


def _is_scalar_feature(feature: Any) -> bool:
    return isinstance(feature, datasets.Value) and feature.dtype in (
        "string", "large_string", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64",
        "bool", "float32", "float64", "null")


def _describe(feature: Any) -> str:
    if isinstance(feature, datasets.Value):
        return feature.dtype
    return type(feature).__name__.lower()


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
        index = pc.index(pc.match_substring(column, "\x00"), True).as_py()
        if index >= 0 and (found is None or index < found[0]):
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
        self.writer: Future[Any] | None = None  # the batch insert in flight (wide format)
        self.writer_pool: ThreadPoolExecutor | None = None
        self.by_hash: dict[str, list[int]] = defaultdict(list)
        self.first_row: dict[str, int] = {}  # wide format: id -> its row, for duplicate ids across batches
        self.now = utcnow()
        self.labels_as = "final"  # issue 12: final | vote | suggestion (set by import_table)
        self.source_rows: list[tuple[str, str, float | None]] = []  # (external id, label, score) of a source
        label_feature = table.dataset.features.get(mapping.label) if mapping.label else None
        self.class_names = label_feature.names if isinstance(label_feature, datasets.ClassLabel) else None
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
        try:
            self._run()
            self._wait_for_writer()
        finally:
            if self.writer is not None:  # an error is on its way: let the batch in flight end first, so the
                wait([self.writer])     # rollback never runs while the connection is in use
                self.writer = None
            if self.writer_pool is not None:
                self.writer_pool.shutdown()

    def _run(self) -> None:
        total = self.table.n_rows
        row_number = 0
        # Arrow batches to Python rows in one call each (much cheaper than the per-value formatter).
        for batch in self.table.dataset.with_format("arrow").iter(batch_size=self.settings.import_batch_rows):
            nul = _first_nul(batch)  # (row in batch, column) of the first text holding a NUL, found by Arrow
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
        self._wait_for_writer()
        if self.mapping.long_format:
            self._insert_annotations()
        if self.new_labels:
            self.project.labels = self.allowed_labels
            self.project.updated_at = self.now
            self.session.add(self.project)
        self.report.labels = list(self.allowed_labels)
        self.report.exact_duplicate_groups = [rows for rows in self.by_hash.values() if len(rows) > 1]

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
        statement, params = _executemany_parameters(self.connection.dialect, Example.__table__, rows)
        self._wait_for_writer()
        if self.long_format:
            self.connection.exec_driver_sql(statement, params)
        else:
            # The database writes this batch in a thread (sqlite3 and psycopg release the GIL while
            # they work) while this thread reads and checks the next one. Nothing else touches the
            # session until the writer is waited for.
            if self.writer_pool is None:
                self.writer_pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="import-writer")
            self.writer = self.writer_pool.submit(self.connection.exec_driver_sql, statement, params)
        self.report.examples_added += len(rows)

    def _wait_for_writer(self) -> None:
        """Wait for the batch being written; its error, if any, is raised here."""
        if self.writer is not None:
            writer, self.writer = self.writer, None
            writer.result()

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


def _executemany_parameters(dialect: Any, table: Any, rows: list[dict[str, Any]]) -> tuple[str, list[Any]]:
    """The INSERT statement and driver parameters for many rows (all with the same keys).

    SQLAlchemy compiles the statement once for the dialect (placeholders, casts) and every value goes
    through its column type's own bind processor, so the driver's executemany stores exactly what
    `session.execute(insert(table), rows)` stores; only the per-row parameter machinery, which cost
    more than the database itself on large imports, is skipped. A value that is the same object as
    in the first row (the import's timestamp, None) is converted once."""
    compiled = insert(table).compile(dialect=dialect, column_keys=list(rows[0]), for_executemany=True)
    names = list(compiled.positiontup) if compiled.positional else list(compiled.params)
    plan = []  # (position, processor, value in the first row, that value processed)
    for position, name in enumerate(names):
        if name not in rows[0]:  # a column the rows leave out that has a Python-side default
            default = table.c[name].default
            value = default.arg(None) if default.is_callable else default.arg
            rows = [{**row, name: value} for row in rows]
        processor = table.c[name].type._cached_bind_processor(dialect)
        if processor is not None:
            if isinstance(table.c[name].type, sa_types.JSON):
                processor = _memoised_json(processor)
            plan.append((position, processor, rows[0][name], processor(rows[0][name])))
    pick = operator.itemgetter(*names) if len(names) > 1 else (lambda row: (row[names[0]],))

    def convert(row: dict[str, Any]) -> tuple[Any, ...]:
        values = pick(row)
        if not plan:
            return values
        values = list(values)
        for position, processor, first, done in plan:
            value = values[position]
            values[position] = done if value is first else processor(value)
        return tuple(values)

    params: list[Any] = [convert(row) for row in rows]
    if not compiled.positional:
        params = [dict(zip(names, values, strict=True)) for values in params]
    return compiled.string, params


def _memoised_json(processor: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """`processor` for a JSON column, remembering the result for flat dicts of strings: metadata such as
    {"tier": "pro"} repeats across many rows, and serialising it each time was a large part of an import.
    Only all-string dicts are remembered (the key must not confuse 1 with True or "1")."""
    memo: dict[tuple[tuple[str, str], ...], Any] = {}

    def process(value: Any) -> Any:
        if value.__class__ is not dict or len(value) > 8:
            return processor(value)
        for item in value.values():
            if item.__class__ is not str:
                return processor(value)
        key = tuple(value.items())
        done = memo.get(key)
        if done is None:
            if len(memo) > 100_000:
                memo.clear()
            done = memo[key] = processor(value)
        return done

    return process


def _text(value: Any, *, strip: bool = True) -> str | None:
    """A cell as text, or None when empty. Numbers written as floats by spreadsheets lose '.0'."""
    if value.__class__ is str:  # the common case first: the import calls this several times per row
        stripped = value.strip()
        return (stripped if strip else value) if stripped else None
    if value is None:
        return None
    if isinstance(value, float):
        if value != value:
            return None
        value = int(value) if value.is_integer() else value
    text = str(value)
    stripped = text.strip()
    if not stripped:
        return None
    return stripped if strip else text


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


def _jsonable(value: Any) -> Any:
    if isinstance(value, (str, int, bool)) or value is None:
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None  # JSON has no NaN or Infinity
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    return str(value)


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


# --------------------------------------------------------------------------- exporting


def export_rows(engine: Engine, actor: User, project_id: int, selection: ExampleFilter | None = None,
                include_excluded: bool = False) -> Iterator[dict[str, Any]]:
    """Export records of a project (or a filtered selection), in id order.

    Classification: id, text, label, split, source, licence, metadata (JSON text), status.
    Generation: id, messages (user prompt + assistant response: the final response when a lead
    set one), split, source, licence, metadata. `messages` is what TRL's SFTTrainer takes as is."""
    require_role(actor, *LEADS)
    with read_session(engine) as session:
        project = session.get(Project, project_id)
        if project is None:
            raise NotFound(f"No project with id {project_id}.")
        task_type = TaskType(project.task_type)
        query = filtered_query(project_id, selection or ExampleFilter())
        if not include_excluded:
            query = query.where(Example.status != ExampleStatus.excluded.value)
        last_id = 0
        while True:
            batch = session.execute(query.where(Example.id > last_id).order_by(Example.id).limit(2000)).scalars().all()
            if not batch:
                return
            for example in batch:
                yield _export_record(example, task_type)
            last_id = batch[-1].id


def _export_record(example: Example, task_type: TaskType) -> dict[str, Any]:
    common = {"split": example.split, "source": example.source, "licence": example.licence,
              "metadata": json.dumps(example.meta, ensure_ascii=False, sort_keys=True)}
    if task_type is TaskType.generation:
        if example.messages:
            messages = [dict(m) for m in example.messages]
            if example.final_response is not None and messages and messages[-1]["role"] == "assistant":
                messages[-1]["content"] = example.final_response
        else:
            response = example.final_response if example.final_response is not None else example.response
            messages = [{"role": "user", "content": example.prompt or ""},
                        {"role": "assistant", "content": response or ""}]
        return {"id": example.external_id, "messages": messages, **common}
    return {"id": example.external_id, "text": example.text, "label": example.final_label,
            "status": ExampleStatus(example.status).value, **common}


def export_project(engine: Engine, actor: User, project_id: int, out: str | Path, file_format: str,
                   selection: ExampleFilter | None = None, include_excluded: bool = False) -> int:
    """Write the export to `out` (a file, or a folder for `hf`). Returns the number of records.

    `hf` writes a DatasetDict with one split per distinct `split` value (`train` when none is set)
    through `save_to_disk`. Nothing is left behind when writing fails."""
    if file_format not in EXPORT_FORMATS:
        raise InputError(f"unknown export format '{file_format}'; use one of {', '.join(EXPORT_FORMATS)}")
    require_role(actor, *LEADS)  # before anything is written (export_rows checks again when it starts)
    features = _export_features(TaskType(get_project_by_id(engine, project_id).task_type))
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    rows = export_rows(engine, actor, project_id, selection, include_excluded)
    partial = out.with_name(out.name + ".partial")
    try:
        if file_format == "jsonl":
            count = 0
            with partial.open("w", encoding="utf-8") as handle:
                for row in rows:
                    handle.write(json.dumps(row, ensure_ascii=False) + "\n")
                    count += 1
        else:
            records = list(rows)
            count = len(records)
            if file_format == "hf":
                by_split: dict[str, list[dict[str, Any]]] = defaultdict(list)
                for record in records:
                    by_split[record["split"] or "train"].append(record)
                dataset_dict = datasets.DatasetDict({name: _dataset(part, features)
                                                     for name, part in sorted(by_split.items())})
                dataset_dict.save_to_disk(str(partial))
            else:
                dataset = _dataset(records, features)
                if file_format == "csv":
                    if "messages" in dataset.column_names:
                        dataset = dataset.map(lambda r: {"messages": json.dumps(r["messages"], ensure_ascii=False)})
                    dataset.to_csv(str(partial), index=False)
                else:
                    dataset.to_parquet(str(partial))
        if out.exists():
            shutil.rmtree(out) if out.is_dir() else out.unlink()
        partial.rename(out)
    finally:
        if partial.exists():
            shutil.rmtree(partial) if partial.is_dir() else partial.unlink()
    return count


def _export_features(task_type: TaskType) -> datasets.Features:
    """The export schema, fixed per task type: a column that happens to be empty keeps its type, and
    every split of an `hf` export has the same features."""
    string = datasets.Value("string")
    common = {"split": string, "source": string, "licence": string, "metadata": string}
    if task_type is TaskType.generation:
        return datasets.Features({"id": string, "messages": datasets.List({"role": string, "content": string}),
                                  **common})
    return datasets.Features({"id": string, "text": string, "label": string, "status": string, **common})


def _dataset(records: list[dict[str, Any]], features: datasets.Features) -> datasets.Dataset:
    if not records:  # from_list cannot take features without rows
        return datasets.Dataset.from_dict({name: [] for name in features}, features=features)
    return datasets.Dataset.from_list(records, features=features)
