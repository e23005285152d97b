"""Point estimates (pure numpy): Krippendorff's alpha, Fleiss' and Cohen's kappa, Gwet's AC1, percent agreement."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from curation.agreement.encoding import (
    _CHUNK_ELEMENTS,
    _LEVELS,
    _NAN,
    _NUMERIC_KINDS,
    _WEIGHTS,
    BoolArray,
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
    "cohen_kappa",
    "fleiss_kappa",
    "gwet_ac1",
    "krippendorff_alpha",
    "percent_agreement",
]


# ----------------------------------------------------------------------------------------------------
# Additive sufficient statistics. Each coefficient is a function of sums over items; ``w`` (B, N) holds
# how often each item is drawn in each bootstrap resample, ``w=None`` means every item once (the point
# estimate, B = 1).
# ----------------------------------------------------------------------------------------------------
def _weighted_sum(features: FloatArray, w: FloatArray | None) -> FloatArray:
    """Sum of per-item ``features`` (N, P) over items: (B, P)."""
    return features.sum(axis=0)[None] if w is None else w @ features


def _weighted_cross(x: FloatArray, y: FloatArray, w: FloatArray | None) -> FloatArray:
    """Sum over items of the outer products ``x[i] y[i]^T``: (B, K, L) for x (N, K), y (N, L)."""
    if w is None:
        return (x.T @ y)[None]
    n_items, width = x.shape[0], x.shape[1] * y.shape[1]
    out = np.zeros((w.shape[0], width))
    step = max(1, _CHUNK_ELEMENTS // max(1, width))
    for s in range(0, n_items, step):  # chunks of items, only to bound memory
        outer = (x[s : s + step, :, None] * y[s : s + step, None, :]).reshape(-1, width)
        out += w[:, s : s + step] @ outer
    return out.reshape(-1, x.shape[1], y.shape[1])


def _ratio(num: FloatArray, den: FloatArray, ok: BoolArray) -> FloatArray:
    """``num / den`` where ``ok`` (and ``den`` non-zero), NaN elsewhere, without warnings."""
    ok = ok & (den != 0)
    result: FloatArray = np.divide(num, np.where(ok, den, 1.0), out=np.full(np.shape(num), _NAN), where=ok)
    return result


def _pair_agreement(counts: IntArray) -> tuple[FloatArray, BoolArray]:
    """Per item: share of agreeing rater pairs, sum_k c_k (c_k - 1) / (m (m - 1)); and the pairable mask."""
    m = counts.sum(axis=1)
    pairable = m >= 2
    agree = (counts * (counts - 1)).sum(axis=1)
    share = np.divide(agree, m * (m - 1), out=np.zeros(m.shape), where=pairable)
    return share, pairable


class _Model(Protocol):
    """A coefficient bound to one data set, evaluable on bootstrap weights."""

    support: BoolArray  # (N,) items that enter the coefficient (the ones the bootstrap resamples)

    def evaluate(self, w: FloatArray | None) -> FloatArray:
        """Coefficient for each row of weights ``w`` (B, N), or the point estimate (shape (1,)) for None."""
        ...


def _distances(level: str, values: npt.NDArray[Any], n_c: FloatArray) -> FloatArray:
    """Krippendorff's squared metric differences delta^2_ck, (K, K) or (B, K, K) for ordinal."""
    k = len(values)
    if level == "nominal":
        return 1.0 - np.eye(k)
    if level == "ordinal":  # Krippendorff 2011: (sum_{g=c}^{k} n_g - (n_c + n_k) / 2)^2
        idx = np.arange(k)
        lo: IntArray = np.minimum.outer(idx, idx)
        hi: IntArray = np.maximum.outer(idx, idx)
        cum = np.concatenate([np.zeros((n_c.shape[0], 1)), np.cumsum(n_c, axis=1)], axis=1)
        between = cum[:, hi + 1] - cum[:, lo]
        ordinal: FloatArray = (between - (n_c[:, :, None] + n_c[:, None, :]) / 2.0) ** 2
        return ordinal
    v = values.astype(np.float64)
    diff = v[:, None] - v[None, :]
    if level == "interval":
        return diff**2
    total = v[:, None] + v[None, :]
    ratio: FloatArray = np.divide(diff, total, out=np.zeros((k, k)), where=total != 0)
    return ratio**2


class _Alpha:
    """Krippendorff's alpha from the coincidence matrix o_ck = sum_u (c_uc c_uk - [c=k] c_uc) / (m_u - 1)."""

    def __init__(self, counts: IntArray, values: npt.NDArray[Any], level: str) -> None:
        m = counts.sum(axis=1)
        self.support = m >= 2
        self.counts = counts.astype(np.float64)
        self.scaled = np.divide(
            self.counts, (m - 1)[:, None], out=np.zeros(counts.shape), where=self.support[:, None]
        )
        self.values, self.level = values, level

    def evaluate(self, w: FloatArray | None) -> FloatArray:
        k = self.counts.shape[1]
        o = _weighted_cross(self.scaled, self.counts, w)
        diag = np.arange(k)
        o[:, diag, diag] -= _weighted_sum(self.scaled, w)
        n_c = o.sum(axis=2)
        n = n_c.sum(axis=1)
        delta = np.broadcast_to(_distances(self.level, self.values, n_c), o.shape)
        observed = (o * delta).sum(axis=(1, 2))
        expected = np.einsum("bk,bl,bkl->b", n_c, n_c, delta)
        return 1.0 - _ratio((n - 1.0) * observed, expected, n > 1)


class _Fleiss:
    """Fleiss' kappa from per-item counts with a constant number n of ratings per rated item."""

    def __init__(self, counts: IntArray) -> None:
        m = counts.sum(axis=1)
        self.support = m > 0
        sizes = np.unique(m[self.support])
        if sizes.size > 1:
            raise ValueError(
                "fleiss_kappa needs the same number of ratings for every item (items with no ratings are "
                f"dropped); found between {sizes[0]} and {sizes[-1]} ratings per item. "
                "Use krippendorff_alpha or gwet_ac1 for incomplete ratings."
            )
        self.n_raters = int(sizes[0]) if sizes.size else 0
        share, _ = _pair_agreement(counts)
        rated = self.support[:, None].astype(np.float64)
        self.features = np.hstack([counts * rated, share[:, None] * rated, rated])

    def evaluate(self, w: FloatArray | None) -> FloatArray:
        totals = _weighted_sum(self.features, w)
        items = totals[:, -1]
        ok = (items > 0) & (self.n_raters >= 2)
        p = _ratio(totals[:, :-2], (items * self.n_raters)[:, None], ok[:, None])
        p_mean = _ratio(totals[:, -2], items, ok)
        p_chance = (p**2).sum(axis=1)
        return _ratio(p_mean - p_chance, 1.0 - p_chance, ok)


class _Gwet:
    """Gwet's AC1 (Gwet 2014, r_i ratings per unit): p_a over pairable units, pi_k over rated units."""

    def __init__(self, counts: IntArray) -> None:
        m = counts.sum(axis=1)
        share, pairable = _pair_agreement(counts)
        self.support = m > 0
        prevalence = np.divide(counts, m[:, None], out=np.zeros(counts.shape), where=self.support[:, None])
        self.n_categories = counts.shape[1]
        self.features = np.hstack(
            [share[:, None], pairable[:, None].astype(np.float64), prevalence, self.support[:, None] * 1.0]
        )

    def evaluate(self, w: FloatArray | None) -> FloatArray:
        totals = _weighted_sum(self.features, w)
        q = self.n_categories
        ok = (totals[:, 1] > 0) & (q >= 2)
        p_a = _ratio(totals[:, 0], totals[:, 1], ok)
        pi = _ratio(totals[:, 2:-1], totals[:, -1:], ok[:, None])
        p_e = (pi * (1.0 - pi)).sum(axis=1) / max(q - 1, 1)
        return _ratio(p_a - p_e, 1.0 - p_e, ok)


class _Percent:
    """Mean share of agreeing rater pairs over pairable items."""

    def __init__(self, counts: IntArray) -> None:
        share, self.support = _pair_agreement(counts)
        self.features = np.column_stack([share, self.support.astype(np.float64)])

    def evaluate(self, w: FloatArray | None) -> FloatArray:
        totals = _weighted_sum(self.features, w)
        return _ratio(totals[:, 0], totals[:, 1], totals[:, 1] > 0)


def _disagreement_weights(weights: Weights, n_categories: int) -> FloatArray:
    """Cohen disagreement weights (K, K) by position in the categories: 1 - I, |i - j| or (i - j)^2."""
    idx = np.arange(n_categories, dtype=np.float64)
    diff = np.abs(idx[:, None] - idx[None, :])
    if weights is None:
        return (diff > 0).astype(np.float64)
    return diff if weights == "linear" else diff**2


def _kappa_from_confusion(confusion: FloatArray, disagreement: FloatArray) -> FloatArray:
    """Cohen's kappa 1 - sum(W * O) / sum(W * E) for confusion matrices (..., K, K); NaN when undefined."""
    n = confusion.sum(axis=(-2, -1))
    rows, cols = confusion.sum(axis=-1), confusion.sum(axis=-2)
    expected = rows[..., :, None] * cols[..., None, :]  # times n: compare with n * sum(W * O)
    observed = (confusion * disagreement).sum(axis=(-2, -1)) * n
    return 1.0 - _ratio(observed, (expected * disagreement).sum(axis=(-2, -1)), n > 0)


class _Cohen:
    """Cohen's kappa of two raters over the items both rated."""

    def __init__(self, codes_a: IntArray, codes_b: IntArray, n_categories: int, weights: Weights) -> None:
        self.support = (codes_a >= 0) & (codes_b >= 0)
        self.a = _one_hot(np.where(self.support, codes_a, -1), n_categories)
        self.b = _one_hot(np.where(self.support, codes_b, -1), n_categories)
        self.disagreement = _disagreement_weights(weights, n_categories)

    def evaluate(self, w: FloatArray | None) -> FloatArray:
        return _kappa_from_confusion(_weighted_cross(self.a, self.b, w), self.disagreement)


# ----------------------------------------------------------------------------------------------------
# Argument checks and model construction.
# ----------------------------------------------------------------------------------------------------
def _check_level(level: str, cats: npt.NDArray[Any]) -> None:
    if level not in _LEVELS:
        raise ValueError(f"unknown level {level!r}; expected one of {', '.join(_LEVELS)}")
    if level in ("interval", "ratio") and cats.size and cats.dtype.kind not in _NUMERIC_KINDS:
        raise ValueError(f"level {level!r} needs numeric categories; got {cats.tolist()!r}")


def _check_weights(weights: str | None) -> None:
    if weights not in _WEIGHTS:
        raise ValueError(f"unknown weights {weights!r}; expected None, 'linear' or 'quadratic'")


_STATISTIC_NAMES: tuple[str, ...] = (
    "krippendorff_alpha",
    "fleiss_kappa",
    "cohen_kappa",
    "gwet_ac1",
    "percent_agreement",
)


def _statistic_name(statistic: Statistic | Callable[..., float]) -> str | None:
    """The name of a built-in coefficient given as a name or as one of this module's functions, else None."""
    if isinstance(statistic, str):
        if statistic not in _STATISTIC_NAMES:
            raise ValueError(
                f"unknown statistic {statistic!r}; expected one of {', '.join(_STATISTIC_NAMES)}"
            )
        return statistic
    name = getattr(statistic, "__name__", None)
    if (
        isinstance(name, str)
        and name in _STATISTIC_NAMES
        and getattr(statistic, "__module__", None) == __name__
    ):
        return name
    return None


def _model(name: str, codes: IntArray, cats: npt.NDArray[Any], level: str, weights: Weights) -> _Model:
    """Build the coefficient ``name`` on encoded ratings ``codes`` (N, M) over categories ``cats`` (K,)."""
    k = len(cats)
    if name == "cohen_kappa":
        if codes.shape[1] != 2:
            raise ValueError(f"cohen_kappa needs exactly 2 raters (columns); got {codes.shape[1]}")
        return _Cohen(codes[:, 0], codes[:, 1], k, weights)
    counts = _counts(codes, k)
    if name == "krippendorff_alpha":
        return _Alpha(counts, cats, level)
    if name == "fleiss_kappa":
        return _Fleiss(counts)
    if name == "gwet_ac1":
        return _Gwet(counts)
    return _Percent(counts)


def _point(model: _Model) -> float:
    return float(model.evaluate(None)[0])


# ----------------------------------------------------------------------------------------------------
# Public coefficients.
# ----------------------------------------------------------------------------------------------------
def krippendorff_alpha(ratings: Any, level: Level = "nominal", categories: CategoriesLike = None) -> float:
    """Krippendorff's alpha, ``1 - D_o / D_e``, from the coincidence matrix (Krippendorff 2011).

    Args:
        ratings: (N, M) items x raters; None/NaN = not rated. Note: the ``krippendorff`` package takes the
            transpose (raters x items).
        level: ``"nominal"``, ``"ordinal"``, ``"interval"`` or ``"ratio"``. Distances over the categories:
            nominal ``[c != k]``; ordinal ``(sum_{g=c..k} n_g - (n_c + n_k)/2)^2`` with the coincidence
            marginals n_g (positions in ``categories``); interval ``(c - k)^2``; ratio ``((c - k)/(c + k))^2``
            (0 when c + k = 0). Interval and ratio need numeric categories.
        categories: (K,) ordered value domain; default the sorted distinct observed values. Unused categories
            do not change alpha (their marginal is 0).

    Returns:
        alpha <= 1. Units with fewer than two values are ignored. NaN when there is no pairable unit or the
        expected disagreement is zero (e.g. all values in one category).

    Raises:
        ValueError: unknown level, non-numeric categories for interval/ratio, value not in categories,
            input not 2-D.
    """
    codes, cats = _encode_ratings(ratings, categories)
    _check_level(level, cats)
    return _point(_model("krippendorff_alpha", codes, cats, level, None))


def fleiss_kappa(ratings: Any, categories: CategoriesLike = None) -> float:
    """Fleiss' kappa (Fleiss 1971) for any number of raters with the same number n of ratings per item.

    Args:
        ratings: (N, M) items x raters; None/NaN = not rated. Raters need not be the same people per item, but
            every rated item must have the same number n of ratings. Items with no rating at all are dropped.
        categories: (K,) value domain; unused categories do not change kappa (their share p_j is 0).

    Returns:
        ``(P_bar - P_e) / (1 - P_e)`` in [-1, 1]. NaN when no item is rated, n < 2, or P_e = 1 (every
        rating in one category).

    Raises:
        ValueError: items have different numbers of ratings; value not in categories; non-2-D input.
    """
    codes, cats = _encode_ratings(ratings, categories)
    return _point(_model("fleiss_kappa", codes, cats, "nominal", None))


def cohen_kappa(
    rater_a: Any, rater_b: Any, weights: Weights = None, categories: CategoriesLike = None
) -> float:
    """Cohen's kappa between two raters, optionally weighted (linear / quadratic by position in categories).

    Args:
        rater_a, rater_b: (N,) labels per item; None/NaN = not rated. Items either rater left blank are
            dropped.
        weights: None (unweighted), ``"linear"`` (|i - j|) or ``"quadratic"`` ((i - j)^2), i, j positions in
            ``categories``; so unused categories in ``categories`` change weighted kappa (as in sklearn's
            ``cohen_kappa_score(labels=...)``).
        categories: (K,) ordered value domain; default the sorted distinct values of both raters.

    Returns:
        kappa in [-1, 1]; NaN when no item is rated by both or the expected disagreement is zero.

    Raises:
        ValueError: unknown weights, lengths differ, value not in categories, input not 1-D.
    """
    _check_weights(weights)
    (a, b), cats = _encode([(rater_a, "rater_a", 1), (rater_b, "rater_b", 1)], categories)
    if a.shape != b.shape:
        raise ValueError(f"rater_a and rater_b must have the same length; got {a.shape[0]} and {b.shape[0]}")
    return _point(_Cohen(a, b, len(cats), weights))


def gwet_ac1(ratings: Any, categories: CategoriesLike = None) -> float:
    """Gwet's AC1 for multiple raters with missing ratings (Gwet 2014).

    With r_i ratings and r_ik in category k for unit i, n' units with r_i >= 2 and n units with r_i >= 1:
    ``p_a = (1/n') sum_i sum_k r_ik (r_ik - 1) / (r_i (r_i - 1))``, ``pi_k = (1/n) sum_i r_ik / r_i``,
    ``p_e = sum_k pi_k (1 - pi_k) / (K - 1)``, ``AC1 = (p_a - p_e) / (1 - p_e)``.

    Args:
        ratings: (N, M) items x raters; None/NaN = not rated.
        categories: (K,) value domain. K enters p_e, so unused categories change AC1: with the default
            (observed values only) a data set in one category has K = 1 and AC1 is NaN; with
            ``categories=[a, b]`` and every rating ``a`` it is 1.

    Returns:
        AC1 in [-1, 1]; NaN when no unit has two ratings or K < 2.
    """
    codes, cats = _encode_ratings(ratings, categories)
    return _point(_model("gwet_ac1", codes, cats, "nominal", None))


def percent_agreement(ratings: Any) -> float:
    """Raw agreement: mean over items with >= 2 ratings of the share of rater pairs that agree.

    Args:
        ratings: (N, M) items x raters; None/NaN = not rated.

    Returns:
        A value in [0, 1]; NaN when no item has two ratings.
    """
    codes, cats = _encode_ratings(ratings)
    return _point(_model("percent_agreement", codes, cats, "nominal", None))
