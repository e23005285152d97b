"""Generation presets on a task with a checkable answer, through the app's own code, against the base model.

BANKING77 (../shared/datasets/banking77, CC BY 4.0) as generation: the prompt is the customer's message
under a short system prompt, the reference response the compact JSON `{"intent":"<label>"}`. A seeded
sample of train.csv is imported into a throwaway database (`import_table`, a `messages` column, the
responses imported as final: they are the dataset's own labels), with `--val-items` more train.csv
rows as the version's eval split (validation: early stopping, and the `--tune` sweep; never the test
texts). `create_candidate` + `approve_version` make the version; `jobs.start_run` + `training.run.train`
train each preset in this process (the worker's code path); the adapter (`models.load_adapter`) and the
base (adapter disabled) are scored by `evaluate.evaluate_generation` on `--test-items` texts of
test.csv: exact match, JSON validity, chrF with 95% bootstrap intervals and paired differences.

The system prompt is short on purpose: without one SmolLM2's template adds its default system line (about
20 tokens), which costs as much compute as the message itself on 2 cores.

Targets (issue 17), each printed MET or MISSED with the load average:
  quick: under 10 minutes wall end to end (import, version, train, score) and exact match at least 30
         points above the base, with intervals that do not overlap;
  balanced: under 30 minutes, and better than quick (paired bootstrap on exact match).

    python bench/generation.py [--presets quick,balanced] [--train-items 480] [--val-items 100]
                               [--test-items 300] [--tune] [--models-from DIR] [--out results.json]

`--tune` trains the quick preset's shape at several learning rates and step counts on the same version
and reads each run's own scores on the validation items (the version's eval split; the test texts are
not used): the evidence behind the presets in training/config.py.
`--models-from` reuses a DATA_DIR that already holds the converted SmolLM2 (saves its one-time ~40 s
conversion; the first preset's wall time then excludes it either way: it is printed separately).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import random
import shutil
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
DATA = REPO.parent / "shared" / "datasets" / "banking77"
if not DATA.exists():
    DATA = Path("/work/shared/datasets/banking77")
SYSTEM = "Reply with the banking intent as JSON."
QUICK_SECONDS, BALANCED_SECONDS, QUICK_GAIN = 600, 1800, 0.30


def load() -> str:
    one, five, fifteen = os.getloadavg()
    return f"load {one:.1f}/{five:.1f}/{fifteen:.1f} on {os.cpu_count()} cores"


def read(path: Path) -> list[tuple[str, str]]:
    with path.open(encoding="utf-8") as handle:
        return [(row["text"], row["category"]) for row in csv.DictReader(handle)]


def spread(rows: list[tuple[str, str]], n: int, seed: int) -> list[tuple[str, str]]:
    """n rows drawn round-robin over the labels (seeded), so every intent appears."""
    by_label: dict[str, list[tuple[str, str]]] = defaultdict(list)
    for row in rows:
        by_label[row[1]].append(row)
    rng = random.Random(seed)
    for group in by_label.values():
        rng.shuffle(group)
    out: list[tuple[str, str]] = []
    labels = sorted(by_label)
    depth = 0
    while len(out) < n and any(depth < len(by_label[label]) for label in labels):
        for label in labels:
            if depth < len(by_label[label]) and len(out) < n:
                out.append(by_label[label][depth])
        depth += 1
    rng.shuffle(out)
    return out


def chat(text: str, label: str | None = None) -> list[dict[str, str]]:
    messages = [{"role": "system", "content": SYSTEM}, {"role": "user", "content": text}]
    if label is not None:
        messages.append({"role": "assistant", "content": json.dumps({"intent": label}, separators=(",", ":"))})
    return messages


class Bench:
    def __init__(self, folder: Path, models_from: Path | None) -> None:
        os.environ["DATA_DIR"] = str(folder)
        os.environ["DATABASE_URL"] = f"sqlite:///{folder / 'bench.db'}"
        os.environ["LOAD_DEMO"] = "false"
        if models_from and (models_from / "models" / "smollm2-135m-instruct" / "config.json").exists():
            (folder / "models").mkdir(parents=True, exist_ok=True)
            os.symlink(models_from / "models" / "smollm2-135m-instruct", folder / "models" / "smollm2-135m-instruct")
        from curation.access.accounts import create_user
        from curation.db import make_engine, migrate
        from curation.models import Role
        from curation.settings import get_settings

        get_settings.cache_clear()
        self.folder = folder
        self.engine = make_engine()
        migrate(self.engine)
        admin = create_user(self.engine, None, "bench-admin", Role.admin, "bench-password")
        self.lead = create_user(self.engine, admin, "bench-lead", Role.lead, "bench-password")
        self.projects = 0

    def prepare_base(self) -> float:
        from training import models

        started = time.perf_counter()
        models.resolve_base("SmolLM2-135M-Instruct", "generation")
        return time.perf_counter() - started

    def version(self, train: list[tuple[str, str]], val: list[tuple[str, str]]) -> int:
        """Import (messages; the responses explicitly as final: they are BANKING77's own labels, so a
        version includes them without expert review), build and approve a version: train + eval."""
        from curation.data.formats import open_table
        from curation.data.importer import import_table
        from curation.data.mapping import ColumnMapping
        from curation.data.projects import create_project
        from curation.models import TaskType
        from curation.versions.approve import approve_version
        from curation.versions.build import BuildOptions, create_candidate

        self.projects += 1
        name = f"BANKING77 JSON {self.projects}"
        path = self.folder / f"import-{self.projects}.jsonl"
        with path.open("w", encoding="utf-8") as handle:
            for i, (split, (text, label)) in enumerate([("train", r) for r in train] + [("eval", r) for r in val]):
                handle.write(json.dumps({"id": f"b{i:05d}", "messages": chat(text, label), "split": split,
                                         "source": "banking77", "licence": "CC-BY-4.0"}) + "\n")
        project = create_project(self.engine, self.lead, name, task_type=TaskType.generation)
        import_table(self.engine, self.lead, open_table(path),
                     ColumnMapping(id=["id"], messages="messages", split="split", source="source", licence="licence",
                                   metadata=[]), name, task_type=TaskType.generation, responses_as="final")
        # the file's train/eval split is kept; no embeddings (near-duplicate checks are not what is measured)
        version = create_candidate(self.engine, self.lead, project.id,
                                   BuildOptions(seed=0, keep_existing_splits=True, use_embeddings=False))
        approve_version(self.engine, self.lead, version.id, attest=True,
                        override_reason="benchmark run: the responses are BANKING77's own labels as JSON")
        return int(version.id)

    def train(self, version_id: int, preset: str, overrides: dict[str, Any] | None = None) -> Any:
        from training import jobs
        from training.run import train

        run = jobs.start_run(self.engine, self.lead, version_id, preset, overrides=overrides or {}, launch=False)
        status = train(self.engine, run.id)
        done = jobs.get_run(self.engine, run.id)
        if status != "succeeded":
            raise RuntimeError(f"training failed: {done.error}")
        return done

    def score(self, run: Any, items: list[tuple[str, str]]) -> dict[str, Any]:
        """The adapter and the base (adapter disabled) on `items`: the app's evaluation of generation,
        without the reference responses' loss (not a metric of this bench; 300 items cost about 90 s)."""
        from training import evaluate, models

        model, tokenizer, _meta = models.load_adapter(run.output_dir)
        return evaluate.evaluate_generation(model, tokenizer, [], [chat(text, label) for text, label in items])


def interval(metrics: dict[str, Any], who: str, key: str) -> str:
    i = metrics[who]["intervals"][key]
    return f"{i['value']:.3f} [{i['low']:.3f}, {i['high']:.3f}]"


def tune(bench: Bench, version_id: int, grid: list[dict[str, Any]]) -> list[dict[str, Any]]:
    rows = []
    for overrides in grid:
        started = time.perf_counter()
        run = bench.train(version_id, "quick", overrides)
        metrics = run.metrics  # the run's own scoring of the version's eval split: the validation items
        row = {**overrides, "val_exact_match": interval(metrics, "adapter", "exact_match"),
               "val_json_valid": interval(metrics, "adapter", "json_valid"),
               "val_chrf": interval(metrics, "adapter", "chrf"), "train_s": run.metrics.get("train_seconds"),
               "wall_s": round(time.perf_counter() - started, 1), "load": load()}
        rows.append(row)
        print(f"TUNE {json.dumps(row)}", flush=True)
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--presets", default="quick,balanced")
    parser.add_argument("--train-items", type=int, default=480)
    parser.add_argument("--val-items", type=int, default=100)
    parser.add_argument("--test-items", type=int, default=300)
    parser.add_argument("--tune", action="store_true", help="the validation sweep (learning rate x steps) instead")
    parser.add_argument("--tune-steps", default="60")
    parser.add_argument("--tune-rates", default="2e-3,4e-3,6e-3")
    parser.add_argument("--models-from", type=Path, default=None, help="a DATA_DIR holding converted SmolLM2")
    parser.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE",
                        help="override a preset setting (smoke runs: --set max_steps=2)")
    parser.add_argument("--keep", action="store_true", help="keep the throwaway data folder")
    parser.add_argument("--out", type=Path, default=None, help="write the results as JSON here")
    args = parser.parse_args()

    import torch

    overrides = {key: json.loads(value) for key, _, value in (item.partition("=") for item in args.set)}
    train_all, test_all = read(DATA / "train.csv"), read(DATA / "test.csv")
    picked = spread(train_all, args.train_items + args.val_items, seed=0)
    train, val = picked[:args.train_items], picked[args.train_items:]
    test = spread(test_all, args.test_items, seed=1)
    folder = Path(tempfile.mkdtemp(prefix="bench-generation-"))
    print(f"train {len(train)}, validation {len(val)} (both from train.csv), test {len(test)} (test.csv); "
          f"torch threads {torch.get_num_threads()}; {load()}", flush=True)
    results: dict[str, Any] = {"train_items": len(train), "val_items": len(val), "test_items": len(test),
                               "system_prompt": SYSTEM, "presets": {}}
    try:
        bench = Bench(folder, args.models_from)
        prepare_s = bench.prepare_base()
        print(f"base model ready in {prepare_s:.0f} s (one-time conversion when not cached); {load()}", flush=True)
        if args.tune:
            version_id = bench.version(train, val)
            grid = [{**overrides, "learning_rate": float(rate), "max_steps": int(steps)}
                    for steps in args.tune_steps.split(",") for rate in args.tune_rates.split(",")]
            results["tune"] = tune(bench, version_id, grid)
            print("SUMMARY (validation split of BANKING77 train; the test texts are not used)")
            for row in results["tune"]:
                print(f"  lr {row['learning_rate']:g} steps {row['max_steps']}: exact match {row['val_exact_match']}, "
                      f"JSON valid {row['val_json_valid']}, train {row['train_s']} s; {row['load']}")
            return 0
        scores: dict[str, Any] = {}
        for preset in [p.strip() for p in args.presets.split(",") if p.strip()]:
            started = time.perf_counter()
            version_id = bench.version(train, val)
            built = time.perf_counter() - started
            run = bench.train(version_id, preset, overrides)
            trained = time.perf_counter() - started
            metrics = bench.score(run, test)
            wall = time.perf_counter() - started
            scores[preset] = metrics
            entry = {"wall_s": round(wall, 1), "version_s": round(built, 1), "train_s": run.metrics.get("train_seconds"),
                     "run_s": round(trained - built, 1), "score_s": round(wall - trained, 1),
                     "steps": run.metrics.get("final_step"), "config": run.config, "load": load(),
                     "generation": metrics.get("generation"),
                     "validation_verdict": run.metrics.get("verdict_text"),
                     **{f"{who}_{key}": interval(metrics, who, key) for who in ("base", "adapter")
                        for key in ("exact_match", "json_valid", "chrf")},
                     "difference": {key: metrics["comparisons"]["base"][key] for key in ("exact_match", "json_valid",
                                                                                         "chrf")}}
            results["presets"][preset] = entry
            print(f"PRESET {preset}: {json.dumps(entry)}", flush=True)
        results["checks"] = checks(results, scores)
        print("SUMMARY")
        for preset, entry in results["presets"].items():
            print(f"  {preset}: wall {entry['wall_s'] / 60:.1f} min ({entry['steps']} steps, train "
                  f"{entry['train_s']} s); exact match base {entry['base_exact_match']} -> adapter "
                  f"{entry['adapter_exact_match']}; JSON valid {entry['base_json_valid']} -> {entry['adapter_json_valid']};"
                  f" chrF {entry['base_chrf']} -> {entry['adapter_chrf']}; generation "
                  f"{(entry['generation'] or {}).get('tokens_per_s')} tokens/s; {entry['load']}")
        for line in results["checks"]:
            print(f"  {line}")
        if args.out:
            args.out.write_text(json.dumps(results, indent=2))
        return 0
    finally:
        if not args.keep:
            shutil.rmtree(folder, ignore_errors=True)
        else:
            print(f"kept {folder}")


def checks(results: dict[str, Any], scores: dict[str, Any]) -> list[str]:
    from curation.evaluation import stats as es

    lines = []
    quick = results["presets"].get("quick")
    if quick:
        lines.append(f"{'MET' if quick['wall_s'] < QUICK_SECONDS else 'MISSED'}: quick under 10 min wall "
                     f"({quick['wall_s'] / 60:.1f} min; {quick['load']})")
        m = scores["quick"]
        base, adapter = m["base"]["intervals"]["exact_match"], m["adapter"]["intervals"]["exact_match"]
        gain = adapter["value"] - base["value"]
        ok = gain >= QUICK_GAIN and adapter["low"] > base["high"]
        lines.append(f"{'MET' if ok else 'MISSED'}: quick exact match >= base + 30 points with intervals apart "
                     f"(base {base['value']:.3f} [{base['low']:.3f}, {base['high']:.3f}], adapter {adapter['value']:.3f} "
                     f"[{adapter['low']:.3f}, {adapter['high']:.3f}], +{gain * 100:.1f} points; {quick['load']})")
    balanced = results["presets"].get("balanced")
    if balanced:
        lines.append(f"{'MET' if balanced['wall_s'] < BALANCED_SECONDS else 'MISSED'}: balanced under 30 min wall "
                     f"({balanced['wall_s'] / 60:.1f} min; {balanced['load']})")
        if quick:
            a = scores["quick"]["predictions"]["generation_scores"]["exact_match"]
            b = scores["balanced"]["predictions"]["generation_scores"]["exact_match"]
            diff = es.paired_mean_difference(a, b, name="exact_match")
            results["balanced_vs_quick"] = diff.to_dict()
            lines.append(f"{'MET' if es.beats(diff) else 'MISSED'}: balanced better than quick on exact match "
                         f"(paired bootstrap: {diff.value:+.3f} [{diff.low:+.3f}, {diff.high:+.3f}], {diff.verdict}; "
                         f"{balanced['load']})")
    return lines


if __name__ == "__main__":
    sys.exit(main())
