"""Checks of a mapping before anything is written: does the item id really identify one item?

In a long-format file (one row per judgement) rows with the same id become one item: its text comes
from the first row and every judgement attaches to it. When the rows of one id carry different texts
in other columns (ConvAbuse mapped by `conv_id, user` folds turns that share a user message but follow
different agent turns), distinct items are merged and their judgements overwrite each other.
`id_conflicts` finds those columns with Arrow (one group-by, whatever the file's size).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.compute as pc

if TYPE_CHECKING:
    from curation.data.formats import Table
    from curation.data.mapping import ColumnMapping

_SAMPLE_ROWS = 1000  # rows looked at to tell a text column from a column of numbers or flags


@dataclass
class IdConflict:
    """Items (by the mapped id) whose rows differ in text columns other than the per-judgement ones."""

    id_columns: list[str]
    items: int  # distinct ids in the file
    conflicting_items: int  # ids whose rows carry more than one value in some checked column
    columns: dict[str, int] = field(default_factory=dict)  # column -> ids with several values in it
    example_ids: list[str] = field(default_factory=list)  # a few such ids, for the user to look at

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def message(self) -> str:
        differing = ", ".join(f"{column} ({n:,} items)" for column, n in self.columns.items())
        return (f"the id ({', '.join(self.id_columns)}) merges rows with different texts: {self.conflicting_items:,} "
                f"of {self.items:,} items carry several values in {differing}, e.g. {', '.join(self.example_ids)}. "
                "Rows with one id become one item (its text from the first row) and their judgements overwrite "
                "each other; add the columns that tell the items apart to the id "
                f"(e.g. --map id={','.join([*self.id_columns, *self.columns])}).")


def _per_judgement_columns(mapping: ColumnMapping, table: Table) -> set[str]:
    """Columns that differ between the rows of one item by design: who judged, when, and what."""
    columns = {mapping.annotator, mapping.annotated_at, mapping.label, mapping.response, *mapping.label_onehot,
               *table.control_columns}
    return {c for c in columns if c}


def _is_text_column(arrow: pa.Table, column: str) -> bool:
    """A string column whose sampled values are not all numbers (row numbers, scores and one-hot
    flags differ per judgement and are not texts)."""
    if not (pa.types.is_string(arrow.schema.field(column).type)
            or pa.types.is_large_string(arrow.schema.field(column).type)):
        return False
    for value in arrow.column(column).slice(0, _SAMPLE_ROWS).to_pylist():
        if value is None or not value.strip():
            continue
        try:
            float(value)
        except ValueError:
            return True
    return False


def id_conflicts(table: Table, mapping: ColumnMapping) -> IdConflict | None:
    """The text columns whose values differ within one item id of a long-format mapping, or None when
    every id's rows agree (or the mapping is wide: there a repeated id is an error of its own)."""
    if not mapping.long_format or not mapping.id or any(c not in table.columns for c in mapping.id):
        return None
    arrow = table.arrow
    skip = _per_judgement_columns(mapping, table) | set(mapping.id)
    candidates = [c for c in table.columns if c not in skip and _is_text_column(arrow, c)]
    if not candidates:
        return None
    keys = [f"__id{i}" for i in range(len(mapping.id))]
    # Ids compare as the importer reads them: text with the ends trimmed.
    columns = {key: pc.utf8_trim_whitespace(pc.cast(arrow.column(c), pa.string()))
               for key, c in zip(keys, mapping.id, strict=True)}
    columns.update({c: arrow.column(c) for c in candidates})
    grouped = pa.table(columns).group_by(keys).aggregate([(c, "count_distinct") for c in candidates])
    several = {c: pc.greater(grouped.column(f"{c}_count_distinct"), 1) for c in candidates}
    counts = {c: int(pc.sum(mask).as_py() or 0) for c, mask in several.items()}
    counts = {c: n for c, n in sorted(counts.items(), key=lambda kv: (-kv[1], table.columns.index(kv[0]))) if n}
    if not counts:
        return None
    any_mask = several[next(iter(counts))]
    for column in counts:
        any_mask = pc.or_(any_mask, several[column])
    conflicting = grouped.filter(any_mask)
    examples = ["/".join(str(conflicting.column(k)[i].as_py()) for k in keys)
                for i in range(min(3, conflicting.num_rows))]
    return IdConflict(id_columns=list(mapping.id), items=grouped.num_rows, conflicting_items=conflicting.num_rows,
                      columns=counts, example_ids=examples)
