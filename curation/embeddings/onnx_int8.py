"""The CPU embedding path: a sentence-transformers model run by ONNX Runtime with int8 weights.

Why: on 2 cores, all-MiniLM-L6-v2 on 3,000 BANKING77 texts, batches of 128 by length, the same run
(`bench/embed.py` re-measures it against plain fp32 `SentenceTransformer.encode`):

    path                                          texts/s   cosine to fp32 (mean / 1st pct / min)
    torch, bf16 autocast (AMX), the previous path   69      1.0000
    ONNX Runtime fp32                               92      1.0000
    ONNX Runtime, int8 MatMul weights (kept)       144      0.9933 / 0.9879 / 0.9811
    int8 after ORT's BERT graph fusion             130      0.9933 (fusion made it slower here)
    int8 on every op incl. the embedding Gather    124      0.9930
    uint8 weights, per tensor                      111      0.9837

(load average 3.6-4 while measuring: the ratios, not the rates, are what carries over; optimum-onnx,
sentence-transformers' own `backend="onnx"`, needs transformers < 4.58 and cannot be installed here.)

How, once per model and DATA_DIR: the model's transformer and its mean pooling are exported with
`torch.onnx.export`, the MatMul weights quantised to int8 per output channel
(`onnxruntime.quantization.quantize_dynamic`), and the result checked against the fp32 torch vectors
of the first texts it is asked to encode (up to `CHECK_TEXTS`): it is used only when their mean
cosine is at least `MIN_MEAN_COSINE` (the bar issue 16 sets), otherwise the model stays on torch.
Files: `DATA_DIR/models/onnx-int8/<model key>/model.onnx` and `check.json` (the verdict with its
figures); both are written atomically, so two processes preparing the same model at once are safe.
Only models made of a Transformer and mean pooling (optionally Normalize) are exported; any other
layout stays on torch, and so does a machine with CUDA.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import uuid
import warnings
from collections.abc import Callable, Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from curation.settings import get_settings

CHECK_TEXTS = 256
MIN_MEAN_COSINE = 0.99
INPUTS = ("input_ids", "attention_mask", "token_type_ids")

_prepare_lock = threading.Lock()


def model_dir(base_key: str) -> Path:
    return get_settings().data_dir / "models" / "onnx-int8" / base_key


def read_check(base_key: str) -> dict[str, Any] | None:
    """The model's check ({"usable": bool, "reason" or the cosine figures}), None before the first."""
    try:
        return dict(json.loads((model_dir(base_key) / "check.json").read_text()))
    except (OSError, ValueError):
        return None


def _write_atomic(path: Path, write: Callable[[Path], None]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _write_check(base_key: str, check: dict[str, Any]) -> None:
    _write_atomic(model_dir(base_key) / "check.json", lambda p: p.write_text(json.dumps(check, indent=1)))


def unsupported_reason(encoder: Any) -> str | None:
    """Why this SentenceTransformer cannot take the int8 path (None when it can)."""
    from sentence_transformers import models

    modules = list(encoder)
    if not modules or not isinstance(modules[0], models.Transformer):
        return "the first module is not a Transformer"
    if len(modules) < 2 or not isinstance(modules[1], models.Pooling):
        return "no pooling module after the Transformer"
    config = modules[1].get_config_dict()
    # sentence-transformers >= 6 names the mode ("pooling_mode": "mean"); earlier ones set flags
    mode = config.get("pooling_mode") or ",".join(
        k.removeprefix("pooling_mode_") for k, v in config.items() if k.startswith("pooling_mode_") and v is True)
    if mode not in ("mean", "mean_tokens") or not config.get("include_prompt", True):
        return f"pooling {mode or 'none'} (only mean pooling over every token is exported)"
    if any(not isinstance(m, models.Normalize) for m in modules[2:]):
        return "modules after pooling other than Normalize"
    return None


def _export(encoder: Any, path: Path) -> None:
    """transformer + mean pooling -> ONNX (fp32) -> int8 MatMul weights at `path`."""
    import torch
    from onnxruntime.quantization import QuantType, quantize_dynamic

    transformer = encoder[0].auto_model.float().eval()
    sample = encoder[0].tokenizer(["a short text", "and a somewhat longer one"], padding=True, return_tensors="pt")
    names = [name for name in INPUTS if name in sample]

    class MeanPooled(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.transformer = transformer

        def forward(self, *tensors: torch.Tensor) -> torch.Tensor:
            inputs = dict(zip(names, tensors, strict=True))
            hidden = self.transformer(**inputs).last_hidden_state
            mask = inputs["attention_mask"].unsqueeze(-1).to(hidden.dtype)
            return (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)

    path.parent.mkdir(parents=True, exist_ok=True)
    fp32 = path.with_name(f".fp32-{uuid.uuid4().hex[:8]}.onnx")
    try:
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation and tracer notes
            torch.onnx.export(MeanPooled(), tuple(sample[name] for name in names), str(fp32), input_names=names,
                              output_names=["embedding"], opset_version=17, dynamo=False,
                              dynamic_axes={**{name: {0: "batch", 1: "tokens"} for name in names},
                                            "embedding": {0: "batch"}})
        # MatMul only: quantising the embedding lookup as well was slower and no closer (module docstring)
        logging.disable(logging.WARNING)  # the quantiser's advice to pre-process, logged on the root logger
        try:
            _write_atomic(path, lambda p: quantize_dynamic(str(fp32), str(p), weight_type=QuantType.QInt8,
                                                           per_channel=True, op_types_to_quantize=["MatMul"]))
        finally:
            logging.disable(logging.NOTSET)
    finally:
        fp32.unlink(missing_ok=True)


@lru_cache(maxsize=4)
def _session(path: str, mtime_ns: int) -> Any:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3  # errors only
    return ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])


def run_int8(encoder: Any, base_key: str, texts: Sequence[str], batch_size: int,
             progress: Callable[[int, int], None] | None = None) -> np.ndarray:
    """Unit vectors (float32, n x dim) from the int8 model; batches of `batch_size` by length."""
    path = model_dir(base_key) / "model.onnx"
    session = _session(str(path), path.stat().st_mtime_ns)
    names = [i.name for i in session.get_inputs()]
    tokenizer, max_length = encoder[0].tokenizer, encoder.max_seq_length
    n = len(texts)
    dim = (getattr(encoder, "get_embedding_dimension", None) or encoder.get_sentence_embedding_dimension)()
    out = np.zeros((n, dim), dtype=np.float32)
    order = np.argsort([len(t) for t in texts], kind="stable")[::-1]
    done = 0
    for start in range(0, n, batch_size):
        idx = order[start : start + batch_size]
        tokens = tokenizer([texts[i] for i in idx], padding=True, truncation=True, max_length=max_length,
                           return_tensors="np")
        vectors = session.run(None, {name: tokens[name].astype(np.int64) for name in names})[0]
        out[idx] = vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
        done += len(idx)
        if progress:
            progress(done, n)
    return out


def prepare(encoder: Any, base_key: str, probe: Sequence[str]) -> bool:
    """Export, quantise and check the model once (see the module docstring); whether it is usable.
    `probe`: texts to check on (the first `CHECK_TEXTS` are used)."""
    with _prepare_lock:
        check = read_check(base_key)
        if check is not None and (not check["usable"] or (model_dir(base_key) / "model.onnx").exists()):
            return bool(check["usable"])
        reason = unsupported_reason(encoder)
        if reason is not None:
            _write_check(base_key, {"usable": False, "reason": reason})
            return False
        try:
            _export(encoder, model_dir(base_key) / "model.onnx")
        except Exception as error:  # noqa: BLE001 - an exporter or quantiser limit: the model stays on torch
            _write_check(base_key, {"usable": False, "reason": f"export failed: {type(error).__name__}: {error}"[:500]})
            return False
        texts = list(probe[:CHECK_TEXTS]) or ["a short text", "and a somewhat longer one"]
        reference = encoder.encode(texts, normalize_embeddings=True, batch_size=64, convert_to_numpy=True,
                                   show_progress_bar=False)
        cosine = (run_int8(encoder, base_key, texts, 64) * reference).sum(axis=1)
        usable = float(cosine.mean()) >= MIN_MEAN_COSINE
        _write_check(base_key, {"usable": usable, "texts": len(texts), "mean_cosine": float(cosine.mean()),
                                "min_cosine": float(cosine.min()), "p1_cosine": float(np.percentile(cosine, 1)),
                                "reason": None if usable else f"mean cosine to fp32 under {MIN_MEAN_COSINE}"})
        return usable
