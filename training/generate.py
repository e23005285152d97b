"""Batched greedy generation for evaluation: prompts sorted by length, left-padded batches, the KV
cache on, and each row stopped at its EOS or, where its answer is JSON, at the end of the first
complete JSON value (so a model that keeps talking after `{"intent": "x"}` costs no more tokens and is
scored on the JSON alone).

`generate_responses` returns the texts in the order of the prompts with the count of new tokens and
the seconds spent, so a run can state its generation speed (tokens/s).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from transformers import StoppingCriteria, StoppingCriteriaList

from training.data import ensure_chat_template

MARGIN_TOKENS = 8  # new tokens allowed beyond the longest reference
MAX_NEW_TOKENS = 256
# Decoding a step costs about the same for 16 rows as for 128 on a CPU (it reads every weight once per
# step): SmolLM2-135M on 2 cores made 53 tokens/s in batches of 16, 81 in 64 and 105 in 128. The token
# cap keeps the KV cache of long prompts bounded (16k tokens: about 0.75 GB for SmolLM2-135M).
BATCH_ROWS = 128
BATCH_TOKENS = 16_384


class JsonScanner:
    """Feeds on text pieces; `end` becomes the index (in the text fed so far) just past the first
    complete top-level JSON object or array. Braces inside strings (with escapes) do not count."""

    def __init__(self) -> None:
        self.depth = 0
        self.in_string = False
        self.escape = False
        self.seen = 0
        self.end: int | None = None

    def feed(self, text: str) -> bool:
        """True once the first JSON value is complete."""
        if self.end is not None:
            return True
        for char in text:
            self.seen += 1
            if self.in_string:
                if self.escape:
                    self.escape = False
                elif char == "\\":
                    self.escape = True
                elif char == '"':
                    self.in_string = False
            elif char == '"' and self.depth:
                self.in_string = True
            elif char in "{[":
                self.depth += 1
            elif char in "}]" and self.depth:
                self.depth -= 1
                if self.depth == 0:
                    self.end = self.seen
                    return True
        return False


def cut_after_json(text: str) -> str:
    """`text` up to the end of its first complete JSON object/array (unchanged when there is none)."""
    scanner = JsonScanner()
    scanner.feed(text)
    return text[: scanner.end] if scanner.end is not None else text


class JsonStop(StoppingCriteria):
    """Per row: done when the new tokens close the first JSON value (rows with `watch[i]` false never
    stop here; EOS still stops them). Returns a (batch,) bool tensor, which `generate` reads per row."""

    def __init__(self, tokenizer: Any, prompt_width: int, watch: Sequence[bool]) -> None:
        self.tokenizer = tokenizer
        self.prompt_width = prompt_width
        self.watch = list(watch)
        self.scanners = [JsonScanner() for _ in watch]
        self.read = prompt_width

    def __call__(self, input_ids: torch.LongTensor, scores: Any, **kwargs: Any) -> torch.BoolTensor:
        done = torch.zeros(input_ids.shape[0], dtype=torch.bool, device=input_ids.device)
        new = input_ids[:, self.read:].tolist()
        self.read = input_ids.shape[1]
        for row, tokens in enumerate(new):
            if self.watch[row]:
                done[row] = self.scanners[row].feed(self.tokenizer.decode(tokens, skip_special_tokens=True))
        return done  # type: ignore[return-value]


def max_new_tokens_for(tokenizer: Any, references: Sequence[str], margin: int = MARGIN_TOKENS,
                       cap: int = MAX_NEW_TOKENS) -> int:
    """The longest reference in tokens (plus its end-of-turn token) and `margin`, at most `cap`; no
    references: `cap`."""
    if not references:
        return cap
    longest = max(len(ids) for ids in tokenizer(list(references), add_special_tokens=False)["input_ids"])
    return min(cap, longest + 1 + margin)


def length_batches(order: list[int], widths: list[int], rows: int, tokens: int) -> list[list[int]]:
    """`order` (ascending widths) cut into batches of at most `rows` items and `rows x widest <= tokens`
    (a single item wider than `tokens` still gets its own batch)."""
    batches: list[list[int]] = []
    current: list[int] = []
    for index, width in zip(order, widths, strict=True):
        if current and (len(current) >= rows or (len(current) + 1) * width > tokens):
            batches.append(current)
            current = []
        current.append(index)
    if current:
        batches.append(current)
    return batches


@dataclass
class Generated:
    texts: list[str]
    new_tokens: int  # generated tokens over all rows, each row counted up to its stop
    seconds: float

    @property
    def tokens_per_s(self) -> float:
        return self.new_tokens / self.seconds if self.seconds > 0 else 0.0


def render_prompts(tokenizer: Any, prompts: Sequence[list[dict[str, str]]]) -> list[list[int]]:
    ensure_chat_template(tokenizer)
    texts = [tokenizer.apply_chat_template(list(m), tokenize=False, add_generation_prompt=True) for m in prompts]
    return list(tokenizer(texts, add_special_tokens=False)["input_ids"]) if texts else []


@torch.no_grad()
def generate_responses(model: Any, tokenizer: Any, prompts: Sequence[list[dict[str, str]]], *,
                       max_new_tokens: int = 64, stop_at_json: Sequence[bool] | bool = False,
                       batch_size: int = BATCH_ROWS, batch_tokens: int = BATCH_TOKENS) -> Generated:
    """Greedy responses to chat `prompts` (each a list of messages up to the assistant's turn), in
    the order given. Rows are generated in batches of similar prompt length, left-padded, with the
    KV cache; a row stops at EOS, or (where `stop_at_json` says so) at the end of its first JSON value,
    whose text is then cut there. A batch holds at most `batch_size` rows and `batch_tokens` tokens
    (rows x (prompt width + max_new_tokens)), so long prompts come in smaller batches."""
    watch = [bool(stop_at_json)] * len(prompts) if isinstance(stop_at_json, bool) else list(stop_at_json)
    if len(watch) != len(prompts):
        raise ValueError(f"stop_at_json has {len(watch)} entries for {len(prompts)} prompts")
    encoded = render_prompts(tokenizer, prompts)
    device = next(model.parameters()).device
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    eos_ids = {tokenizer.eos_token_id, pad_id, *([tokenizer.convert_tokens_to_ids("<|im_end|>")]
                                                 if "<|im_end|>" in tokenizer.get_vocab() else [])}
    eos_ids.discard(None)
    texts: list[str] = [""] * len(prompts)
    new_tokens = 0
    was_training = model.training
    model.eval()
    started = time.perf_counter()
    order = sorted(range(len(encoded)), key=lambda i: len(encoded[i]))
    for rows in length_batches(order, [len(encoded[i]) + max_new_tokens for i in order], batch_size, batch_tokens):
        width = max(len(encoded[i]) for i in rows)
        ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
        mask = torch.zeros((len(rows), width), dtype=torch.long)
        for r, i in enumerate(rows):  # left padding: every row's last prompt token sits at the same column
            n = len(encoded[i])
            ids[r, width - n:] = torch.tensor(encoded[i])
            mask[r, width - n:] = 1
        stop = JsonStop(tokenizer, width, [watch[i] for i in rows])
        out = model.generate(input_ids=ids.to(device), attention_mask=mask.to(device), max_new_tokens=max_new_tokens,
                             do_sample=False, use_cache=True, pad_token_id=pad_id, eos_token_id=sorted(eos_ids),
                             stopping_criteria=StoppingCriteriaList([stop]))
        for r, i in enumerate(rows):
            generated = out[r, width:].tolist()
            length = next((k + 1 for k, tok in enumerate(generated) if tok in eos_ids), len(generated))
            new_tokens += length
            text = tokenizer.decode(generated[:length], skip_special_tokens=True).strip()
            texts[i] = cut_after_json(text) if watch[i] else text
    seconds = time.perf_counter() - started
    if was_training:
        model.train()
    return Generated(texts, new_tokens, seconds)
