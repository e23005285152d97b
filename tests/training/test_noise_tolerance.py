"""Issue 13 item 7: the noise-tolerance settings (label smoothing, the small-loss filter) do what they
say, on hand-made vectors with planted flips and in a real (tiny-model) training run."""

from __future__ import annotations

import numpy as np
from sqlalchemy.engine import Engine

from curation.models import RunStatus, User
from training import jobs, run
from training.config import TrainConfig, preset
from training.evaluate import small_loss_suspects


def _clusters() -> tuple[np.ndarray, np.ndarray]:
    """3 tight, well-separated clusters of 12 unit vectors each in 8-d; label = cluster."""
    rng = np.random.default_rng(0)
    centres = np.eye(8)[:3] * 4
    x = np.concatenate([c + 0.1 * rng.normal(size=(12, 8)) for c in centres])
    return x / np.linalg.norm(x, axis=1, keepdims=True), np.repeat([0, 1, 2], 12)


def test_small_loss_suspects_are_the_planted_flips() -> None:
    x, y = _clusters()
    noisy = y.copy()
    noisy[[3, 20]] = [2, 0]  # two flips
    assert small_loss_suspects(x, noisy, 2).tolist() == [3, 20]
    assert small_loss_suspects(x, noisy, 0).tolist() == []
    single = noisy.copy()
    single[5] = 7  # a label with one row cannot be judged out of fold: never a suspect, the rest still are
    assert small_loss_suspects(x, single, 2).tolist() == [3, 20]
    assert 5 not in small_loss_suspects(x, single, 35).tolist()
    assert small_loss_suspects(x, np.zeros(36, dtype=np.int64), 2).tolist() == []  # one label
    one_each = np.zeros(36, dtype=np.int64)
    one_each[[0, 1]] = [1, 2]  # two singletons beside one label: fewer than 2 labels can be judged
    assert small_loss_suspects(x, one_each, 2).tolist() == []


def test_the_defaults_stay_off_until_the_bench_shows_they_help() -> None:
    for name in ("quick", "balanced", "thorough"):
        config = preset(name, "classification")
        assert (config.label_smoothing, config.small_loss_filter) == (0.0, 0.0)
    assert TrainConfig.from_dict({"label_smoothing": 0.1, "small_loss_filter": 0.2}).label_smoothing == 0.1


def _first_loss(engine: Engine, lead: User, version_id: int, base: str, **overrides: object) -> tuple[float, dict]:
    queued = jobs.start_run(engine, lead, version_id, "quick", base=base, launch=False, overrides={
        "max_steps": 2, "batch_size": 8, "max_length": 32, "early_stopping": False, "seed": 3, **overrides})
    assert run.work(engine, queued.id) == 0
    done = jobs.get_run(engine, queued.id)
    assert done.status == RunStatus.succeeded, done.error
    return next(float(p["loss"]) for p in done.history if "loss" in p), done.metrics


def test_label_smoothing_changes_the_loss_and_the_filter_leaves_rows_out(
        engine: Engine, lead: User, classification_version: int, tiny_models: dict[str, str]) -> None:
    plain, metrics = _first_loss(engine, lead, classification_version, tiny_models["bert"])
    assert metrics["small_loss_dropped"] == 0 and metrics["train_examples"] == 40
    smoothed, _ = _first_loss(engine, lead, classification_version, tiny_models["bert"], label_smoothing=0.2)
    assert smoothed != plain  # the same seed, data and start: only the target differs
    _, filtered = _first_loss(engine, lead, classification_version, tiny_models["bert"], small_loss_filter=0.25)
    assert filtered["small_loss_dropped"] == 10 and filtered["train_examples"] == 30
