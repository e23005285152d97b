"""Presets, settings validation, QLoRA availability, loss masking and the preflight report."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy.engine import Engine

from training import data
from training.config import PRESETS, TrainConfig, field_help, preset, qlora_available, resolve_precision
from training.preflight import padded_tokens_per_epoch, run_preflight


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


def test_precision_auto_uses_bf16_only_where_the_hardware_has_it(monkeypatch: pytest.MonkeyPatch) -> None:
    from curation.embeddings import encode as embeddings
    from training import config as config_module

    assert resolve_precision(TrainConfig(precision="fp32")) == "fp32"
    assert resolve_precision(TrainConfig(precision="bf16")) == "bf16"
    monkeypatch.setattr(config_module, "cuda_available", lambda: False)
    for native, expected in ((True, "bf16"), (False, "fp32")):
        monkeypatch.setattr(embeddings, "cpu_has_native_bf16", lambda native=native: native)
        assert resolve_precision(TrainConfig()) == expected


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


def test_padded_tokens_per_epoch() -> None:
    assert padded_tokens_per_epoch([1, 5, 2, 6], 2, grouped=True) == 6 * 2 + 2 * 2
    assert padded_tokens_per_epoch([1, 10, 10], 2, grouped=True) == 10 * 2 + 1
    assert padded_tokens_per_epoch([], 8, grouped=False) == 0


@given(st.lists(st.integers(1, 512), max_size=200), st.integers(1, 64), st.integers(0, 1000))
def test_grouping_never_pads_more_than_a_shuffle(lengths: list[int], batch_size: int, seed: int) -> None:
    # With full batches only: a short last batch can make another order cheaper ([2, 1, 1] by 2).
    lengths = lengths[: len(lengths) // batch_size * batch_size]
    grouped = padded_tokens_per_epoch(lengths, batch_size, grouped=True)
    shuffled = padded_tokens_per_epoch(lengths, batch_size, grouped=False, seed=seed)
    assert sum(lengths) <= grouped <= shuffled <= max(lengths, default=0) * len(lengths)
