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
from dataclasses import asdict, fields
from typing import Any, cast

import numpy as np
import numpy.typing as npt
from sqlalchemy.engine import Engine

from curation.access.roles import LEADS, require_role
from curation.agreement import coefficients as stats_coefficients
from curation.agreement import encoding, statistics
from curation.agreement.figures import (
    _KAPPA_WEIGHTS,
    BANDS,
    DOMINANT_SHARE,
    FEW_RATERS,
    LEVELS,
    MIN_ITEMS,
    NO_ITEMS,
    NO_RATINGS,
    NO_SCORED,
    ONE_CATEGORY,
    ONE_CATEGORY_KAPPA,
    TOP_DISPUTED,
    AgreementReport,
    AnnotatorFigures,
    Coefficient,
    Confusion,
    DisputedItem,
    LabelFigures,
    PairwiseMatrix,
    band_for,
    default_level,
)
from curation.agreement.loading import _NAN, RatingsMatrix, _project, _Undefined, load_ratings
from curation.db import read_session
from curation.errors import InputError
from curation.lookup import get_or_not_found
from curation.models import Project, TaskType, User
from curation.review.rules import dispute_figures, most_disputed_first

__all__ = [
    "agreement_report",
    "confusion",
]


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
        value = stats_coefficients.krippendorff_alpha(ratings, level, categories)  # type: ignore[arg-type]
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
        value = stats_coefficients.gwet_ac1(nominal, nominal_cats)
        ac1 = _with_interval(
            Coefficient("ac1", "Gwet's AC1", value, None if math.isfinite(value) else NO_SCORED),
            nominal, "gwet_ac1", n_resamples, seed, categories=nominal_cats)

    # Percent agreement.
    if base_reason:
        percent = Coefficient("percent", "Percent agreement", _NAN, base_reason)
    else:
        percent = Coefficient("percent", "Percent agreement", stats_coefficients.percent_agreement(nominal),
                              note="mean share of agreeing annotator pairs per scored item")

    fleiss = _fleiss(nominal[scored], nominal_cats, per_item[scored], base_reason, one_category)
    pairwise_kappa, shared = (statistics.pairwise_kappa_matrix(nominal, weights, nominal_cats) if n_raters
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


def _with_interval(coefficient: Coefficient, ratings: npt.NDArray[np.float64], statistic: encoding.Statistic,
                   n_resamples: int, seed: int, *, level: str = "nominal",
                   categories: npt.NDArray[Any] | None = None) -> Coefficient:
    if not coefficient.defined:
        return Coefficient(**{**asdict(coefficient), "interval_reason": coefficient.reason})
    if n_resamples < 1:
        return Coefficient(**{**asdict(coefficient), "interval_reason": "no bootstrap resamples requested"})
    low, high = statistics.bootstrap_interval(ratings, statistic, n_resamples, 0.95, seed,
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
    value = stats_coefficients.fleiss_kappa(scored, categories)
    reason = None if math.isfinite(value) else (ONE_CATEGORY_KAPPA if one_category else
                                                "chance agreement is 1, so kappa is undefined")
    return Coefficient("fleiss", name, value, reason, note=f"{int(sizes[0])} ratings on each scored item")


def _cohen(nominal: npt.NDArray[np.float64], categories: npt.NDArray[Any], weights: encoding.Weights,
           pairwise: npt.NDArray[np.float64], base_reason: str | None, one_category: bool) -> Coefficient:
    weighted = f"{weights}-weighted " if weights else ""
    n_raters = nominal.shape[1] if nominal.ndim == 2 else 0
    if base_reason:
        return Coefficient("cohen", "Cohen's kappa", _NAN, base_reason)
    if n_raters < 2:
        return Coefficient("cohen", "Cohen's kappa", _NAN, FEW_RATERS)
    if n_raters == 2:
        value = stats_coefficients.cohen_kappa(nominal[:, 0], nominal[:, 1], weights, categories)
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
    values = statistics.per_label_agreement(nominal, "krippendorff_alpha", categories) if not base_reason else {}
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
                level: str, weights: encoding.Weights, base_reason: str | None) -> list[AnnotatorFigures]:
    if matrix.shape[1] == 0:
        return []
    reference = matrix.reference_values(level)
    rows = statistics.annotator_agreement(ratings, reference, annotators=list(range(matrix.shape[1])),
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
    figures = dispute_figures(counts[candidates])
    share, entropy = figures.majority_share, figures.entropy
    order = most_disputed_first(counts[candidates], np.asarray(matrix.example_ids)[candidates])[:top]
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
                names[user_id] = get_or_not_found(session, User, user_id).username
    n_items = matrix.shape[0]

    def column(user_id: int) -> npt.NDArray[np.float64]:
        if user_id not in matrix.annotator_ids:
            return np.full(n_items, _NAN)
        codes = matrix.codes[:, matrix.annotator_ids.index(user_id)]
        return np.where(codes >= 0, codes.astype(np.float64), _NAN)

    a, b = column(annotator_a), column(annotator_b)
    categories = np.arange(len(matrix.labels), dtype=np.float64)
    counts, _ = statistics.confusion_matrix(a, b, categories) if n_items else (
        np.zeros((len(matrix.labels),) * 2, dtype=np.intp), categories)
    n_shared = int(counts.sum())
    kappa = stats_coefficients.cohen_kappa(a, b, None, categories) if n_shared else _NAN
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
