"""Near-duplicate search: ours (`curation.dedup.near_duplicate_pairs`) against exact faiss range search.

100k random 384-d unit vectors with 1,000 planted near-duplicate pairs (cosine drawn from 0.96-0.995),
threshold 0.95 (the default). Both run in this process, one after the other; the ratio is exact time /
our time, recall is over the planted pairs. Then the same against cleanlab's near-duplicate check
(Datalab, issue type "near_duplicate") at 20k vectors with 200 planted pairs.

    .venv/bin/python bench/dedup.py [--n 100000] [--pairs 1000] [--cleanlab-n 20000]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from curation.embeddings.dedup import DEFAULT_THRESHOLD, near_duplicate_pairs

TARGET_SPEED_UP = 30.0  # issue 16: keep 30x over exact faiss range search at 100k
TARGET_RECALL = 0.99


def planted(n: int, pairs: int, dim: int = 384, seed: int = 0) -> tuple[np.ndarray, set[tuple[int, int]]]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, dim)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    rows = rng.permutation(n)[: 2 * pairs].reshape(pairs, 2)
    cosines = rng.uniform(0.96, 0.995, size=pairs)
    for (a, b), c in zip(rows, cosines):
        u = rng.normal(size=dim).astype(np.float32)
        u -= (u @ x[a]) * x[a]
        u /= np.linalg.norm(u)
        x[b] = c * x[a] + np.sqrt(1 - c * c) * u
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return x, {(int(min(a, b)), int(max(a, b))) for a, b in rows}


def exact_faiss(x: np.ndarray, threshold: float) -> set[tuple[int, int]]:
    import faiss

    index = faiss.IndexFlatIP(x.shape[1])
    index.add(x)
    lims, _d, labels = index.range_search(x, float(np.nextafter(np.float32(threshold), np.float32(-1))))
    rows = np.repeat(np.arange(len(x)), np.diff(lims).astype(np.int64))
    return {(int(min(a, b)), int(max(a, b))) for a, b in zip(rows, labels) if a != b}


def recall(found: set[tuple[int, int]], truth: set[tuple[int, int]]) -> float:
    return len(found & truth) / len(truth)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--pairs", type=int, default=1_000)
    parser.add_argument("--cleanlab-n", type=int, default=20_000)
    args = parser.parse_args()
    threshold = DEFAULT_THRESHOLD

    x, truth = planted(args.n, args.pairs)
    start = time.perf_counter()
    ours = {tuple(p) for p in near_duplicate_pairs(x, threshold).tolist()}
    t_ours = time.perf_counter() - start
    start = time.perf_counter()
    exact = exact_faiss(x, threshold)
    t_exact = time.perf_counter() - start
    print(f"{args.n:,} x 384 vectors, {args.pairs:,} planted pairs, threshold {threshold}")
    print(
        f"  ours (faiss IVF + exact verification): {t_ours:7.2f} s  recall {recall(ours, truth):.4f}  "
        f"pairs {len(ours):,}"
    )
    print(
        f"  exact faiss range search:              {t_exact:7.2f} s  recall {recall(exact, truth):.4f}  "
        f"pairs {len(exact):,}"
    )
    speed_up, found = t_exact / t_ours, recall(ours, truth)
    print(
        f"{'MET' if speed_up >= TARGET_SPEED_UP else 'MISSED'}: speed-up {speed_up:.1f}x over exact faiss "
        f"(target >= {TARGET_SPEED_UP:.0f}x); ours finds {len(ours & exact) / max(1, len(exact)):.4f} of the exact pairs"
    )
    print(
        f"{'MET' if found >= TARGET_RECALL else 'MISSED'}: recall of ours {found:.4f} (target >= {TARGET_RECALL})"
    )

    n = args.cleanlab_n
    pairs = max(1, args.pairs * n // args.n)
    x, truth = planted(n, pairs, seed=1)
    start = time.perf_counter()
    ours = {tuple(p) for p in near_duplicate_pairs(x, threshold).tolist()}
    t_ours = time.perf_counter() - start
    from cleanlab import Datalab

    start = time.perf_counter()
    lab = Datalab(data={"id": list(range(n))}, verbosity=0)
    lab.find_issues(features=x, issue_types={"near_duplicate": {}})
    t_clean = time.perf_counter() - start
    sets = lab.get_info("near_duplicate").get("near_duplicate_sets", [])
    found = {(int(min(i, j)), int(max(i, j))) for i, others in enumerate(sets) for j in others}
    print(f"{n:,} x 384 vectors, {pairs} planted pairs")
    print(f"  ours:                        {t_ours:7.2f} s  recall {recall(ours, truth):.4f}")
    print(f"  cleanlab Datalab near_duplicate: {t_clean:7.2f} s  recall {recall(found, truth):.4f}")
    print(f"  speed-up {t_clean / t_ours:.1f}x")


if __name__ == "__main__":
    main()
