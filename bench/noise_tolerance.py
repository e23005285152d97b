"""Which classification training default tolerates the label noise curation leaves? (issue 13, item 7)

BANKING77 train only: its stratified 80% part (seed 0, `efficacy.validation_part`) is the training
pool, optionally cut to `--train-size` rows (stratified again); the other 20% of train, with its true
labels, is the validation set every candidate is scored on. BANKING77's test split is never read.
15% of the pool's labels are flipped to a confusable intent (`efficacy.add_noise`, seed 1), the pool
is imported, versioned and trained through the app's own code (`efficacy.train_and_test`) with the
`--preset` preset plus each candidate's overrides, for `--seeds` training seeds.

Printed per candidate: validation accuracy per seed and its mean; then each candidate against the
current default on the same items and seed (McNemar's exact test, paired bootstrap interval of the
difference, `curation.evaluation.stats`): "better" only when the test rejects and the interval
excludes 0. A candidate is worth a default only if it is better on every seed and worse on none.

    python bench/noise_tolerance.py [--train-size 4000] [--seeds 2] [--preset balanced]
                                    [--candidates default smoothing filter] [--data-dir DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import efficacy  # noqa: E402  (bench/efficacy.py: the same import, noise, version and training code)

CANDIDATES: dict[str, dict[str, Any]] = {
    "default": {},
    "smoothing": {"label_smoothing": 0.1},
    "filter": {"small_loss_filter": 0.1},
    "smoothing+filter": {"label_smoothing": 0.1, "small_loss_filter": 0.1},
}


def held_out(rows: list[tuple[str, str]], kept: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """The rows of train not in its 80% part (duplicates of a kept text are left out too)."""
    taken = {text for text, _ in kept}
    return [row for row in rows if row[0] not in taken]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--train-size", type=int, default=4000, help="training rows (0: the whole 80%% part)")
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument("--preset", default="balanced")
    parser.add_argument("--candidates", nargs="+", default=["default", "smoothing", "filter"], choices=list(CANDIDATES))
    parser.add_argument("--noise", default="confusable", choices=["confusable", "uniform"])
    parser.add_argument("--data-dir", help="DATA_DIR to use (keeps the embedding cache); default: a temp dir")
    args = parser.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="bench-noise-tolerance-"))
    os.environ["DATA_DIR"] = args.data_dir or str(tmp / "data")
    os.environ["LOAD_DEMO"] = "false"
    from curation.embeddings.encode import embed_texts
    from curation.evaluation.stats import compare_classifiers

    train = efficacy.read(efficacy.DATA / "train.csv")
    part = efficacy.validation_part(train)
    validation = held_out(train, part)
    pool = efficacy.stratified(part, args.train_size)
    texts, clean = [t for t, _ in pool], [label for _, label in pool]
    vectors = embed_texts(texts, None).vectors
    noisy = efficacy.add_noise(clean, args.noise, vectors, seed=1)
    flips = sum(a != b for a, b in zip(clean, noisy))
    print(f"BANKING77 train: {len(pool)} training rows ({flips} flipped, {args.noise}), {len(validation)} "
          f"validation rows (true labels; test split unused); preset {args.preset}; {efficacy.load()}", flush=True)

    results: dict[str, list[dict[str, Any]]] = {}
    for name in args.candidates:
        results[name] = []
        for seed in range(args.seeds):
            folder = tmp / f"{name}-{seed}"
            folder.mkdir()
            world = efficacy.World(folder)
            project_id = world.import_project(f"noisy-{name}-{seed}", texts, noisy, folder)
            details: dict[str, Any] = {}
            started = time.perf_counter()
            accuracy = efficacy.train_and_test(world, project_id, validation, args.preset, seed,
                                               overrides=CANDIDATES[name], details=details,
                                               scored_on="validation")
            details.update(accuracy=accuracy, minutes=(time.perf_counter() - started) / 60)
            results[name].append(details)
        mean = sum(d["accuracy"] for d in results[name]) / len(results[name])
        print(f"  {name} {CANDIDATES[name]}: validation accuracy "
              + ", ".join(f"{d['accuracy']:.4f}" for d in results[name]) + f" (mean {mean:.4f})", flush=True)

    print(f"\n== against the current default, per seed, same validation items ({efficacy.load()})")
    verdicts: dict[str, list[str]] = {}
    if "default" in results:
        for name in (n for n in results if n != "default"):
            verdicts[name] = []
            for seed, (a, b) in enumerate(zip(results["default"], results[name])):
                # correctness vectors as predictions of a 2-class "right/wrong" task: truth is all ones
                truth = [1] * len(a["correct"])
                diff = compare_classifiers(truth, [int(c) for c in a["correct"]], [int(c) for c in b["correct"]],
                                           ["wrong", "right"])["accuracy"]
                verdicts[name].append(diff.verdict)
                print(f"  {name} - default, seed {seed}: {diff.value:+.4f} [{diff.low:+.4f}, {diff.high:+.4f}], "
                      f"p = {diff.p_value:.3g}: {diff.verdict}", flush=True)
    for name, words in verdicts.items():
        better = all(w == "better" for w in words)
        print(f"{'HELPS' if better else 'NOT ADOPTED'}: {name} ({', '.join(words)})")
    print(json.dumps({k: [{**d, "correct": None} for d in v] for k, v in results.items()}), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
