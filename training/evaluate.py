"""Evaluation on the version's eval split, against baselines measured in the same run.

Classification: accuracy, macro-F1, per-label F1 and the confusion matrix of the adapter, a
majority-class baseline and a logistic regression on the frozen base's embeddings (the linear
probe). Generation: the loss of the reference responses, and batched greedy responses of the base
(adapter disabled) and of the adapter to every prompt, scored against the references (exact match,
chrF, ROUGE-L, JSON/format validity) with intervals and paired differences. `verdict` says whether
the adapter beats its baselines by a detectable margin, and warns prominently when it does not.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
import torch

from curation.embeddings.quality import out_of_sample_probabilities
from curation.evaluation import generation_metrics as gm
from curation.evaluation import stats as es
from training.generate import BATCH_ROWS, generate_responses, length_batches, max_new_tokens_for

PROBE_C = 10.0
SAMPLE_COUNT = 5  # side-by-side samples kept for the page and the model card


def classification_metrics(y_true: list[int], y_pred: list[int], names: list[str]) -> dict[str, Any]:
    from sklearn.metrics import confusion_matrix, f1_score

    if not y_true:
        return {}
    labels = list(range(len(names)))
    per_label = f1_score(y_true, y_pred, labels=labels, average=None, zero_division=0)
    present = sorted(set(y_true))
    return {
        "accuracy": float(np.mean(np.array(y_true) == np.array(y_pred))),
        "macro_f1": float(f1_score(y_true, y_pred, labels=present, average="macro", zero_division=0)),
        "per_label_f1": {names[i]: float(per_label[i]) for i in labels},
        "confusion": confusion_matrix(y_true, y_pred, labels=labels).tolist(),
    }


def _map_batches(rows: list[dict[str, Any]], size: int, fn: Any) -> torch.Tensor:
    """fn(input_ids, attention_mask) -> (batch, ...) float tensor over `rows` in batches of similar
    length (far less padding), returned in the order of `rows`; (0, 1) when there are none."""
    from training.data import Collator

    if not rows:
        return torch.zeros((0, 1))
    collate = Collator(0, generation=False)
    order = sorted(range(len(rows)), key=lambda i: len(rows[i]["input_ids"]))
    parts = []
    for start in range(0, len(order), size):
        batch = collate([rows[i] for i in order[start:start + size]])
        parts.append(fn(batch["input_ids"], batch["attention_mask"]).float().cpu())
    stacked = torch.cat(parts)
    out = torch.empty_like(stacked)
    out[torch.tensor(order)] = stacked
    return out


@torch.no_grad()
def embeddings(model: Any, rows: list[dict[str, Any]], batch_size: int = 64) -> np.ndarray:
    """Pooled embeddings (rows x hidden) of the (frozen) encoder of an EncoderClassifier."""
    device = next(model.parameters()).device
    model.eval()
    return _map_batches(rows, batch_size, lambda ids, mask: model.embed(ids.to(device), mask.to(device))).numpy()


def small_loss_suspects(vectors: np.ndarray, labels: np.ndarray, count: int, seed: int = 0) -> np.ndarray:
    """Indices (ascending) of the `count` rows whose given label is least likely under out-of-fold
    probabilities of a softmax regression on `vectors` (n x d, unit rows; curation's label-issue
    classifier, up to 5 folds): the small-loss filter's suspects. A label's only row cannot be judged
    out of fold, so it is never a suspect (and the others are judged without it). Empty when count is 0
    or fewer than 2 labels have 2 rows or more."""
    _, dense = np.unique(labels, return_inverse=True)
    judged = np.flatnonzero(np.bincount(dense)[dense] >= 2)
    present, judged_labels = np.unique(dense[judged], return_inverse=True)
    if count <= 0 or len(present) < 2:
        return np.zeros(0, dtype=np.int64)
    probs, _ = out_of_sample_probabilities(np.asarray(vectors, dtype=np.float32)[judged], judged_labels, seed=seed)
    given = probs[np.arange(len(judged)), judged_labels]
    return np.sort(judged[np.argsort(given, kind="stable")[:count]])


def drop_suspected(model: Any, rows: Any, share: float, seed: int = 0) -> int:
    """Small-loss filter: remove from `rows` (an Encoded, changed in place) the `share` of its rows
    that `small_loss_suspects` finds on the frozen encoder's (normalised) embeddings. Returns how many
    were removed."""
    y = np.array([r["labels"] for r in rows.rows], dtype=np.int64)
    count = int(round(share * len(y)))
    if count == 0:
        return 0
    x = embeddings(model, rows.rows)
    x = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
    drop = set(small_loss_suspects(x, y, count, seed).tolist())
    rows.rows = [r for i, r in enumerate(rows.rows) if i not in drop]
    return len(drop)


def fit_probe(model: Any, train_rows: list[dict[str, Any]], eval_rows: list[dict[str, Any]] | None,
              num_labels: int, test_rows: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """Logistic regression on the frozen embeddings: the baseline an adapter must beat, and the
    head's starting point. Returns weight/bias (num_labels rows) and its eval (and test) predictions."""
    from sklearn.linear_model import LogisticRegression

    y = np.array([r["labels"] for r in train_rows])
    classes = sorted(set(y.tolist()))
    result: dict[str, Any] = {"weight": None, "bias": None, "eval_pred": None, "test_pred": None}
    if len(classes) < 2:
        return result
    x = embeddings(model, train_rows)
    probe = LogisticRegression(C=PROBE_C, max_iter=1000).fit(x, y)
    weight = np.zeros((num_labels, x.shape[1]), dtype=np.float32)
    bias = np.full(num_labels, -10.0, dtype=np.float32)  # labels absent from train: never predicted
    coef, intercept = probe.coef_, probe.intercept_
    if len(classes) == 2:  # sklearn's binary form: one row for the positive class
        coef = np.vstack([-coef[0] / 2, coef[0] / 2])
        intercept = np.array([-intercept[0] / 2, intercept[0] / 2])
    for row, label in enumerate(probe.classes_):
        weight[label], bias[label] = coef[row], intercept[row]
    result.update(weight=weight.tolist(), bias=bias.tolist())
    if eval_rows:
        result["eval_pred"] = probe.predict(embeddings(model, eval_rows)).tolist()
    if test_rows:
        result["test_pred"] = probe.predict(embeddings(model, test_rows)).tolist()
    return result


@torch.no_grad()
def predict_proba(model: Any, rows: list[dict[str, Any]], batch_size: int = 64) -> np.ndarray:
    """Label probabilities (rows x labels), in the order of `rows`."""
    device = next(model.parameters()).device
    model.eval()
    return _map_batches(rows, batch_size, lambda ids, mask: torch.softmax(
        model(input_ids=ids.to(device), attention_mask=mask.to(device)).logits.float(), -1)).numpy()


BASELINES = (("probe_baseline", "a logistic regression on the frozen embeddings (linear probe)"),
             ("majority_baseline", "always predicting the majority class"))


def score_classification(y_true: list[int], predictions: dict[str, list[int]], names: list[str],
                         seed: int = 0) -> dict[str, Any]:
    """Metrics of each system in `predictions` ("adapter" and baselines) on the same items, each with
    95% bootstrap intervals, and the paired comparison of the adapter (B) with each baseline (A):
    accuracy by McNemar's exact test, F1 by paired bootstrap. Keeps the per-item predictions so two
    runs can later be compared item by item."""

    metrics: dict[str, Any] = {"labels": names}
    for key, pred in predictions.items():
        metrics[key] = classification_metrics(y_true, pred, names)
        metrics[key]["intervals"] = es.to_plain(es.classification_intervals(y_true, pred, names, seed=seed))
    metrics["comparisons"] = {key: es.to_plain(es.compare_classifiers(y_true, predictions[key],
                                                                      predictions["adapter"], names, seed=seed))
                              for key, _ in BASELINES if key in predictions}
    metrics["predictions"] = {"y_true": list(y_true), **{k: list(v) for k, v in predictions.items()}}
    return metrics


def evaluate_classification(model: Any, eval_rows: list[dict[str, Any]], names: list[str],
                            train_rows: list[dict[str, Any]], probe: dict[str, Any] | None,
                            probe_pred: list[int] | None = None) -> dict[str, Any]:
    """The adapter, the majority class (of train) and the linear probe on `eval_rows`. `probe_pred`:
    the probe's predictions on these rows (default: the probe's eval predictions)."""
    if not eval_rows:
        return {"note": "no eval split: nothing to evaluate on"}
    y_true = [int(r["labels"]) for r in eval_rows]
    y_pred = predict_proba(model, eval_rows).argmax(-1).tolist()
    majority = Counter(int(r["labels"]) for r in train_rows).most_common(1)[0][0]
    predictions: dict[str, list[int]] = {"adapter": y_pred, "majority_baseline": [majority] * len(y_true)}
    if probe_pred is None and probe:
        probe_pred = probe.get("eval_pred")
    if probe_pred is not None:
        predictions["probe_baseline"] = [int(p) for p in probe_pred]
    metrics = score_classification(y_true, predictions, names)
    metrics["majority_baseline"]["label"] = names[majority]
    return metrics


def _item_losses(model: Any, rows: list[dict[str, Any]], batch_tokens: int = 4096) -> tuple[list[float], list[int]]:
    """Per item: the summed cross-entropy of its response tokens and their count (so the mean loss
    over items is token-weighted, and a bootstrap can resample items). Rows go in batches of similar
    length (at most `batch_tokens` tokens with padding), and the vocabulary projection runs only at
    the positions that predict a response token (`logits_to_keep`): the prompt is most of a chat."""
    from training.data import Collator

    device = next(model.parameters()).device
    collate = Collator(0, generation=True)
    sums: list[float] = [0.0] * len(rows)
    counts: list[int] = [0] * len(rows)
    order = sorted(range(len(rows)), key=lambda i: len(rows[i]["input_ids"]))
    widths = [len(rows[i]["input_ids"]) for i in order]
    for members in length_batches(order, widths, 64, batch_tokens):
        batch = {k: v.to(device) for k, v in collate([rows[i] for i in members]).items()}
        targets = batch["labels"][:, 1:]  # position p predicts token p + 1
        keep = (targets != -100).any(0).nonzero().flatten()
        logits = _logits_at(model, batch, keep).float()
        kept = targets[:, keep]
        loss = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.size(-1)), kept.reshape(-1),
                                                 ignore_index=-100, reduction="none").view(kept.shape)
        for row, item in enumerate(members):
            sums[item] = float(loss[row].sum())
            counts[item] = int((kept[row] != -100).sum())
    return sums, counts


def _logits_at(model: Any, batch: dict[str, torch.Tensor], positions: torch.Tensor) -> torch.Tensor:
    """(batch, len(positions), vocab) logits. A model whose forward lacks `logits_to_keep` (older remote
    code) projects every position, and the positions are taken after."""
    inputs = {"input_ids": batch["input_ids"], "attention_mask": batch["attention_mask"]}
    try:
        return model(**inputs, logits_to_keep=positions).logits
    except TypeError as error:
        if "logits_to_keep" not in str(error):
            raise
        return model(**inputs).logits[:, positions]


@torch.no_grad()
def generate(model: Any, tokenizer: Any, messages: list[dict[str, str]], max_new_tokens: int = 64) -> str:
    """One greedy response (the playground's single prompt); evaluation uses the batched
    `training.generate.generate_responses`."""
    return generate_responses(model, tokenizer, [messages], max_new_tokens=max_new_tokens).texts[0]


def generation_options(objective: dict[str, Any] | None) -> dict[str, Any]:
    """evaluate_generation's keyword arguments from the project's objective: the metric the verdict
    follows, the response format (for format validity) and whether to embed (embedding cosine)."""
    objective = objective or {}
    fmt = objective.get("format")
    return {"objective_metric": objective.get("metric"),
            "response_format": gm.parse_format(fmt["kind"], fmt["spec"]) if fmt else None,
            "embeddings": objective.get("metric") == "embedding_cosine"}


@contextmanager
def merged(model: Any) -> Iterator[None]:
    """The LoRA update merged into the base weights while inside (decoding then runs one matmul per
    linear layer instead of three and the LoRA bookkeeping: on CPU each decode step is dominated by
    small ops), unmerged after. Not for quantised bases (merging into 4-bit weights loses precision)."""
    quantised = any(p.dtype in (torch.uint8, torch.int8) for p in model.parameters())
    if quantised or not hasattr(model, "merge_adapter"):
        yield
        return
    model.merge_adapter()
    try:
        yield
    finally:
        model.unmerge_adapter()


def split_chats(chats: list[Any]) -> tuple[list[list[dict[str, str]]], list[str]]:
    """Prompts (each chat up to its last assistant turn) and references (that turn's content) of the
    chats that have an assistant turn after some other turn; others are skipped."""
    prompts, references = [], []
    for messages in chats:
        if not messages:
            continue
        last = max((i for i, m in enumerate(messages) if m.get("role") == "assistant"), default=None)
        if not last:
            continue
        prompts.append(list(messages[:last]))
        references.append(str(messages[last].get("content") or ""))
    return prompts, references


@torch.no_grad()
def evaluate_generation(model: Any, tokenizer: Any, eval_rows: list[dict[str, Any]],
                        chats: list[Any], *, objective_metric: str | None = None,
                        response_format: Any = None, embeddings: bool = False, score_generations: bool = True,
                        batch_size: int = BATCH_ROWS, sample_count: int = SAMPLE_COUNT) -> dict[str, Any]:
    """Base (adapter disabled) vs adapter on the same items: the loss of the reference responses
    (token-weighted, with intervals) and, when `score_generations`, greedy responses to every chat's
    prompt scored against its reference (exact match, chrF, ROUGE-L; JSON validity for JSON
    references; format validity with a `response_format`; embedding cosine when `embeddings`), each
    with a 95% interval and the paired difference adapter - base. `chats`: the split's message lists
    (in the order of `eval_rows`). `objective_metric` names the metric the verdict follows; when it
    is not a generation metric measured here, exact match for JSON/short references, else chrF.
    Without `score_generations` only `sample_count` prompts are generated, as side-by-side samples."""
    model.eval()
    metrics: dict[str, Any] = {}
    if eval_rows:
        adapter_sums, counts = _item_losses(model, eval_rows)
        with model.disable_adapter():
            base_sums, _ = _item_losses(model, eval_rows)
        for key, sums in (("adapter", adapter_sums), ("base", base_sums)):
            interval = es.ratio_interval(sums, counts)
            metrics[key] = {"eval_loss": interval.value, "perplexity": _ppl(interval.value),
                            "intervals": {"eval_loss": interval.to_dict()}}
        metrics["comparisons"] = {"base": {"eval_loss": es.ratio_difference(
            base_sums, counts, adapter_sums, counts, name="eval_loss").to_dict()}}
        metrics["predictions"] = {"loss_sums": adapter_sums, "base_loss_sums": base_sums, "token_counts": counts}
    prompts, references = split_chats(chats)
    if not score_generations:
        prompts, references = prompts[:sample_count], references[:sample_count]
    if prompts:
        stop_json = [gm.parse_json(r)[0] or getattr(response_format, "kind", None) == "json_schema"
                     for r in references]
        max_new = max_new_tokens_for(tokenizer, references)
        with model.disable_adapter():
            base = generate_responses(model, tokenizer, prompts, max_new_tokens=max_new, stop_at_json=stop_json,
                                      batch_size=batch_size)
        with merged(model):
            adapter = generate_responses(model, tokenizer, prompts, max_new_tokens=max_new, stop_at_json=stop_json,
                                         batch_size=batch_size)
        metrics["samples"] = [{"prompt": p, "reference": r, "base": b, "adapter": a} for p, r, b, a in
                              zip(prompts[:sample_count], references, base.texts, adapter.texts)]
        metrics["generation"] = {"items": len(prompts), "batch_size": batch_size, "max_new_tokens": max_new,
                                 "kv_cache": True, "stops_at_json": sum(stop_json),
                                 "tokens_per_s": round(adapter.tokens_per_s, 1),
                                 "base_tokens_per_s": round(base.tokens_per_s, 1),
                                 "new_tokens": adapter.new_tokens + base.new_tokens,
                                 "seconds": round(adapter.seconds + base.seconds, 2)}
        if score_generations:
            scores = {"base": gm.item_scores(base.texts, references, response_format=response_format,
                                             embeddings=embeddings),
                      "adapter": gm.item_scores(adapter.texts, references, response_format=response_format,
                                                embeddings=embeddings)}
            for key in ("base", "adapter"):
                entry = metrics.setdefault(key, {"intervals": {}})
                for metric, interval in gm.intervals(scores[key]).items():
                    entry[metric] = interval.value
                    entry["intervals"][metric] = interval.to_dict()
            comparisons = metrics.setdefault("comparisons", {}).setdefault("base", {})
            comparisons.update(es.to_plain(gm.compare(scores["base"], scores["adapter"])))
            chosen = objective_metric if objective_metric in scores["adapter"] else gm.default_metric(references)
            reason = "the project's objective" if chosen == objective_metric else (
                "JSON references" if gm.references_are_json(references) else
                "short references" if chosen == "exact_match" else "free-text references")
            metrics["verdict_metric"] = {"metric": chosen, "name": gm.METRIC_NAMES[chosen], "reason": reason}
            predictions = metrics.setdefault("predictions", {})
            predictions.update(responses=adapter.texts, base_responses=base.texts, references=references,
                               generation_scores=scores["adapter"], base_generation_scores=scores["base"])
    else:
        metrics["samples"] = []
    if not eval_rows and not prompts:
        metrics["note"] = "no eval split: nothing to evaluate on"
    return metrics


def _ppl(loss: float) -> float:
    return float(math.exp(min(loss, 50.0))) if loss == loss else float("nan")


def _generation_verdict(metrics: dict[str, Any]) -> list[str]:
    """"beats the base model" only when the paired bootstrap difference on the verdict metric (the
    project's objective, else exact match for JSON/short references, else chrF) excludes 0 in the
    adapter's favour; otherwise the words of the test. Without generated responses (no prompts), the
    eval loss decides the same way. Sets `beats_baseline` and `verdict_text`."""
    adapter, base = metrics.get("adapter"), metrics.get("base")
    comparisons = (metrics.get("comparisons") or {}).get("base") or {}
    chosen = metrics.get("verdict_metric") or {}
    key = chosen.get("metric") if chosen.get("metric") in comparisons else "eval_loss"
    if not (adapter and base and key in comparisons):
        metrics["beats_baseline"] = None
        metrics["verdict_text"] = "Not compared with the base model: no eval or test items."
        return [metrics["verdict_text"]]
    higher = key != "eval_loss"
    diff = es.Difference.from_dict(comparisons[key])
    name = chosen.get("name", key) if key != "eval_loss" else "eval loss"
    why = f" ({chosen.get('reason')})" if key != "eval_loss" and chosen.get("reason") else ""
    where = metrics.get("scored_on_text") or f"{diff.n} items"
    figures = (f"{name}{why}: adapter {diff.b:.3f} vs base {diff.a:.3f}, difference {diff.value:+.3f} "
               f"[{diff.low:+.3f}, {diff.high:+.3f}] on {where}")
    beats = es.beats(diff, higher_is_better=higher)
    metrics["beats_baseline"] = beats
    if beats:
        metrics["verdict_text"] = f"The adapter beats the base model ({es.format_p(diff.p_value)}, paired " \
                                  f"bootstrap) on {figures}."
        return []
    words = es.verdict(diff, higher_is_better=higher)
    metrics["verdict_text"] = f"The adapter vs the base model: {words} on {figures}."
    if es.detectable(diff):
        return [f"The adapter is WORSE than the base model on {figures}, {es.format_p(diff.p_value)}. Do not use "
                "it; revise the data or settings."]
    return [f"The adapter does not beat the base model: {words}, on {figures}. A tie is not a win: it did not "
            "learn anything measurable. Revise the data or settings (more steps, a higher learning rate)."]


def loses_to_probe(metrics: dict[str, Any]) -> bool:
    probe = metrics.get("probe_baseline")
    return bool(probe and metrics.get("adapter") and metrics["adapter"]["accuracy"] < probe["accuracy"])


@torch.no_grad()
def reset_to_probe(model: Any, probe: dict[str, Any] | None) -> None:
    """Zero every LoRA update (B matrices) and put the probe's weights into the trained head copy:
    the model then computes exactly the linear probe."""
    for name, parameter in model.named_parameters():
        if "lora_B" in name:
            parameter.zero_()
    if probe and probe.get("weight") is not None:
        for name, module in model.named_modules():
            if name.endswith("classifier.modules_to_save.default") or name.endswith("classifier.original_module") \
                    or (name.endswith("classifier") and isinstance(module, torch.nn.Linear)):
                module.weight.copy_(torch.tensor(probe["weight"], dtype=module.weight.dtype))
                module.bias.copy_(torch.tensor(probe["bias"], dtype=module.bias.dtype))


def verdict(task_type: str, metrics: dict[str, Any]) -> list[str]:
    """Warnings when the adapter does not beat its baselines, and `metrics["beats_baseline"]`: True
    only when the paired difference against every baseline is detectable and in the adapter's favour
    (its interval excludes 0); a tie is not a win."""
    warnings: list[str] = []
    if str(task_type) == "generation":
        return _generation_verdict(metrics)
    adapter = metrics.get("adapter")
    if not adapter:
        metrics["beats_baseline"] = None
        return ["No eval split: the adapter could not be compared with any baseline."]

    where = metrics.get("scored_on_text", "the eval split")
    for key, name in BASELINES:
        comparison = (metrics.get("comparisons") or {}).get(key)
        if not comparison:
            continue
        diff = es.Difference.from_dict(comparison["accuracy"])
        if es.beats(diff):
            continue
        figures = (f"accuracy {diff.b:.3f} vs {diff.a:.3f}, difference {diff.value:+.3f} "
                   f"[{diff.low:+.3f}, {diff.high:+.3f}] on {diff.n} items")
        if es.detectable(diff):
            warnings.append(f"The adapter is WORSE than {name} on {where}: {figures}, {es.format_p(diff.p_value)} "
                            "(McNemar). Prefer the baseline, or revise the data or settings.")
        else:
            warnings.append(f"The adapter does not beat {name} on {where}: {figures}; "
                            f"{es.verdict(diff)}. A tie is not a win.")
    if metrics.get("fallback"):
        fallback = metrics["fallback"]
        warnings.insert(0, f"Training did NOT beat the linear probe on the eval split (trained adapter: accuracy "
                           f"{fallback['trained_accuracy']:.3f}). The saved adapter is the probe itself (no LoRA "
                           "change, the probe's head): it matches the baseline, nothing more. More or cleaner data, "
                           "or other settings, may help.")
    metrics["beats_baseline"] = not warnings
    return warnings
