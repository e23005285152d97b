"""Training throughput: the workbench's path against a plain peft + Trainer script, same run.

Both train all-MiniLM-L6-v2 with the same LoRA (r 8, alpha 16, all linear layers of the encoder),
the same data (the first N rows of BANKING77 train.csv), batch size, max length, one epoch, fp32,
no evaluation. Ours goes through an approved dataset version in a throwaway database and
`training.run.train` (progress callback writing to the database, cancel checks); the peer is a
30-line script: AutoModelForSequenceClassification + get_peft_model + Trainer. Each runs in its own
process (peak RSS is per process); the order alternates over --repeats and the best of each counts.
A third row runs our path with its CPU defaults instead of the peer's (length-grouped batches; bf16
autocast where the CPU has AMX/AVX512-BF16): what a user pressing "train" gets.

    python bench/train.py [--rows 512] [--batch-size 32] [--max-length 64] [--repeats 1]

Prints samples/s and tokens/s of each, the ratios (target >= 0.95 at equal settings) and peak memory.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
DATA = REPO.parent / "shared" / "datasets" / "banking77" / "train.csv"


def rows(n: int) -> list[tuple[str, str]]:
    with DATA.open(encoding="utf-8") as handle:
        out = [(r["text"], r["category"]) for r in csv.DictReader(handle)]
    return out[:: max(1, len(out) // n)][:n]  # spread over the labels


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def plain(args: argparse.Namespace) -> dict:
    import torch
    from peft import LoraConfig, TaskType, get_peft_model
    from transformers import (
        AutoModelForSequenceClassification,
        AutoTokenizer,
        DataCollatorWithPadding,
        Trainer,
        TrainingArguments,
    )

    from training.models import minilm_path

    data = rows(args.rows)
    labels = sorted({label for _, label in data})
    tokenizer = AutoTokenizer.from_pretrained(minilm_path())
    encoded = tokenizer([t for t, _ in data], truncation=True, max_length=args.max_length)
    dataset = [{"input_ids": ids, "attention_mask": mask, "labels": labels.index(label)}
               for ids, mask, (_, label) in zip(encoded["input_ids"], encoded["attention_mask"], data)]
    model = AutoModelForSequenceClassification.from_pretrained(minilm_path(), num_labels=len(labels))
    targets = [n for n, m in model.named_modules() if isinstance(m, torch.nn.Linear) and n.startswith("bert.encoder")]
    model = get_peft_model(model, LoraConfig(task_type=TaskType.SEQ_CLS, r=8, lora_alpha=16, lora_dropout=0.1,
                                             target_modules=targets))
    trainer = Trainer(model=model, args=TrainingArguments(
        output_dir=tempfile.mkdtemp(), per_device_train_batch_size=args.batch_size, num_train_epochs=1,
        learning_rate=5e-3, logging_steps=1, report_to=[], save_strategy="no", use_cpu=True, seed=42,
        disable_tqdm=True), train_dataset=dataset, data_collator=DataCollatorWithPadding(tokenizer))
    started = time.perf_counter()
    trainer.train()
    seconds = time.perf_counter() - started
    tokens = sum(len(r["input_ids"]) for r in dataset)
    return {"seconds": seconds, "samples_per_s": len(dataset) / seconds, "tokens_per_s": tokens / seconds,
            "peak_rss_mb": peak_mb()}


def ours(args: argparse.Namespace, defaults: bool = False) -> dict:
    tmp = Path(tempfile.mkdtemp(prefix="bench-train-"))
    os.environ.update({"DATA_DIR": str(tmp), "DATABASE_URL": f"sqlite:///{tmp / 'bench.db'}", "LOAD_DEMO": "false"})
    from curation.access.accounts import create_user
    from curation.data.projects import create_project
    from curation.db import make_engine, migrate, write_session
    from curation.models import DatasetVersion, DatasetVersionItem, Role, TaskType, utcnow
    from curation.versions.hashing import item_hash, version_hash
    from training import jobs
    from training.run import train

    data = rows(args.rows)
    labels = sorted({label for _, label in data})
    engine = make_engine()
    migrate(engine)
    admin = create_user(engine, None, "bench", Role.admin, "bench-password")
    project = create_project(engine, admin, "bench", labels=labels)
    items = []
    for i, (text, label) in enumerate(data):
        item = DatasetVersionItem(version_id=0, external_id=f"r{i:05d}", split="train", text=text, label=label,
                                  content_hash="")
        item.content_hash = item_hash(item)
        items.append(item)
    with write_session(engine) as session:
        version = DatasetVersion(project_id=project.id, number=1, status="approved", approved_by_id=admin.id,
                                 approved_at=utcnow(), content_hash=version_hash(items), item_count=len(items),
                                 task_type=TaskType.classification, labels=labels)
        session.add(version)
        session.flush()
        for item in items:
            item.version_id = version.id
            session.add(item)
        version_id = version.id
    run = jobs.start_run(engine, admin, version_id, "balanced", launch=False, overrides={
        "rank": 8, "alpha": 16, "dropout": 0.1, "target_modules": "all-linear", "epochs": 1.0,
        "learning_rate": 5e-3, "batch_size": args.batch_size, "max_length": args.max_length,
        "early_stopping": False, "probe_init": False, **({} if defaults else {"precision": "fp32",
                                                                          "group_by_length": False})})
    status = train(engine, run.id)
    done = jobs.get_run(engine, run.id)
    assert status == "succeeded", done.error
    seconds = done.metrics["train_seconds"]
    from transformers import AutoTokenizer

    from training.models import minilm_path

    tokenizer = AutoTokenizer.from_pretrained(minilm_path())
    tokens = sum(len(ids) for ids in tokenizer([t for t, _ in data], truncation=True,
                                               max_length=args.max_length)["input_ids"])
    return {"seconds": seconds, "samples_per_s": len(data) / seconds, "tokens_per_s": tokens / seconds,
            "peak_rss_mb": peak_mb()}


MODES = {"plain": "plain peft + Trainer", "ours": "workbench training path (fp32, random order)",
         "defaults": "workbench training path, CPU defaults"}


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=512)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--max-length", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--mode", choices=list(MODES), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.mode:
        result = plain(args) if args.mode == "plain" else ours(args, defaults=args.mode == "defaults")
        print("RESULT " + json.dumps(result))
        return 0
    best: dict[str, dict] = {}
    for repeat in range(args.repeats):
        for mode in (list(MODES) if repeat % 2 == 0 else list(MODES)[::-1]):
            out = subprocess.run([sys.executable, __file__, "--mode", mode, "--rows", str(args.rows), "--batch-size",
                                  str(args.batch_size), "--max-length", str(args.max_length)],
                                 capture_output=True, text=True, env={**os.environ, "TOKENIZERS_PARALLELISM": "false"})
            line = next((x for x in out.stdout.splitlines() if x.startswith("RESULT ")), None)
            if line is None:
                print(out.stdout[-3000:], out.stderr[-3000:])
                return 1
            result = json.loads(line[7:])
            if mode not in best or result["samples_per_s"] > best[mode]["samples_per_s"]:
                best[mode] = result
    print(f"MiniLM-L6 LoRA r8 all-linear, {args.rows} BANKING77 rows, batch {args.batch_size}, "
          f"max length {args.max_length}, 1 epoch, CPU, best of {args.repeats}")
    for mode, name in MODES.items():
        r = best[mode]
        print(f"{name:<46} {r['samples_per_s']:8.1f} samples/s {r['tokens_per_s']:9.0f} tokens/s "
              f"{r['seconds']:7.1f} s  peak RSS {r['peak_rss_mb']:7.0f} MB")
    ratio = best["ours"]["samples_per_s"] / best["plain"]["samples_per_s"]
    print(f"throughput ratio ours/plain, same settings: {ratio:.3f} (target >= 0.95)")
    print(f"throughput ratio ours with CPU defaults/plain: "
          f"{best['defaults']['samples_per_s'] / best['plain']['samples_per_s']:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
