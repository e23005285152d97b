"""Statistics for scores people can trust: seeded bootstrap intervals over test items, paired
comparisons of two systems on the same items, and verdicts whose words follow the test.

Everything here is pure (numpy/scipy, no database, no Streamlit) and deterministic for a given seed.

- `bootstrap_mean` / `classification_intervals`: a 95% percentile interval for a metric, by
  resampling the test items with replacement (`n_resamples` times, seeded).
- `mcnemar_exact`: McNemar's exact test for two classifiers' accuracy on the same items (a binomial
  test on the discordant pairs).
- `paired_bootstrap`: the difference B - A of a metric of two systems on the same items, with the
  interval of the difference and a two-sided bootstrap p-value; the same resampled items for both.
- `compare_classifiers`: accuracy (McNemar), macro-F1 and per-label F1 (paired bootstrap) of B vs A.
- `verdict`: "better", "worse" or "no detectable difference (p = 0.41)". A difference counts only
  when the test rejects at `alpha` AND its interval excludes 0: a tie is never a win.

The percentile interval of a resampled statistic can, in degenerate cases (tiny n), miss the point
estimate by a hair; intervals are widened to contain it, so a reported value always lies in its
interval.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

N_RESAMPLES = 1000
CONFIDENCE = 0.95
ALPHA = 0.05
SEED = 0


@dataclass(frozen=True)
class Interval:
    """A point estimate with its bootstrap interval (low <= value <= high); n = items it is over."""

    value: float
    low: float
    high: float
    n: int
    confidence: float = CONFIDENCE

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Interval:
        return cls(float(data["value"]), float(data["low"]), float(data["high"]), int(data["n"]),
                   float(data.get("confidence", CONFIDENCE)))

    def text(self, digits: int = 3) -> str:
        return f"{self.value:.{digits}f} [{self.low:.{digits}f}, {self.high:.{digits}f}]"


@dataclass(frozen=True)
class Difference:
    """B - A of one metric on the same items: value, interval, the test's p-value and its name."""

    metric: str
    a: float
    b: float
    value: float
    low: float
    high: float
    p_value: float
    test: str  # "McNemar exact" | "paired bootstrap"
    n: int

    @property
    def verdict(self) -> str:
        return verdict(self)

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "verdict": self.verdict}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Difference:
        return cls(str(data["metric"]), float(data["a"]), float(data["b"]), float(data["value"]),
                   float(data["low"]), float(data["high"]), float(data["p_value"]), str(data["test"]),
                   int(data["n"]))


def resample_weights(n: int, n_resamples: int = N_RESAMPLES, seed: int = SEED) -> np.ndarray:
    """(n_resamples, n) counts: how often each item is drawn in each bootstrap resample (each row
    sums to n). Using counts instead of index lists lets metrics be weighted sums."""
    rng = np.random.default_rng(seed)
    if n == 0:
        return np.zeros((n_resamples, 0), dtype=np.int64)
    return rng.multinomial(n, np.full(n, 1.0 / n), size=n_resamples)


def _percentiles(samples: np.ndarray, value: float, confidence: float) -> tuple[float, float]:
    tail = (1 - confidence) / 2 * 100
    low, high = np.nanpercentile(samples, [tail, 100 - tail]) if np.isfinite(samples).any() else (value, value)
    return float(min(low, value)), float(max(high, value))


def bootstrap_mean(values: Sequence[float], *, n_resamples: int = N_RESAMPLES, seed: int = SEED,
                   confidence: float = CONFIDENCE) -> Interval:
    """Mean of per-item scores (0/1 correctness, chrF of one response, ...) with its interval.
    No items: nan with a nan interval."""
    x = np.asarray(values, dtype=float)
    if x.size == 0:
        return Interval(float("nan"), float("nan"), float("nan"), 0, confidence)
    value = float(x.mean())
    samples = resample_weights(x.size, n_resamples, seed) @ x / x.size
    low, high = _percentiles(samples, value, confidence)
    return Interval(value, low, high, int(x.size), confidence)


# ---------------------------------------------------------------------------------------------
# Classification metrics over weighted items (one row of weights per resample).


def _f1_tables(y_true: np.ndarray, y_pred: np.ndarray, weights: np.ndarray, n_labels: int
               ) -> tuple[np.ndarray, np.ndarray]:
    """Per-label F1 (resamples x labels) and which labels are present in each resample's truth."""
    true_hot = np.eye(n_labels)[y_true]  # items x labels
    pred_hot = np.eye(n_labels)[y_pred]
    correct = (y_true == y_pred)[:, None]
    tp = weights @ (true_hot * correct)
    true_count = weights @ true_hot
    pred_count = weights @ pred_hot
    denominator = true_count + pred_count
    f1 = np.divide(2 * tp, denominator, out=np.zeros_like(tp, dtype=float), where=denominator > 0)
    return f1, true_count > 0


def _macro(f1: np.ndarray, present: np.ndarray) -> np.ndarray:
    """Macro-F1 over the labels present in the truth (as sklearn with labels=present)."""
    counts = present.sum(axis=1)
    macro: np.ndarray = np.divide((f1 * present).sum(axis=1), counts, out=np.zeros(len(counts)), where=counts > 0)
    return macro


def _classification_samples(y_true: np.ndarray, y_pred: np.ndarray, weights: np.ndarray, n_labels: int
                            ) -> dict[str, np.ndarray]:
    n = max(len(y_true), 1)
    f1, present = _f1_tables(y_true, y_pred, weights, n_labels)
    return {"accuracy": weights @ (y_true == y_pred).astype(float) / n, "macro_f1": _macro(f1, present),
            "per_label_f1": f1}


def classification_intervals(y_true: Sequence[int], y_pred: Sequence[int], names: Sequence[str], *,
                             n_resamples: int = N_RESAMPLES, seed: int = SEED,
                             confidence: float = CONFIDENCE) -> dict[str, Any]:
    """{"accuracy": Interval, "macro_f1": Interval, "per_label_f1": {label: Interval}} of one
    system's predictions (label indices into `names`). Labels absent from y_true get no per-label
    entry (their F1 is undefined, not 0). Empty input: {}."""
    t, p = np.asarray(y_true, dtype=int), np.asarray(y_pred, dtype=int)
    if t.size == 0:
        return {}
    n_labels = len(names)
    point = _classification_samples(t, p, np.ones((1, t.size)), n_labels)
    samples = _classification_samples(t, p, resample_weights(t.size, n_resamples, seed), n_labels)
    out: dict[str, Any] = {}
    for key in ("accuracy", "macro_f1"):
        value = float(point[key][0])
        out[key] = Interval(value, *_percentiles(samples[key], value, confidence), int(t.size), confidence)
    out["per_label_f1"] = {}
    for index in sorted(set(t.tolist())):
        value = float(point["per_label_f1"][0, index])
        out["per_label_f1"][names[index]] = Interval(
            value, *_percentiles(samples["per_label_f1"][:, index], value, confidence), int((t == index).sum()),
            confidence)
    return out


# ---------------------------------------------------------------------------------------------
# Paired comparisons.


def mcnemar_exact(correct_a: Sequence[bool], correct_b: Sequence[bool]) -> tuple[int, int, float]:
    """McNemar's exact test: (b, c, p) with b = items only A gets right, c = items only B gets
    right, p = two-sided binomial test of b against Binomial(b + c, 1/2). No discordant items: p = 1."""
    from scipy.stats import binomtest

    a, b_ = np.asarray(correct_a, dtype=bool), np.asarray(correct_b, dtype=bool)
    if a.shape != b_.shape:
        raise ValueError(f"paired predictions differ in length: {a.size} vs {b_.size}")
    only_a, only_b = int((a & ~b_).sum()), int((~a & b_).sum())
    if only_a + only_b == 0:
        return only_a, only_b, 1.0
    return only_a, only_b, float(min(1.0, binomtest(only_a, only_a + only_b, 0.5).pvalue))


def _p_from_samples(samples: np.ndarray) -> float:
    """Two-sided bootstrap p-value of 'difference = 0': twice the smaller share of resampled
    differences on either side of 0 (ties count on both sides, so all-zero gives 1)."""
    if samples.size == 0:
        return 1.0
    below, above = float((samples <= 0).mean()), float((samples >= 0).mean())
    return float(min(1.0, 2 * min(below, above)))


def paired_bootstrap(metric: Callable[[np.ndarray], np.ndarray], n: int, *, name: str = "metric",
                     n_resamples: int = N_RESAMPLES, seed: int = SEED,
                     confidence: float = CONFIDENCE) -> Difference:
    """`metric(weights) -> (rows, 2)` gives [A, B] of a metric for each row of item weights; the
    difference B - A on the full items, its interval and p-value from the same resamples for both."""
    point = metric(np.ones((1, n)))[0]
    a, b = float(point[0]), float(point[1])
    value = b - a
    samples = metric(resample_weights(n, n_resamples, seed)) if n else np.zeros((0, 2))
    diffs = samples[:, 1] - samples[:, 0]
    low, high = _percentiles(diffs, value, confidence) if diffs.size else (value, value)
    return Difference(name, a, b, value, low, high, _p_from_samples(diffs), "paired bootstrap", n)


def paired_mean_difference(scores_a: Sequence[float], scores_b: Sequence[float], *, name: str = "score",
                           n_resamples: int = N_RESAMPLES, seed: int = SEED) -> Difference:
    """B - A of the mean of per-item scores (chrF, exact match, a win indicator...) on the same items."""
    a, b = np.asarray(scores_a, dtype=float), np.asarray(scores_b, dtype=float)
    if a.shape != b.shape:
        raise ValueError(f"paired scores differ in length: {a.size} vs {b.size}")
    both = np.stack([a, b], axis=1)
    return paired_bootstrap(lambda w: w @ both / max(a.size, 1), a.size, name=name, n_resamples=n_resamples,
                            seed=seed)


def compare_classifiers(y_true: Sequence[int], pred_a: Sequence[int], pred_b: Sequence[int],
                        names: Sequence[str], *, n_resamples: int = N_RESAMPLES, seed: int = SEED
                        ) -> dict[str, Any]:
    """B vs A on the same items: {"accuracy": Difference (McNemar's exact p), "macro_f1": Difference
    (paired bootstrap), "per_label_f1": {label: Difference}} for labels present in y_true."""
    t, a, b = (np.asarray(v, dtype=int) for v in (y_true, pred_a, pred_b))
    if not (t.shape == a.shape == b.shape):
        raise ValueError(f"paired predictions differ in length: {t.size}, {a.size}, {b.size}")
    n_labels = len(names)
    kwargs = {"n_resamples": n_resamples, "seed": seed}

    def samples(weights: np.ndarray) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
        return (_classification_samples(t, a, weights, n_labels), _classification_samples(t, b, weights, n_labels))

    def pair(key: str, column: int | None = None) -> Callable[[np.ndarray], np.ndarray]:
        def metric(weights: np.ndarray) -> np.ndarray:
            sa, sb = samples(weights)
            va, vb = (s[key] if column is None else s[key][:, column] for s in (sa, sb))
            return np.stack([va, vb], axis=1)
        return metric

    accuracy = paired_bootstrap(pair("accuracy"), t.size, name="accuracy", **kwargs)
    _, _, p = mcnemar_exact(t == a, t == b)
    out: dict[str, Any] = {
        "accuracy": Difference("accuracy", accuracy.a, accuracy.b, accuracy.value, accuracy.low, accuracy.high,
                               p, "McNemar exact", accuracy.n),
        "macro_f1": paired_bootstrap(pair("macro_f1"), t.size, name="macro_f1", **kwargs),
        "per_label_f1": {},
    }
    for index in sorted(set(t.tolist())):
        out["per_label_f1"][names[index]] = paired_bootstrap(pair("per_label_f1", index), t.size,
                                                             name=f"F1 {names[index]}", **kwargs)
    return out


# ---------------------------------------------------------------------------------------------
# Words.


def format_p(p: float) -> str:
    return "p < 0.001" if p < 0.001 else f"p = {p:.2g}" if p < 0.1 else f"p = {p:.2f}"


def detectable(diff: Difference, alpha: float = ALPHA) -> bool:
    """The test rejects 'no difference' at `alpha` and the interval of the difference excludes 0."""
    return diff.p_value < alpha and (diff.low > 0 or diff.high < 0)


def verdict(diff: Difference, alpha: float = ALPHA, higher_is_better: bool = True) -> str:
    """"better" / "worse" (B vs A, with the p-value) or "no detectable difference (p = 0.41)"."""
    if not detectable(diff, alpha):
        note = "" if diff.p_value >= alpha else "; the interval of the difference includes 0"
        return f"no detectable difference ({format_p(diff.p_value)}{note})"
    up = diff.value > 0
    return f"{'better' if up == higher_is_better else 'worse'} ({format_p(diff.p_value)})"


def beats(diff: Difference, alpha: float = ALPHA, higher_is_better: bool = True) -> bool:
    """B beats A: a detectable difference in B's favour. A tie (any overlap of 0) is not a win."""
    return detectable(diff, alpha) and ((diff.value > 0) == higher_is_better)


def objective_line(metric: str, value: Interval, target: float | None, higher_is_better: bool = True) -> dict[str, Any]:
    """The project's objective for one run, read at a glance: metric, value, interval, target and
    whether it is met. `met`: the point estimate reaches the target; `interval_met`: the whole
    interval does (the line says which). No target: both None."""
    met = None if target is None else (value.value >= target if higher_is_better else value.value <= target)
    certain = None if target is None else (value.low >= target if higher_is_better else value.high <= target)
    target_text = "no target set" if target is None else f"target {target:g}"
    status = "" if met is None else (" · MET" if met else " · NOT met") + \
        (" (the whole interval)" if met and certain else " (the interval reaches below the target)" if met else "")
    return {"metric": metric, "value": value.value, "low": value.low, "high": value.high, "n": value.n,
            "target": target, "met": met, "interval_met": certain,
            "text": f"{metric} {value.text()} on {value.n} test items · {target_text}{status}"}


def to_plain(value: Any) -> Any:
    """Intervals and differences (nested in dicts/lists) as JSON-friendly dicts, for run metrics."""
    if isinstance(value, (Interval, Difference)):
        return value.to_dict()
    if isinstance(value, dict):
        return {k: to_plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_plain(v) for v in value]
    return value


def ratio_difference(num_a: Sequence[float], den_a: Sequence[float], num_b: Sequence[float],
                     den_b: Sequence[float], *, name: str, n_resamples: int = N_RESAMPLES,
                     seed: int = SEED) -> Difference:
    """B - A of a ratio of sums over the same items (e.g. token-weighted mean loss: per-item loss
    sums over per-item token counts), paired bootstrap."""
    columns = np.stack([np.asarray(v, dtype=float) for v in (num_a, den_a, num_b, den_b)], axis=1)

    def metric(weights: np.ndarray) -> np.ndarray:
        sums = weights @ columns
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.stack([sums[:, 0] / sums[:, 1], sums[:, 2] / sums[:, 3]], axis=1)

    return paired_bootstrap(metric, len(columns), name=name, n_resamples=n_resamples, seed=seed)


def ratio_interval(num: Sequence[float], den: Sequence[float], *, n_resamples: int = N_RESAMPLES,
                   seed: int = SEED, confidence: float = CONFIDENCE) -> Interval:
    """sum(num) / sum(den) over items with its bootstrap interval (token-weighted mean loss)."""
    a, b = np.asarray(num, dtype=float), np.asarray(den, dtype=float)
    if a.size == 0 or b.sum() == 0:
        return Interval(float("nan"), float("nan"), float("nan"), int(a.size), confidence)
    value = float(a.sum() / b.sum())
    weights = resample_weights(a.size, n_resamples, seed)
    with np.errstate(divide="ignore", invalid="ignore"):
        samples = (weights @ a) / (weights @ b)
    return Interval(value, *_percentiles(samples, value, confidence), int(a.size), confidence)
