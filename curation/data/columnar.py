"""The wide-format import's fast path: one Arrow batch checked and turned into INSERT parameters
column by column, instead of row by row.

A wide file (one row, one example) is most imports and the large ones. The row path
(`curation.data.importer._Importer._row`) reads each row into a dict, validates it field by field
and builds a dict of column values, then a tuple of driver parameters: about twenty Python calls
per row. Here each column is read from Arrow once and converted with one comprehension, and the
driver parameters are zipped from the columns.

The row path stays the reference: a batch this module cannot vouch for (a NUL character, an empty
or repeated id, empty content, an unknown or over-long label, an over-long source, licence or split,
a long id that needs hashing) returns None before anything was changed, and the importer runs that
batch through the row path, which raises the same error naming the same file, row and field as
always. Mappings outside the fast path (long format, chat messages, one-hot labels, a score column,
composite ids) never come here.
"""

from __future__ import annotations

import itertools
import operator
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pyarrow as pa

from curation.data.rows import (
    driver_statement,
    final_response_of,
    jsonable,
    prompt_hashes,
    text_hashes,
    text_of,
)
from curation.models import Example, ExampleStatus

# The running import (curation.data.importer._Importer): its mapping, ids seen, labels, report and
# connection. Not imported here, even for type checking: the importer imports this module.
_Importer = Any


@dataclass
class ColumnarBatch:
    """One batch ready to write: the INSERT statement, its driver parameters (one tuple or dict per
    new example) and what the importer records once the batch is accepted."""

    statement: str
    params: list[Any]
    added: int


def fast_path_applies(importer: _Importer) -> bool:
    """Whether the importer's mapping is one this module handles (checked once per import)."""
    mapping = importer.mapping
    return (not mapping.long_format and not mapping.messages and not mapping.label_onehot and not mapping.score
            and len(mapping.id) <= 1 and bool(mapping.text or mapping.prompt))


def _strings(column: pa.ChunkedArray | pa.Array, *, strip: bool = True) -> list[str | None]:
    """`text_of` over a column: each cell as text or None when empty (stripped unless `strip` is False)."""
    values = column.to_pylist()
    if pa.types.is_string(column.type) or pa.types.is_large_string(column.type) or pa.types.is_null(column.type):
        if strip:
            return [(value.strip() or None) if value is not None else None for value in values]
        return [(value if value.strip() else None) if value is not None else None for value in values]
    return [text_of(value, strip=strip) for value in values]


def columnar_batch(importer: _Importer, batch: pa.Table, first_number: int) -> ColumnarBatch | None:
    """The batch of rows `first_number`, `first_number + 1`, ... (1-based) as INSERT parameters, with
    the importer's bookkeeping done (labels, ids, duplicates by content, counts); None, with nothing
    changed, when a row needs the row path (which raises that row's error)."""
    mapping, n = importer.mapping, batch.num_rows
    numbers = range(first_number, first_number + n)

    # Ids: the mapped column, or the file's stem and the row number.
    if importer.single_id is not None:
        ids = _strings(batch.column(importer.single_id))
        if None in ids or max(map(len, ids)) > 120:  # type: ignore[arg-type]
            return None
    else:
        stem = importer.table.path.stem
        ids = [f"{stem}:{number}" for number in numbers]
    if len(set(ids)) != n or not importer.first_row.keys().isdisjoint(ids):
        return None  # an id repeated: the row path names both rows

    labels = _labels(importer, batch)
    new_labels: list[str] = []
    if labels is not None:
        allowed = set(importer.allowed_labels)
        for label in dict.fromkeys(labels):
            if label is None or label in allowed:
                continue
            if importer.fixed_labels or len(label) > 200:
                return None
            new_labels.append(label)

    existing = importer.existing
    fresh = [i for i, external_id in enumerate(ids) if external_id not in existing] if existing else range(n)

    def pick(values: list[Any]) -> list[Any]:
        return values if len(fresh) == n else [values[i] for i in fresh]

    text = prompt = response = None
    if mapping.prompt:
        prompt = pick(_strings(batch.column(mapping.prompt), strip=False))
        if None in prompt:
            return None
        if mapping.response:
            response = pick(_strings(batch.column(mapping.response), strip=False))
    else:
        text = pick(_strings(batch.column(mapping.text), strip=False))  # type: ignore[arg-type]
        if None in text:
            return None

    columns: dict[str, Any] = {}
    for name, column, default in (("source", mapping.source, mapping.default_source),
                                  ("licence", mapping.licence, mapping.default_licence),
                                  ("split", mapping.split, None)):
        if column:
            values = pick(_strings(batch.column(column)))
            limit = next(limit for field, _, limit in importer.length_checks if field == name)
            if max((len(value) for value in values if value is not None), default=0) > limit:
                return None
            columns[name] = values
        else:
            columns[name] = _Constant(default)

    # Accepted: from here on the importer's state changes.
    for label in new_labels:
        importer.allowed_labels.append(label)
        importer.new_labels.append(label)
    importer.first_row.update(zip(ids, numbers, strict=True))
    importer.report.examples_skipped_existing += n - len(fresh)
    if labels is not None and importer.labels_as != "final":
        # Votes or suggestions of a source (also for items that exist already), stored after the rows.
        importer.source_rows.extend((external_id, label, None)
                                    for external_id, label in zip(ids, labels, strict=True) if label is not None)
        labels = None

    fresh_ids = pick(ids)
    hashes = prompt_hashes(prompt, response) if prompt is not None else text_hashes(text)  # type: ignore[arg-type]
    importer.hash_chunks.append((hashes, [first_number + index for index in fresh]))

    if labels is not None:
        final = pick(labels)
        labelled = sum(label is not None for label in final)
        importer.report.final_labels += labelled
        columns["status"] = [_NEW if label is None else _LABELLED for label in final] if labelled else _Constant(_NEW)
        columns["final_label"] = final
    else:
        columns["status"], columns["final_label"] = _Constant(_NEW), _Constant(None)
    columns["final_response"] = _Constant(None)
    if importer.responses_final:  # generation responses imported as final (the row path's rule)
        finals = [final_response_of(value, None) for value in response] if response is not None else [None] * len(fresh)
        missing = finals.count(None)
        importer.report.responses_missing += missing
        importer.report.final_responses += len(finals) - missing
        columns["final_response"] = finals
        columns["status"] = [_NEW if final is None else _LABELLED for final in finals]
    columns.update(
        project_id=_Constant(importer.project_id), external_id=fresh_ids, text=_Constant(None) if text is None else text,
        prompt=_Constant(None) if prompt is None else prompt,
        response=_Constant(None) if response is None else response, messages=_Constant(None),
        meta=_meta(importer, batch, pick, len(fresh_ids)), content_hash=hashes,
        exclusion_reason=_Constant(None), import_id=_Constant(importer.import_id),
        created_at=_Constant(importer.now), updated_at=_Constant(importer.now))
    if not fresh_ids:
        return ColumnarBatch(statement="", params=[], added=0)
    statement, params = _parameters(importer, columns, len(fresh_ids))
    return ColumnarBatch(statement=statement, params=params, added=len(fresh_ids))


_NEW, _LABELLED = ExampleStatus.new.value, ExampleStatus.labelled.value


class _Ready:
    """A column whose values are bound as they are (already through the column's bind processor)."""

    __slots__ = ("values",)

    def __init__(self, values: list[Any]) -> None:
        self.values = values


class _Constant:
    """A column with one value for every row (converted once)."""

    __slots__ = ("value",)

    def __init__(self, value: Any) -> None:
        self.value = value


def duplicate_groups(by_hash: dict[str, list[int]], chunks: list[tuple[list[str], list[int]]]) -> list[list[int]]:
    """Row numbers of each content hash that more than one row has, each group in row order and the
    groups in order of their first row: from the row path's `by_hash` and the column path's
    (hashes, rows) chunks. Counting in C first keeps the common case (no duplicates) cheap."""
    counts = Counter({digest: len(rows) for digest, rows in by_hash.items()})
    for hashes, _ in chunks:
        counts.update(hashes)
    if len(counts) == sum(counts.values()):
        return []
    shared = {digest for digest, count in counts.items() if count > 1}
    groups = {digest: list(by_hash.get(digest, ())) for digest in shared}
    for hashes, rows in chunks:
        for digest, row in zip(hashes, rows, strict=True):
            if digest in shared:
                groups[digest].append(row)
    return sorted((sorted(rows) for rows in groups.values()), key=operator.itemgetter(0))


def _labels(importer: _Importer, batch: pa.Table) -> list[str | None] | None:
    """The label column as text (ClassLabel ids as their names; -1 and out-of-range ids: none), or
    None when no label is mapped."""
    column = importer.mapping.label
    if not column:
        return None
    names = importer.class_names
    if names is None:
        return _strings(batch.column(column))
    size = len(names)
    return [(names[value] if 0 <= value < size else None) if value.__class__ is int else text_of(value)
            for value in batch.column(column).to_pylist()]


def _meta(importer: _Importer, batch: pa.Table, pick: Callable[[list[Any]], list[Any]],
          count: int) -> list[dict[str, Any]] | _Ready:
    """Each new example's metadata: the metadata columns' non-empty values (strings as they are,
    other values made JSON-safe), as the row path's `_meta` makes them. When every metadata column
    is text, the result is already serialised (_Ready), once per distinct combination of values:
    metadata such as {"tier": "pro"} repeats across many rows."""
    names = importer.meta_columns
    if not names:
        return [{} for _ in range(count)]
    columns = [batch.column(name) for name in names]
    if all(pa.types.is_string(column.type) or pa.types.is_large_string(column.type) for column in columns):
        process = _plan(importer)[2]["meta"] or (lambda value: value)
        if len(names) == 1:
            values, name = pick(columns[0].to_pylist()), names[0]
            done = {value: process({name: value} if value else {}) for value in set(values)}
            return _Ready([done[value] for value in values])
        keys = list(zip(*(pick(column.to_pylist()) for column in columns)))
        done = {key: process({name: value for name, value in zip(names, key, strict=True) if value})
                for key in set(keys)}
        return _Ready([done[key] for key in keys])
    per_column = []
    for name, column in zip(names, columns, strict=True):
        values = [jsonable(value) if value.__class__ is not str else value for value in pick(column.to_pylist())]
        per_column.append((name, values))
    metas: list[dict[str, Any]] = [{} for _ in range(count)]
    for name, values in per_column:
        for meta, value in zip(metas, values, strict=True):
            if value is not None and value != "":
                meta[name] = value
    return metas


_KEYS = ("project_id", "external_id", "text", "prompt", "response", "messages", "meta", "source", "licence",
         "content_hash", "split", "status", "final_label", "final_response", "exclusion_reason", "import_id",
         "created_at", "updated_at")  # the columns the row path gives (curation.data.importer._example_values)


def _plan(importer: _Importer, keys: tuple[str, ...] = _KEYS) -> Any:
    """The compiled INSERT of these columns (compiled once per set of columns in an import)."""
    if importer.connection is None:
        importer.connection = importer.session.connection()
    plan = importer.insert_plans.get(keys)
    if plan is None:
        plan = importer.insert_plans[keys] = driver_statement(importer.connection.dialect, keys)
    return plan


# Columns that are NULL when an INSERT leaves them out (no Python-side or server default).
_NULL_WHEN_LEFT_OUT = frozenset(column.name for column in Example.__table__.c  # type: ignore[attr-defined]
                                if column.default is None and column.server_default is None)


def _parameters(importer: _Importer, columns: dict[str, Any], n: int) -> tuple[str, list[Any]]:
    """The INSERT statement and one parameter tuple (or dict) per row from whole columns: each
    column's bind processor runs once per value, or once for a constant. A column NULL in every row
    is left out of the statement: the sqlite3 driver binds None through an adapter lookup (about 1 µs a
    value), and the five such columns of a plain text import doubled the insert of 100k rows."""
    processors = _plan(importer)[2]
    null = {name for name, values in columns.items() if isinstance(values, _Constant)
            and name in _NULL_WHEN_LEFT_OUT and (values.value if processors[name] is None
                                                 else processors[name](values.value)) is None}
    statement, names, processors, defaults = _plan(importer, tuple(name for name in _KEYS if name not in null))
    streams = []
    for name in names:
        processor = processors[name]
        values = columns[name] if name in columns else _Constant(defaults[name])
        if isinstance(values, _Constant):
            streams.append(itertools.repeat(processor(values.value) if processor else values.value, n))
        elif isinstance(values, _Ready):
            streams.append(values.values)
        else:
            streams.append(values if processor is None else map(processor, values))
    params: list[Any] = list(zip(*streams))
    if not importer.connection.dialect.positional:
        params = [dict(zip(names, row, strict=True)) for row in params]
    return statement, params
