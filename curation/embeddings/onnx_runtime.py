"""The CPU embedding path: a sentence-transformers model run by ONNX Runtime (fp32, or int8 weights).

Why: on 2 cores (no native bf16 on this CPU), all-MiniLM-L6-v2 on 3,000 BANKING77 texts, batches of
128 by length, one run; near-duplicate pairs at the app's threshold (0.95) compared with fp32 torch:

    path                                       texts/s  cosine to fp32 (mean / 1st pct)  near-dup pairs kept
    torch fp32 (the previous path)               72     1.0000                            910 of 910
    ONNX Runtime fp32 ("onnx", the default)      96     1.0000                            910 of 910
    ONNX Runtime, int8 attention weights        103     0.9985 / 0.9972                   855 of 910
    ONNX Runtime, int8 feed-forward weights     119     0.9948 / 0.9900                   671 of 910
    ONNX Runtime, int8 MatMul weights          135     0.9933 / 0.9879                   649 of 910
      ("onnx-int8", opt-in)

(load average 3.7 while measuring, a training alongside: the ratios carry over, not the rates. On a
CPU with AMX, torch under bf16 autocast ran 69 texts/s against 92 for ONNX fp32 and 144 for int8.)
The int8 model clears issue 16's cosine bar (>= 0.99) but moves every pairwise cosine by up to ~0.01,
and BANKING77 has many paraphrase pairs right at 0.95: it finds only 71% of the fp32 near-duplicate
pairs, a material change, so it is not the default. Label issues barely move (`bench/embed.py`: top-F
overlap 0.98). ORT's BERT graph fusion made int8 slower here; quantising the embedding lookup too was
slower and no closer. optimum-onnx (sentence-transformers' own `backend="onnx"`) needs transformers
< 4.58 and cannot be installed here, so the export is done with torch directly.

How, once per model, variant and DATA_DIR: the model's transformer and its mean pooling are exported
with `torch.onnx.export` (for int8, the MatMul weights are then quantised per output channel with
`onnxruntime.quantization.quantize_dynamic`), and the result is checked against the fp32 torch
vectors of the first texts it is asked to encode (up to `CHECK_TEXTS`): it is used only when their
mean cosine is at least `MIN_MEAN_COSINE`, otherwise the model stays on torch. Files:
`DATA_DIR/models/onnx/<model key>/<variant>.onnx` and `<variant>-check.json` (the verdict with its
figures), written atomically, so two processes preparing the same model at once are safe. Only
models made of a Transformer and mean pooling (optionally Normalize) are exported; any other layout
stays on torch.
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
# Rows per ONNX Runtime call: 4,000 BANKING77 texts on 2 quiet cores ran 286, 287, 290 and 236 texts/s
# at 16, 32, 64 and 128 (the torch path: 186-197 at every size), so batches stop at 64.
BATCH_SIZE = 64
MIN_MEAN_COSINE = 0.99
INPUTS = ("input_ids", "attention_mask", "token_type_ids")
VARIANTS = ("fp32", "int8")

_prepare_lock = threading.Lock()


def model_dir(base_key: str) -> Path:
    return get_settings().data_dir / "models" / "onnx" / base_key


def model_path(base_key: str, variant: str) -> Path:
    return model_dir(base_key) / f"{variant}.onnx"


def read_check(base_key: str, variant: str) -> dict[str, Any] | None:
    """The check of this model and variant ({"usable": bool, "reason" or the cosine figures}), None
    before the first."""
    try:
        return dict(json.loads((model_dir(base_key) / f"{variant}-check.json").read_text()))
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


def _write_check(base_key: str, variant: str, check: dict[str, Any]) -> None:
    _write_atomic(model_dir(base_key) / f"{variant}-check.json", lambda p: p.write_text(json.dumps(check, indent=1)))


def unsupported_reason(encoder: Any) -> str | None:
    """Why this SentenceTransformer cannot be exported (None when it can)."""
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


def _export(encoder: Any, path: Path, variant: str) -> None:
    """transformer + mean pooling -> ONNX fp32 at `path`, or for "int8" with int8 MatMul weights."""
    import torch

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
        if variant == "fp32":
            os.replace(fp32, path)
            return
        from onnxruntime.quantization import QuantType, quantize_dynamic

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


def run(encoder: Any, base_key: str, variant: str, texts: Sequence[str], batch_size: int,
        progress: Callable[[int, int], None] | None = None) -> np.ndarray:
    """Unit vectors (float32, n x dim) from the exported model; batches of `batch_size` by length."""
    path = model_path(base_key, variant)
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


def prepare(encoder: Any, base_key: str, variant: str, probe: Sequence[str]) -> bool:
    """Export (and for int8 quantise) and check the model once (see the module docstring); whether
    it is usable. `probe`: texts to check on (the first `CHECK_TEXTS` are used)."""
    with _prepare_lock:
        check = read_check(base_key, variant)
        if check is not None and (not check["usable"] or model_path(base_key, variant).exists()):
            return bool(check["usable"])
        reason = unsupported_reason(encoder)
        if reason is not None:
            _write_check(base_key, variant, {"usable": False, "reason": reason})
            return False
        try:
            _export(encoder, model_path(base_key, variant), variant)
        except Exception as error:  # noqa: BLE001 - an exporter or quantiser limit: the model stays on torch
            _write_check(base_key, variant, {"usable": False,
                                             "reason": f"export failed: {type(error).__name__}: {error}"[:500]})
            return False
        texts = list(probe[:CHECK_TEXTS]) or ["a short text", "and a somewhat longer one"]
        reference = encoder.encode(texts, normalize_embeddings=True, batch_size=64, convert_to_numpy=True,
                                   show_progress_bar=False)
        cosine = (run(encoder, base_key, variant, texts, 64) * reference).sum(axis=1)
        usable = float(cosine.mean()) >= MIN_MEAN_COSINE
        _write_check(base_key, variant, {
            "usable": usable, "texts": len(texts), "mean_cosine": float(cosine.mean()),
            "min_cosine": float(cosine.min()), "p1_cosine": float(np.percentile(cosine, 1)),
            "reason": None if usable else f"mean cosine to fp32 under {MIN_MEAN_COSINE}"})
        return usable
