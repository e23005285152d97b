"""The model card: README.md with YAML metadata next to the adapter, recording the base model, the
LoRA settings, the dataset version (id, hash, approver), counts per source and licence, agreement
figures and the eval metrics, with any warning about baselines at the top."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml


def _plain(value: Any) -> Any:
    return json.loads(json.dumps(value, default=str))


def card_metadata(run: Any, config: Any, provenance: dict[str, Any], metrics: dict[str, Any], base_path: str,
                  labels: list[str]) -> dict[str, Any]:
    task = str(run.task_type)
    licences = sorted((provenance.get("licences") or provenance.get("counts_per_licence") or {}).keys())
    summary: dict[str, Any] = {}
    if task == "classification" and metrics.get("adapter"):
        summary = {"accuracy": metrics["adapter"]["accuracy"], "macro_f1": metrics["adapter"]["macro_f1"]}
        if metrics.get("probe_baseline"):
            summary["probe_accuracy"] = metrics["probe_baseline"]["accuracy"]
        summary["majority_accuracy"] = metrics["majority_baseline"]["accuracy"]
    elif task == "generation" and metrics.get("adapter"):
        summary = {"eval_loss": metrics["adapter"]["eval_loss"], "perplexity": metrics["adapter"]["perplexity"],
                   "base_eval_loss": metrics["base"]["eval_loss"], "base_perplexity": metrics["base"]["perplexity"]}
    return _plain({
        "library_name": "peft",
        "base_model": run.base_model,
        "pipeline_tag": "text-classification" if task == "classification" else "text-generation",
        "tags": ["lora", "peft", "lora-curation-workbench", task],
        "dataset_licences": licences,
        "lora": {"rank": config.rank, "alpha": config.alpha, "dropout": config.dropout,
                 "target_modules": config.target_modules, "dora": config.dora, "qlora": config.qlora},
        "training": {"preset": run.preset, "epochs": config.epochs, "max_steps": config.max_steps,
                     "learning_rate": config.learning_rate, "batch_size": config.batch_size,
                     "max_length": config.max_length, "precision": config.precision, "seed": config.seed,
                     "early_stopping": config.early_stopping},
        "dataset_version": {k: provenance.get(k) for k in provenance if not isinstance(provenance.get(k), (list,))
                            or k in ("labels",)},
        "labels": labels,
        "metrics": summary,
        "beats_baseline": metrics.get("beats_baseline"),
    })


def write_model_card(adapter_dir: Path, *, run: Any, config: Any, provenance: dict[str, Any], metrics: dict[str, Any],
                     warnings: list[str], base_path: str, labels: list[str]) -> Path:
    meta = card_metadata(run, config, provenance, metrics, base_path, labels)
    lines = ["---", yaml.safe_dump(meta, sort_keys=False, allow_unicode=True).rstrip(), "---", ""]
    lines.append(f"# LoRA adapter: training run {run.id}")
    lines.append("")
    for warning in warnings:
        lines.append(f"> **Warning:** {warning}")
        lines.append("")
    lines += [
        f"A {'DoRA' if config.dora else 'LoRA'} adapter for `{run.base_model}` ({run.task_type}), trained by the "
        "LoRA Curation Workbench on an approved dataset version.", "",
        "## Load it", "",
        "```python",
        "from peft import PeftModel",
        "from training.models import load_adapter  # the workbench's loader (rebuilds the base + head)",
        f"model, tokenizer, meta = load_adapter('{adapter_dir.parent}')",
        "# or, for a generation adapter, with transformers only:",
        f"# base = AutoModelForCausalLM.from_pretrained('{base_path}')",
        f"# model = PeftModel.from_pretrained(base, '{adapter_dir}')",
        "```", "",
        "## Dataset version", "",
    ]
    for key, value in meta["dataset_version"].items():
        lines.append(f"- **{key}**: {json.dumps(value, ensure_ascii=False, default=str)}")
    lines += ["", "## Evaluation (eval split of the version)", "", "```json",
              json.dumps({k: v for k, v in metrics.items() if k != "samples"}, indent=2, default=str)[:20000],
              "```", ""]
    path = adapter_dir / "README.md"
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


def read_card_metadata(adapter_dir: Path) -> dict[str, Any]:
    text = (Path(adapter_dir) / "README.md").read_text(encoding="utf-8")
    _, front, _ = text.split("---\n", 2)
    return yaml.safe_load(front)
