"""Generation presets budget by optimiser steps with a floor; the preflight warns when a run is too short to learn."""

from __future__ import annotations

from training.config import PRESETS, TrainConfig, planned_steps, preset
from training.preflight import Preflight, short_run_warnings


def test_steps_follow_the_epochs_with_a_floor_for_small_sets() -> None:
    config = TrainConfig(batch_size=16, epochs=1.0, min_steps=80)
    assert planned_steps(config, 100) == 80  # 7 steps an epoch, raised to the floor
    assert planned_steps(config, 16_000) == 1000  # a large set: the epochs decide
    assert planned_steps(TrainConfig(batch_size=16, epochs=2.0), 100) == 14  # no floor
    assert planned_steps(TrainConfig(batch_size=16, min_steps=80, max_steps=5), 100) == 5  # max steps wins
    assert planned_steps(config, 100, world=4) == 80
    for name in PRESETS:
        quick_enough = preset(name, "generation")
        assert planned_steps(quick_enough, 100) >= 60
        assert planned_steps(quick_enough, 100) * quick_enough.learning_rate >= 0.05


def _report(steps: int, examples: int = 100, supervised: float | None = 20_000.0) -> Preflight:
    return Preflight(task_type="generation", base_model="b", train_examples=examples, eval_examples=10,
                     train_tokens=5_000, eval_tokens=500, max_length=256, truncation_share=0.0, mean_tokens=50.0,
                     steps=steps, supervised_tokens=supervised)


def test_a_run_too_short_to_learn_is_warned_about() -> None:
    # issue 17: the old quick preset, 10 steps at 2e-4 on 100 examples of ~30 response tokens
    old_quick = TrainConfig(learning_rate=2e-4, batch_size=8, epochs=1.0)
    warnings = short_run_warnings(_report(10, supervised=10 * 8 * 30.0), old_quick)
    assert len(warnings) == 1
    assert warnings[0].startswith("Too short to learn: only 10 optimiser steps (fewer than 30)")
    assert "learning rate x steps = 0.0002 x 10 = 0.002 (below 0.05)" in warnings[0]
    assert "about 2,400 response tokens carry loss" in warnings[0]


def test_the_new_presets_are_not_too_short() -> None:
    config = preset("quick", "generation")
    steps = planned_steps(config, 100)
    assert short_run_warnings(_report(steps, supervised=steps * config.batch_size * 12.0), config) == []
    # only the learning rate is too low
    warnings = short_run_warnings(_report(100), TrainConfig(learning_rate=1e-4))
    assert len(warnings) == 1 and "0.0001 x 100 = 0.01" in warnings[0] and "optimiser steps" not in warnings[0]
    assert short_run_warnings(_report(100, examples=0), TrainConfig(learning_rate=1e-6)) == []
