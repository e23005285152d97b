"""Reading files into an Arrow table: format detection, size and encoding checks, Label Studio."""

from __future__ import annotations

import codecs
import csv
import hashlib
import json
import os
import re
import shutil
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

os.environ.setdefault("HF_DATASETS_OFFLINE", "1")  # local files only; never reach for a hub here

import pyarrow as pa  # noqa: E402
import pyarrow.json as pa_json  # noqa: E402

from curation.errors import InputError  # noqa: E402
from curation.settings import Settings, get_settings  # noqa: E402

if TYPE_CHECKING:
    import datasets

FORMATS = ("jsonl", "json", "csv", "tsv", "parquet", "hf", "labelstudio")

ProgressCallback = Callable[[int, int], None]


@dataclass(frozen=True)
class LabelStudioControl:
    """One question of a Label Studio labelling config, as its export shows it: the control's
    `from_name`, its type (choices, textarea, rating, ...) and the column that holds its answers."""

    name: str
    type: str
    column: str


@dataclass
class Table:
    """A file opened for import: its rows as an Arrow table, with what each column holds.

    `kinds` maps a column to an Arrow scalar type name as `datasets` spells it ("string", "int64",
    "float64", "bool", "null", ...) or to "list", "largelist", "dict", "json" (a column of mixed JSON
    types) or "classlabel" (class ids of a saved HF dataset, named in `class_names`). `dataset` is the
    `datasets.Dataset` where `datasets` read the file (the rows then stay memory-mapped, and it decodes
    JSON-typed columns for messages); None where Arrow read a JSON Lines or Parquet file directly. A
    Label Studio export also lists its controls (one answer column each)."""

    path: Path
    file_format: str
    arrow: pa.Table
    kinds: dict[str, str]
    class_names: dict[str, list[str]] = field(default_factory=dict)
    dataset: datasets.Dataset | None = None
    controls: list[LabelStudioControl] = field(default_factory=list)

    @property
    def control_columns(self) -> list[str]:
        return [control.column for control in self.controls]

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def columns(self) -> list[str]:
        return list(self.arrow.column_names)

    @property
    def n_rows(self) -> int:
        return self.arrow.num_rows

    def values(self, column: str) -> list[Any]:
        """The column's values as Python objects (JSON-typed columns decoded)."""
        return self.dataset[column] if self.dataset is not None else self.arrow.column(column).to_pylist()

    def preview(self, n: int = 20) -> list[dict[str, Any]]:
        if self.dataset is not None:
            return self.dataset.select(range(min(n, self.n_rows))).to_list()
        return self.arrow.slice(0, n).to_pylist()

    def batches(self, rows: int) -> Iterator[pa.Table]:
        """Zero-copy slices of `rows` rows (the last one shorter)."""
        for start in range(0, self.n_rows, rows):
            yield self.arrow.slice(start, rows)


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
    table: Table | None = None
    try:
        if file_format in ("jsonl", "parquet") and path.stat().st_size <= _DIRECT_READ_BYTES:
            table = _read_directly(path, file_format)
        if table is None:
            hf = hf_datasets()
            if file_format == "hf":
                dataset = _load_saved(path)
            elif file_format == "labelstudio":
                rows, controls = _label_studio_rows(path)
                dataset = hf.Dataset.from_list(rows)
            elif file_format in ("csv", "tsv"):
                dataset = _load_csv(path, file_format, cache)
            else:
                builder = "parquet" if file_format == "parquet" else "json"
                dataset = hf.load_dataset(builder, data_files=str(path), split="train", cache_dir=cache)
            table = _from_dataset(path, file_format, dataset, controls)
    except InputError:
        raise
    except Exception as error:  # the loaders' own errors, reworded with file and line where possible
        raise _explain_load_error(path, file_format, error) from error
    if table.n_rows == 0:
        raise InputError("the file has no data rows", file=path.name)
    return table


# Files up to this size are read by Arrow straight into memory (a JSON Lines file in a fraction of the time
# `datasets` takes, whose import alone costs 1.7 s of CPU); larger ones go through `datasets`' memory-mapped cache.
_DIRECT_READ_BYTES = 256 * 2**20
_DATASETS_DTYPES = {"double": "float64", "float": "float32", "halffloat": "float16"}


def hf_datasets() -> Any:
    """The `datasets` module, imported on first use (what reads JSON Lines or writes no DatasetDict never
    pays its 1.7 s of CPU), quiet and offline (HF_DATASETS_OFFLINE is set above)."""
    import datasets

    datasets.disable_progress_bars()
    datasets.logging.set_verbosity_error()
    return datasets


def _arrow_kind(data_type: pa.DataType) -> str:
    if pa.types.is_list(data_type):
        return "list"
    if pa.types.is_large_list(data_type):
        return "largelist"
    if pa.types.is_struct(data_type):
        return "dict"
    return _DATASETS_DTYPES.get(str(data_type), str(data_type))


def _read_directly(path: Path, file_format: str) -> Table | None:
    """The file as Arrow reads it, or None when Arrow cannot vouch for it alone (a malformed line, a
    column whose JSON type changes, a Parquet file written by `datasets` with class labels): then
    `datasets` reads it, as it always has, and its errors are explained as they always were."""
    try:
        if file_format == "jsonl":
            arrow = pa_json.read_json(path)
        else:
            import pyarrow.parquet as pq

            arrow = pq.read_table(path)
            if arrow.schema.metadata and b"huggingface" in arrow.schema.metadata:
                return None  # its features (class labels, ...) are `datasets`' to decode
    except (pa.ArrowException, OSError, ValueError):
        return None
    kinds = {name: _arrow_kind(arrow.schema.field(name).type) for name in arrow.column_names}
    return Table(path=path, file_format=file_format, arrow=arrow, kinds=kinds)


def _from_dataset(path: Path, file_format: str, dataset: datasets.Dataset,
                  controls: list[LabelStudioControl]) -> Table:
    hf = hf_datasets()
    kinds = {name: feature.dtype if isinstance(feature, hf.Value) else type(feature).__name__.lower()
             for name, feature in dataset.features.items()}
    class_names = {name: list(feature.names) for name, feature in dataset.features.items()
                   if isinstance(feature, hf.ClassLabel)}
    return Table(path=path, file_format=file_format, arrow=dataset.with_format("arrow")[:], kinds=kinds,
                 class_names=class_names, dataset=dataset,
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
    hf = hf_datasets()
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
    features = hf.Features({name: hf.Value("string") for name in header})
    return hf.load_dataset("csv", data_files=str(path), split="train", cache_dir=cache, features=features,
                                 delimiter=delimiter, encoding="utf-8-sig", keep_default_na=False,
                                 na_values=[""])


def _load_saved(path: Path) -> datasets.Dataset:
    hf = hf_datasets()
    loaded = hf.load_from_disk(str(path))
    if isinstance(loaded, hf.DatasetDict):
        parts = []
        for split_name, part in loaded.items():
            if "split" not in part.column_names:
                part = part.add_column("split", [split_name] * part.num_rows)
            parts.append(part)
        return hf.concatenate_datasets(parts)
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


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    for file in files:
        with file.open("rb") as handle:
            for chunk in iter(lambda: handle.read(1 << 20), b""):
                digest.update(chunk)
    return digest.hexdigest()
