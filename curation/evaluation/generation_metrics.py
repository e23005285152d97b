"""Per-item scores of generated responses against reference responses, with intervals and paired
comparisons (the statistics of `curation.evaluation.stats`).

Metrics (each a list with one score in [0, 1] per (response, reference) pair):

- `exact_match`: 1 when the response equals the reference after stripping surrounding whitespace;
  when the reference is JSON (an object or array), both are parsed and the objects compared, so
  `{"a": 1}` and `{ "a":1 }` match. A response that does not parse never matches a JSON reference.
- `chrf`: sentence-level chrF (sacrebleu `CHRF`, character 6-grams, beta 2) divided by 100.
- `rouge_l`: ROUGE-L F-measure (rouge-score, no stemming).
- `format_validity`: 1 when the response satisfies the format: a regular expression (full match of
  the stripped response) or a JSON schema (the response parses as JSON and validates). With no
  format given: valid JSON when the references are JSON, otherwise not computed.
- `embedding_cosine`: cosine similarity of sentence embeddings of response and reference (the
  project's embedding model, curation.embeddings.encode); only when asked, it loads a model.

Everything here is Streamlit-free and deterministic for a seed. Empty input gives empty lists and
nan intervals.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from curation.embeddings.encode import encode_texts
from curation.errors import InputError
from curation.evaluation import stats as es

METRICS = ("exact_match", "json_valid", "format_validity", "chrf", "rouge_l", "embedding_cosine")
METRIC_NAMES = {"exact_match": "exact match", "json_valid": "JSON validity", "format_validity": "format validity",
                "chrf": "chrF", "rouge_l": "ROUGE-L", "embedding_cosine": "embedding cosine"}
SHORT_REFERENCE_WORDS = 5  # references this short (in words, on average) are checked by exact match


@dataclass(frozen=True)
class ResponseFormat:
    """What a response must look like: `kind` "regex" (full match) or "json_schema"; `spec` is the
    pattern, or the schema as a dict."""

    kind: str
    spec: Any

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "spec": self.spec}


def parse_format(kind: str, spec: Any, field: str = "format") -> ResponseFormat:
    """A validated ResponseFormat. A regular expression that does not compile, a schema that is not
    JSON or not a valid JSON schema, or an unknown kind: InputError naming `field`."""
    if kind == "regex":
        if not isinstance(spec, str) or not spec:
            raise InputError("the regular expression is empty", field=field)
        try:
            re.compile(spec)
        except re.error as error:
            raise InputError(f"not a valid regular expression: {error}", field=field) from error
        return ResponseFormat("regex", spec)
    if kind == "json_schema":
        schema = spec
        if isinstance(spec, str):
            try:
                schema = json.loads(spec)
            except json.JSONDecodeError as error:
                raise InputError(f"the JSON schema is not valid JSON: {error}", field=field) from error
        if not isinstance(schema, dict):
            raise InputError("the JSON schema must be a JSON object", field=field)
        import jsonschema

        try:
            jsonschema.validators.validator_for(schema).check_schema(schema)
        except jsonschema.SchemaError as error:
            raise InputError(f"not a valid JSON schema: {error.message}", field=field) from error
        return ResponseFormat("json_schema", schema)
    raise InputError(f"the format must be 'regex' or 'json_schema'; got {kind!r}", field=field)


def parse_json(text: str) -> tuple[bool, Any]:
    """(True, value) when `text` (stripped) is a JSON object or array; (False, None) otherwise."""
    stripped = text.strip()
    if not stripped or stripped[0] not in "{[":
        return False, None
    try:
        return True, json.loads(stripped)
    except json.JSONDecodeError:
        return False, None


def references_are_json(references: Sequence[str]) -> bool:
    """Every reference parses as a JSON object or array (and there is at least one)."""
    return bool(references) and all(parse_json(r)[0] for r in references)


def default_metric(references: Sequence[str]) -> str:
    """The metric a generation verdict uses when the project states none: exact match for JSON or
    short references (a checkable answer), chrF otherwise."""
    if references_are_json(references):
        return "exact_match"
    words = sum(len(r.split()) for r in references) / max(1, len(references))
    return "exact_match" if references and words <= SHORT_REFERENCE_WORDS else "chrf"


def exact_match(responses: Sequence[str], references: Sequence[str]) -> list[float]:
    _check(responses, references)
    out = []
    for response, reference in zip(responses, references):
        is_json, expected = parse_json(reference)
        if is_json:
            ok, got = parse_json(response)
            out.append(float(ok and got == expected))
        else:
            out.append(float(response.strip() == reference.strip()))
    return out


def json_valid(responses: Sequence[str]) -> list[float]:
    return [float(parse_json(r)[0]) for r in responses]


def format_validity(responses: Sequence[str], response_format: ResponseFormat) -> list[float]:
    if response_format.kind == "regex":
        pattern = re.compile(response_format.spec)
        return [float(pattern.fullmatch(r.strip()) is not None) for r in responses]
    import jsonschema

    validator = jsonschema.validators.validator_for(response_format.spec)(response_format.spec)
    out = []
    for response in responses:
        try:
            value = json.loads(response.strip())
        except json.JSONDecodeError:
            out.append(0.0)
            continue
        out.append(float(validator.is_valid(value)))
    return out


def chrf(responses: Sequence[str], references: Sequence[str]) -> list[float]:
    from sacrebleu.metrics import CHRF

    _check(responses, references)
    scorer = CHRF()
    return [scorer.sentence_score(r, [ref]).score / 100.0 for r, ref in zip(responses, references)]


def rouge_l(responses: Sequence[str], references: Sequence[str]) -> list[float]:
    from rouge_score import rouge_scorer

    _check(responses, references)
    scorer = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=False)
    return [float(scorer.score(ref, r)["rougeL"].fmeasure) for r, ref in zip(responses, references)]


def embedding_cosine(responses: Sequence[str], references: Sequence[str], model: str | None = None) -> list[float]:
    """Cosine of the unit sentence embeddings (encode_texts normalises them)."""
    _check(responses, references)
    if not responses:
        return []
    a = encode_texts(list(responses), model)
    b = encode_texts(list(references), model)
    return [float(x) for x in (a * b).sum(axis=1)]


def _check(responses: Sequence[str], references: Sequence[str]) -> None:
    if len(responses) != len(references):
        raise ValueError(f"responses and references differ in length: {len(responses)} vs {len(references)}")


def item_scores(responses: Sequence[str], references: Sequence[str], *,
                response_format: ResponseFormat | None = None, embeddings: bool = False,
                embedding_model: str | None = None) -> dict[str, list[float]]:
    """{metric: per-item scores} for the pairs. `json_valid` only when the references are JSON;
    `format_validity` only with a format; `embedding_cosine` only when `embeddings`."""
    _check(responses, references)
    scores: dict[str, list[float]] = {"exact_match": exact_match(responses, references),
                                      "chrf": chrf(responses, references), "rouge_l": rouge_l(responses, references)}
    if references_are_json(references):
        scores["json_valid"] = json_valid(responses)
    if response_format is not None:
        scores["format_validity"] = format_validity(responses, response_format)
    if embeddings:
        scores["embedding_cosine"] = embedding_cosine(responses, references, embedding_model)
    return scores


def intervals(scores: dict[str, list[float]], seed: int = es.SEED) -> dict[str, es.Interval]:
    """The mean of each metric's per-item scores with its 95% seeded bootstrap interval."""
    return {metric: es.bootstrap_mean(values, seed=seed) for metric, values in scores.items()}


def compare(scores_a: dict[str, list[float]], scores_b: dict[str, list[float]], seed: int = es.SEED
            ) -> dict[str, es.Difference]:
    """B - A for every metric both have, paired over the same items (paired bootstrap)."""
    return {metric: es.paired_mean_difference(scores_a[metric], scores_b[metric], name=metric, seed=seed)
            for metric in scores_a if metric in scores_b}
