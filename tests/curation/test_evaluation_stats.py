"""Exact answers for the evaluation statistics on hand-made inputs."""

import math

import numpy as np
import pytest

from curation.evaluation import stats as es


def test_mcnemar_exact_on_a_known_table():
    # 2x2 table: both right 5, only A right 1, only B right 9, both wrong 3.
    a = [1] * 5 + [1] * 1 + [0] * 9 + [0] * 3
    b = [1] * 5 + [0] * 1 + [1] * 9 + [0] * 3
    only_a, only_b, p = es.mcnemar_exact(np.array(a, bool), np.array(b, bool))
    assert (only_a, only_b) == (1, 9)
    # two-sided exact binomial: 2 * (C(10,0) + C(10,1)) / 2^10 = 22 / 1024
    assert p == pytest.approx(22 / 1024, abs=1e-12)


def test_mcnemar_without_discordant_pairs_is_one():
    assert es.mcnemar_exact([True, False], [True, False]) == (0, 0, 1.0)


def test_mcnemar_rejects_unpaired_input():
    with pytest.raises(ValueError, match="differ in length"):
        es.mcnemar_exact([True], [True, False])


def test_identical_predictions_are_no_detectable_difference():
    y = [0, 1, 2, 0, 1, 2, 0, 1]
    pred = [0, 1, 1, 0, 2, 2, 0, 0]
    result = es.compare_classifiers(y, pred, pred, ["a", "b", "c"])
    for diff in [result["accuracy"], result["macro_f1"], *result["per_label_f1"].values()]:
        assert diff.value == 0.0 and diff.low == 0.0 and diff.high == 0.0
        assert diff.p_value == 1.0
        assert diff.verdict == "no detectable difference (p = 1.00)"
        assert not es.beats(diff)
    assert result["accuracy"].test == "McNemar exact"


def test_paired_mean_difference_identical_scores():
    diff = es.paired_mean_difference([0.2, 0.5, 0.9], [0.2, 0.5, 0.9])
    assert (diff.value, diff.low, diff.high, diff.p_value) == (0.0, 0.0, 0.0, 1.0)
    assert diff.verdict.startswith("no detectable difference")


def test_clear_improvement_is_better_and_clear_loss_is_worse():
    n = 200
    y = np.zeros(n, dtype=int)
    a = np.ones(n, dtype=int)  # always wrong
    b = y.copy()  # always right
    better = es.compare_classifiers(y, a, b, ["x", "y"])["accuracy"]
    assert better.value == 1.0 and better.low > 0 and better.p_value < 1e-10
    assert better.verdict.startswith("better (p < 0.001")
    assert es.beats(better)
    worse = es.compare_classifiers(y, b, a, ["x", "y"])["accuracy"]
    assert worse.verdict.startswith("worse") and not es.beats(worse)


def test_a_tie_is_never_a_win():
    # same accuracy, different items right: the difference is 0 and not a win.
    y = [0, 0, 1, 1]
    a = [0, 1, 1, 0]
    b = [1, 0, 0, 1]
    diff = es.compare_classifiers(y, a, b, ["x", "y"])["accuracy"]
    assert diff.value == 0.0 and diff.low <= 0 <= diff.high
    assert not es.beats(diff) and diff.verdict.startswith("no detectable difference")


def test_verdict_text_uses_the_p_value():
    diff = es.Difference("accuracy", 0.7, 0.72, 0.02, -0.03, 0.07, 0.41, "McNemar exact", 100)
    assert es.verdict(diff) == "no detectable difference (p = 0.41)"
    # significant p but an interval touching 0 (the two can disagree at the margin): not a win
    edge = es.Difference("accuracy", 0.7, 0.75, 0.05, 0.0, 0.1, 0.04, "McNemar exact", 100)
    assert es.verdict(edge).startswith("no detectable difference (p = 0.04;")
    assert not es.beats(edge)


@pytest.mark.parametrize("seed", [0, 1, 7])
def test_intervals_contain_the_point_estimate(seed):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 4, size=37)
    pred = np.where(rng.random(37) < 0.6, y, rng.integers(0, 4, size=37))
    out = es.classification_intervals(y, pred, ["a", "b", "c", "d"], seed=seed)
    for interval in [out["accuracy"], out["macro_f1"], *out["per_label_f1"].values()]:
        assert interval.low <= interval.value <= interval.high
    assert out["accuracy"].value == pytest.approx(float(np.mean(y == pred)))
    assert out["accuracy"].n == 37


def test_point_estimates_match_sklearn():
    from sklearn.metrics import f1_score

    y = [0, 0, 1, 1, 2, 2, 2]
    pred = [0, 1, 1, 1, 2, 0, 2]
    out = es.classification_intervals(y, pred, ["a", "b", "c", "unused"])
    assert out["macro_f1"].value == pytest.approx(f1_score(y, pred, labels=[0, 1, 2], average="macro"))
    assert set(out["per_label_f1"]) == {"a", "b", "c"}  # a label absent from the truth has no F1
    assert out["per_label_f1"]["b"].value == pytest.approx(0.8)


def test_bootstrap_is_seeded_and_sized():
    values = [1, 0, 1, 1, 0, 1, 0, 1, 1, 1]
    assert es.bootstrap_mean(values, seed=3) == es.bootstrap_mean(values, seed=3)
    interval = es.bootstrap_mean(values)
    assert interval.value == 0.7 and 0.3 <= interval.low < 0.7 < interval.high <= 1.0
    assert math.isnan(es.bootstrap_mean([]).value)
    assert es.classification_intervals([], [], ["a"]) == {}


def test_objective_line():
    line = es.objective_line("accuracy", es.Interval(0.9, 0.85, 0.94, 100), 0.8)
    assert line["met"] and line["interval_met"]
    assert line["text"] == "accuracy 0.900 [0.850, 0.940] on 100 test items · target 0.8 · MET (the whole interval)"
    short = es.objective_line("accuracy", es.Interval(0.82, 0.75, 0.88, 100), 0.8)
    assert short["met"] and not short["interval_met"] and "reaches below" in short["text"]
    missed = es.objective_line("accuracy", es.Interval(0.7, 0.6, 0.8, 100), 0.8)
    assert missed["met"] is False and missed["text"].endswith("NOT met")
    assert es.objective_line("accuracy", es.Interval(0.7, 0.6, 0.8, 100), None)["met"] is None


def test_roundtrip_to_dict():
    diff = es.Difference("accuracy", 0.5, 0.6, 0.1, 0.01, 0.2, 0.03, "McNemar exact", 50)
    assert es.Difference.from_dict(diff.to_dict()) == diff
    interval = es.Interval(0.5, 0.4, 0.6, 10)
    assert es.Interval.from_dict(interval.to_dict()) == interval
