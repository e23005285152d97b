"""A finished classification run's adapter as a suggestion model (issue 12, item 4): label
probabilities for a project's texts, which curation.embeddings.suggest writes as suggestions of
`model:run-N`. training.cli installs `predict_with_run` there (the core never imports training).

Texts are tokenised as in training (truncated to the run's max_length, keeping the last special
token) and classified in batches of similar length; `progress(done, total)` follows the texts.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from sqlalchemy.engine import Engine

from curation.errors import Conflict, InputError
from training.config import TrainConfig
from training.store import get_run

CHUNK = 256  # texts per progress report


def predict_with_run(engine: Engine, project_id: int, run_id: int, texts: list[str],
                     progress: Callable[[int, int], None] | None = None) -> tuple[list[str], np.ndarray]:
    """(the run's labels in its class order, probabilities (len(texts), labels)) from run `run_id`'s
    adapter. Raises Conflict for a run that has not succeeded or has no adapter, InputError for a run of
    another project or a generation run."""
    from training import evaluate, models

    run = get_run(engine, run_id)
    if run.project_id != project_id:
        raise InputError(f"run {run_id} belongs to another project")
    if str(run.task_type) != "classification":
        raise InputError(f"run {run_id} is a {run.task_type} run: only a classification adapter suggests labels")
    if str(run.status) != "succeeded" or not run.output_dir:
        raise Conflict(f"Run {run_id} is {run.status}: only a finished run with its adapter can suggest labels.")
    model, tokenizer, meta = models.load_adapter(run.output_dir)
    labels = [str(label) for label in meta["labels"]]
    max_length = TrainConfig.from_dict(run.config).max_length
    total = len(texts)
    if progress is not None:
        progress(0, total)
    parts: list[np.ndarray] = []
    for start in range(0, total, CHUNK):
        rows = encode_texts(tokenizer, texts[start:start + CHUNK], max_length)
        parts.append(evaluate.predict_proba(model, rows))
        if progress is not None:
            progress(min(start + CHUNK, total), total)
    probs = np.concatenate(parts) if parts else np.zeros((0, len(labels)))
    return labels, probs


def encode_texts(tokenizer: Any, texts: list[str], max_length: int) -> list[dict[str, Any]]:
    """Rows for `evaluate.predict_proba`: token ids truncated like training's (the last special token
    kept), a full attention mask and a placeholder label (the collator wants one; nothing reads it)."""
    rows = []
    for ids in tokenizer([t or "" for t in texts], truncation=False, add_special_tokens=True)["input_ids"]:
        if not ids:  # an empty text under a tokenizer without special tokens: one unknown token
            ids = [tokenizer.unk_token_id or 0]
        if len(ids) > max_length:
            ids = ids[: max_length - 1] + [ids[-1]]
        rows.append({"input_ids": ids, "attention_mask": [1] * len(ids), "labels": 0})
    return rows
