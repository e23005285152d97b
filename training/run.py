"""The training worker: `python -m training.run --run-id N`.

Runs one queued TrainingRun in this process and writes its progress (step, loss, eval metrics,
tokens/s, ETA) to the database. It is a plain script entry point, so the same command works under
`accelerate launch` for several GPUs or nodes:

    accelerate launch --num_processes 4 -m training.run --run-id 12

(only the main process writes to the database and saves; the other processes train their share of
each batch and exit; tests/training/test_accelerate_launch.py runs it with two CPU processes over gloo). The pages start it through
`training.jobs`, which runs it under `training.supervisor`: a small parent that waits for the worker
and marks the run failed, with the tail of its log, when the worker crashes or is killed (SIGKILL
included), then starts the next queued run.
"""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import sys
import time
import traceback
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from sqlalchemy.engine import Engine
from transformers import TrainerCallback

from curation.data.projects import get_project_by_id
from curation.evaluation.objective import objective_result
from curation.models import RunStatus
from training.store import get_run, is_main_process, now, run_dir, run_process_main, update_run
from training.test_scoring import scored_on, test_split

_STOP = {"requested": False, "training": False}  # a stop was asked for; the first step has begun
WRITE_EVERY_S = 1.0


# ---------------------------------------------------------------------------------------------
# The worker.


def _on_sigterm(_signum: int, _frame: Any) -> None:
    """Before training begins nothing is lost by stopping at once, and a cancel should not wait for a
    model to finish loading; once it has begun, the callback stops at the next step."""
    if not _STOP["training"] and not _STOP["requested"]:
        _STOP["requested"] = True
        raise SystemExit(128 + signal.SIGTERM)
    _STOP["requested"] = True


def work(engine: Engine, run_id: int) -> int:
    main = is_main_process()
    run = get_run(engine, run_id)
    if run.status not in (RunStatus.queued, RunStatus.running):
        # every process checks: a lone non-main process would wait for its peers' process group forever
        print(f"run {run_id} is {run.status}; nothing to do", file=sys.stderr)
        return 1
    if main:
        update_run(engine, run_id, status=RunStatus.running, pid=os.getpid(), started_at=run.started_at or now(),
                   heartbeat_at=now())
    signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        outcome = train(engine, run_id, main)
    except Exception:
        if main:
            error = traceback.format_exc()
            update_run(engine, run_id, status=RunStatus.failed, finished_at=now(), error=error[-6000:])
        traceback.print_exc()
        return 1
    if not main:
        return 0  # its share of the training is done; the main process evaluates, saves and records
    return 0 if outcome in (RunStatus.succeeded, RunStatus.cancelled) else 1


def train(engine: Engine, run_id: int, main: bool = True) -> RunStatus:
    """Train, evaluate, save the adapter and card; returns the final status written (a non-main
    process returns `running` after training: it neither evaluates, saves nor writes)."""
    import torch
    from peft import LoraConfig, TaskType, get_peft_model
    from transformers import EarlyStoppingCallback, Trainer, TrainingArguments, set_seed

    from curation.versions.records import verified_dataset_dict, version_provenance
    from training import card, data, evaluate, models
    from training.config import TrainConfig, planned_steps, resolve_precision

    run = get_run(engine, run_id)
    config = TrainConfig.from_dict(run.config)
    folder = run_dir(run_id)
    folder.mkdir(parents=True, exist_ok=True)
    # Trains on exactly the rows checked against the version's SHA-256 (raises with the verify message).
    version, dataset = verified_dataset_dict(engine, run.version_id, "Refusing to train")
    provenance = version_provenance(engine, run.version_id)
    task = str(run.task_type)
    set_seed(config.seed)

    test_version, test_data = test_split(engine, run.test_set_version_id) if run.test_set_version_id else (None, None)

    base_path = models.resolve_base(run.base_model, task)
    tokenizer = models.load_tokenizer(base_path)
    generation = task == "generation"
    has_eval = "eval" in dataset and len(dataset["eval"]) > 0
    names: list[str] = []
    probe: dict[str, Any] | None = None
    dropped = 0  # training rows left out by the small-loss filter
    if generation:
        data.ensure_chat_template(tokenizer)
        train_rows = data.encode_generation(dataset["train"], tokenizer, config.max_length)
        eval_rows = data.encode_generation(dataset["eval"], tokenizer, config.max_length) if has_eval else None
        test_rows = data.encode_generation(test_data, tokenizer, config.max_length) if test_data else None
        dtype = torch.bfloat16 if config.qlora else torch.float32
        model = models.load_causal_lm(base_path, qlora=config.qlora, dtype=dtype)
        if config.qlora:
            from peft import prepare_model_for_kbit_training

            model = prepare_model_for_kbit_training(model)
    else:
        names = data.label_names(dataset, list(version.labels or []))
        # a label seen only in the test set still gets a class (never predicted, so scored as missed)
        names += [label for label in (test_data or {}).get("label", []) if label is not None and label not in names]
        train_rows = data.encode_classification(dataset["train"], tokenizer, names, config.max_length)
        eval_rows = data.encode_classification(dataset["eval"], tokenizer, names, config.max_length) \
            if has_eval else None
        test_rows = data.encode_classification(test_data, tokenizer, names, config.max_length) if test_data else None
        model = models.load_classifier(base_path, len(names))
        if config.small_loss_filter > 0:
            dropped = evaluate.drop_suspected(model, train_rows, config.small_loss_filter, seed=config.seed)
        probe = evaluate.fit_probe(model, train_rows.rows, eval_rows.rows if eval_rows else None, len(names),
                                   test_rows.rows if test_rows else None)
        if config.probe_init and probe.get("weight") is not None:
            with torch.no_grad():
                model.classifier.weight.copy_(torch.tensor(probe["weight"], dtype=torch.float32))
                model.classifier.bias.copy_(torch.tensor(probe["bias"], dtype=torch.float32))
    if not train_rows.rows:
        raise RuntimeError("the version's train split has no usable examples")
    eval_rows = eval_rows if eval_rows and eval_rows.rows else None

    targets = models.linear_targets(model, config.target_modules)
    lora = LoraConfig(r=config.rank, lora_alpha=config.alpha, lora_dropout=config.dropout, target_modules=targets,
                      use_dora=config.dora, task_type=TaskType.CAUSAL_LM if generation else None,
                      modules_to_save=["classifier"] if not generation and config.train_head else None)
    model = get_peft_model(model, lora)
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)

    precision = resolve_precision(config)
    cuda = torch.cuda.is_available()
    # the epochs' steps raised to the preset's floor (a small set needs several passes to move a LoRA)
    steps = planned_steps(config, len(train_rows.rows), _world_size())
    epoch_steps = planned_steps(dataclasses.replace(config, min_steps=0), len(train_rows.rows), _world_size())
    eval_strategy = "no" if eval_rows is None else ("steps" if config.eval_steps else "epoch")
    early = config.early_stopping and eval_rows is not None
    best_metric = "eval_loss" if generation else "eval_accuracy"
    args = TrainingArguments(
        output_dir=str(folder / "checkpoints"),
        per_device_train_batch_size=config.batch_size,
        per_device_eval_batch_size=max(config.batch_size, 32),
        learning_rate=config.learning_rate,
        num_train_epochs=config.epochs,
        max_steps=steps if steps > epoch_steps or config.max_steps > 0 else -1,
        warmup_steps=config.warmup_ratio,
        weight_decay=config.weight_decay,
        lr_scheduler_type="linear",
        logging_steps=1,
        eval_strategy=eval_strategy,
        eval_steps=config.eval_steps or None,
        save_strategy=eval_strategy if early else "no",
        save_steps=config.eval_steps or None,
        save_total_limit=2 if early else None,
        load_best_model_at_end=early,
        metric_for_best_model=best_metric if early else None,
        greater_is_better=(not generation) if early else None,
        label_names=["labels"],
        remove_unused_columns=False,
        report_to=[],
        seed=config.seed,
        label_smoothing_factor=0.0 if generation else config.label_smoothing,
        bf16=precision == "bf16",
        fp16=precision == "fp16",
        use_cpu=not cuda,
        **({"gradient_checkpointing": True} if config.gradient_checkpointing else {}),
        dataloader_num_workers=0,
        train_sampling_strategy="group_by_length" if config.group_by_length else "random",
        disable_tqdm=True,
    )
    collator = data.Collator(tokenizer.pad_token_id, generation)
    avg_tokens = train_rows.tokens / len(train_rows.rows)
    progress = ProgressCallback(engine, run_id, main, avg_tokens, config.batch_size)
    callbacks: list[Any] = [progress]
    if early:
        callbacks.append(EarlyStoppingCallback(early_stopping_patience=config.patience))

    def compute_metrics(prediction: Any) -> dict[str, float]:
        logits = prediction.predictions[0] if isinstance(prediction.predictions, tuple) else prediction.predictions
        return {"accuracy": float((logits.argmax(-1) == prediction.label_ids).mean())}

    trainer = Trainer(model=model, args=args, train_dataset=data.ListDataset(train_rows.rows),
                      eval_dataset=data.ListDataset(eval_rows.rows) if eval_rows else None, data_collator=collator,
                      compute_metrics=None if generation else compute_metrics, callbacks=callbacks)
    started = time.perf_counter()
    trainer.train()
    train_seconds = time.perf_counter() - started
    if not main:
        return RunStatus.running
    if progress.cancelled:
        progress.flush(force=True)
        update_run(engine, run_id, status=RunStatus.cancelled, finished_at=now(), error="cancelled by request")
        return RunStatus.cancelled

    model.eval()
    objective = get_project_by_id(engine, run.project_id).objective
    if generation:
        # with a test set the held-out split only gets its loss and samples: responses are scored once, on the test set
        metrics = evaluate.evaluate_generation(model, tokenizer, eval_rows.rows if eval_rows else [],
                                               list(dataset["eval"]["messages"]) if has_eval else [],
                                               score_generations=test_rows is None or not test_rows.rows,
                                               **evaluate.generation_options(objective))
    else:
        metrics = evaluate.evaluate_classification(model, eval_rows.rows if eval_rows else [], names,
                                                   train_rows.rows, probe)
        if config.probe_init and evaluate.loses_to_probe(metrics):
            # The probe-initialised start state *is* the probe: go back to it rather than hand out
            # an adapter that is worse than the baseline. The page and card say so.
            trained = metrics["adapter"]
            evaluate.reset_to_probe(model, probe)
            metrics = evaluate.evaluate_classification(model, eval_rows.rows, names, train_rows.rows, probe)
            metrics["fallback"] = {"reason": "the trained adapter was below the linear probe on the eval split",
                                   "trained_accuracy": trained["accuracy"], "trained_macro_f1": trained["macro_f1"]}
    if test_rows is not None and test_rows.rows:
        # Scored once, at the end, on the frozen test set: the top-level scores are the test scores; the
        # held-out split (which chose the early stopping and the probe fallback) goes under "validation".
        validation = {k: v for k, v in metrics.items() if k not in ("predictions", "samples")}
        if generation:
            metrics = evaluate.evaluate_generation(model, tokenizer, test_rows.rows, list(test_data["messages"]),
                                                   **evaluate.generation_options(objective))
        else:
            metrics = evaluate.evaluate_classification(model, test_rows.rows, names, train_rows.rows, probe,
                                                       probe_pred=probe["test_pred"] if probe else None)
            if validation.get("fallback"):
                metrics["fallback"] = validation["fallback"]
        metrics["validation"] = validation
        metrics.setdefault("predictions", {})["item_ids"] = list(test_data["external_id"])
    metrics["scored_on"] = scored_on(test_version, len(eval_rows.rows) if eval_rows else 0)
    metrics["scored_on_text"] = metrics["scored_on"]["text"]

    metrics["objective"] = objective_result(objective, metrics)
    metrics.update({"train_seconds": round(train_seconds, 2), "trainable_params": trainable,
                    "train_examples": len(train_rows.rows), "small_loss_dropped": dropped, "eval_examples": len(eval_rows.rows) if eval_rows else 0,
                    "precision": precision, "device": "cuda" if cuda else "cpu",
                    "tokens_per_s": progress.tokens_per_s, "final_step": progress.step,
                    "processes": int(args.world_size)})
    warnings = evaluate.verdict(task, metrics)

    adapter_dir = folder / "adapter"
    model.save_pretrained(str(adapter_dir))
    tokenizer.save_pretrained(str(adapter_dir))
    origin = models.base_origin(run.base_model, task, base_path)
    meta: dict[str, Any] = {"task_type": task, "base_model": run.base_model, "base_hub_id": origin.get("hub_id"),
                            "base_path": base_path, "base_origin": origin, "run_id": run_id,
                            "version_id": run.version_id}
    if generation:  # what a generation adapter needs to be used as trained: the template and the masking
        meta["chat_template"] = data.chat_template_facts(tokenizer)
        meta["loss_masking"] = data.masking_facts(train_rows, eval_rows)
    else:
        meta.update({"labels": names, "pooling": "mean"})
    (adapter_dir / models.RUN_META[task]).write_text(json.dumps(meta, indent=2))
    if probe and probe.get("weight") is not None and config.probe_init:
        # the base's head (what "adapter disabled" computes): the linear probe, kept for the playground
        torch.save({"weight": torch.tensor(probe["weight"]), "bias": torch.tensor(probe["bias"])},
                   adapter_dir / models.PROBE_HEAD)
    (folder / "run.json").write_text(json.dumps(meta, indent=2))

    merged_path = None
    if config.merge:
        merged_path = str(export_merged(model, tokenizer, folder / "merged", generation))
    card.write_model_card(adapter_dir, run=get_run(engine, run_id), config=config, provenance=provenance,
                          metrics=metrics, warnings=warnings, base_path=base_path, labels=names, meta=meta)
    progress.flush(force=True)
    if not (adapter_dir / "adapter_model.safetensors").exists() or not (adapter_dir / "adapter_config.json").exists():
        update_run(engine, run_id, status=RunStatus.failed, finished_at=now(), metrics=metrics,
                   error=f"the adapter was not written to {adapter_dir}")
        return RunStatus.failed
    update_run(engine, run_id, status=RunStatus.succeeded, finished_at=now(), metrics=metrics, warnings=warnings,
               output_dir=str(folder), adapter_path=str(adapter_dir), merged_path=merged_path, eta_s=0.0)
    checkpoints = folder / "checkpoints"
    if checkpoints.exists():
        import shutil

        shutil.rmtree(checkpoints, ignore_errors=True)
    return RunStatus.succeeded


def _world_size() -> int:
    """Processes sharing each step (accelerate/torchrun set WORLD_SIZE; a plain run is 1)."""
    return max(1, int(os.environ.get("WORLD_SIZE", "1")))


def export_merged(model: Any, tokenizer: Any, target: Path, generation: bool) -> Path:
    """The base with the adapter merged in: a plain transformers folder (classification: the encoder
    folder plus `classifier.pt` with the head)."""
    import copy

    import torch

    merged = copy.deepcopy(model).merge_and_unload()
    target.mkdir(parents=True, exist_ok=True)
    if generation:
        merged.save_pretrained(str(target))
    else:
        merged.encoder.save_pretrained(str(target))
        torch.save(merged.classifier.state_dict(), target / "classifier.pt")
    tokenizer.save_pretrained(str(target))
    return target


def _any_process(flag: bool) -> bool:
    """`flag` OR-ed over all processes of a distributed run (itself in a single process). Only the main
    process reads the cancel request; every process must stop at the same step, or the others would
    wait in the next gradient all-reduce forever."""
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return flag
    import torch

    device = f"cuda:{torch.cuda.current_device()}" if dist.get_backend() == "nccl" else "cpu"
    value = torch.tensor([1 if flag else 0], dtype=torch.int32, device=device)
    dist.all_reduce(value, op=dist.ReduceOp.MAX)
    return bool(value.item())


class ProgressCallback(TrainerCallback):
    """Writes step, loss, eval metrics, tokens/s and ETA to the run's row (at most once a second, and
    at every evaluation), and stops training at the next step when a cancel was requested."""

    def __init__(self, engine: Engine, run_id: int, main: bool, avg_tokens: float, batch_size: int) -> None:
        self.engine, self.run_id, self.main = engine, run_id, main
        self.avg_tokens, self.batch_size = avg_tokens, batch_size
        self.history: list[dict[str, Any]] = []
        self.step = 0
        self.max_steps = 0
        self.epoch = 0.0
        self.loss: float | None = None
        self.tokens_per_s: float | None = None
        self.eta_s: float | None = None
        self.cancelled = False
        self._last_write = 0.0
        self._last_check = 0.0
        self._started = time.perf_counter()
        self._dirty = False

    def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        _STOP["training"] = True  # from here a SIGTERM stops at the next step (see _on_sigterm)
        self._started = time.perf_counter()
        self.max_steps = state.max_steps
        self.flush(force=True)

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> Any:
        self.step, self.epoch = state.global_step, float(state.epoch or 0.0)
        elapsed = time.perf_counter() - self._started
        if self.step:
            world = max(1, int(getattr(args, "world_size", 1)))
            examples = self.step * self.batch_size * world * args.gradient_accumulation_steps
            self.tokens_per_s = examples * self.avg_tokens / max(elapsed, 1e-9)
            self.eta_s = elapsed / self.step * max(0, state.max_steps - self.step)
        if _any_process(_STOP["requested"] or self._cancel_requested()):
            self.cancelled = True
            control.should_training_stop = True
            control.should_save = False
            control.should_evaluate = False
        self.flush()
        return control

    def on_log(self, args: Any, state: Any, control: Any, logs: dict[str, float] | None = None, **kwargs: Any) -> None:
        logs = logs or {}
        point: dict[str, Any] = {"step": state.global_step}
        if "loss" in logs:
            self.loss = float(logs["loss"])
            point["loss"] = self.loss
        for key, value in logs.items():
            if key.startswith("eval_") and isinstance(value, (int, float)):
                point[key] = float(value)
        if len(point) > 1:
            self.history.append(point)
            self._dirty = True
        if any(k.startswith("eval_") for k in point):
            self.flush(force=True)

    def _cancel_requested(self) -> bool:
        if not self.main or time.perf_counter() - self._last_check < WRITE_EVERY_S:
            return False
        self._last_check = time.perf_counter()
        return get_run(self.engine, self.run_id).cancel_requested_at is not None

    def flush(self, force: bool = False) -> None:
        if not self.main or (not force and time.perf_counter() - self._last_write < WRITE_EVERY_S):
            return
        self._last_write = time.perf_counter()
        history = self.history
        if len(history) > 2000:  # keep every eval point, thin the loss points
            keep = max(1, len(history) // 1000)
            history = [p for i, p in enumerate(history) if i % keep == 0 or len(p) > 2 or "loss" not in p]
        update_run(self.engine, self.run_id, step=self.step, max_steps=self.max_steps, epoch=self.epoch,
                   loss=self.loss, tokens_per_s=self.tokens_per_s, eta_s=self.eta_s, history=list(history),
                   heartbeat_at=now())


def main(argv: Sequence[str] | None = None) -> int:
    return run_process_main("python -m training.run", __doc__.splitlines()[0], work, argv)


if __name__ == "__main__":
    sys.exit(main())
