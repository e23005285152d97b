"""Ratings matrices to integer codes (pure numpy): missing values, categories, counts."""

from __future__ import annotations

import numbers
from collections.abc import Sequence
from typing import Any, Literal, TypeAlias

import numpy as np
import numpy.typing as npt

__all__ = [
    "Level",
    "Statistic",
    "Weights",
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
