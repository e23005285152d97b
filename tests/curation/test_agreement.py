"""Tests for curation.agreement: published examples, reference packages, properties, edge cases."""

from __future__ import annotations

import math
from itertools import combinations
from typing import Any

import krippendorff
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.metrics import cohen_kappa_score
from sklearn.metrics import confusion_matrix as sk_confusion_matrix
from statsmodels.stats.inter_rater import aggregate_raters
from statsmodels.stats.inter_rater import fleiss_kappa as sm_fleiss_kappa

from curation.agreement.coefficients import (
    cohen_kappa,
    fleiss_kappa,
    gwet_ac1,
    krippendorff_alpha,
    percent_agreement,
)
from curation.agreement.statistics import (
    annotator_agreement,
    bootstrap_interval,
    confusion_matrix,
    pairwise_kappa_matrix,
    per_label_agreement,
)

LEVELS = ("nominal", "ordinal", "interval", "ratio")
NAN = float("nan")
n = NAN

# Krippendorff (2011), "Computing Krippendorff's Alpha-Reliability", section C: 4 observers x 12 units.
KRIPP_2011 = [
    [1, 2, 3, 3, 2, 1, 4, 1, 2, n, n, n],
    [1, 2, 3, 3, 2, 2, 4, 1, 2, 5, n, 3],
    [n, 3, 3, 3, 2, 3, 4, 2, 2, 5, 1, n],
    [1, 2, 3, 3, 2, 4, 4, 1, 2, 5, 1, n],
]
KRIPP_2011_PUBLISHED = {"nominal": 0.743, "ordinal": 0.815, "interval": 0.849, "ratio": 0.797}

# Fleiss (1971) via Wikipedia "Fleiss' kappa": 10 subjects, 14 raters, counts per category 1..5.
FLEISS_TABLE = [
    [0, 0, 0, 0, 14],
    [0, 2, 6, 4, 2],
    [0, 0, 3, 5, 6],
    [0, 3, 9, 2, 0],
    [2, 2, 8, 1, 1],
    [7, 7, 0, 0, 0],
    [3, 2, 6, 3, 0],
    [2, 5, 3, 2, 2],
    [6, 5, 2, 1, 0],
    [0, 2, 2, 3, 7],
]


def items_by_raters(observers_by_units: list[list[float]]) -> np.ndarray:
    return np.array(observers_by_units, dtype=float).T


def same(a: float, b: float, tol: float = 1e-9) -> bool:
    """Equal within ``tol`` (relative or absolute), or both NaN."""
    if math.isnan(a) or math.isnan(b):
        return math.isnan(a) and math.isnan(b)
    return math.isclose(a, b, rel_tol=tol, abs_tol=tol)


def random_ratings(
    seed: int, n_items: int = 60, n_raters: int = 4, values=(1, 2, 4, 7), missing: float = 0.2
):
    """Items x raters floats with some agreement (70% copy a true label) and NaN holes."""
    rng = np.random.default_rng(seed)
    values = np.asarray(values, dtype=float)
    truth = rng.choice(values, size=(n_items, 1))
    noise = rng.choice(values, size=(n_items, n_raters))
    ratings = np.where(rng.random((n_items, n_raters)) < 0.7, truth, noise)
    ratings[rng.random((n_items, n_raters)) < missing] = np.nan
    return ratings


def with_none(ratings: np.ndarray) -> list[list[Any]]:
    """Lists of lists of ints with None for missing."""
    return [[None if np.isnan(v) else int(v) for v in row] for row in ratings]


# ----------------------------------------------------------------------------------------------------------
# Published examples with exact answers.
# ----------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("level", LEVELS)
def test_krippendorff_2011_example(level: str) -> None:
    ours = krippendorff_alpha(items_by_raters(KRIPP_2011), level=level)
    assert round(ours, 3) == KRIPP_2011_PUBLISHED[level]
    theirs = krippendorff.alpha(reliability_data=KRIPP_2011, level_of_measurement=level)
    assert ours == pytest.approx(theirs, abs=1e-12)


def test_krippendorff_2011_example_as_strings_with_none() -> None:
    names = {1: "very low", 2: "low", 3: "mid", 4: "high", 5: "very high"}
    data = [[None if np.isnan(v) else names[int(v)] for v in row] for row in items_by_raters(KRIPP_2011)]
    order = list(names.values())
    assert round(krippendorff_alpha(data, level="ordinal", categories=order), 3) == 0.815
    assert round(krippendorff_alpha(data, level="nominal"), 3) == 0.743


def fleiss_ratings() -> list[list[int]]:
    return [[k + 1 for k, c in enumerate(row) for _ in range(c)] for row in FLEISS_TABLE]


def test_fleiss_1971_example() -> None:
    ratings = fleiss_ratings()
    assert all(len(row) == 14 for row in ratings)
    kappa = fleiss_kappa(ratings)
    assert round(kappa, 3) == 0.210
    assert kappa == pytest.approx(sm_fleiss_kappa(np.array(FLEISS_TABLE), method="fleiss"), abs=1e-12)


def test_cohen_wikipedia_example() -> None:
    # 50 proposals: both yes 20, A yes / B no 5, A no / B yes 10, both no 15 -> p_o 0.7, p_e 0.5, kappa 0.4.
    a = ["yes"] * 25 + ["no"] * 25
    b = ["yes"] * 20 + ["no"] * 5 + ["yes"] * 10 + ["no"] * 15
    assert cohen_kappa(a, b) == pytest.approx(0.4, abs=1e-12)


@pytest.mark.parametrize("weights", [None, "linear", "quadratic"])
def test_weighted_cohen_matches_sklearn_small(weights: str | None) -> None:
    a = [1, 2, 3, 3, 2, 1, 4, 1, 2, 4, 3, 3]
    b = [1, 2, 3, 3, 2, 2, 4, 1, 2, 3, 4, 1]
    assert cohen_kappa(a, b, weights=weights) == pytest.approx(
        cohen_kappa_score(a, b, weights=weights), abs=1e-12
    )


GWET_SMALL = [["a", "a", "a"], ["a", "b", None], ["b", "b", None], ["a", None, None]]


def test_gwet_ac1_hand_computed() -> None:
    # Units with r_i >= 2: items 1-3 (n' = 3); item 4 (one rating) only enters pi_k (n = 4).
    #   p_a  = (3*2/(3*2) + (1*0 + 1*0)/(2*1) + 2*1/(2*1)) / 3 = (1 + 0 + 1) / 3 = 2/3
    #   pi_a = (3/3 + 1/2 + 0/2 + 1/1) / 4 = 5/8,  pi_b = (0 + 1/2 + 2/2 + 0) / 4 = 3/8
    #   p_e  = (5/8 * 3/8 + 3/8 * 5/8) / (K - 1 = 1) = 15/32
    #   AC1  = (2/3 - 15/32) / (1 - 15/32) = (19/96) / (17/32) = 19/51
    assert gwet_ac1(GWET_SMALL) == pytest.approx(19 / 51, abs=1e-12)
    # A row with no rating at all changes nothing.
    assert gwet_ac1([*GWET_SMALL, [None, None, None]]) == pytest.approx(19 / 51, abs=1e-12)
    # An unused third category: K = 3, p_e = (15/64 + 15/64 + 0) / 2 = 15/64,
    #   AC1 = (2/3 - 15/64) / (49/64) = 83/147.
    assert gwet_ac1(GWET_SMALL, categories=["a", "b", "c"]) == pytest.approx(83 / 147, abs=1e-12)


def test_percent_agreement_hand_computed() -> None:
    # Item 1: pairs (1,1) agree, (1,2) and (1,2) not -> 1/3; item 2: 1; item 3 has one rating -> skipped.
    assert percent_agreement([[1, 1, 2], [1, 1, 1], [2, None, None]]) == pytest.approx(2 / 3, abs=1e-12)
    assert percent_agreement(GWET_SMALL) == pytest.approx(2 / 3, abs=1e-12)


# ----------------------------------------------------------------------------------------------------------
# Equality with reference packages on random data.
# ----------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("level", LEVELS)
def test_alpha_matches_krippendorff_package(seed: int, level: str) -> None:
    ratings = random_ratings(seed)
    theirs = krippendorff.alpha(reliability_data=ratings.T, level_of_measurement=level)
    assert same(krippendorff_alpha(ratings, level=level), theirs)
    assert same(krippendorff_alpha(with_none(ratings), level=level), theirs)
    domain = [0, 1, 2, 3, 4, 5, 6, 7, 9]  # unused categories: no effect at any level (ratio with 0 included)
    theirs_domain = krippendorff.alpha(
        reliability_data=ratings.T, value_domain=domain, level_of_measurement=level
    )
    assert same(krippendorff_alpha(ratings, level=level, categories=domain), theirs_domain)
    assert same(theirs_domain, theirs)


def fixed_count_ratings(seed: int, n_items: int = 40, n_raters: int = 6, per_item: int = 3) -> np.ndarray:
    """Every item rated by exactly ``per_item`` of ``n_raters`` raters (the rest NaN)."""
    rng = np.random.default_rng(seed)
    full = random_ratings(seed, n_items, n_raters, values=(0, 1, 2, 3), missing=0.0)
    keep = np.argsort(rng.random((n_items, n_raters)), axis=1) < per_item
    return np.where(keep, full, np.nan)


@pytest.mark.parametrize("seed", range(5))
def test_fleiss_matches_statsmodels(seed: int) -> None:
    ratings = fixed_count_ratings(seed)
    compact = ratings[~np.isnan(ratings)].reshape(len(ratings), 3)
    table, _ = aggregate_raters(compact)
    theirs = sm_fleiss_kappa(table, method="fleiss")
    assert same(fleiss_kappa(ratings), theirs)
    assert same(fleiss_kappa(with_none(ratings), categories=[0, 1, 2, 3, 8]), theirs)


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("weights", [None, "linear", "quadratic"])
def test_cohen_matches_sklearn(seed: int, weights: str | None) -> None:
    rng = np.random.default_rng(seed)
    labels = np.array(["a", "b", "c", "d", "e"])
    used = labels[[0, 1, 3]]  # "c" and "e" unused: they shift positions for weighted kappa
    a = rng.choice(used, 80)
    b = np.where(rng.random(80) < 0.6, a, rng.choice(used, 80))
    a_list: list[Any] = list(a)
    b_list: list[Any] = list(b)
    for i in rng.choice(80, 12, replace=False):
        a_list[i] = None
    for i in rng.choice(80, 12, replace=False):
        b_list[i] = np.nan
    both = [i for i in range(80) if a_list[i] is not None and isinstance(b_list[i], str)]
    a_both, b_both = a[both], b[both]
    assert same(
        cohen_kappa(a_list, b_list, weights=weights), cohen_kappa_score(a_both, b_both, weights=weights)
    )
    assert same(
        cohen_kappa(a_list, b_list, weights=weights, categories=list(labels)),
        cohen_kappa_score(a_both, b_both, weights=weights, labels=list(labels)),
    )


# ----------------------------------------------------------------------------------------------------------
# Properties (hypothesis).
# ----------------------------------------------------------------------------------------------------------

VALUE = st.one_of(st.none(), st.integers(0, 3))


@st.composite
def rating_tables(draw: st.DrawFn, complete: bool = False) -> list[list[Any]]:
    n_items = draw(st.integers(1, 12))
    n_raters = draw(st.integers(2, 5))
    cell = st.integers(0, 3) if complete else VALUE
    return draw(
        st.lists(st.lists(cell, min_size=n_raters, max_size=n_raters), min_size=n_items, max_size=n_items)
    )


def fleiss_or_error(ratings: Any) -> float | str:
    try:
        return fleiss_kappa(ratings)
    except ValueError:
        return "unequal"


def all_coefficients(ratings: list[list[Any]]) -> list[float | str]:
    return [
        krippendorff_alpha(ratings),
        krippendorff_alpha(ratings, level="ordinal", categories=[0, 1, 2, 3]),
        krippendorff_alpha(ratings, level="interval"),
        fleiss_or_error(ratings),
        gwet_ac1(ratings),
        percent_agreement(ratings),
    ]


def equal_results(xs: list[float | str], ys: list[float | str]) -> bool:
    return all(
        x == y if isinstance(x, str) or isinstance(y, str) else same(x, y, 1e-12)
        for x, y in zip(xs, ys, strict=True)
    )


@settings(max_examples=50, deadline=None)
@given(data=st.data(), ratings=rating_tables())
def test_rater_order_does_not_matter(data: st.DataObject, ratings: list[list[Any]]) -> None:
    perm = data.draw(st.permutations(range(len(ratings[0]))))
    permuted = [[row[j] for j in perm] for row in ratings]
    assert equal_results(all_coefficients(ratings), all_coefficients(permuted))


@settings(max_examples=50, deadline=None)
@given(data=st.data(), ratings=rating_tables())
def test_renaming_nominal_categories_does_not_matter(data: st.DataObject, ratings: list[list[Any]]) -> None:
    names = data.draw(st.permutations(["zebra", "cat", "dog", "ant"]))
    renamed = [[None if v is None else names[v] for v in row] for row in ratings]

    def nominal(r: list[list[Any]]) -> list[float | str]:
        pair = [row[:2] for row in r]
        return [
            krippendorff_alpha(r),
            fleiss_or_error(r),
            gwet_ac1(r),
            percent_agreement(r),
            cohen_kappa([p[0] for p in pair], [p[1] for p in pair]),
        ]

    assert equal_results(nominal(ratings), nominal(renamed))


@settings(max_examples=50, deadline=None)
@given(ratings=rating_tables())
def test_values_in_range_or_nan(ratings: list[list[Any]]) -> None:
    eps = 1e-12
    for level in LEVELS:
        value = krippendorff_alpha(ratings, level=level, categories=[0, 1, 2, 3])
        assert math.isnan(value) or value <= 1 + eps
    kappas = [gwet_ac1(ratings), cohen_kappa([r[0] for r in ratings], [r[1] for r in ratings])]
    fleiss = fleiss_or_error(ratings)
    if not isinstance(fleiss, str):
        kappas.append(fleiss)
    for value in kappas:
        assert math.isnan(value) or -1 - eps <= value <= 1 + eps
    pct = percent_agreement(ratings)
    assert math.isnan(pct) or 0 <= pct <= 1


@settings(max_examples=30, deadline=None)
@given(ratings=rating_tables(complete=True))
def test_fleiss_on_complete_tables_matches_statsmodels(ratings: list[list[int]]) -> None:
    table, _ = aggregate_raters(np.array(ratings))
    with np.errstate(all="ignore"):
        theirs = float(sm_fleiss_kappa(table, method="fleiss"))
    assert same(fleiss_kappa(ratings), theirs)


# ----------------------------------------------------------------------------------------------------------
# Edge cases and argument errors.
# ----------------------------------------------------------------------------------------------------------


def test_all_same_category_is_nan_not_one() -> None:
    ratings = [["x", "x", None], ["x", "x", "x"], ["x", None, "x"]]
    for level in ("nominal", "ordinal"):
        assert math.isnan(krippendorff_alpha(ratings, level=level))
    assert math.isnan(krippendorff_alpha([[3, 3], [3, 3]], level="interval"))
    assert math.isnan(krippendorff_alpha([[3, 3], [3, 3]], level="ratio"))
    assert math.isnan(fleiss_kappa([["x", "x"], ["x", "x"]]))
    assert math.isnan(cohen_kappa(["x", "x", "x"], ["x", "x", "x"]))
    assert math.isnan(gwet_ac1(ratings))
    assert percent_agreement(ratings) == 1.0


def test_undefined_without_pairable_items() -> None:
    ratings = [[1, None], [None, 2], [None, None]]
    assert math.isnan(krippendorff_alpha(ratings))
    assert math.isnan(gwet_ac1(ratings))
    assert math.isnan(percent_agreement(ratings))
    assert math.isnan(cohen_kappa([1, None], [None, 2]))
    assert math.isnan(fleiss_kappa([[1, None], [2, None]]))  # one rating per item
    assert math.isnan(krippendorff_alpha(np.empty((0, 3))))


def test_fleiss_unequal_counts_raises() -> None:
    with pytest.raises(ValueError, match="same number of ratings"):
        fleiss_kappa([[1, 2, 2], [1, None, 2], [2, 2, 2]])
    # Items nobody rated are dropped rather than counted as unequal.
    assert same(
        fleiss_kappa([[1, 2, 2], [None, None, None], [2, 2, 2]]), fleiss_kappa([[1, 2, 2], [2, 2, 2]])
    )


def test_lists_arrays_and_strings_agree() -> None:
    ratings = random_ratings(11)
    as_lists = with_none(ratings)
    as_strings = [[None if v is None else f"label-{v}" for v in row] for row in as_lists]
    as_object = np.array(as_lists, dtype=object)
    expected = krippendorff_alpha(ratings)
    for variant in (as_lists, as_strings, as_object, ratings.tolist()):
        assert same(krippendorff_alpha(variant), expected)
        assert same(gwet_ac1(variant), gwet_ac1(ratings))
    # numpy turns NaN into "nan" in fixed-width string arrays; it still means "not rated".
    assert same(krippendorff_alpha(np.array(as_strings, dtype=str)), expected)


def test_invalid_arguments_raise() -> None:
    ok = [[1, 2], [2, 2]]
    with pytest.raises(ValueError, match="unknown level"):
        krippendorff_alpha(ok, level="cardinal")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="unknown weights"):
        cohen_kappa([1, 2], [1, 2], weights="cubic")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="not in categories"):
        krippendorff_alpha(ok, categories=[1, 3])
    with pytest.raises(ValueError, match="not in categories"):
        cohen_kappa(["a", "b"], ["a", "c"], categories=["a", "b"])
    with pytest.raises(ValueError, match="2-D"):
        krippendorff_alpha([1, 2, 3])
    with pytest.raises(ValueError, match="2-D"):
        fleiss_kappa(np.zeros((2, 2, 2)))
    with pytest.raises(ValueError):
        gwet_ac1([[1, 2], [3]])  # ragged
    with pytest.raises(ValueError, match="numeric categories"):
        krippendorff_alpha([["a", "b"], ["b", "b"]], level="interval")
    with pytest.raises(ValueError, match="same length"):
        cohen_kappa([1, 2, 3], [1, 2])
    with pytest.raises(ValueError, match="duplicates"):
        krippendorff_alpha(ok, categories=[1, 2, 2])
    with pytest.raises(ValueError, match="categories"):
        krippendorff_alpha([["a", 1], [1, 1]])  # mixed types need explicit categories
    assert not math.isnan(krippendorff_alpha([["a", 1], [1, 1], ["a", "a"]], categories=["a", 1]))


# ----------------------------------------------------------------------------------------------------------
# Bootstrap.
# ----------------------------------------------------------------------------------------------------------


def agreeing_sample(n_items: int = 500, n_raters: int = 3, seed: int = 5) -> np.ndarray:
    return random_ratings(seed, n_items, n_raters, values=(0, 1, 2, 3), missing=0.1)


def test_bootstrap_is_seeded_and_contains_estimate() -> None:
    ratings = agreeing_sample(200)
    first = bootstrap_interval(ratings, krippendorff_alpha, n_resamples=500, seed=3)
    assert first == bootstrap_interval(ratings, "krippendorff_alpha", n_resamples=500, seed=3)
    assert first != bootstrap_interval(ratings, "krippendorff_alpha", n_resamples=500, seed=4)
    low, high = first
    assert low < krippendorff_alpha(ratings) < high
    for name, point in [("gwet_ac1", gwet_ac1(ratings)), ("percent_agreement", percent_agreement(ratings))]:
        low, high = bootstrap_interval(ratings, name, n_resamples=500)
        assert low < point < high


@pytest.mark.parametrize(
    ("statistic", "columns", "options"),
    [
        (krippendorff_alpha, 3, {}),
        (krippendorff_alpha, 3, {"level": "ordinal"}),
        (fleiss_kappa, 3, {}),
        (gwet_ac1, 3, {}),
        (percent_agreement, 3, {}),
        (cohen_kappa, 2, {"weights": "quadratic"}),
    ],
)
def test_vectorised_bootstrap_matches_naive_loop(
    statistic: Any, columns: int, options: dict[str, Any]
) -> None:
    # On complete data every item enters, so the vectorised path and the generic callable draw the same items.
    ratings = random_ratings(2, 80, columns, values=(0, 1, 2, 3), missing=0.0)

    def naive(resampled: np.ndarray) -> float:
        resampled = resampled.astype(float)
        if statistic is cohen_kappa:
            return cohen_kappa(resampled[:, 0], resampled[:, 1], categories=[0, 1, 2, 3], **options)
        if statistic is percent_agreement:
            return percent_agreement(resampled)
        return statistic(resampled, categories=[0, 1, 2, 3], **options)

    fast = bootstrap_interval(ratings, statistic, n_resamples=200, seed=9, categories=[0, 1, 2, 3], **options)
    slow = bootstrap_interval(ratings, naive, n_resamples=200, seed=9)
    assert fast == pytest.approx(slow, abs=1e-9)


def test_bootstrap_degenerate_and_invalid() -> None:
    assert all(math.isnan(v) for v in bootstrap_interval([[1, 1], [1, 1], [1, 1]], "krippendorff_alpha"))
    assert all(math.isnan(v) for v in bootstrap_interval([[1, None], [None, 2]], "krippendorff_alpha"))
    with pytest.raises(ValueError, match="confidence"):
        bootstrap_interval([[1, 2]], "gwet_ac1", confidence=1.5)
    with pytest.raises(ValueError, match="n_resamples"):
        bootstrap_interval([[1, 2]], "gwet_ac1", n_resamples=0)
    with pytest.raises(ValueError, match="unknown statistic"):
        bootstrap_interval([[1, 2]], "scotts_pi")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="2 raters"):
        bootstrap_interval([[1, 2, 3]], "cohen_kappa")


# ----------------------------------------------------------------------------------------------------------
# Per-label, per-annotator, pairwise, confusion.
# ----------------------------------------------------------------------------------------------------------


def test_per_label_agreement_binarises_each_label() -> None:
    ratings = with_none(random_ratings(4, values=(1, 2, 4)))
    result = per_label_agreement(ratings, categories=[1, 2, 4, 9])
    assert list(result) == [1, 2, 4, 9]
    for label in (1, 2, 4):
        binary = [[None if v is None else int(v == label) for v in row] for row in ratings]
        assert same(result[label], krippendorff_alpha(binary), 1e-12)
    assert math.isnan(result[9])  # unused label: every binarised rating is "rest"
    gwet = per_label_agreement(ratings, statistic=gwet_ac1)
    binary = [[None if v is None else int(v == 2) for v in row] for row in ratings]
    assert same(gwet[2], gwet_ac1(binary, categories=[0, 1]), 1e-12)


def test_pairwise_matrix_matches_cohen_per_pair() -> None:
    ratings = random_ratings(6, 30, 4, missing=0.3)
    ratings[:, 3] = np.nan
    ratings[0, 3] = 1.0  # rater 3 shares at most one item with anyone
    kappa, shared = pairwise_kappa_matrix(ratings, weights="linear")
    assert kappa.shape == shared.shape == (4, 4)
    for i, j in combinations(range(3), 2):
        both = ~np.isnan(ratings[:, i]) & ~np.isnan(ratings[:, j])
        assert shared[i, j] == shared[j, i] == both.sum()
        expected = cohen_kappa(ratings[:, i], ratings[:, j], weights="linear", categories=[1, 2, 4, 7])
        assert same(kappa[i, j], expected, 1e-12) and same(kappa[j, i], expected, 1e-12)
    assert np.all(np.isnan(kappa[3])) and np.all(shared[3, :3] <= 1)
    assert np.array_equal(np.diag(shared), (~np.isnan(ratings)).sum(axis=0))


def test_confusion_matrix_matches_sklearn() -> None:
    a = ["x", "y", None, "z", "x", "x", "y"]
    b = ["x", "x", "y", "z", None, "y", "y"]
    counts, cats = confusion_matrix(a, b, categories=["x", "y", "z", "w"])
    assert cats.tolist() == ["x", "y", "z", "w"]
    keep = [i for i in range(7) if a[i] is not None and b[i] is not None]
    expected = sk_confusion_matrix([a[i] for i in keep], [b[i] for i in keep], labels=["x", "y", "z", "w"])
    assert np.array_equal(counts, expected)


def test_annotator_agreement_against_peers_and_reference() -> None:
    ratings = random_ratings(8, 50, 3, values=(0, 1, 2), missing=0.15)
    reference = ratings[:, 0].copy()
    reference[::5] = np.nan
    rows = annotator_agreement(ratings, reference, annotators=["ann", "bob", "cy"])
    assert [r.annotator for r in rows] == ["ann", "bob", "cy"]
    alpha_all = krippendorff_alpha(ratings)
    for j, row in enumerate(rows):
        others = [k for k in range(3) if k != j]
        peers = [cohen_kappa(ratings[:, j], ratings[:, k], categories=[0, 1, 2]) for k in others]
        assert same(row.mean_pairwise_kappa, float(np.mean(peers)), 1e-12)
        assert same(row.alpha_without, krippendorff_alpha(ratings[:, others], categories=[0, 1, 2]), 1e-12)
        assert same(row.alpha_gain, alpha_all - row.alpha_without, 1e-12)
        assert row.n_rated == int((~np.isnan(ratings[:, j])).sum())
        both = ~np.isnan(ratings[:, j]) & ~np.isnan(reference)
        assert row.n_reference == int(both.sum())
        assert same(
            row.kappa_vs_reference, cohen_kappa(ratings[:, j], reference, categories=[0, 1, 2]), 1e-12
        )
        assert same(row.accuracy_vs_reference, float(np.mean(ratings[both, j] == reference[both])), 1e-12)
    assert rows[0].accuracy_vs_reference == 1.0
    no_reference = annotator_agreement(ratings)
    assert all(math.isnan(r.kappa_vs_reference) and r.n_reference == 0 for r in no_reference)
