"""Which columns hold the id, content, label, annotator, split and metadata: the mapping and its guess."""

from __future__ import annotations

import os
import re
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from typing import Any

import pyarrow.compute as pc

from curation.data.formats import Table
from curation.models import TaskType

MESSAGE_ROLES = frozenset({"system", "user", "assistant", "tool"})


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
    return len(pc.unique(table.arrow.column(column))) == table.n_rows


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
