"""Quality of the default classification preset against a linear probe, in the same run.

BANKING77 (../shared/datasets/banking77, CC BY 4.0): train.csv becomes an approved dataset version
(90% train, 10% eval for early stopping, stratified, seed 0); the workbench's own training path
(`training.run.train`, default preset "balanced", base all-MiniLM-L6-v2) trains an adapter; both the
adapter and a logistic regression on the frozen mean-pooled embeddings of the same base (fitted on
the same 90%) are scored on test.csv. Target: the adapter at least matches the probe within a CPU
budget of 15 minutes.

    python bench/quality.py [--preset balanced] [--limit N] [--set learning_rate=0.005 ...]
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import random
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

DATA = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "banking77"


def read(path: Path) -> list[tuple[str, str]]:
    with path.open(encoding="utf-8") as handle:
        return [(row["text"], row["category"]) for row in csv.DictReader(handle)]


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--preset", default="balanced")
    parser.add_argument("--limit", type=int, default=0, help="use only the first N training rows (smoke runs)")
    parser.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE", help="override a setting")
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench-quality-"))
    os.environ["DATA_DIR"] = str(tmp)
    os.environ["DATABASE_URL"] = f"sqlite:///{tmp / 'bench.db'}"
    os.environ["LOAD_DEMO"] = "false"

    import torch

    from curation.access.accounts import create_user
    from curation.data.projects import create_project
    from curation.db import make_engine, migrate, write_session
    from curation.models import DatasetVersion, DatasetVersionItem, Role, TaskType, utcnow
    from curation.versions.hashing import item_hash, version_hash
    from training import data as tdata
    from training import evaluate, jobs, models
    from training.run import train

    train_rows, test_rows = read(DATA / "train.csv"), read(DATA / "test.csv")
    if args.limit:
        random.Random(0).shuffle(train_rows)
        train_rows = train_rows[: args.limit]
    labels = sorted({label for _, label in train_rows})
    by_label: dict[str, list[str]] = defaultdict(list)
    for text, label in train_rows:
        by_label[label].append(text)
    rng = random.Random(0)
    split_rows = []
    for label, texts in by_label.items():
        rng.shuffle(texts)
        n_eval = max(1, len(texts) // 10)
        split_rows += [("eval", t, label) for t in texts[:n_eval]] + [("train", t, label) for t in texts[n_eval:]]

    engine = make_engine()
    migrate(engine)
    admin = create_user(engine, None, "bench", Role.admin, "bench-password")
    project = create_project(engine, admin, "BANKING77", labels=labels)
    items = []
    for i, (split, text, label) in enumerate(split_rows):
        item = DatasetVersionItem(version_id=0, external_id=f"b{i:05d}", split=split, text=text, label=label,
                                  source="banking77", licence="CC-BY-4.0", content_hash="")
        item.content_hash = item_hash(item)
        items.append(item)
    with write_session(engine) as session:
        version = DatasetVersion(project_id=project.id, number=1, status="approved", approved_by_id=admin.id,
                                 approved_at=utcnow(), content_hash=version_hash(items), item_count=len(items),
                                 task_type=TaskType.classification, labels=labels,
                                 stats={"sources": {"banking77": len(items)}, "licences": {"CC-BY-4.0": len(items)}})
        session.add(version)
        session.flush()
        for item in items:
            item.version_id = version.id
            session.add(item)
        version_id = version.id
    overrides = {}
    for item in args.set:
        key, _, value = item.partition("=")
        try:
            overrides[key] = json.loads(value)
        except json.JSONDecodeError:  # a bare word: fp32, attention...
            overrides[key] = value
    run = jobs.start_run(engine, admin, version_id, args.preset, overrides=overrides, launch=False)
    print(f"preset {args.preset}: {json.dumps(run.config)}", flush=True)
    print(f"train {sum(1 for r in split_rows if r[0] == 'train')}, eval {sum(1 for r in split_rows if r[0] == 'eval')}"
          f", test {len(test_rows)}, labels {len(labels)}, torch threads {torch.get_num_threads()}", flush=True)
    from training.config import TrainConfig
    from training.preflight import run_preflight

    estimate = run_preflight(engine, version_id, TrainConfig.from_dict(run.config), measure_steps=3)
    started = time.perf_counter()
    cpu_started = time.process_time()
    status = train(engine, run.id)
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu_started
    done = jobs.get_run(engine, run.id)
    print(f"run status: {status}; {done.error or ''}", flush=True)
    if status != "succeeded":
        return 1

    model, tokenizer, meta = models.load_adapter(done.output_dir)
    names = meta["labels"]
    index = {name: i for i, name in enumerate(names)}
    test = [(t, label) for t, label in test_rows if label in index]
    cfg = done.config
    test_enc = tokenizer([t for t, _ in test], truncation=True, max_length=cfg["max_length"])["input_ids"]
    test_encoded = [{"input_ids": ids, "attention_mask": [1] * len(ids), "labels": index[label]}
                    for ids, (_, label) in zip(test_enc, test)]
    y_test = [index[label] for _, label in test]
    adapter_acc = float((evaluate.predict_proba(model, test_encoded).argmax(-1) == y_test).mean())

    # The probe: logistic regression on the frozen base's embeddings (same pooling), train split only.
    base = models.load_classifier(meta["base_path"], len(names))
    from curation.versions.records import version_dataset_dict

    dataset = version_dataset_dict(engine, version_id)
    train_enc = tdata.encode_classification(dataset["train"], tokenizer, names, cfg["max_length"]).rows
    probe_started = time.perf_counter()
    probe = evaluate.fit_probe(base, train_enc, test_encoded, len(names))
    probe_seconds = time.perf_counter() - probe_started
    probe_acc = float((torch.tensor(probe["eval_pred"]) == torch.tensor(y_test)).float().mean())
    print(f"eval split (model selection): adapter {done.metrics['adapter']['accuracy']:.4f}, "
          f"probe {done.metrics.get('probe_baseline', {}).get('accuracy', float('nan')):.4f}")
    print(f"TEST accuracy: adapter ({args.preset}) {adapter_acc:.4f} | linear probe {probe_acc:.4f} | "
          f"ratio {adapter_acc / probe_acc:.3f}")
    print(f"training wall {seconds / 60:.1f} min, process CPU {cpu / 60:.1f} min "
          f"(budget: 15 CPU minutes); probe fit {probe_seconds:.0f} s; steps {done.step}; "
          f"tokens/s {done.tokens_per_s or 0:.0f}")
    print(f"preflight estimate {estimate.estimated_seconds:.0f} s for {estimate.steps} steps and the evaluations; "
          f"the trainer took {done.metrics['train_seconds']:.0f} s")
    print("target met" if adapter_acc >= probe_acc - 0.005 else "TARGET MISSED: the adapter is below the probe")
    return 0


if __name__ == "__main__":
    sys.exit(main())
