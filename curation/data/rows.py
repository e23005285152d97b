"""Cell conversions, the content hash and INSERT parameters shared by the importer's row path
(`curation.data.importer`) and its column path (`curation.data.columnar`), so both store the same."""

from __future__ import annotations

import hashlib
import json
import math
import operator
from collections.abc import Callable
from typing import Any

from sqlalchemy import insert
from sqlalchemy import types as sa_types

from curation.models import Example

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


def text_hashes(texts: list[str]) -> list[str]:
    """`content_hash(text, None, None, None)` of each text (none of them None), in one comprehension."""
    sha256, quote = hashlib.sha256, _json_string
    return [sha256(f'{{"text": {quote(text)}}}'.encode()).hexdigest() for text in texts]


def prompt_hashes(prompts: list[str], responses: list[str | None] | None) -> list[str]:
    """`content_hash(None, prompt, response, None)` of each pair (no prompt None; no responses: all None)."""
    sha256, quote = hashlib.sha256, _json_string
    return [sha256(f'{{"prompt": {quote(prompt)}, "response": {quote(response or "")}}}'.encode()).hexdigest()
            for prompt, response in zip(prompts, responses or [None] * len(prompts), strict=True)]


def text_of(value: Any, *, strip: bool = True) -> str | None:
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


def jsonable(value: Any) -> Any:
    if isinstance(value, (str, int, bool)) or value is None:
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None  # JSON has no NaN or Infinity
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    return str(value)


def executemany_parameters(dialect: Any, table: Any, rows: list[dict[str, Any]]) -> tuple[str, list[Any]]:
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
                processor = memoised_json(processor)
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


def memoised_json(processor: Callable[[Any], Any]) -> Callable[[Any], Any]:
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


def driver_statement(dialect: Any, keys: Any) -> tuple[str, list[str], dict[str, Any], dict[str, Any]]:
    """The Example INSERT for a whole batch given by columns: (statement, column names in parameter
    order, each name's bind processor or None, values of columns the statement takes but `keys` leave
    out (their Python-side defaults)). JSON processors are memoised as in `executemany_parameters`."""
    table = Example.__table__  # type: ignore[attr-defined]
    compiled = insert(table).compile(dialect=dialect, column_keys=list(keys), for_executemany=True)
    names = list(compiled.positiontup) if compiled.positional else list(compiled.params)
    processors: dict[str, Any] = {}
    defaults: dict[str, Any] = {}
    for name in names:
        if name not in keys:
            default = table.c[name].default
            defaults[name] = default.arg(None) if default.is_callable else default.arg
        processor = table.c[name].type._cached_bind_processor(dialect)
        if processor is not None and isinstance(table.c[name].type, sa_types.JSON):
            processor = memoised_json(processor)
        processors[name] = processor
    return compiled.string, names, processors, defaults
