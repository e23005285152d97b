"""Presets, settings validation, QLoRA availability, loss masking and the preflight report."""

from __future__ import annotations

import pytest
from sqlalchemy.engine import Engine

from training import data
from training.config import PRESETS, TrainConfig, field_help, preset, qlora_available
from training.preflight import run_preflight


def test_presets_and_validation() -> None:
    for task in ("classification", "generation"):
        configs = [preset(name, task) for name in PRESETS]
        assert [c.rank for c in configs] == sorted(c.rank for c in configs)
        for config in configs:
            config.validate()
    assert preset("balanced", "classification").target_modules == "all-linear"
    assert "LoRA rank" in field_help("rank")
    with pytest.raises(ValueError, match="rank must be between"):
        TrainConfig.from_dict({"rank": 0})
    with pytest.raises(ValueError, match="unknown training settings"):
        TrainConfig.from_dict({"rnak": 4})
    ok, reason = qlora_available()
    if not ok:  # this CPU machine: offered as unavailable, with the reason
        assert "CUDA" in reason or "bitsandbytes" in reason
        with pytest.raises(ValueError, match="QLoRA is unavailable"):
            TrainConfig.from_dict({"qlora": True})


def test_loss_only_on_assistant_turns(tiny_models: dict[str, str]) -> None:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_models["llama"])
    messages = [{"role": "system", "content": "be brief"}, {"role": "user", "content": "hello"},
                {"role": "assistant", "content": "answer one"}, {"role": "user", "content": "thanks"},
                {"role": "assistant", "content": "reply two"}]
    row, truncated = data.encode_chat(tokenizer, messages, 512)
    assert not truncated
    learned = tokenizer.decode([t for t, label in zip(row["input_ids"], row["labels"]) if label != data.IGNORE])
    assert learned == "answer one<|im_end|>\nreply two<|im_end|>\n"
    cut, truncated = data.encode_chat(tokenizer, messages, 10)
    assert truncated and len(cut["input_ids"]) == 10


def test_preflight_reports_tokens_params_and_estimates(engine: Engine, classification_version: int,
                                                       generation_version: int, tiny_models: dict[str, str]) -> None:
    config = preset("balanced", "classification")
    report = run_preflight(engine, classification_version, config, base=tiny_models["bert"])
    assert (report.train_examples, report.eval_examples) == (40, 12)
    assert report.train_tokens > 40 and report.truncation_share == 0.0
    assert report.trainable_params > 0 and report.params_per_example == report.trainable_params / 40
    assert report.seconds_per_step and report.estimated_seconds and report.estimated_memory_mb is not None
    assert report.steps == 6  # 40 examples / 32 per step -> 2 steps x 3 epochs
    assert any("training examples" in w for w in report.warnings)  # 40 < 50
    assert not any("Likely to overfit" in w for w in report.warnings)
    big = run_preflight(engine, classification_version, TrainConfig.from_dict({**config.to_dict(), "rank": 128}),
                        base=tiny_models["bert"], measure_steps=0)
    assert big.params_per_example > 1000 and any("Likely to overfit" in w for w in big.warnings)

    gen = run_preflight(engine, generation_version, preset("quick", "generation"), base=tiny_models["llama"],
                        measure_steps=1)
    assert gen.example_rendered.startswith("<|im_start|>user")
    assert gen.example_loss_text == "<|im_start|>assistant\nanswer billing thanks<|im_end|>\n"[len("<|im_start|>assistant\n"):]
    assert 0 < gen.loss_share < 1
