"""From an approved dataset version to tokenised train/eval sets.

Classification: `text` -> input ids, `label` -> class index (the version's label order).
Generation: chat `messages` rendered through the tokenizer's chat template; the loss is on the
assistant turns only (every other token's label is -100), found from the template's own rendering
of each prefix, so it works for any template whose renderings of prefixes are prefixes.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

import torch

IGNORE = -100
LOSS_ROLES = ("assistant",)  # the turns whose tokens carry the loss; every other token's label is IGNORE
# ChatML, the format of SmolLM2's own template; used when a tokenizer has none (tiny test models).
CHATML = (
    "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + "
    "'<|im_end|>' + '\n' }}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)


def ensure_chat_template(tokenizer: Any) -> None:
    if not getattr(tokenizer, "chat_template", None):
        tokenizer.chat_template = CHATML


def chat_template_facts(tokenizer: Any) -> dict[str, Any]:
    """The chat template a generation run renders its chats with: its text, the SHA-256 of that text
    (UTF-8) and where it came from (the base's tokenizer, or the ChatML fallback of this module)."""
    own = getattr(tokenizer, "chat_template", None)
    ensure_chat_template(tokenizer)
    template = str(tokenizer.chat_template)
    return {"template": template, "sha256": hashlib.sha256(template.encode("utf-8")).hexdigest(),
            "source": "the base model's tokenizer" if own else "ChatML fallback (the base's tokenizer has none)"}


def masking_facts(*splits: Encoded | None) -> dict[str, Any]:
    """How the loss was masked in the encoded splits: the roles whose tokens are supervised, the
    label of the others, and the supervised and total token counts (after truncation)."""
    tokens = sum(s.tokens for s in splits if s is not None)
    supervised = sum(s.loss_tokens for s in splits if s is not None)
    roles = ", ".join(LOSS_ROLES)
    return {"loss_on": list(LOSS_ROLES), "ignore_index": IGNORE, "tokens": tokens, "supervised_tokens": supervised,
            "supervised_share": round(supervised / tokens, 4) if tokens else 0.0,
            "text": f"loss on {roles} tokens only (each {roles} turn's content and its end-of-turn marker, "
                    f"as the template renders them); every other token (other turns, the turn headers) is "
                    f"labelled {IGNORE}: {supervised:,} of {tokens:,} tokens "
                    f"({supervised / tokens if tokens else 0:.1%}) carry the loss"}


def label_names(dataset: Any, labels: list[str] | None = None) -> list[str]:
    """The class names: the version's label set, plus any label found in the data, in order."""
    names = list(labels or [])
    for split in dataset.values():
        for label in split["label"]:
            if label is not None and label not in names:
                names.append(label)
    return names


@dataclass
class Encoded:
    """Tokenised rows of one split with what the preflight reports."""

    rows: list[dict[str, list[int] | int]]
    tokens: int = 0
    truncated: int = 0
    loss_tokens: int = 0
    lengths: list[int] = field(default_factory=list)

    @property
    def truncation_share(self) -> float:
        return self.truncated / len(self.rows) if self.rows else 0.0

    @property
    def loss_share(self) -> float:
        return self.loss_tokens / self.tokens if self.tokens else 0.0


def encode_classification(split: Any, tokenizer: Any, names: list[str], max_length: int) -> Encoded:
    index = {name: i for i, name in enumerate(names)}
    texts = [t or "" for t in split["text"]]
    full = tokenizer(texts, truncation=False, add_special_tokens=True)["input_ids"] if texts else []
    out = Encoded(rows=[])
    for ids, label in zip(full, split["label"]):
        if label is None:
            continue
        out.truncated += len(ids) > max_length
        if len(ids) > max_length:
            ids = ids[: max_length - 1] + [ids[-1]]  # keep [SEP]/</s>
        out.rows.append({"input_ids": ids, "attention_mask": [1] * len(ids), "labels": index[label]})
        out.tokens += len(ids)
        out.loss_tokens += 1
        out.lengths.append(len(ids))
    return out


def render_chat(tokenizer: Any, messages: list[dict[str, str]]) -> tuple[str, list[tuple[int, int]]]:
    """The chat rendered through the template, and the character spans of the turns that carry the
    loss (LOSS_ROLES: the assistant's)."""
    ensure_chat_template(tokenizer)
    full = tokenizer.apply_chat_template(messages, tokenize=False)
    spans: list[tuple[int, int]] = []
    for i, message in enumerate(messages):
        if message.get("role") not in LOSS_ROLES:
            continue
        prefix = tokenizer.apply_chat_template(messages[:i], tokenize=False, add_generation_prompt=True) if i else ""
        upto = tokenizer.apply_chat_template(messages[: i + 1], tokenize=False)
        if not full.startswith(upto) or not upto.startswith(prefix):
            raise ValueError("the chat template does not render prefixes as prefixes; cannot mask the loss")
        spans.append((len(prefix), len(upto)))
    return full, spans


def encode_chat(tokenizer: Any, messages: list[dict[str, str]], max_length: int) -> tuple[dict[str, list[int]], bool]:
    text, spans = render_chat(tokenizer, messages)
    encoded = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
    ids, offsets = encoded["input_ids"], encoded["offset_mapping"]
    labels = [tok if any(start >= a and start < b for a, b in spans) else IGNORE
              for tok, (start, _end) in zip(ids, offsets)]
    truncated = len(ids) > max_length
    ids, labels = ids[:max_length], labels[:max_length]
    return {"input_ids": ids, "attention_mask": [1] * len(ids), "labels": labels}, truncated


def encode_generation(split: Any, tokenizer: Any, max_length: int) -> Encoded:
    out = Encoded(rows=[])
    for messages in split["messages"]:
        if not messages:
            continue
        row, truncated = encode_chat(tokenizer, messages, max_length)
        out.rows.append(row)
        out.truncated += truncated
        out.tokens += len(row["input_ids"])
        out.loss_tokens += sum(1 for label in row["labels"] if label != IGNORE)
        out.lengths.append(len(row["input_ids"]))
    return out


class Collator:
    """Pads a batch to its longest row (right padding); labels pad with -100 for generation."""

    def __init__(self, pad_id: int, generation: bool) -> None:
        self.pad_id = pad_id
        self.generation = generation

    def __call__(self, rows: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
        width = max(len(r["input_ids"]) for r in rows)
        ids = torch.full((len(rows), width), self.pad_id, dtype=torch.long)
        mask = torch.zeros((len(rows), width), dtype=torch.long)
        for i, r in enumerate(rows):
            n = len(r["input_ids"])
            ids[i, :n] = torch.tensor(r["input_ids"])
            mask[i, :n] = 1
        batch = {"input_ids": ids, "attention_mask": mask}
        if self.generation:
            labels = torch.full((len(rows), width), IGNORE, dtype=torch.long)
            for i, r in enumerate(rows):
                labels[i, : len(r["labels"])] = torch.tensor(r["labels"])
            batch["labels"] = labels
        else:
            batch["labels"] = torch.tensor([r["labels"] for r in rows], dtype=torch.long)
        return batch


class ListDataset(torch.utils.data.Dataset):
    def __init__(self, rows: list[dict[str, Any]]) -> None:
        self.rows = rows

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, i: int) -> dict[str, Any]:
        return self.rows[i]


def eval_prompts(split: Any, limit: int = 5) -> list[list[dict[str, str]]]:
    """Fixed eval prompts for side-by-side generations: each chat up to its last assistant turn."""
    prompts = []
    for messages in split["messages"][: limit * 3]:
        if not messages:
            continue
        last = max((i for i, m in enumerate(messages) if m.get("role") == "assistant"), default=None)
        prompts.append(messages[:last] if last else messages)
        if len(prompts) == limit:
            break
    return prompts
