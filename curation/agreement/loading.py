"""A project's ratings matrix read from the database (items x annotators)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
from sqlalchemy import func, select
from sqlalchemy.engine import Engine

from curation.db import read_session
from curation.lookup import read_or_not_found
from curation.models import Annotation, Example, ExampleStatus, Project, TaskType, User
from curation.review.rules import RATING_SCALE

__all__ = [
    "RatingsMatrix",
    "data_version",
    "load_ratings",
]


_NAN = float("nan")


def _isnan(value: float | None) -> bool:
    return value is not None and isinstance(value, float) and math.isnan(value)


def _clean(value: Any) -> Any:
    """JSON-safe copy: NaN and infinities become None, numpy scalars Python ones, tuples lists."""
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    if isinstance(value, np.ndarray):
        return _clean(value.tolist())
    if isinstance(value, (np.floating, float)):
        number = float(value)
        return number if math.isfinite(number) else None
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.bool_):
        return bool(value)
    return value


# ----------------------------------------------------------------------------------------------------
# Loading the ratings matrix
# ----------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class RatingsMatrix:
    """Items x annotators codes (positions in `labels`, -1 for "not rated") with the items' ids and
    reference labels (final labels of labelled examples, -1 where there is none)."""

    project: Project
    labels: list[str]
    codes: npt.NDArray[np.intp]
    example_ids: list[int]
    external_ids: list[str]
    statuses: list[str]
    reference: npt.NDArray[np.intp]
    annotator_ids: list[int]
    annotators: list[str]

    @property
    def shape(self) -> tuple[int, int]:
        return (int(self.codes.shape[0]), int(self.codes.shape[1]))

    def category_values(self, level: str) -> npt.NDArray[np.float64]:
        """The value of each category at `level`: its position (nominal, ordinal: the label order) or its
        number (interval, ratio; raises `_Undefined` when a label is not a number)."""
        if level in ("nominal", "ordinal"):
            return np.arange(len(self.labels), dtype=np.float64)
        return _numeric_labels(self.labels, level)

    def ratings(self, level: str) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
        """(N, M) float ratings with NaN for "not rated", and the categories (K,) they take values in."""
        values = self.category_values(level)
        return _lookup(self.codes, values), values

    def reference_values(self, level: str) -> npt.NDArray[np.float64]:
        """(N,) reference labels as values at `level`, NaN where an item has no final label."""
        return _lookup(self.reference, self.category_values(level))


def _lookup(codes: npt.NDArray[np.intp], values: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    out = np.full(codes.shape, _NAN)
    known = codes >= 0
    out[known] = values[codes[known]]
    return out


class _Undefined(Exception):
    """A level that cannot apply to these labels: every figure at that level is NaN with this reason."""


def _numeric_labels(labels: Sequence[str], level: str) -> npt.NDArray[np.float64]:
    values: list[float] = []
    for label in labels:
        try:
            number = float(label)
        except ValueError:
            raise _Undefined(f"the {level} level needs numeric labels, and '{label}' is not a number; "
                             "use nominal or ordinal") from None
        if not math.isfinite(number):
            raise _Undefined(f"the {level} level needs finite numeric labels; '{label}' is not")
        values.append(number)
    if len(set(values)) != len(values):
        raise _Undefined(f"the {level} level needs distinct numeric labels; two labels have the same value")
    if level == "ratio" and min(values, default=0.0) < 0:
        raise _Undefined("the ratio level needs labels that are zero or positive; use interval or ordinal")
    return np.asarray(values, dtype=np.float64)


def _project(engine: Engine, project_id: int) -> Project:
    return read_or_not_found(engine, Project, project_id)


def load_ratings(engine: Engine, project: Project) -> RatingsMatrix:
    """The project's ratings matrix, read with one query (see the module docstring for what counts)."""
    generation = TaskType(project.task_type) is TaskType.generation
    value_column = Annotation.rating if generation else Annotation.label
    query = (
        select(Annotation.example_id, Annotation.annotator_id, value_column, Example.external_id,
               Example.status, Example.final_label, User.username)
        .join(Example, Example.id == Annotation.example_id)
        .join(User, User.id == Annotation.annotator_id)
        .where(Example.project_id == project.id, Example.status != ExampleStatus.excluded.value,
               value_column.is_not(None), User.kind != "source")  # a source is no annotator (issue 12)
    )
    with read_session(engine) as session:
        rows = session.execute(query).all()

    if generation:
        labels = [str(r) for r in RATING_SCALE]
    else:
        labels = [str(label) for label in project.labels]
    if not rows:
        return RatingsMatrix(project, labels, np.zeros((0, 0), dtype=np.intp), [], [], [],
                             np.zeros(0, dtype=np.intp), [], [])

    example_col, annotator_col, value_col, external_col, status_col, final_col, name_col = zip(*rows, strict=True)
    values = [str(v) for v in value_col]
    position = {label: i for i, label in enumerate(labels)}
    for value in dict.fromkeys(values):  # a label outside the project's set still counts, after the others
        if value not in position:
            position[value] = len(labels)
            labels.append(value)
    example_ids, item_index = np.unique(np.asarray(example_col, dtype=np.int64), return_inverse=True)
    annotator_ids, rater_index = np.unique(np.asarray(annotator_col, dtype=np.int64), return_inverse=True)
    codes = np.full((example_ids.size, annotator_ids.size), -1, dtype=np.intp)
    codes[item_index, rater_index] = np.fromiter((position[v] for v in values), dtype=np.intp, count=len(values))

    # Per-item columns: any one row of the item carries them (first occurrence).
    first = np.zeros(example_ids.size, dtype=np.intp)
    first[item_index[::-1]] = np.arange(len(rows) - 1, -1, -1)
    external_ids = [str(external_col[i]) for i in first]
    statuses = [str(status_col[i]) for i in first]
    reference = np.full(example_ids.size, -1, dtype=np.intp)
    if not generation:
        for item, row in enumerate(first):
            final = final_col[row]
            if statuses[item] == ExampleStatus.labelled.value and final is not None and final in position:
                reference[item] = position[final]
    names_by_id: dict[int, str] = {}
    for annotator_id, name in zip(annotator_col, name_col, strict=True):
        names_by_id.setdefault(int(annotator_id), str(name))
    ids = [int(a) for a in annotator_ids]
    return RatingsMatrix(project, labels, codes, [int(e) for e in example_ids], external_ids, statuses,
                         reference, ids, [names_by_id[a] for a in ids])


def data_version(engine: Engine, project_id: int) -> str:
    """A cheap fingerprint of everything the report depends on: annotation count, newest change and
    row versions; example count, newest change and exclusions; the project's last edit. Equal strings
    mean an equal report, so a cache keyed on it is never stale."""
    with read_session(engine) as session:
        annotations = session.execute(
            select(func.count(Annotation.id), func.max(Annotation.updated_at), func.sum(Annotation.row_version))
            .join(Example, Example.id == Annotation.example_id).where(Example.project_id == project_id)
        ).one()
        # two queries, each answered from one covering index ((project, updated_at), (project, final_label))
        examples = session.execute(
            select(func.count(Example.id), func.max(Example.updated_at)).where(Example.project_id == project_id)
        ).one()
        final_labels = session.execute(
            select(func.sum(func.length(func.coalesce(Example.final_label, "")))).where(Example.project_id == project_id)
        ).scalar_one()
        excluded = session.execute(
            select(func.count(Example.id)).where(Example.project_id == project_id,
                                                 Example.status == ExampleStatus.excluded.value)
        ).scalar_one()
        project = session.execute(
            select(Project.updated_at, Project.min_agreement, Project.labels).where(Project.id == project_id)
        ).one_or_none()
    return "|".join(str(part) for part in (*annotations, *examples, final_labels, excluded,
                                              *(project or ("missing",))))
