"""Generation metrics on hand-made pairs, with exact answers."""

import math

import pytest

from curation.errors import InputError
from curation.evaluation import generation_metrics as gm
from curation.evaluation import stats as es


def test_exact_match_strips_whitespace_and_compares_json_as_objects():
    responses = ["  hello ", "Hello", '{ "intent":"card_arrival" }', '{"intent": "card_arrival"', "[1, 2]", "x"]
    references = ["hello", "hello", '{"intent": "card_arrival"}', '{"intent": "card_arrival"}', "[1,2]", '{"a": 1}']
    assert gm.exact_match(responses, references) == [1.0, 0.0, 1.0, 0.0, 1.0, 0.0]


def test_json_validity_and_default_metric():
    assert gm.json_valid(['{"a": 1}', '{"a": 1', "plain", " [ ] "]) == [1.0, 0.0, 0.0, 1.0]
    assert gm.references_are_json(['{"intent": "x"}', "[1]"])
    assert not gm.references_are_json(['{"intent": "x"}', "yes"])
    assert not gm.references_are_json([])
    assert gm.default_metric(['{"intent": "x"}']) == "exact_match"
    assert gm.default_metric(["yes", "no thanks"]) == "exact_match"
    assert gm.default_metric(["Thank you for writing, we will refund the card within five days"]) == "chrf"


def test_format_validity_by_regex_full_match():
    fmt = gm.parse_format("regex", r"[A-Z]{3}-\d+")
    assert gm.format_validity(["ABC-12", " ABC-12 ", "ABC-12x", "abc-1"], fmt) == [1.0, 1.0, 0.0, 0.0]


def test_format_validity_by_json_schema():
    schema = '{"type": "object", "properties": {"intent": {"type": "string"}}, "required": ["intent"], ' \
             '"additionalProperties": false}'
    fmt = gm.parse_format("json_schema", schema)
    responses = ['{"intent": "x"}', '{"intent": 3}', '{"intent": "x", "more": 1}', "not json", "{}"]
    assert gm.format_validity(responses, fmt) == [1.0, 0.0, 0.0, 0.0, 0.0]


@pytest.mark.parametrize(("kind", "spec", "message"), [
    ("regex", "([a-z]", "not a valid regular expression"),
    ("regex", "", "empty"),
    ("json_schema", "{not json", "not valid JSON"),
    ("json_schema", '{"type": "no-such-type"}', "not a valid JSON schema"),
    ("json_schema", "[1]", "must be a JSON object"),
    ("yaml", "x", "must be 'regex' or 'json_schema'"),
])
def test_bad_formats_are_input_errors_naming_the_field(kind, spec, message):
    with pytest.raises(InputError, match=message) as error:
        gm.parse_format(kind, spec, field="format_spec")
    assert error.value.field == "format_spec"
    assert "field 'format_spec'" in str(error.value)


def test_chrf_and_rouge_l_exact_values():
    assert gm.chrf(["the cat sat", "abc"], ["the cat sat", "xyz"]) == [1.0, 0.0]
    # LCS of "a b x d" and "a b c d" is 3 of 4 tokens on both sides: F = 0.75
    assert gm.rouge_l(["a b x d", "a b c d", "q"], ["a b c d", "a b c d", "r"]) == [0.75, 1.0, 0.0]


def test_item_scores_choose_metrics_and_reject_unpaired_input():
    scores = gm.item_scores(['{"intent": "a"}', "oops"], ['{"intent": "a"}', '{"intent": "b"}'])
    assert set(scores) == {"exact_match", "chrf", "rouge_l", "json_valid"}
    assert scores["exact_match"] == [1.0, 0.0]
    assert scores["json_valid"] == [1.0, 0.0]
    plain = gm.item_scores(["hi"], ["hi"], response_format=gm.parse_format("regex", "h."))
    assert set(plain) == {"exact_match", "chrf", "rouge_l", "format_validity"}
    with pytest.raises(ValueError, match="differ in length"):
        gm.item_scores(["a"], ["a", "b"])


def test_intervals_contain_the_mean():
    result = gm.intervals({"exact_match": [1, 0, 1, 1]})["exact_match"]
    assert result.value == 0.75 and result.low <= 0.75 <= result.high and result.n == 4
    empty = gm.intervals({"chrf": []})["chrf"]
    assert math.isnan(empty.value) and empty.n == 0


def test_identical_outputs_are_no_detectable_difference():
    references = ['{"intent": "a"}', '{"intent": "b"}', '{"intent": "c"}'] * 10
    responses = ['{"intent": "a"}', "nope", '{"intent": "c"}'] * 10
    a = gm.item_scores(responses, references)
    b = gm.item_scores(list(responses), references)
    differences = gm.compare(a, b)
    for diff in differences.values():
        assert (diff.value, diff.low, diff.high, diff.p_value) == (0.0, 0.0, 0.0, 1.0)
        assert diff.verdict == "no detectable difference (p = 1.00)"
        assert not es.beats(diff)


def test_a_clear_gain_is_detected():
    references = ['{"intent": "a"}'] * 40
    a = gm.item_scores(["no"] * 40, references)
    b = gm.item_scores(['{"intent": "a"}'] * 36 + ["no"] * 4, references)
    diff = gm.compare(a, b)["exact_match"]
    assert diff.value == pytest.approx(0.9)
    assert es.beats(diff) and diff.verdict.startswith("better")
