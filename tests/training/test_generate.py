"""Batched greedy generation with the KV cache and JSON stopping, on a tiny Llama built from a config;
the generation verdict on hand-made metrics."""

from __future__ import annotations

import pytest
import torch

from curation.evaluation import generation_metrics as gm
from curation.evaluation import stats as es
from training import evaluate
from training.generate import JsonScanner, cut_after_json, generate_responses, max_new_tokens_for

PROMPT = [{"role": "user", "content": "question invoice refund"}]
ANSWER = '{"a": "refund"} thanks thanks hello'


def test_json_scanner_ignores_braces_in_strings_and_reads_arrays():
    assert cut_after_json('{"a": "x}y", "b": {"c": [1, 2]}} and more') == '{"a": "x}y", "b": {"c": [1, 2]}}'
    assert cut_after_json('Sure! {"q": "\\"}"} tail') == 'Sure! {"q": "\\"}"}'
    assert cut_after_json("[1, [2]] x") == "[1, [2]]"
    assert cut_after_json('{"open": 1') == '{"open": 1'
    scanner = JsonScanner()
    assert not scanner.feed('{"a"')
    assert scanner.feed(": 1}") and scanner.end == 8


@pytest.fixture(scope="module")
def memorised(tiny_models):
    """The tiny Llama trained until it answers PROMPT with ANSWER (JSON, then more words)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from training.data import encode_chat

    tokenizer = AutoTokenizer.from_pretrained(tiny_models["llama"])
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_pretrained(tiny_models["llama"])
    row, _ = encode_chat(tokenizer, PROMPT + [{"role": "assistant", "content": ANSWER}], 128)
    batch = {k: torch.tensor([v]) for k, v in row.items()}
    optimiser = torch.optim.Adam(model.parameters(), lr=1e-2)
    model.train()
    for _ in range(200):
        loss = model(**batch).loss
        loss.backward()
        optimiser.step()
        optimiser.zero_grad()
        if loss.item() < 0.01:
            break
    model.eval()
    return model, tokenizer


def test_generation_stops_at_the_end_of_the_json(memorised):
    model, tokenizer = memorised
    free = generate_responses(model, tokenizer, [PROMPT], max_new_tokens=40)
    assert free.texts[0] == ANSWER
    stopped = generate_responses(model, tokenizer, [PROMPT], max_new_tokens=40, stop_at_json=True)
    assert stopped.texts[0] == '{"a": "refund"}'
    assert stopped.new_tokens < free.new_tokens
    assert stopped.seconds > 0 and stopped.tokens_per_s > 0


def test_batched_left_padded_generation_equals_one_at_a_time(memorised):
    model, tokenizer = memorised
    prompts = [PROMPT, [{"role": "user", "content": "hello"}],
               [{"role": "user", "content": "where is my parcel please help with the late delivery"}], PROMPT]
    watch = [True, False, False, True]
    batched = generate_responses(model, tokenizer, prompts, max_new_tokens=12, stop_at_json=watch, batch_size=4)
    single = [generate_responses(model, tokenizer, [p], max_new_tokens=12, stop_at_json=w).texts[0]
              for p, w in zip(prompts, watch)]
    assert batched.texts == single
    assert batched.texts[0] == batched.texts[3] == '{"a": "refund"}'


def test_max_new_tokens_follow_the_references(tiny_models):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_models["llama"])
    longest = len(tokenizer(ANSWER, add_special_tokens=False)["input_ids"])
    assert max_new_tokens_for(tokenizer, ["hi", ANSWER], margin=3) == longest + 1 + 3
    assert max_new_tokens_for(tokenizer, [ANSWER], margin=3, cap=5) == 5
    assert max_new_tokens_for(tokenizer, []) == 256


def test_evaluate_generation_scores_base_and_adapter(memorised):
    from peft import LoraConfig, get_peft_model

    model, tokenizer = memorised
    peft_model = get_peft_model(model, LoraConfig(r=2, target_modules=["q_proj", "v_proj"]))  # B = 0: same as base
    chats = [PROMPT + [{"role": "assistant", "content": '{"a": "refund"}'}],
             [{"role": "user", "content": "hello"}, {"role": "assistant", "content": '{"a": "other"}'}]]
    metrics = evaluate.evaluate_generation(peft_model, tokenizer, [], chats, batch_size=2)
    assert metrics["adapter"]["exact_match"] == metrics["base"]["exact_match"] == 0.5
    assert metrics["verdict_metric"]["metric"] == "exact_match"
    assert metrics["generation"]["items"] == 2 and metrics["generation"]["stops_at_json"] == 2
    assert metrics["comparisons"]["base"]["exact_match"]["value"] == 0.0
    assert metrics["samples"][0]["adapter"] == '{"a": "refund"}'
    warnings = evaluate.verdict("generation", metrics)
    assert metrics["beats_baseline"] is False
    assert "no detectable difference (p = 1.00)" in warnings[0]
    peft_model.unload()  # the module-scoped model goes back to plain


def _metrics(base: list[float], adapter: list[float], metric: str = "exact_match") -> dict:
    diff = es.paired_mean_difference(base, adapter, name=metric)
    return {"adapter": {metric: sum(adapter) / len(adapter)}, "base": {metric: sum(base) / len(base)},
            "comparisons": {"base": {metric: diff.to_dict()}},
            "verdict_metric": {"metric": metric, "name": gm.METRIC_NAMES[metric], "reason": "JSON references"}}


def test_identical_outputs_give_no_detectable_difference():
    metrics = _metrics([1, 0, 1, 0] * 10, [1, 0, 1, 0] * 10)
    warnings = evaluate.verdict("generation", metrics)
    assert metrics["beats_baseline"] is False
    assert "no detectable difference (p = 1.00)" in metrics["verdict_text"]
    assert "exact match (JSON references)" in metrics["verdict_text"]
    assert len(warnings) == 1 and "does not beat the base model" in warnings[0]


def test_a_significant_gain_beats_the_base_and_a_loss_is_worse():
    gain = _metrics([0] * 40, [1] * 30 + [0] * 10)
    assert evaluate.verdict("generation", gain) == []
    assert gain["beats_baseline"] is True and gain["verdict_text"].startswith("The adapter beats the base model")
    loss = _metrics([1] * 40, [0] * 30 + [1] * 10, metric="chrf")
    warnings = evaluate.verdict("generation", loss)
    assert loss["beats_baseline"] is False and "WORSE" in warnings[0] and "chrF" in warnings[0]


def test_without_generated_responses_the_loss_decides():
    diff = es.ratio_difference([3.0] * 20, [1] * 20, [3.0] * 20, [1] * 20, name="eval_loss")
    metrics = {"adapter": {"eval_loss": 3.0}, "base": {"eval_loss": 3.0},
               "comparisons": {"base": {"eval_loss": diff.to_dict()}}}
    warnings = evaluate.verdict("generation", metrics)
    assert metrics["beats_baseline"] is False and "eval loss" in warnings[0]


def test_runs_compare_pairs_generation_metrics_on_the_same_test_items():
    from curation.models import TaskType, TrainingRun
    from training.test_scoring import compare_runs

    references = ['{"intent": "a"}'] * 30
    scored_on = {"role": "test", "test_set_version_id": 7, "text": "test set v1"}

    def run(run_id: int, responses: list[str]) -> TrainingRun:
        scores = gm.item_scores(responses, references)
        return TrainingRun(id=run_id, project_id=1, version_id=3, base_model="b", task_type=TaskType.generation,
                           metrics={"scored_on": scored_on, "predictions": {
                               "loss_sums": [1.0] * 30, "token_counts": [2] * 30, "references": references,
                               "generation_scores": scores}})

    a = run(1, ["no"] * 30)
    b = run(2, references[:27] + ["no"] * 3)
    result = compare_runs(None, None, a, b)  # same dataset version: no database read
    assert result["comparable"] is True and result["dataset_diff"] == {"same_version": 3}
    assert result["metrics"]["exact_match"]["value"] == pytest.approx(0.9)
    assert result["metrics"]["exact_match"]["verdict"].startswith("better")
    assert result["metrics"]["test_loss"]["verdict"] == "no detectable difference (p = 1.00)"
    same = compare_runs(None, None, a, run(3, ["no"] * 30))["metrics"]["exact_match"]
    assert (same["value"], same["verdict"]) == (0.0, "no detectable difference (p = 1.00)")


def test_length_batches_respect_rows_and_tokens():
    from training.generate import length_batches

    order, widths = [4, 2, 0, 1, 3], [10, 10, 20, 30, 90]
    assert length_batches(order, widths, rows=2, tokens=1000) == [[4, 2], [0, 1], [3]]
    # 3 rows of width 30 would be 90 tokens > 60; an item wider than the budget still gets a batch
    assert length_batches(order, widths, rows=8, tokens=60) == [[4, 2, 0], [1], [3]]
    assert length_batches([], [], rows=4, tokens=10) == []


def test_item_losses_equal_the_full_logits_computation(memorised):
    """Response-position logits only, rows sorted into batches: the same per-item sums and counts as
    projecting every position of each row alone."""
    from training.data import encode_chat

    model, tokenizer = memorised
    chats = [PROMPT + [{"role": "assistant", "content": ANSWER}],
             [{"role": "user", "content": "hello"}, {"role": "assistant", "content": "hi there"}],
             [{"role": "user", "content": "where is my parcel please help with the late delivery"},
              {"role": "assistant", "content": '{"a": "late"}'}]]
    rows = [encode_chat(tokenizer, chat, 128)[0] for chat in chats]
    sums, counts = evaluate._item_losses(model, rows, batch_tokens=40)  # forces more than one batch
    for row, total, count in zip(rows, sums, counts, strict=True):
        ids, labels = torch.tensor([row["input_ids"]]), torch.tensor([row["labels"]])
        with torch.no_grad():
            logits = model(input_ids=ids).logits[0, :-1]
        expected = torch.nn.functional.cross_entropy(logits, labels[0, 1:], ignore_index=-100, reduction="sum")
        assert count == int((labels[0, 1:] != -100).sum()) > 0
        assert total == pytest.approx(float(expected), rel=1e-4)


def test_item_losses_without_logits_to_keep_are_the_same(memorised):
    """A model whose forward does not take `logits_to_keep` (older remote code) gets every position
    projected, with the same losses."""
    from training.data import encode_chat

    model, tokenizer = memorised

    class NoLogitsToKeep(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.inner = model

        def forward(self, input_ids, attention_mask):  # noqa: ANN001 - the old signature
            return self.inner(input_ids=input_ids, attention_mask=attention_mask)

    rows = [encode_chat(tokenizer, PROMPT + [{"role": "assistant", "content": ANSWER}], 128)[0]]
    (old_sums, old_counts), (sums, counts) = evaluate._item_losses(NoLogitsToKeep(), rows), evaluate._item_losses(model, rows)
    assert old_counts == counts and old_sums == pytest.approx(sums, rel=1e-5)
