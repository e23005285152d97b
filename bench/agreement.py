"""Benchmark: ``curation.agreement.krippendorff_alpha`` against the ``krippendorff`` package.

Generates 100,000 items x 5 raters with 5 categories and 10% missing ratings (seeded), then times both
implementations on the same data in the same run (best of 3 each) at the nominal and ordinal levels.

Targets: ratio (krippendorff time / our time) >= 1.0, i.e. ours is no slower, and |difference| <= 1e-9.
Prints one line per level and a final summary line; exits 1 if a target is missed.

Run: ``python bench/agreement.py`` from the repository root.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import krippendorff

from curation.agreement.coefficients import krippendorff_alpha
from curation.agreement.statistics import bootstrap_interval

N_ITEMS, N_RATERS, N_CATEGORIES, MISSING, SEED, REPEATS = 100_000, 5, 5, 0.10, 0, 3
RATIO_TARGET, DIFF_TARGET = 1.0, 1e-9
BOOTSTRAP_BUDGET_S = 0.5  # per statistic: what the old timing assertion in tests/curation/test_agreement.py allowed


def best_of(fn: Callable[[], float], repeats: int = REPEATS) -> tuple[float, float]:
    """Best wall time over ``repeats`` calls, and the value returned."""
    best, value = float("inf"), float("nan")
    for _ in range(repeats):
        start = time.perf_counter()
        value = fn()
        best = min(best, time.perf_counter() - start)
    return best, float(value)


def make_data() -> np.ndarray:
    """Items x raters float array with categories 1..K and NaN for missing ratings."""
    rng = np.random.default_rng(SEED)
    truth = rng.integers(1, N_CATEGORIES + 1, size=(N_ITEMS, 1))
    noise = rng.integers(1, N_CATEGORIES + 1, size=(N_ITEMS, N_RATERS))
    ratings = np.where(rng.random((N_ITEMS, N_RATERS)) < 0.7, truth, noise).astype(np.float64)
    ratings[rng.random((N_ITEMS, N_RATERS)) < MISSING] = np.nan
    return ratings


def main() -> int:
    ratings = make_data()
    reliability_data = ratings.T.copy()  # the package takes raters x items
    ours_total = theirs_total = 0.0
    worst_diff = 0.0
    for level in ("nominal", "ordinal"):
        ours_t, ours = best_of(partial(krippendorff_alpha, ratings, level=level))
        theirs_t, theirs = best_of(
            partial(krippendorff.alpha, reliability_data=reliability_data, level_of_measurement=level)
        )
        diff = abs(ours - theirs)
        ours_total += ours_t
        theirs_total += theirs_t
        worst_diff = max(worst_diff, diff)
        print(
            f"{level:8s} alpha ours {ours:.12f} in {ours_t:.3f} s, krippendorff {theirs:.12f} "
            f"in {theirs_t:.3f} s, ratio {theirs_t / ours_t:.2f}x, |diff| {diff:.1e}"
        )
    ratio = theirs_total / ours_total
    # The bootstrap intervals the Agreement page shows: 1,000 resamples of 500 items x 3 raters per
    # statistic, against a budget (it used to be a timing assertion in the tests).
    bootstrap_ok = True
    sample = np.random.default_rng(0).integers(0, 4, size=(500, 3)).astype(float)
    bootstrap_interval(sample, "krippendorff_alpha", n_resamples=50)  # warm-up
    for name in ("krippendorff_alpha", "gwet_ac1", "percent_agreement"):
        seconds, _ = best_of(lambda name=name: bootstrap_interval(sample, name, n_resamples=1000)[0])
        met = seconds < BOOTSTRAP_BUDGET_S
        print(f"bootstrap interval of {name}, 1000 resamples of 500 x 3: {seconds:.3f} s "
              f"(budget {BOOTSTRAP_BUDGET_S} s) {'MET' if met else 'MISSED'}")
        bootstrap_ok = bootstrap_ok and met
    ok = ratio >= RATIO_TARGET and worst_diff <= DIFF_TARGET and bootstrap_ok
    print(
        f"agreement bench: ours {ours_total:.3f} s, krippendorff {theirs_total:.3f} s, ratio {ratio:.2f}x "
        f"(target >= {RATIO_TARGET}), |diff| {worst_diff:.1e} (target <= {DIFF_TARGET:.0e})"
        + ("" if ok else "  TARGET MISSED")
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
