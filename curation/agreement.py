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
import numbers
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol, TypeAlias, cast

import numpy as np
import numpy.typing as npt

__all__ = [
    "AnnotatorAgreement",
    "Level",
    "Statistic",
    "Weights",
    "annotator_agreement",
    "bootstrap_interval",
    "cohen_kappa",
    "confusion_matrix",
    "fleiss_kappa",
    "gwet_ac1",
    "krippendorff_alpha",
    "pairwise_kappa_matrix",
    "per_label_agreement",
    "percent_agreement",
]

FloatArray: TypeAlias = npt.NDArray[np.float64]
IntArray: TypeAlias = npt.NDArray[np.intp]
BoolArray: TypeAlias = npt.NDArray[np.bool_]
Level: TypeAlias = Literal["nominal", "ordinal", "interval", "ratio"]
Weights: TypeAlias = Literal["linear", "quadratic"] | None
Statistic: TypeAlias = Literal[
    "krippendorff_alpha", "fleiss_kappa", "cohen_kappa", "gwet_ac1", "percent_agreement"
]
CategoriesLike: TypeAlias = Sequence[Any] | npt.NDArray[Any] | None

_LEVELS: tuple[str, ...] = ("nominal", "ordinal", "interval", "ratio")
_WEIGHTS: tuple[str | None, ...] = (None, "linear", "quadratic")
_NUMERIC_KINDS = "biuf"
_NAN = float("nan")
# Cap on the float64 elements of one temporary in the vectorised bootstrap (about 32 MB).
_CHUNK_ELEMENTS = 4_000_000


# ----------------------------------------------------------------------------------------------------
# Encoding: the one place where raw values become category codes.
# ----------------------------------------------------------------------------------------------------


def _is_missing(value: Any) -> bool:
    """True for None, a float NaN, pandas NA / NaT."""
    if value is None:
        return True
    if isinstance(value, (float, np.floating)):
        return bool(value != value)
    return type(value).__name__ in ("NAType", "NaTType")


_missing_ufunc = np.frompyfunc(_is_missing, 1, 1)


def _typed_values(values: npt.NDArray[Any]) -> npt.NDArray[Any]:
    """Turn a 1-D object array of non-missing values into a numeric or ``U`` array when all share a kind.

    Mixed kinds (e.g. str and int) stay ``object`` so that numpy never silently turns numbers into strings.
    """
    if values.size == 0:
        return values.astype(np.float64)
    items = values.tolist()
    types = set(map(type, items))
    if all(issubclass(t, str) for t in types):
        return np.asarray(items, dtype=str)
    if all(issubclass(t, (numbers.Real, np.bool_)) for t in types):
        return np.asarray(items)
    return values


def _raw_values(data: Any, name: str, ndim: int) -> tuple[npt.NDArray[Any], BoolArray]:
    """Split array-like ``data`` into its non-missing values (1-D, row-major) and its missing mask."""
    try:
        arr = np.asarray(data)
        if not isinstance(data, np.ndarray) and arr.dtype.kind in "US":
            arr = np.asarray(data, dtype=object)  # numpy would have turned NaN / None into "nan" / "None"
    except ValueError as exc:  # ragged lists of lists
        raise ValueError(f"{name} must be a rectangular {ndim}-D array-like: {exc}") from exc
    if arr.ndim != ndim:
        shape = "items x raters" if ndim == 2 else "one value per item"
        raise ValueError(f"{name} must be {ndim}-D ({shape}); got an array of shape {arr.shape}")
    kind = arr.dtype.kind
    if kind == "f":
        missing = np.isnan(arr)
    elif kind in "biu":
        missing = np.zeros(arr.shape, dtype=bool)
    elif kind in "US":
        missing = (arr == arr.dtype.type("nan")) | (arr == arr.dtype.type("None"))
    elif kind == "O":
        missing = _missing_ufunc(arr).astype(bool) if arr.size else np.zeros(arr.shape, dtype=bool)
        return _typed_values(arr[~missing]), missing
    else:
        raise ValueError(f"{name} has unsupported dtype {arr.dtype}; use numbers or strings")
    return arr[~missing], missing


def _join_values(parts: Sequence[npt.NDArray[Any]]) -> npt.NDArray[Any]:
    """Concatenate value arrays, falling back to ``object`` when numeric and string values meet."""
    kinds = {("num" if p.dtype.kind in _NUMERIC_KINDS else p.dtype.kind) for p in parts if p.size}
    if len(kinds) > 1:
        return np.concatenate([p.astype(object) for p in parts])
    return np.concatenate(parts)


def _category_array(categories: Sequence[Any] | npt.NDArray[Any]) -> npt.NDArray[Any]:
    """Validate a user-supplied value domain: 1-D, no missing values, no duplicates."""
    raw = np.asarray(categories, dtype=object)
    if raw.ndim != 1:
        raise ValueError(f"categories must be 1-D; got shape {raw.shape}")
    cats = _typed_values(raw)
    items = cats.tolist()
    if any(_is_missing(c) for c in items):
        raise ValueError("categories must not contain None or NaN")
    if len(set(items)) != len(items):
        raise ValueError("categories must not contain duplicates")
    return cats


def _unique_inverse(values: npt.NDArray[Any]) -> tuple[npt.NDArray[Any], IntArray]:
    """``np.unique(values, return_inverse=True)``, with a counting fast path for integer-valued numbers."""
    if values.dtype.kind in "iuf" and values.size:
        low = values.min()
        if float(values.max()) - float(low) < 65_536:  # in float: no integer overflow; False for inf
            if values.dtype.kind == "u":
                offsets = values - low
            else:  # widen first so that e.g. int8 offsets cannot wrap around
                wide = np.int64 if values.dtype.kind == "i" else np.float64
                offsets = values.astype(wide) - wide(low)
            ints = offsets.astype(np.intp)
            if values.dtype.kind != "f" or np.array_equal(ints, offsets):
                present = np.bincount(ints) > 0
                lookup = np.cumsum(present, dtype=np.intp) - 1
                return (np.flatnonzero(present) + low).astype(values.dtype), lookup[ints]
    cats, inverse = np.unique(values, return_inverse=True)
    return cats, inverse.reshape(-1).astype(np.intp, copy=False)


def _codes_from_values(values: npt.NDArray[Any], cats: npt.NDArray[Any]) -> IntArray:
    """Positions of ``values`` in ``cats``; ValueError for a value outside the domain."""
    if values.size == 0:
        return np.zeros(0, dtype=np.intp)
    same_kind = (values.dtype.kind in _NUMERIC_KINDS and cats.dtype.kind in _NUMERIC_KINDS) or (
        values.dtype.kind == cats.dtype.kind == "U"
    )
    if same_kind and cats.size:
        order = np.argsort(cats, kind="stable")
        ordered = cats[order]
        pos = np.minimum(np.searchsorted(ordered, values), cats.size - 1)
        found = ordered[pos] == values
        codes = order[pos]
    else:
        index = {c: i for i, c in enumerate(cats.tolist())}
        codes = np.fromiter((index.get(v, -1) for v in values.tolist()), dtype=np.intp, count=values.size)
        found = codes >= 0
    if not np.all(found):
        bad = list(dict.fromkeys(values[~found].tolist()))[:5]
        raise ValueError(f"values not in categories: {bad!r} (categories: {cats.tolist()!r})")
    return codes.astype(np.intp, copy=False)


def _encode(
    blocks: Sequence[tuple[Any, str, int]], categories: CategoriesLike
) -> tuple[list[IntArray], npt.NDArray[Any]]:
    """Encode one or more array-likes against a shared value domain.

    ``blocks`` holds ``(data, name, ndim)`` triples. Returns one int code array per block, of that block's
    shape, with -1 for "not rated", and the categories (K,) the codes index into. Without ``categories`` the
    domain is the sorted distinct values observed in all blocks together.
    """
    raws = [_raw_values(data, name, ndim) for data, name, ndim in blocks]
    values = _join_values([v for v, _ in raws])
    if categories is None:
        if values.dtype == object:
            try:
                cats = _typed_values(np.asarray(sorted(set(values.tolist())), dtype=object))
            except TypeError as exc:
                raise ValueError(
                    "ratings mix value types that cannot be ordered (e.g. str and int); pass categories"
                ) from exc
            flat = _codes_from_values(values, cats)
        else:
            cats, flat = _unique_inverse(values)
    else:
        cats = _category_array(categories)
        flat = _codes_from_values(values, cats)
    out: list[IntArray] = []
    start = 0
    for _, missing in raws:
        codes = np.full(missing.shape, -1, dtype=np.intp)
        stop = start + int(missing.size - np.count_nonzero(missing))
        codes[~missing] = flat[start:stop]
        out.append(codes)
        start = stop
    return out, cats


def _encode_ratings(ratings: Any, categories: CategoriesLike = None) -> tuple[IntArray, npt.NDArray[Any]]:
    """Encode an (N, M) ratings array-like: codes (N, M) with -1 for missing, and the categories (K,)."""
    (codes,), cats = _encode([(ratings, "ratings", 2)], categories)
    return codes, cats


def _counts(codes: IntArray, n_categories: int) -> IntArray:
    """Per-item category counts (N, K) from codes (N, M); missing codes (-1) are not counted."""
    n_items = codes.shape[0]
    flat = np.arange(n_items, dtype=np.intp)[:, None] * n_categories + codes
    flat = np.where(codes >= 0, flat, n_items * n_categories)  # missing go to one trailing bin
    binned = np.bincount(flat.ravel(), minlength=n_items * n_categories + 1)
    return binned[: n_items * n_categories].reshape(n_items, n_categories)


def _one_hot(codes: IntArray, n_categories: int) -> FloatArray:
    """One-hot encoding (..., K) of codes (...); missing codes (-1) give an all-zero row."""
    eye = np.vstack([np.eye(n_categories), np.zeros((1, n_categories))])
    return eye[np.where(codes >= 0, codes, n_categories)]


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
