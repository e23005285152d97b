"""The project's embedding path against plain `SentenceTransformer.encode` in fp32, in one run.

Same 5,000 BANKING77 texts (../shared/datasets/banking77/train.csv, CC BY 4.0), same packaged
all-MiniLM-L6-v2, models loaded before timing:
- baseline: `SentenceTransformer.encode(texts, normalize_embeddings=True)` (fp32, batch 32);
- ours, cold: `curation.embeddings.embed_texts` into an empty cache (bf16 autocast where the CPU has
  native bf16, batches of 128 by length; includes writing the cache);
- ours, warm: the same call again from a fresh cache object (as a new process would), unchanged data.
Prints the throughput ratio (target >= 1.8x), the mean cosine to the fp32 vectors (target >= 0.995)
and warm vs cold (target >= 50x).

    .venv/bin/python bench/embed.py [--n 5000]
"""

from __future__ import annotations

import argparse
import csv
import tempfile
import time
from pathlib import Path

import numpy as np

from curation.embeddings.encode import (
    BATCH_SIZE,
    EmbeddingCache,
    bf16_is_fast,
    embed_texts,
    load_model,
    resolve_model,
)

TEXTS = Path(__file__).resolve().parents[1].parent / "shared" / "datasets" / "banking77" / "train.csv"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=5000)
    args = parser.parse_args()
    with TEXTS.open(encoding="utf-8") as handle:
        texts = [row["text"] for row in csv.DictReader(handle)][: args.n]
    import torch
    from sentence_transformers import SentenceTransformer

    plain = SentenceTransformer(resolve_model(), device="cpu")
    load_model()  # ours, loaded outside the timing as well
    plain.encode(texts[:32])
    embed_texts(texts[:32], use_cache=False)

    start = time.perf_counter()
    reference = plain.encode(texts, normalize_embeddings=True)
    t_plain = time.perf_counter() - start

    with tempfile.TemporaryDirectory() as root:
        start = time.perf_counter()
        cold = embed_texts(texts, cache=EmbeddingCache(root=Path(root)))
        t_cold = time.perf_counter() - start
        start = time.perf_counter()
        warm = embed_texts(texts, cache=EmbeddingCache(root=Path(root)))
        t_warm = time.perf_counter() - start
    assert cold.encoded == len(texts) and warm.encoded == 0
    cosine = (cold.vectors * reference).sum(axis=1)
    assert np.allclose(warm.vectors, cold.vectors)

    print(
        f"{len(texts):,} BANKING77 texts, all-MiniLM-L6-v2 (packaged), torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads, bf16 autocast: {bf16_is_fast()}, batch {BATCH_SIZE} by length"
    )
    print(f"  SentenceTransformer.encode fp32: {t_plain:7.2f} s  ({len(texts) / t_plain:6.1f} texts/s)")
    print(f"  ours, cold (empty cache):        {t_cold:7.2f} s  ({len(texts) / t_cold:6.1f} texts/s)")
    print(f"  ours, warm (unchanged data):     {t_warm:7.3f} s")
    print(
        f"  throughput ratio {t_plain / t_cold:.2f}x (target >= 1.8x); "
        f"mean cosine to fp32 {cosine.mean():.5f} "
        f"(min {cosine.min():.5f}; target >= 0.995); warm re-run {t_cold / t_warm:.0f}x faster than cold "
        f"(target >= 50x)"
    )


if __name__ == "__main__":
    main()
