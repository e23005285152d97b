"""A project's inter-annotator agreement, read from the database: the figures the Agreement page, the CLI
and (later) the approval checklist show.

The statistics themselves live in :mod:`curation.agreement` (pure numpy); this module loads the ratings
matrix in one query, picks the measurement level, computes every coefficient with its interval, and turns
each undefined figure (NaN) into a sentence that says why. Nothing here raises for data that merely makes a
coefficient undefined; only a bad argument (unknown level, negative resamples), a missing project or a role
that may not read agreement raise.

Ratings matrix
--------------
Items are the project's examples that are not excluded and have at least one annotation with a value;
raters are the annotators who gave those values. The value is the annotation's label for classification
projects and its 1-5 rating for generation projects. Categories are the project's labels in their project
order (generation: the ratings 1..5); the ordinal level uses that order, the interval and ratio levels the
labels' numeric values (so they need numeric labels, e.g. ConvAbuse's 1, 0, -1, -2, -3).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, fields, is_dataclass
from typing import Any, cast

import numpy as np
import numpy.typing as npt
from sqlalchemy import func, select
from sqlalchemy.engine import Engine

from curation import agreement as stats
from curation.auth import LEADS, require_role
from curation.db import read_session
from curation.errors import InputError, NotFound
from curation.models import Annotation, Example, ExampleStatus, Project, TaskType, User

__all__ = [
    "BANDS",
    "LEVELS",
    "MIN_ITEMS",
    "DOMINANT_SHARE",
    "AgreementReport",
    "AnnotatorFigures",
    "Coefficient",
    "Confusion",
    "DisputedItem",
    "LabelFigures",
    "PairwiseMatrix",
    "RatingsMatrix",
    "agreement_report",
    "band_for",
    "confusion",
    "data_version",
    "default_level",
    "load_ratings",
]

LEVELS: tuple[str, ...] = ("nominal", "ordinal", "interval", "ratio")
RATING_SCALE: tuple[int, ...] = (1, 2, 3, 4, 5)
MIN_ITEMS = 30  # fewer scored items than this: a warning
DOMINANT_SHARE = 0.8  # one label above this share of all ratings: a warning
TOP_DISPUTED = 20
# Krippendorff's (2004) conventional cut-offs for alpha.
TENTATIVE, RELIABLE = 0.667, 0.8
BANDS: dict[str, str] = {
    "unreliable": "unreliable: do not train on these labels yet",
    "tentative": "tentative: usable for tentative conclusions",
    "reliable": "reliable",
    "undefined": "undefined",
}
_KAPPA_WEIGHTS: dict[str, stats.Weights] = {"nominal": None, "ordinal": "linear", "interval": "quadratic",
                                           "ratio": "quadratic"}
_NAN = float("nan")

# Reasons shown when a figure is undefined.
NO_ITEMS = "no example has an annotation with a value yet"
NO_RATINGS = "no annotation has a 1-5 rating yet"
NO_SCORED = "no item has two or more ratings, so there is nothing to compare"
ONE_CATEGORY = "every rating is the same category, so chance agreement is 1 and alpha is undefined"
ONE_CATEGORY_KAPPA = "every rating is the same category, so chance agreement is 1 and kappa is undefined"
FEW_RATERS = "needs at least two annotators"


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
# Result types
# ----------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Coefficient:
    """One agreement coefficient.

    `value` is NaN when the coefficient is undefined for this data (and `reason` says why), None when it
    does not apply (e.g. Fleiss' kappa with unequal numbers of ratings; `reason` again says why).
    `low`/`high` hold the seeded bootstrap 95% interval where one is computed (`interval_reason` explains a
    missing one). `note` says how the value was computed (e.g. "mean of 28 pairwise kappas").
    """

    key: str
    name: str
    value: float | None
    reason: str | None = None
    low: float | None = None
    high: float | None = None
    interval_reason: str | None = None
    note: str = ""

    @property
    def defined(self) -> bool:
        return self.value is not None and math.isfinite(self.value)

    @property
    def has_interval(self) -> bool:
        return self.low is not None and self.high is not None and math.isfinite(self.low) \
            and math.isfinite(self.high)

    def to_dict(self) -> dict[str, Any]:
        return cast(dict[str, Any], _clean(asdict(self)))


@dataclass(frozen=True)
class LabelFigures:
    """Agreement on one label versus all others (binary nominal alpha), with how often it was chosen."""

    label: str
    n_ratings: int
    share: float
    alpha: float
    reason: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return cast(dict[str, Any], _clean(asdict(self)))


@dataclass(frozen=True)
class AnnotatorFigures(stats.AnnotatorAgreement):
    """`AnnotatorAgreement` of one account (by name, with its id) against the others and against the
    final labels of labelled/adjudicated examples, with the reason for each undefined figure."""

    annotator: str
    annotator_id: int
    reasons: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return cast(dict[str, Any], _clean(asdict(self)))


@dataclass(frozen=True)
class PairwiseMatrix:
    """Cohen's kappa between every two annotators on the items both rated (NaN: fewer than two shared
    items or undefined), and how many items each pair shares (diagonal: items the annotator rated)."""

    annotator_ids: list[int]
    annotators: list[str]
    kappa: list[list[float]]
    shared: list[list[int]]
    weights: str | None

    def most_shared_pair(self) -> tuple[int, int]:
        """Indices (i < j) of the two annotators who rated the most items in common; the first such pair
        in annotator order on a tie, (0, 1) when nobody shares an item. Needs two annotators."""
        n = len(self.annotator_ids)
        if n < 2:
            raise ValueError("a pair needs at least two annotators")
        best = (0, 1)
        for i in range(n):
            for j in range(i + 1, n):
                if self.shared[i][j] > self.shared[best[0]][best[1]]:
                    best = (i, j)
        return best

    def to_dict(self) -> dict[str, Any]:
        return cast(dict[str, Any], _clean(asdict(self)))


@dataclass(frozen=True)
class DisputedItem:
    """An item whose annotators disagree: how many distinct labels, the majority label's share and the
    Shannon entropy (bits) of its label distribution."""

    example_id: int
    external_id: str
    status: str
    n_ratings: int
    n_distinct: int
    majority_share: float
    entropy: float
    labels: dict[str, int]

    def to_dict(self) -> dict[str, Any]:
        return cast(dict[str, Any], _clean(asdict(self)))


@dataclass(frozen=True)
class Confusion:
    """Confusion matrix between two annotators on the items both rated: rows annotator_a, columns b."""

    annotator_a: str
    annotator_b: str
    labels: list[str]
    counts: list[list[int]]
    n_shared: int
    agreement: float
    kappa: float
    reason: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return cast(dict[str, Any], _clean(asdict(self)))


@dataclass(frozen=True)
class AgreementReport:
    """Everything the Agreement page and `python -m curation agreement` show. `to_dict()` is JSON-safe."""

    project_id: int
    project: str
    task_type: str
    level: str
    default_level: str
    labels: list[str]
    n_items: int  # items with at least one rating
    n_scored: int  # items with two or more ratings
    n_raters: int
    n_ratings: int
    alpha: Coefficient
    fleiss: Coefficient
    cohen: Coefficient
    ac1: Coefficient
    percent: Coefficient
    band: str  # a key of BANDS
    band_text: str
    threshold: float
    meets_threshold: bool
    per_label: list[LabelFigures]
    annotators: list[AnnotatorFigures]
    pairwise: PairwiseMatrix
    disputed: list[DisputedItem]
    warnings: list[str]
    n_resamples: int
    seed: int

    @property
    def coefficients(self) -> list[Coefficient]:
        return [self.alpha, self.ac1, self.fleiss, self.cohen, self.percent]

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for item in fields(self):
            value = getattr(self, item.name)
            if is_dataclass(value):
                out[item.name] = value.to_dict()  # type: ignore[union-attr]
            elif isinstance(value, list) and value and is_dataclass(value[0]):
                out[item.name] = [v.to_dict() for v in value]
            else:
                out[item.name] = _clean(value)
        out["band_reason"] = self.alpha.reason if self.band == "undefined" else None
        return out

    def summary_text(self) -> str:
        """A readable multi-line summary (the CLI without --json)."""
        return _summary_text(self)


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
    with read_session(engine) as session:
        project = session.get(Project, project_id)
    if project is None:
        raise NotFound(f"No project with id {project_id}.")
    return project


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
        examples = session.execute(
            select(func.count(Example.id), func.max(Example.updated_at),
                   func.sum(func.length(func.coalesce(Example.final_label, ""))))
            .where(Example.project_id == project_id)
        ).one()
        excluded = session.execute(
            select(func.count(Example.id)).where(Example.project_id == project_id,
                                                 Example.status == ExampleStatus.excluded.value)
        ).scalar_one()
        project = session.execute(
            select(Project.updated_at, Project.min_agreement, Project.labels).where(Project.id == project_id)
        ).one_or_none()
    return "|".join(str(part) for part in (*annotations, *examples, excluded, *(project or ("missing",))))


def default_level(project: Project) -> str:
    """Nominal for classification labels, ordinal for generation ratings and for labels the project
    declares ordered (a scale in the order of its label set)."""
    if TaskType(project.task_type) is TaskType.generation or project.labels_ordered:
        return "ordinal"
    return "nominal"


def band_for(alpha: float | None) -> str:
    """The key in BANDS for an alpha value (Krippendorff's 0.667 / 0.8 cut-offs)."""
    if alpha is None or not math.isfinite(alpha):
        return "undefined"
    if alpha < TENTATIVE:
        return "unreliable"
    if alpha < RELIABLE:
        return "tentative"
    return "reliable"


# ----------------------------------------------------------------------------------------------------
# The report
# ----------------------------------------------------------------------------------------------------


def agreement_report(
    engine: Engine,
    actor: User,
    project_id: int,
    level: str | None = None,
    n_resamples: int = 1000,
    seed: int = 0,
) -> AgreementReport:
    """All agreement figures of a project (leads and admins).

    Args:
        level: Krippendorff level: "nominal", "ordinal", "interval" or "ratio"; default nominal for
            classification, ordinal for generation and for projects whose labels are ordered. Ordinal uses the project's label order; interval and
            ratio need numeric labels (otherwise alpha is NaN with the reason).
        n_resamples: bootstrap resamples for the alpha and AC1 intervals (0: no intervals).
        seed: bootstrap seed; the same seed gives the same intervals.

    Raises:
        PermissionDenied: the actor is not a lead or admin.
        NotFound: no such project.
        InputError: unknown level or negative n_resamples.
    """
    require_role(actor, *LEADS)
    project = _project(engine, project_id)
    chosen = level or default_level(project)
    if chosen not in LEVELS:
        raise InputError(f"unknown level '{chosen}'; expected one of {', '.join(LEVELS)}", field="level")
    if n_resamples < 0:
        raise InputError("the number of resamples must be 0 or more", field="resamples")
    matrix = load_ratings(engine, project)
    return _build(matrix, project, chosen, n_resamples, seed)


def _build(matrix: RatingsMatrix, project: Project, level: str, n_resamples: int, seed: int) -> AgreementReport:
    generation = TaskType(project.task_type) is TaskType.generation
    codes = matrix.codes
    n_items, n_raters = matrix.shape
    rated = codes >= 0
    per_item = rated.sum(axis=1) if n_items else np.zeros(0, dtype=np.intp)
    scored = per_item >= 2
    n_scored = int(scored.sum())
    n_ratings = int(rated.sum())
    k = len(matrix.labels)
    scored_codes = codes[scored]
    used_scored = np.unique(scored_codes[scored_codes >= 0]) if n_scored else np.zeros(0, dtype=np.intp)

    # Why a coefficient over the scored items is undefined, in the order people should read them.
    base_reason: str | None = None
    if n_items == 0:
        base_reason = NO_RATINGS if generation else NO_ITEMS
    elif n_scored == 0:
        base_reason = NO_SCORED
    level_reason: str | None = None
    try:
        ratings, categories = matrix.ratings(level)
    except _Undefined as undefined:
        level_reason = str(undefined)
        ratings, categories = matrix.ratings("nominal")
    nominal, nominal_cats = matrix.ratings("nominal")
    weights = _KAPPA_WEIGHTS["nominal" if level_reason else level]  # kappa weights follow the level that applies
    one_category = n_scored > 0 and used_scored.size == 1

    def alpha_reason() -> str:
        return level_reason or base_reason or (ONE_CATEGORY if one_category else
                                               "the expected disagreement is zero, so alpha is undefined")

    # Krippendorff's alpha at the level, with its interval.
    if level_reason or base_reason:
        alpha = Coefficient("alpha", f"Krippendorff's alpha ({level})", _NAN, alpha_reason(),
                            interval_reason=alpha_reason())
    else:
        value = stats.krippendorff_alpha(ratings, level, categories)  # type: ignore[arg-type]
        alpha = _with_interval(
            Coefficient("alpha", f"Krippendorff's alpha ({level})", value,
                        None if math.isfinite(value) else alpha_reason()),
            ratings, "krippendorff_alpha", n_resamples, seed, level=level, categories=categories)

    # Gwet's AC1 (nominal by construction) with its interval.
    if base_reason:
        ac1 = Coefficient("ac1", "Gwet's AC1", _NAN, base_reason, interval_reason=base_reason)
    elif k < 2:
        ac1 = Coefficient("ac1", "Gwet's AC1", _NAN, "the project has fewer than two labels",
                          interval_reason="the project has fewer than two labels")
    else:
        value = stats.gwet_ac1(nominal, nominal_cats)
        ac1 = _with_interval(
            Coefficient("ac1", "Gwet's AC1", value, None if math.isfinite(value) else NO_SCORED),
            nominal, "gwet_ac1", n_resamples, seed, categories=nominal_cats)

    # Percent agreement.
    if base_reason:
        percent = Coefficient("percent", "Percent agreement", _NAN, base_reason)
    else:
        percent = Coefficient("percent", "Percent agreement", stats.percent_agreement(nominal),
                              note="mean share of agreeing annotator pairs per scored item")

    fleiss = _fleiss(nominal[scored], nominal_cats, per_item[scored], base_reason, one_category)
    pairwise_kappa, shared = (stats.pairwise_kappa_matrix(nominal, weights, nominal_cats) if n_raters
                              else (np.zeros((0, 0)), np.zeros((0, 0), dtype=np.intp)))
    cohen = _cohen(nominal, nominal_cats, weights, pairwise_kappa, base_reason, one_category)

    band = band_for(alpha.value)
    band_text = BANDS[band] if band != "undefined" else f"undefined: {alpha.reason}"
    threshold = float(project.min_agreement)
    meets = bool(alpha.defined and cast(float, alpha.value) >= threshold)

    per_label = _per_label(matrix, nominal, nominal_cats, codes, scored, base_reason)
    annotators = _annotators(matrix, ratings if not level_reason else nominal, categories if not level_reason
                             else nominal_cats, level if not level_reason else "nominal", weights, base_reason)
    pairwise = PairwiseMatrix(
        annotator_ids=list(matrix.annotator_ids), annotators=list(matrix.annotators),
        kappa=[[float(v) for v in row] for row in pairwise_kappa],
        shared=[[int(v) for v in row] for row in shared], weights=weights,
    )
    disputed = _disputed(matrix, scored)
    warnings = _warnings(matrix, n_scored, n_ratings, codes, [alpha, ac1, fleiss, cohen, percent])
    return AgreementReport(
        project_id=cast(int, project.id), project=project.name, task_type=TaskType(project.task_type).value,
        level=level, default_level=default_level(project), labels=list(matrix.labels),
        n_items=n_items, n_scored=n_scored, n_raters=n_raters, n_ratings=n_ratings,
        alpha=alpha, fleiss=fleiss, cohen=cohen, ac1=ac1, percent=percent,
        band=band, band_text=band_text, threshold=threshold, meets_threshold=meets,
        per_label=per_label, annotators=annotators, pairwise=pairwise, disputed=disputed,
        warnings=warnings, n_resamples=n_resamples, seed=seed,
    )


def _with_interval(coefficient: Coefficient, ratings: npt.NDArray[np.float64], statistic: stats.Statistic,
                   n_resamples: int, seed: int, *, level: str = "nominal",
                   categories: npt.NDArray[Any] | None = None) -> Coefficient:
    if not coefficient.defined:
        return Coefficient(**{**asdict(coefficient), "interval_reason": coefficient.reason})
    if n_resamples < 1:
        return Coefficient(**{**asdict(coefficient), "interval_reason": "no bootstrap resamples requested"})
    low, high = stats.bootstrap_interval(ratings, statistic, n_resamples, 0.95, seed,
                                         level=level, categories=categories)  # type: ignore[arg-type]
    if math.isnan(low) or math.isnan(high):
        return Coefficient(**{**asdict(coefficient), "low": _NAN, "high": _NAN,
                              "interval_reason": "too few items: the coefficient is undefined in most "
                                                 "bootstrap resamples"})
    return Coefficient(**{**asdict(coefficient), "low": low, "high": high,
                          "note": f"95% interval from {n_resamples} bootstrap resamples of the items (seed {seed})"})


def _fleiss(scored: npt.NDArray[np.float64], categories: npt.NDArray[Any], per_item: npt.NDArray[np.intp],
            base_reason: str | None, one_category: bool) -> Coefficient:
    name = "Fleiss' kappa"
    if base_reason:
        return Coefficient("fleiss", name, _NAN, base_reason)
    sizes = np.unique(per_item)
    if sizes.size > 1:
        return Coefficient("fleiss", name, None,
                           f"Fleiss' kappa needs the same number of ratings on every item; scored items have "
                           f"between {int(sizes[0])} and {int(sizes[-1])} ratings (see alpha or AC1)")
    value = stats.fleiss_kappa(scored, categories)
    reason = None if math.isfinite(value) else (ONE_CATEGORY_KAPPA if one_category else
                                                "chance agreement is 1, so kappa is undefined")
    return Coefficient("fleiss", name, value, reason, note=f"{int(sizes[0])} ratings on each scored item")


def _cohen(nominal: npt.NDArray[np.float64], categories: npt.NDArray[Any], weights: stats.Weights,
           pairwise: npt.NDArray[np.float64], base_reason: str | None, one_category: bool) -> Coefficient:
    weighted = f"{weights}-weighted " if weights else ""
    n_raters = nominal.shape[1] if nominal.ndim == 2 else 0
    if base_reason:
        return Coefficient("cohen", "Cohen's kappa", _NAN, base_reason)
    if n_raters < 2:
        return Coefficient("cohen", "Cohen's kappa", _NAN, FEW_RATERS)
    if n_raters == 2:
        value = stats.cohen_kappa(nominal[:, 0], nominal[:, 1], weights, categories)
        reason = None
        if not math.isfinite(value):
            both = int(((~np.isnan(nominal[:, 0])) & (~np.isnan(nominal[:, 1]))).sum())
            reason = ("the two annotators share no item" if both == 0 else
                      ONE_CATEGORY_KAPPA if one_category else "chance agreement is 1, so kappa is undefined")
        return Coefficient("cohen", "Cohen's kappa", value, reason, note=f"{weighted}kappa of the two annotators")
    upper = pairwise[np.triu_indices(n_raters, 1)]
    finite = upper[np.isfinite(upper)]
    if finite.size == 0:
        return Coefficient("cohen", "Cohen's kappa (mean pairwise)", _NAN,
                           ONE_CATEGORY_KAPPA if one_category else
                           "no two annotators share two or more items with a defined kappa")
    return Coefficient("cohen", "Cohen's kappa (mean pairwise)", float(finite.mean()),
                       note=f"mean {weighted}kappa over {finite.size} of {upper.size} annotator pairs "
                            "(pairs sharing fewer than two items or with an undefined kappa are left out)")


def _per_label(matrix: RatingsMatrix, nominal: npt.NDArray[np.float64], categories: npt.NDArray[Any],
               codes: npt.NDArray[np.intp], scored: npt.NDArray[np.bool_],
               base_reason: str | None) -> list[LabelFigures]:
    k = len(matrix.labels)
    total = int((codes >= 0).sum())
    counts = np.bincount(codes[codes >= 0], minlength=k) if total else np.zeros(k, dtype=np.intp)
    scored_codes = codes[scored]
    scored_counts = (np.bincount(scored_codes[scored_codes >= 0], minlength=k) if scored_codes.size
                     else np.zeros(k, dtype=np.intp))
    n_scored_ratings = int(scored_counts.sum())
    values = stats.per_label_agreement(nominal, "krippendorff_alpha", categories) if not base_reason else {}
    out: list[LabelFigures] = []
    for position, label in enumerate(matrix.labels):
        alpha = float(values.get(float(position), _NAN)) if values else _NAN
        reason: str | None = None
        if not math.isfinite(alpha):
            if base_reason:
                reason = base_reason
            elif scored_counts[position] == 0:
                reason = "no annotator chose this label on an item with two or more ratings"
            elif scored_counts[position] == n_scored_ratings:
                reason = "every rating is this label, so chance agreement is 1 and alpha is undefined"
            else:
                reason = "the expected disagreement is zero, so alpha is undefined"
        share = float(counts[position] / total) if total else _NAN
        out.append(LabelFigures(label=label, n_ratings=int(counts[position]), share=share, alpha=alpha,
                                reason=reason))
    return out


def _annotators(matrix: RatingsMatrix, ratings: npt.NDArray[np.float64], categories: npt.NDArray[Any],
                level: str, weights: stats.Weights, base_reason: str | None) -> list[AnnotatorFigures]:
    if matrix.shape[1] == 0:
        return []
    reference = matrix.reference_values(level)
    rows = stats.annotator_agreement(ratings, reference, annotators=list(range(matrix.shape[1])),
                                     level=level, weights=weights, categories=categories)  # type: ignore[arg-type]
    out: list[AnnotatorFigures] = []
    for row in rows:
        index = cast(int, row.annotator)
        reasons: dict[str, str] = {}
        if math.isnan(row.mean_pairwise_kappa):
            reasons["mean_pairwise_kappa"] = base_reason or (
                "shares fewer than two items with every other annotator, or kappa is undefined for each pair")
        # With two annotators, "the others" is one person: alpha needs two raters, so the gain is
        # undefined by construction, not because of the data.
        alone = "with two annotators the others are one annotator, and alpha needs at least two: undefined by construction"
        if math.isnan(row.alpha_without):
            reasons["alpha_without"] = base_reason or (alone if matrix.shape[1] == 2 else
                                                       "alpha of the other annotators alone is undefined")
        if math.isnan(row.alpha_gain):
            reasons["alpha_gain"] = base_reason or (alone if matrix.shape[1] == 2 else
                                                    "alpha with or without this annotator is undefined")
        if row.n_reference == 0:
            why = "none of this annotator's items has a final label yet (labelled or adjudicated)"
            reasons["kappa_vs_reference"] = reasons["accuracy_vs_reference"] = why
        elif math.isnan(row.kappa_vs_reference):
            reasons["kappa_vs_reference"] = ("on the items with a final label, chance agreement is 1, so kappa "
                                             "is undefined")
        figures = {f.name: getattr(row, f.name) for f in fields(row)}
        out.append(AnnotatorFigures(**{**figures, "annotator": matrix.annotators[index]},
                                    annotator_id=matrix.annotator_ids[index], reasons=reasons))
    return out


def _disputed(matrix: RatingsMatrix, scored: npt.NDArray[np.bool_], top: int = TOP_DISPUTED) -> list[DisputedItem]:
    """Scored items with at least two distinct labels, most disputed first: lowest majority share, then
    most distinct labels, highest entropy, most ratings, and the example id for a stable order."""
    if not scored.any():
        return []
    k = len(matrix.labels)
    codes = matrix.codes
    n_items = codes.shape[0]
    flat = np.where(codes >= 0, np.arange(n_items)[:, None] * k + codes, n_items * k)
    counts = np.bincount(flat.ravel(), minlength=n_items * k + 1)[: n_items * k].reshape(n_items, k)
    m = counts.sum(axis=1)
    distinct = (counts > 0).sum(axis=1)
    candidates = np.flatnonzero(scored & (distinct >= 2))
    if candidates.size == 0:
        return []
    sub = counts[candidates].astype(np.float64)
    share = sub.max(axis=1) / m[candidates]
    p = sub / m[candidates][:, None]
    entropy = -(np.where(p > 0, p * np.log2(np.where(p > 0, p, 1.0)), 0.0)).sum(axis=1)
    ids = np.asarray(matrix.example_ids)[candidates]
    order = np.lexsort((ids, -m[candidates], -entropy, -distinct[candidates], share))[:top]
    out: list[DisputedItem] = []
    for j in order:
        item = int(candidates[j])
        out.append(DisputedItem(
            example_id=matrix.example_ids[item], external_id=matrix.external_ids[item], status=matrix.statuses[item],
            n_ratings=int(m[item]), n_distinct=int(distinct[item]), majority_share=float(share[j]),
            entropy=float(entropy[j]),
            labels={matrix.labels[c]: int(counts[item, c]) for c in np.argsort(-counts[item], kind="stable")
                    if counts[item, c] > 0},
        ))
    return out


def _warnings(matrix: RatingsMatrix, n_scored: int, n_ratings: int, codes: npt.NDArray[np.intp],
              coefficients: Sequence[Coefficient]) -> list[str]:
    out: list[str] = []
    if n_scored < MIN_ITEMS:
        out.append(f"Only {n_scored} item{'s' if n_scored != 1 else ''} with two or more ratings: figures from "
                   f"fewer than {MIN_ITEMS} scored items are too uncertain to act on.")
    if n_ratings:
        counts = np.bincount(codes[codes >= 0], minlength=len(matrix.labels))
        top = int(counts.argmax())
        share = counts[top] / n_ratings
        if share > DOMINANT_SHARE:
            out.append(f"Label '{matrix.labels[top]}' has {share:.0%} of all ratings: with one label this common, "
                       "chance agreement is high, so alpha and kappa can be low even when annotators mostly agree "
                       "(compare with AC1 and percent agreement).")
    for coefficient in coefficients:
        if coefficient.value is not None and math.isnan(coefficient.value):
            out.append(f"{coefficient.name} is undefined: {coefficient.reason}.")
    return out


# ----------------------------------------------------------------------------------------------------
# Confusion between two annotators
# ----------------------------------------------------------------------------------------------------


def confusion(engine: Engine, actor: User, project_id: int, annotator_a: int, annotator_b: int) -> Confusion:
    """Confusion matrix of two annotators (user ids) over the items both rated (leads and admins).

    An annotator with no rating in the project gives an all-zero matrix and a NaN kappa with the reason."""
    require_role(actor, *LEADS)
    project = _project(engine, project_id)
    matrix = load_ratings(engine, project)
    return confusion_from_matrix(engine, matrix, annotator_a, annotator_b)


def confusion_from_matrix(engine: Engine, matrix: RatingsMatrix, annotator_a: int, annotator_b: int) -> Confusion:
    names = dict(zip(matrix.annotator_ids, matrix.annotators, strict=True))
    missing = [a for a in (annotator_a, annotator_b) if a not in names]
    if missing:
        with read_session(engine) as session:
            for user_id in missing:
                user = session.get(User, user_id)
                if user is None:
                    raise NotFound(f"No user with id {user_id}.")
                names[user_id] = user.username
    n_items = matrix.shape[0]

    def column(user_id: int) -> npt.NDArray[np.float64]:
        if user_id not in matrix.annotator_ids:
            return np.full(n_items, _NAN)
        codes = matrix.codes[:, matrix.annotator_ids.index(user_id)]
        return np.where(codes >= 0, codes.astype(np.float64), _NAN)

    a, b = column(annotator_a), column(annotator_b)
    categories = np.arange(len(matrix.labels), dtype=np.float64)
    counts, _ = stats.confusion_matrix(a, b, categories) if n_items else (
        np.zeros((len(matrix.labels),) * 2, dtype=np.intp), categories)
    n_shared = int(counts.sum())
    kappa = stats.cohen_kappa(a, b, None, categories) if n_shared else _NAN
    reason: str | None = None
    if n_shared == 0:
        reason = "the two annotators share no item"
    elif annotator_a == annotator_b:
        reason = None
    elif math.isnan(kappa):
        reason = ONE_CATEGORY_KAPPA
    return Confusion(
        annotator_a=names[annotator_a], annotator_b=names[annotator_b], labels=list(matrix.labels),
        counts=[[int(v) for v in row] for row in counts], n_shared=n_shared,
        agreement=float(np.trace(counts) / n_shared) if n_shared else _NAN, kappa=float(kappa), reason=reason,
    )


# ----------------------------------------------------------------------------------------------------
# Text summary
# ----------------------------------------------------------------------------------------------------


def fmt(value: float | None, digits: int = 3) -> str:
    """A figure for people: 'undefined' for NaN, 'n/a' for None."""
    if value is None:
        return "n/a"
    if not math.isfinite(value):
        return "undefined"
    text = f"{value:.{digits}f}"
    return text[1:] if text.startswith("-") and float(text) == 0 else text  # no "-0.000"


_ANNOTATOR_FIGURE_NAMES = {"mean_pairwise_kappa": "mean pairwise kappa", "alpha_gain": "alpha gain",
                           "kappa_vs_reference": "kappa vs final labels",
                           "accuracy_vs_reference": "accuracy vs final labels"}


def _summary_text(report: AgreementReport) -> str:
    lines = [
        f"{report.project} ({report.task_type}, {report.level} level): {report.n_items} items rated, "
        f"{report.n_scored} scored (two or more ratings), {report.n_raters} annotators, {report.n_ratings} ratings",
        "",
    ]
    for coefficient in report.coefficients:
        text = f"{coefficient.name:<36} {fmt(coefficient.value):>9}"
        if coefficient.has_interval:
            text += f"  95% CI [{fmt(coefficient.low)}, {fmt(coefficient.high)}]"
        if coefficient.reason:
            text += f"  ({coefficient.reason})"
        lines.append(text)
    lines.append(f"band: {report.band_text}")
    verdict = "met" if report.meets_threshold else "NOT met"
    lines.append(f"approval threshold alpha >= {report.threshold:g}: {verdict}")
    lines += ["", "per label (alpha of this label vs the rest):"]
    for label in report.per_label:
        lines.append(f"  {label.label:<24} {label.n_ratings:>7} ratings {fmt(label.share, 2):>6}  "
                     f"alpha {fmt(label.alpha)}" + (f"  ({label.reason})" if label.reason else ""))
    lines += ["", "per annotator: rated, mean pairwise kappa, alpha gain, kappa / accuracy vs final labels (n):"]
    for person in report.annotators:
        lines.append(f"  {person.annotator:<24} {person.n_rated:>7} {fmt(person.mean_pairwise_kappa):>9} "
                     f"{fmt(person.alpha_gain):>9} {fmt(person.kappa_vs_reference):>9} "
                     f"{fmt(person.accuracy_vs_reference):>9} ({person.n_reference})")
        for key, title in _ANNOTATOR_FIGURE_NAMES.items():  # why a figure shows as undefined
            if key in person.reasons:
                lines.append(f"      {title} undefined: {person.reasons[key]}")
    if report.disputed:
        lines += ["", f"most disputed items (top {len(report.disputed)}):"]
        for item in report.disputed[:10]:
            labels = ", ".join(f"{label} x{n}" for label, n in item.labels.items())
            lines.append(f"  #{item.example_id} {item.external_id}: {labels} (majority {item.majority_share:.0%})")
    if report.warnings:
        lines += ["", "warnings:"] + [f"  - {warning}" for warning in report.warnings]
    return "\n".join(lines)
