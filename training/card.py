"""The model card: README.md with YAML metadata next to the adapter.

It opens with a short section for people (what the adapter is, its base, the dataset version, the
verdict against the baselines, and any warning), then the details: how to load it, the base model's
origin and precision, for generation the chat template (text and SHA-256) and the loss masking, the
sample generations of base and adapter, the dataset version (id, hash, approver, counts per source
and licence, agreement) and the evaluation with its intervals. `base_model` in the metadata is the
hub id the weights correspond to (e.g. HuggingFaceTB/SmolLM2-135M-Instruct), with the local origin
beside it (`base_model_origin`)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml


def _plain(value: Any) -> Any:
    return json.loads(json.dumps(value, default=str))


def card_metadata(run: Any, config: Any, provenance: dict[str, Any], metrics: dict[str, Any], base_path: str,
                  labels: list[str], meta: dict[str, Any] | None = None) -> dict[str, Any]:
    """The YAML metadata. `meta` is the run's metadata file (training.run: base origin, and for
    generation the chat template and loss masking); without it the base is named as the run has it."""
    meta = meta or {}
    origin = meta.get("base_origin") or {"name": run.base_model, "local_path": base_path, "hub_id": None}
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
    scored = metrics.get("scored_on") or {}
    evaluation = {
        "scored_on": {k: scored.get(k) for k in ("role", "test_set_version_id", "number", "content_hash", "items")
                      if k in scored},
        "objective": (metrics.get("objective") or {}).get("text"),
        "intervals": {key: _interval_texts(metrics[key].get("intervals") or {})
                      for key in ("adapter", "probe_baseline", "majority_baseline", "base") if metrics.get(key)},
        "versus_baselines": {key: {m: f"{d['value']:+.4f} [{d['low']:+.4f}, {d['high']:+.4f}], {d['test']}, "
                                      f"p = {d['p_value']:.3g}"
                                   for m, d in comparison.items() if isinstance(d, dict) and "value" in d}
                             for key, comparison in (metrics.get("comparisons") or {}).items()},
    }
    generation: dict[str, Any] = {}
    if task == "generation":
        template = meta.get("chat_template") or {}
        generation = {
            "chat_template": {"sha256": template.get("sha256"), "source": template.get("source")},
            "loss_masking": {k: v for k, v in (meta.get("loss_masking") or {}).items()},
            "samples": len(metrics.get("samples") or []),
        }
    return _plain({
        "library_name": "peft",
        # the hub id the weights correspond to; a local folder of unknown origin is named by its path
        "base_model": origin.get("hub_id") or run.base_model or base_path,
        "base_model_origin": origin,
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
        "evaluation": evaluation,
        "beats_baseline": metrics.get("beats_baseline"),
        **generation,
    })


def _interval_texts(intervals: dict[str, Any]) -> dict[str, str]:
    return {key: f"{v['value']:.4f} [{v['low']:.4f}, {v['high']:.4f}] (95% bootstrap, n = {v['n']})"
            for key, v in intervals.items() if isinstance(v, dict) and "value" in v}


def _verdict(meta: dict[str, Any], metrics: dict[str, Any], warnings: list[str]) -> str:
    """One sentence for people: how the adapter compares with its baselines."""
    task = meta.get("task_type") or ""
    against = "the base model" if task == "generation" else "its baselines"
    beats = metrics.get("beats_baseline")
    if beats is True:
        return f"beats {against} (the paired difference excludes 0 in the adapter's favour)."
    if beats is False:
        return f"does not beat {against}: see the warning below." if warnings else f"does not beat {against}."
    return "not compared (no held-out data to compare on)."


def _fence(text: str) -> str:
    """A code fence long enough not to be closed by backticks inside `text`."""
    ticks = 3
    while "`" * ticks in text:
        ticks += 1
    return "`" * ticks


def _sample_text(value: Any) -> str:
    return str(value if value is not None else "").strip() or "(empty)"


def write_model_card(adapter_dir: Path, *, run: Any, config: Any, provenance: dict[str, Any], metrics: dict[str, Any],
                     warnings: list[str], base_path: str, labels: list[str],
                     meta: dict[str, Any] | None = None) -> Path:
    meta = {"task_type": str(run.task_type), **(meta or {})}
    card_meta = card_metadata(run, config, provenance, metrics, base_path, labels, meta)
    origin = card_meta["base_model_origin"]
    generation = str(run.task_type) == "generation"
    method = "DoRA" if config.dora else "LoRA"
    lines = ["---", yaml.safe_dump(card_meta, sort_keys=False, allow_unicode=True).rstrip(), "---", ""]
    lines.append(f"# {method} adapter: training run {run.id}")
    lines.append("")
    # --- for people: what it is, base, data, verdict
    version = f"{provenance.get('project') or 'project'} v{provenance.get('number')}"
    lines += [
        f"- **What it is:** a {method} adapter ({run.task_type}, preset {run.preset}) trained by the LoRA "
        "Curation Workbench on an approved dataset version.",
        f"- **Base model:** `{card_meta['base_model']}`"
        + (f" (loaded from `{origin.get('local_path')}`)" if origin.get("local_path") else "")
        + (f"; {origin['precision']}" if origin.get("precision") else "") + ".",
        f"- **Data:** dataset version {version} (id {provenance.get('version_id')}, {provenance.get('item_count')} "
        f"items, SHA-256 `{str(provenance.get('content_hash') or '')[:12]}…`), approved by "
        f"{provenance.get('approved_by') or 'nobody'}.",
        f"- **Verdict:** {_verdict(meta, metrics, warnings)}",
        "",
    ]
    for warning in warnings:
        lines.append(f"> **Warning:** {warning}")
        lines.append("")
    lines += [
        "## Load it", "",
        "```python",
        "from peft import PeftModel",
        "from training.models import load_adapter  # the workbench's loader (rebuilds the base + head)",
        f"model, tokenizer, meta = load_adapter('{adapter_dir.parent}')",
        "# or, for a generation adapter, with transformers only:",
        f"# base = AutoModelForCausalLM.from_pretrained('{base_path}')",
        f"# model = PeftModel.from_pretrained(base, '{adapter_dir}')",
        "```", "",
        "## Base model", "",
    ]
    for key, value in origin.items():
        if value is not None:
            lines.append(f"- **{key}**: {value}")
    if generation:
        template = meta.get("chat_template") or {}
        masking = meta.get("loss_masking") or {}
        text = str(template.get("template") or "")
        fence = _fence(text)
        lines += ["", "## Chat template and loss masking", "",
                  f"Chats were rendered with this template ({template.get('source', 'source unknown')}), SHA-256 "
                  f"`{template.get('sha256')}`; prompt the adapter through the same template.", "",
                  f"{fence}jinja", text, fence, "",
                  f"**Loss masking:** {masking.get('text', 'not recorded')}.", ""]
        samples = metrics.get("samples") or []
        lines += ["## Sample generations: base vs adapter", ""]
        if not samples:
            lines += ["No samples (no held-out prompts).", ""]
        for number, sample in enumerate(samples, start=1):
            prompt = sample.get("prompt")
            prompt_text = "\n".join(f"{m.get('role')}: {m.get('content')}" for m in prompt) \
                if isinstance(prompt, list) else str(prompt)
            lines.append(f"### Sample {number}")
            lines.append("")
            for title, value in (("Prompt", prompt_text), ("Base", sample.get("base")),
                                 ("Adapter", sample.get("adapter")), ("Reference", sample.get("reference"))):
                if title == "Reference" and value is None:
                    continue
                body = _sample_text(value)
                fence = _fence(body)
                lines += [f"**{title}:**", "", f"{fence}text", body, fence, ""]
    lines += ["## Dataset version", ""]
    for key, value in card_meta["dataset_version"].items():
        lines.append(f"- **{key}**: {json.dumps(value, ensure_ascii=False, default=str)}")
    evaluation = card_meta["evaluation"]
    scored = evaluation["scored_on"]
    lines += ["", "## Evaluation", ""]
    if scored.get("role") == "test":
        lines.append(f"Scored once, at the end of the run, on the approved **test set v{scored['number']}** "
                     f"(id {scored['test_set_version_id']}, {scored['items']} items, SHA-256 `{scored['content_hash']}`). "
                     "The dataset version's held-out split was used for early stopping only.")
    else:
        lines.append("No test set: scored on the dataset version's held-out split, which also chose the early "
                     "stopping (optimistic) and changes with the data.")
    lines.append("")
    if evaluation.get("objective"):
        lines += [f"**Objective:** {evaluation['objective']}", ""]
    for system, texts in evaluation["intervals"].items():
        for metric, text in texts.items():
            lines.append(f"- {system} {metric}: {text}")
    for baseline, diffs in evaluation["versus_baselines"].items():
        for metric, text in diffs.items():
            lines.append(f"- adapter − {baseline} ({metric}): {text}")
    lines += ["", "```json",
              json.dumps({k: v for k, v in metrics.items() if k not in ("samples", "predictions")}, indent=2,
                         default=str)[:20000], "```", ""]
    path = adapter_dir / "README.md"
    path.write_text(with_preference_section("\n".join(lines), metrics), encoding="utf-8")  # issue 11, item 7
    return path


PREFERENCE_START, PREFERENCE_END = "<!-- human-preference -->", "<!-- /human-preference -->"


def with_preference_section(card: str, metrics: dict[str, Any]) -> str:
    """The card text with its blind human preference result (metrics["preference"], written by
    curation/evaluation/preference.py) in the YAML front matter (`human_preference`) and as a section
    between markers, replacing an earlier one; unchanged when the run has no round with judgements.
    Used when the card is written and again when a round's result changes."""
    record = metrics.get("preference") or {}
    rate = record.get("win_rate")
    if not rate:
        return card
    alpha = "undefined" if record.get("alpha") is None else f"{record['alpha']:.3f}"
    summary = {"round_id": record.get("round_id"), "system_a": record.get("system_a"),
               "system_b": record.get("system_b"), "prompts": record.get("prompts"),
               "judgements": record.get("judgements"),
               "win_rate": f"{rate['value']:.4f} [{rate['low']:.4f}, {rate['high']:.4f}] (95% bootstrap over prompts)",
               "tie_rate": record.get("tie_rate"), "both_bad_rate": record.get("both_bad_rate"),
               "krippendorff_alpha": record.get("alpha"), "verdict": record.get("verdict"),
               "prompt_source": record.get("prompt_source")}
    section = "\n".join([
        PREFERENCE_START, "## Human preference (blind)", "",
        f"Round {record.get('round_id')}: annotators compared **{record.get('system_a')}** (A) with "
        f"**{record.get('system_b')}** (B) on {record.get('prompts')} prompts of {record.get('prompt_source')}, "
        "without knowing which system wrote which response, in an order drawn per annotator.", "",
        f"- win rate of A: {summary['win_rate']}, ties and 'both bad' counted as half; {record.get('verdict')}",
        f"- judgements: {record.get('judgements')} (ties {record.get('tie_rate', 0):.3f}, both bad "
        f"{record.get('both_bad_rate', 0):.3f}); Krippendorff's alpha {alpha}", PREFERENCE_END])
    if PREFERENCE_START in card and PREFERENCE_END in card:
        head, rest = card.split(PREFERENCE_START, 1)
        card = head + section + rest.split(PREFERENCE_END, 1)[1]
    else:
        card = card.rstrip("\n") + "\n\n" + section + "\n"
    if card.startswith("---\n"):
        _, front, body = card.split("---\n", 2)
        meta = yaml.safe_load(front) or {}
        meta["human_preference"] = _plain(summary)
        card = "---\n" + yaml.safe_dump(meta, sort_keys=False, allow_unicode=True) + "---\n" + body
    return card


def read_card_metadata(adapter_dir: Path) -> dict[str, Any]:
    text = (Path(adapter_dir) / "README.md").read_text(encoding="utf-8")
    _, front, _ = text.split("---\n", 2)
    return yaml.safe_load(front)
