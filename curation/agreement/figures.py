"""The figures of an agreement report (typed records), bands, messages and the summary text."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields, is_dataclass
from typing import Any, cast

from curation.agreement import encoding, statistics
from curation.agreement.loading import _clean
from curation.models import Project, TaskType

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
    "band_for",
    "default_level",
]

LEVELS: tuple[str, ...] = ("nominal", "ordinal", "interval", "ratio")

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

_KAPPA_WEIGHTS: dict[str, encoding.Weights] = {"nominal": None, "ordinal": "linear", "interval": "quadratic",
                                           "ratio": "quadratic"}


# Reasons shown when a figure is undefined.
NO_ITEMS = "no example has an annotation with a value yet"

NO_RATINGS = "no annotation has a 1-5 rating yet"

NO_SCORED = "no item has two or more ratings, so there is nothing to compare"

ONE_CATEGORY = "every rating is the same category, so chance agreement is 1 and alpha is undefined"

ONE_CATEGORY_KAPPA = "every rating is the same category, so chance agreement is 1 and kappa is undefined"

FEW_RATERS = "needs at least two annotators"


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
class AnnotatorFigures(statistics.AnnotatorAgreement):
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
