"""bench/efficacy.py's recovered share: (curated - noisy) / (clean - noisy) of test accuracy, exact on
hand-made correctness vectors, with its interval, and undefined when the noise cost nothing."""

from __future__ import annotations

import importlib.util
import math
from pathlib import Path

spec = importlib.util.spec_from_file_location("efficacy", Path(__file__).resolve().parents[2] / "bench" / "efficacy.py")
assert spec and spec.loader
efficacy = importlib.util.module_from_spec(spec)
spec.loader.exec_module(efficacy)


def test_recovered_share_is_exact_and_inside_its_interval() -> None:
    n = 200
    clean = [[True] * n]  # accuracy 1.0
    noisy = [[i % 2 == 0 for i in range(n)]]  # 0.5
    curated = [[i % 4 != 3 for i in range(n)]]  # 0.75: half of the cost recovered
    value, low, high = efficacy.recovered_share({"clean": clean, "noisy": noisy, "curated": curated})
    assert value == 0.5 and low <= 0.5 <= high and high - low < 0.5


def test_recovered_share_averages_seeds_per_item() -> None:
    n = 100
    share, _, _ = efficacy.recovered_share({
        "clean": [[True] * n, [True] * n],
        "noisy": [[False] * n, [False] * n],
        "curated": [[True] * n, [False] * n]})  # mean over the two seeds: 0.5
    assert share == 0.5


def test_recovered_share_is_undefined_when_the_noise_cost_nothing() -> None:
    same = [[i % 2 == 0 for i in range(50)]]
    value, low, high = efficacy.recovered_share({"clean": same, "noisy": same, "curated": same})
    assert math.isnan(value) and math.isnan(low) and math.isnan(high)


def test_stratified_keeps_every_label() -> None:
    rows = [(f"t{i}", "a" if i < 90 else "b") for i in range(100)]
    picked = efficacy.stratified(rows, 20)
    labels = [label for _, label in picked]
    assert (labels.count("a"), labels.count("b")) == (18, 2)
    assert efficacy.stratified(rows, 0) == rows
