"""Inter-annotator agreement: Krippendorff's alpha, Fleiss' and Cohen's kappa, Gwet's AC1, percent agreement.

Pure numpy; no database, no Streamlit. Every coefficient is computed from one vectorised encoding of the
ratings (no Python loop over items), which also makes seeded bootstrap intervals cheap.

Glossary
--------
N
    Number of items (units, subjects): the rows of ``ratings``.
M
    Number of raters (annotators, coders): the columns of ``ratings``.
K
    Number of categories: the length of the value domain ``categories``.
B
    Number of bootstrap resamples.
ratings
    Array-like of shape (N, M) (a numpy array, a list of lists, a DataFrame): ``ratings[i][j]`` is the
    value rater ``j`` gave to item ``i``. ``None`` or ``NaN`` (also pandas ``NA``/``NaT``) means "not rated".
    Values may be numbers or strings. In a fixed-width numpy string array (dtype ``U``/``S``) numpy has
    already turned ``NaN``/``None`` into the strings ``"nan"``/``"None"``, so those two strings count as
    "not rated" there.
categories
    The ordered value domain, shape (K,). It fixes the order for ordinal data and weighted kappa, the
    values used by interval/ratio distances, and lets categories nobody used count where a statistic needs
    them (Gwet's K, weighted-kappa positions). By default: the sorted distinct observed values. Every
    observed value must be in it, otherwise ``ValueError``.
codes
    Int array of shape (N, M): the position of each rating in ``categories`` (0..K-1), or -1 for "not rated".
counts
    Int array of shape (N, K): ``counts[i, k]`` is the number of raters who put item ``i`` in category ``k``;
    ``m_i = counts[i].sum()`` is the number of ratings of item ``i``.
pairable item
    An item with at least two ratings; only those can show (dis)agreement.

Undefined coefficients (every rating in one category, zero expected disagreement, no pairable items, no shared
items) are returned as ``float('nan')``, never as a made-up 1.0. Invalid arguments (unknown ``level`` or
``weights``, a value not in ``categories``, input that is not 2-D) raise ``ValueError``.

References
----------
Krippendorff, K. (2011). Computing Krippendorff's Alpha-Reliability.
Fleiss, J. L. (1971). Measuring nominal scale agreement among many raters. Psychological Bulletin 76(5).
Cohen, J. (1960, 1968). A coefficient of agreement for nominal scales; Weighted kappa.
Gwet, K. L. (2014). Handbook of Inter-Rater Reliability, 4th ed. (AC1 with missing ratings).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from typing import Any, cast

import numpy as np
import numpy.typing as npt

from curation.agreement.coefficients import (
    _Alpha,
    _check_level,
    _check_weights,
    _disagreement_weights,
    _kappa_from_confusion,
    _model,
    _point,
    _ratio,
    _statistic_name,
)
from curation.agreement.encoding import (
    _CHUNK_ELEMENTS,
    _NAN,
    CategoriesLike,
    FloatArray,
    IntArray,
    Level,
    Statistic,
    Weights,
    _counts,
    _encode,
    _encode_ratings,
    _one_hot,
)

__all__ = [
    "AnnotatorAgreement",
    "annotator_agreement",
    "bootstrap_interval",
    "confusion_matrix",
    "pairwise_kappa_matrix",
    "per_label_agreement",
]


# ----------------------------------------------------------------------------------------------------
# Bootstrap, per-label, per-annotator, pairwise, confusion.
# ----------------------------------------------------------------------------------------------------
def _resample_weights(
    rng: np.random.Generator, support: IntArray, n_items: int, n_resamples: int
) -> FloatArray:
    """(B, N) multiplicities of drawing ``support.size`` items with replacement from ``support``."""
    draws = support[rng.integers(0, support.size, size=(n_resamples, support.size))]
    flat = (np.arange(n_resamples, dtype=np.intp)[:, None] * n_items + draws).ravel()
    return np.bincount(flat, minlength=n_resamples * n_items).reshape(n_resamples, n_items).astype(np.float64)


def bootstrap_interval(
    ratings: Any,
    statistic: Statistic | Callable[..., float] = "krippendorff_alpha",
    n_resamples: int = 1000,
    confidence: float = 0.95,
    seed: int | None = 0,
    *,
    level: Level = "nominal",
    weights: Weights = None,
    categories: CategoriesLike = None,
) -> tuple[float, float]:
    """Seeded percentile bootstrap confidence interval over items.

    Items that enter the coefficient (pairable items for alpha and percent agreement, rated items for Fleiss
    and Gwet, items both raters rated for Cohen) are drawn with replacement, as many as there are. For the
    built-in coefficients this is vectorised: per-item sufficient statistics are computed once and each
    resample is a weighted sum of them (``(B, N) @ (N, P)``), so 1,000 resamples of 500 items take
    milliseconds.

    Args:
        ratings: (N, M) items x raters (N x 2 for Cohen); None/NaN = not rated.
        statistic: a coefficient name (``"krippendorff_alpha"``, ``"fleiss_kappa"``, ``"cohen_kappa"``,
            ``"gwet_ac1"``, ``"percent_agreement"``) or one of those functions. Any other callable is called
            as ``statistic(resampled_ratings)`` on each (N, M) resample of all items (slow path, Python loop).
        n_resamples: B >= 1.
        confidence: two-sided level in (0, 1).
        seed: seed of ``numpy.random.default_rng``; the same seed gives the same interval.
        level: Krippendorff level (alpha only).
        weights: Cohen weights (cohen_kappa only).
        categories: (K,) value domain, fixed for all resamples.

    Returns:
        ``(low, high)`` percentiles of the resampled coefficients. Resamples giving NaN are dropped;
        ``(nan, nan)`` when fewer than 2 or fewer than half of the resamples are valid.

    Raises:
        ValueError: bad n_resamples / confidence, or any error the coefficient raises on the full data.
    """
    if n_resamples < 1:
        raise ValueError(f"n_resamples must be >= 1; got {n_resamples}")
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1); got {confidence}")
    rng = np.random.default_rng(seed)
    name = _statistic_name(statistic)
    if name is None:
        function = cast(Callable[..., float], statistic)
        arr = np.asarray(ratings, dtype=object)
        if arr.ndim != 2:
            raise ValueError(f"ratings must be 2-D (items x raters); got shape {arr.shape}")
        draws = rng.integers(0, arr.shape[0], size=(n_resamples, arr.shape[0]))
        values = np.array([float(function(arr[row])) for row in draws])
    else:
        codes, cats = _encode_ratings(ratings, categories)
        _check_level(level, cats)
        _check_weights(weights)
        model = _model(name, codes, cats, level, weights)
        support = np.flatnonzero(model.support)
        if support.size == 0:
            return _NAN, _NAN
        n_items = codes.shape[0]
        step = max(1, _CHUNK_ELEMENTS // max(1, n_items))
        values = np.concatenate(
            [
                model.evaluate(_resample_weights(rng, support, n_items, min(step, n_resamples - start)))
                for start in range(0, n_resamples, step)
            ]
        )
    valid = values[~np.isnan(values)]
    if valid.size < max(2, math.ceil(n_resamples / 2)):
        return _NAN, _NAN
    tail = (1.0 - confidence) / 2.0
    low, high = np.quantile(valid, [tail, 1.0 - tail])
    return float(low), float(high)


def per_label_agreement(
    ratings: Any,
    statistic: Statistic | Callable[..., float] = "krippendorff_alpha",
    categories: CategoriesLike = None,
) -> dict[Any, float]:
    """Agreement on each label versus the rest.

    Each category c is binarised (rating == c -> 1, any other rating -> 0, not rated stays not rated) and the
    chosen coefficient is computed on that two-category data (alpha at the nominal level; Cohen needs M = 2).

    Args:
        ratings: (N, M) items x raters; None/NaN = not rated.
        statistic: ``"krippendorff_alpha"`` (default), ``"fleiss_kappa"``, ``"cohen_kappa"``, ``"gwet_ac1"``,
            ``"percent_agreement"`` or one of those functions.
        categories: (K,) value domain. A label nobody used leaves only "rest" ratings: NaN for alpha,
            Fleiss and Cohen; 1.0 for Gwet (two binary categories) and percent agreement.

    Returns:
        ``{label: value}`` in category order, labels as Python scalars.
    """
    name = _statistic_name(statistic)
    if name is None:
        raise ValueError("per_label_agreement needs one of this module's coefficients (name or function)")
    codes, cats = _encode_ratings(ratings, categories)
    binary_cats = np.array([0, 1])
    result: dict[Any, float] = {}
    for k, label in enumerate(cats.tolist()):  # loop over categories, not items
        binary = np.where(codes >= 0, (codes == k).astype(np.intp), -1)
        result[label] = _point(_model(name, binary, binary_cats, "nominal", None))
    return result


def pairwise_kappa_matrix(
    ratings: Any, weights: Weights = None, categories: CategoriesLike = None
) -> tuple[FloatArray, IntArray]:
    """Cohen's kappa between every pair of raters on the items both rated.

    All M x M confusion matrices come from one product of the (N, M * K) one-hot encoding with itself.

    Args:
        ratings: (N, M) items x raters; None/NaN = not rated.
        weights: None, ``"linear"`` or ``"quadratic"`` (see :func:`cohen_kappa`).
        categories: (K,) ordered value domain.

    Returns:
        ``(kappa, shared)``: kappa (M, M) float, symmetric, NaN where the pair shares fewer than 2 items or
        kappa is undefined (the diagonal is a rater with itself: 1.0 unless undefined); shared (M, M) int, the
        number of items both rated (diagonal: items each rater rated).
    """
    _check_weights(weights)
    codes, cats = _encode_ratings(ratings, categories)
    return _pairwise_kappa(codes, len(cats), weights)


def _pairwise_kappa(codes: IntArray, n_categories: int, weights: Weights) -> tuple[FloatArray, IntArray]:
    """(M, M) Cohen kappa and shared-item counts for codes (N, M); see :func:`pairwise_kappa_matrix`."""
    n_items, n_raters = codes.shape
    k = n_categories
    onehot = _one_hot(codes, k).reshape(n_items, n_raters * k)
    confusion = (onehot.T @ onehot).reshape(n_raters, k, n_raters, k).transpose(0, 2, 1, 3)
    shared = np.rint(confusion.sum(axis=(2, 3))).astype(np.intp)
    kappa = _kappa_from_confusion(confusion, _disagreement_weights(weights, k))
    kappa[shared < 2] = _NAN
    return kappa, shared


def confusion_matrix(
    rater_a: Any, rater_b: Any, categories: CategoriesLike = None
) -> tuple[IntArray, npt.NDArray[Any]]:
    """Confusion matrix between two raters over the items both rated.

    Args:
        rater_a, rater_b: (N,) labels per item; None/NaN = not rated.
        categories: (K,) ordered value domain; default the sorted distinct values of both raters.

    Returns:
        ``(counts, categories)``: counts (K, K) int, ``counts[i, j]`` = items rater_a put in ``categories[i]``
        and rater_b in ``categories[j]``; categories (K,) the row/column order.
    """
    (a, b), cats = _encode([(rater_a, "rater_a", 1), (rater_b, "rater_b", 1)], categories)
    if a.shape != b.shape:
        raise ValueError(f"rater_a and rater_b must have the same length; got {a.shape[0]} and {b.shape[0]}")
    k = len(cats)
    both = (a >= 0) & (b >= 0)
    counts = np.bincount(a[both] * k + b[both], minlength=k * k).reshape(k, k)
    return counts.astype(np.intp), cats


@dataclass(frozen=True)
class AnnotatorAgreement:
    """Agreement of one annotator with the others and with a reference.

    Attributes:
        annotator: the annotator's name (or column index when no names were given).
        n_rated: items this annotator rated.
        mean_pairwise_kappa: mean Cohen kappa with each other annotator over shared items (pairs sharing < 2
            items or with undefined kappa are skipped; NaN if none is left).
        alpha_without: Krippendorff's alpha of the other annotators only (this column removed).
        alpha_gain: alpha of everyone minus ``alpha_without``; > 0 means this annotator raises agreement.
        n_reference: items this annotator rated that also have a reference label.
        kappa_vs_reference: Cohen kappa against the reference on those items (NaN without a reference).
        accuracy_vs_reference: share of those items where the annotator matches the reference.
    """

    annotator: Hashable
    n_rated: int
    mean_pairwise_kappa: float
    alpha_without: float
    alpha_gain: float
    n_reference: int
    kappa_vs_reference: float
    accuracy_vs_reference: float


def annotator_agreement(
    ratings: Any,
    reference: Any = None,
    *,
    annotators: Sequence[Hashable] | None = None,
    level: Level = "nominal",
    weights: Weights = None,
    categories: CategoriesLike = None,
) -> list[AnnotatorAgreement]:
    """Per-annotator agreement: with the other annotators and with adjudicated reference labels.

    For each annotator j: mean pairwise Cohen kappa with every other annotator; Krippendorff's alpha of the
    others without j and the gain ``alpha(all) - alpha(without j)``; and, given ``reference``, Cohen kappa and
    accuracy against it on the items both have.

    Args:
        ratings: (N, M) items x raters; None/NaN = not rated.
        reference: optional (N,) adjudicated labels, None/NaN where there is none.
        annotators: optional M names, in column order.
        level: Krippendorff level for the alpha columns.
        weights: Cohen weights for the kappa columns.
        categories: (K,) ordered value domain shared by ratings and reference.

    Returns:
        One :class:`AnnotatorAgreement` per column, in column order.
    """
    _check_weights(weights)
    blocks: list[tuple[Any, str, int]] = [(ratings, "ratings", 2)]
    if reference is not None:
        blocks.append((reference, "reference", 1))
    encoded, cats = _encode(blocks, categories)
    codes = encoded[0]
    _check_level(level, cats)
    n_items, n_raters = codes.shape
    if annotators is not None and len(annotators) != n_raters:
        raise ValueError(f"annotators has {len(annotators)} names for {n_raters} columns")
    names = list(annotators) if annotators is not None else list(range(n_raters))
    ref = encoded[1] if reference is not None else np.full(n_items, -1, dtype=np.intp)
    if ref.shape[0] != n_items:
        raise ValueError(f"reference has {ref.shape[0]} labels for {n_items} items")

    k = len(cats)
    with_ref = np.column_stack([codes, ref])
    kappa, shared = _pairwise_kappa(with_ref, k, weights)
    peers = kappa[:n_raters, :n_raters].copy()
    np.fill_diagonal(peers, _NAN)
    valid_peers = ~np.isnan(peers)
    mean_kappa = _ratio(
        np.where(valid_peers, peers, 0.0).sum(axis=1),
        valid_peers.sum(axis=1) * 1.0,
        valid_peers.sum(axis=1) > 0,
    )

    counts = _counts(codes, k)
    alpha_all = _point(_Alpha(counts, cats, level))
    rater_onehot = _one_hot(codes, k).astype(np.intp)
    matches = (codes == ref[:, None]) & (codes >= 0)
    rows: list[AnnotatorAgreement] = []
    for j in range(n_raters):  # loop over annotators, not items
        alpha_without = _point(_Alpha(counts - rater_onehot[:, j], cats, level))
        n_ref = int(shared[j, n_raters])
        rows.append(
            AnnotatorAgreement(
                annotator=names[j],
                n_rated=int(shared[j, j]),
                mean_pairwise_kappa=float(mean_kappa[j]),
                alpha_without=alpha_without,
                alpha_gain=alpha_all - alpha_without,
                n_reference=n_ref,
                kappa_vs_reference=float(kappa[j, n_raters]),
                accuracy_vs_reference=float(matches[:, j].sum() / n_ref) if n_ref else _NAN,
            )
        )
    return rows
