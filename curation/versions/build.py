"""Dataset versions: a lead builds a candidate from a project's current state, the checklist judges it,
a lead approves it, and from then on it never changes.

- `create_candidate` snapshots the items a version holds: final labels (classification) or final
  responses (generation: reviewed by experts, settled by a lead, or imported as final explicitly)
  after adjudication; excluded, unlabelled (unreviewed) and disputed items left out; exact
  duplicates collapsed to one item; a seeded train/eval split that keeps near-duplicate groups on one
  side and stratifies by label; statistics; and the checklist (`curation.checklist`).
- `approve_version` (leads and admins): records who, when and the note. A failing checklist item
  blocks approval unless the lead gives a written override reason, stored with the version.
- Every version stores a SHA-256 over the canonical serialisation of its items (`canonical_record`,
  items ordered by split and id); `verify_version` recomputes it from the stored items. Later edits to
  examples never touch a version's items: they go into the next candidate.
- `diff_versions`, `export_version` (DatasetDict folder, JSONL, Parquet, dataset card),
  `push_version_to_hub` (with HF_TOKEN).

Training reads versions through `get_version`, `version_items`, `verify_version`,
`version_dataset_dict` and `version_provenance`.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import numpy as np  # noqa: E402
from sqlalchemy import func, select
from sqlalchemy.engine import Engine  # noqa: E402
from sqlmodel import Session  # noqa: E402

from curation.access import audit  # noqa: E402
from curation.access.roles import LEADS, require_role  # noqa: E402
from curation.agreement.report import agreement_report  # noqa: E402
from curation.db import read_session  # noqa: E402
from curation.embeddings.dedup import components, exact_duplicate_pairs, near_duplicate_pairs  # noqa: E402
from curation.embeddings.diversity import cluster  # noqa: E402
from curation.embeddings.encode import DEFAULT_MODEL, embed_texts, normalise_text  # noqa: E402
from curation.embeddings.quality import find_label_issues_in_project  # noqa: E402
from curation.embeddings.splits import build_split, find_leakage  # noqa: E402
from curation.errors import Conflict, CurationError, InputError  # noqa: E402
from curation.lookup import get_or_not_found  # noqa: E402
from curation.models import (
    Adjudication,
    Annotation,
    DatasetVersion,
    DatasetVersionItem,
    Example,
    ExampleStatus,
    Project,
    TaskType,
    User,
    VersionStatus,
)
from curation.retry import run_write  # noqa: E402
from curation.review.audits import source_label_measures  # noqa: E402
from curation.review.rereview import expert_confirmed_ids, suspected_left  # noqa: E402
from curation.versions.checklist import ChecklistThresholds, Measures, evaluate, failing
from curation.versions.hashing import item_hash, version_hash
from curation.versions.records import SPLITS, _locked
from curation.versions.test_sets import test_texts

NEVER_OVERRIDDEN = ("test_leakage",)  # a version that contains a test item (or a copy of one) is never approved

_EVAL_NAMES = {"eval", "validation", "valid", "dev", "test"}
UNREVIEWED = "response not reviewed"  # the left-out reason of a generation item without a final response


@dataclass(frozen=True)
class BuildOptions:
    """How a candidate is built."""

    eval_fraction: float = 0.2  # share of each label's items that go to eval
    seed: int = 0  # split seed: the same seed and items give the same split
    keep_existing_splits: bool = False  # items imported with a train/eval (validation, test) split keep it
    drop_exact_duplicates: bool = True  # identical content: keep the first item (lowest id)
    use_embeddings: bool = True  # near-duplicates, clusters, label errors from sentence embeddings (cached)
    embedding_model: str | None = None  # default: curation.embeddings' model (EMBEDDING_MODEL)


# --------------------------------------------------------------------------- building a candidate
@dataclass
class _Draft:
    example_id: int
    external_id: str
    text: str | None
    prompt: str | None
    response: str | None
    messages: list[dict[str, Any]] | None
    label: str | None
    source: str | None
    licence: str | None
    existing_split: str | None
    content_hash: str
    split: str = "train"

    def record(self) -> dict[str, Any]:
        return {"external_id": self.external_id, "split": self.split, "text": self.text, "prompt": self.prompt,
                "response": self.response, "messages": self.messages, "label": self.label, "source": self.source,
                "licence": self.licence}

    def embed_text(self) -> str:
        """The string the embedding analyses compare (the same as curation.embeddings.example_text, so
        the embedding cache of the Duplicates and Diversity pages is reused)."""
        if self.prompt is not None:
            return f"{self.prompt}\n{self.response or ''}"
        if self.messages:
            return "\n".join(f"{m.get('role', '')}: {m.get('content', '')}" for m in self.messages)
        return self.text or ""


def _draft(example: Example, task_type: TaskType) -> _Draft:
    if task_type is TaskType.generation:
        if example.messages:
            messages = [{"role": str(m["role"]), "content": str(m.get("content") or "")} for m in example.messages]
            if example.final_response is not None and messages and messages[-1]["role"] == "assistant":
                messages[-1]["content"] = example.final_response
            prompt = response = None
        else:
            response = example.final_response if example.final_response is not None else example.response
            prompt = example.prompt or ""
            response = response or ""
            messages = [{"role": "user", "content": prompt}, {"role": "assistant", "content": response}]
        return _Draft(example.id, example.external_id, None, prompt, response, messages, None, example.source,
                      example.licence, example.split, example.content_hash)
    return _Draft(example.id, example.external_id, example.text, None, None, None, example.final_label,
                  example.source, example.licence, example.split, example.content_hash)


@dataclass
class _Analysis:
    """Near-duplicate structure of a candidate's items (issue 5's APIs: curation.embeddings, dedup, splits,
    diversity, quality), computed once and used by the split and the checklist."""

    vectors: Any  # unit vectors (numpy), or None on the exact path
    method: str  # how near-duplicates were found
    pairs: set[tuple[int, int]] = field(default_factory=set)  # indices into the drafts, i < j
    groups: list[int] = field(default_factory=list)  # a group number per draft


def _embed(drafts: list[_Draft], options: BuildOptions) -> tuple[Any, str]:
    if not options.use_embeddings:
        return None, "exact path (embeddings turned off)"
    try:
        vectors = embed_texts([d.embed_text() for d in drafts], options.embedding_model).vectors
        return vectors, f"sentence embeddings ({options.embedding_model or DEFAULT_MODEL})"
    except Exception as error:  # noqa: BLE001 - no model on disk: the exact path, saying why
        return None, f"exact path (embeddings unavailable: {type(error).__name__}: {str(error)[:120]})"


def analyse(drafts: list[_Draft], options: BuildOptions, threshold: float) -> _Analysis:
    """Exact (normalised text) and, with embeddings, near (cosine >= threshold) duplicate pairs and
    their connected groups."""
    vectors, how = _embed(drafts, options)
    texts = [d.embed_text() for d in drafts]
    result = _Analysis(vectors, "")
    parts = [exact_duplicate_pairs(texts)]
    if vectors is not None:
        parts.append(near_duplicate_pairs(vectors, threshold))
    for part in parts:
        result.pairs |= {(int(min(a, b)), int(max(a, b))) for a, b in part}
    array = np.array(sorted(result.pairs), dtype=np.int64).reshape(-1, 2)
    result.groups = list(range(len(drafts)))
    for number, group in enumerate(components(len(drafts), array)):
        for index in group:
            result.groups[index] = len(drafts) + number
    result.method = f"normalised exact text + cosine ≥ {threshold:g}, {how}" if vectors is not None else \
        f"normalised exact text only, {how}"
    return result


def _assign_splits(drafts: list[_Draft], analysis: _Analysis, options: BuildOptions, threshold: float) -> str:
    """A seeded train/eval split, stratified by label, that keeps near-duplicate groups on one side:
    the splits issue's `build_split` (over the items without a kept imported split)."""
    fixed: dict[int, str] = {}
    if options.keep_existing_splits:
        for index, draft in enumerate(drafts):
            name = (draft.existing_split or "").strip().lower()
            if name == "train":
                fixed[index] = "train"
            elif name in _EVAL_NAMES:
                fixed[index] = "eval"
    free = [i for i in range(len(drafts)) if i not in fixed]
    prefix = "kept imported train/eval splits; " if options.keep_existing_splits else ""
    vectors = analysis.vectors[free] if analysis.vectors is not None and free else None
    sides = build_split([drafts[i].example_id for i in free], [drafts[i].label for i in free],
                        [drafts[i].embed_text() for i in free], vectors, eval_fraction=options.eval_fraction,
                        seed=options.seed, threshold=threshold) if free else {}
    for index in free:
        drafts[index].split = sides[drafts[index].example_id]
    for index, side in fixed.items():
        drafts[index].split = side
    return prefix + (f"curation.splits.build_split: stratified by label over near-duplicate groups, eval fraction "
                     f"{options.eval_fraction:g}, seed {options.seed}")


def _leakage(drafts: list[_Draft], analysis: _Analysis, threshold: float) -> tuple[list[str], str]:
    """Eval items that duplicate a train item (exactly, or above the threshold with embeddings)."""
    by_example = {d.example_id: d.external_id for d in drafts}
    leaks = find_leakage({d.example_id: d.split for d in drafts}, [d.example_id for d in drafts],
                         [d.embed_text() for d in drafts], analysis.vectors, threshold=threshold)
    return sorted(by_example[leak.eval_id] for leak in leaks), \
        "curation.splits.find_leakage: " + ("exact or cosine ≥ " + f"{threshold:g}" if analysis.vectors is not None
                                            else "exact normalised text")


def test_leakage(engine: Engine, project_id: int, drafts: list[_Draft], analysis: _Analysis, threshold: float,
                 embedding_model: str | None = None) -> tuple[list[str], str, int]:
    """Items of the candidate that duplicate a test item of the project (current or in any approved
    test-set version): the same normalised text, or, when the candidate was analysed with embeddings,
    cosine >= threshold (the near-duplicate machinery's threshold). Returns (external ids, how, number
    of test items compared)."""
    tests = test_texts(engine, project_id)
    if not tests:
        return [], "the project has no test items", 0
    test_keys = {normalise_text(text) for _, text in tests}
    leaks = {i for i, d in enumerate(drafts) if normalise_text(d.embed_text()) in test_keys}
    how = "normalised exact text"
    if analysis.vectors is not None and drafts:
        try:
            test_vectors = np.asarray(embed_texts([t for _, t in tests], embedding_model).vectors, dtype=np.float32)
            vectors = np.asarray(analysis.vectors, dtype=np.float32)
            for start in range(0, len(drafts), 2048):
                top = (vectors[start:start + 2048] @ test_vectors.T).max(axis=1)
                leaks |= {start + int(i) for i in np.flatnonzero(top >= threshold)}
            how = f"normalised exact text + cosine ≥ {threshold:g} to a test item"
        except Exception as error:  # noqa: BLE001 - the exact check still ran; say what is missing
            how = f"normalised exact text only (embeddings unavailable: {type(error).__name__})"
    return sorted(drafts[i].external_id for i in leaks), f"{how}; {len(tests)} test items", len(tests)


def _clusters(analysis: _Analysis, seed: int) -> tuple[int | None, float | None, str]:
    """k-means clusters of the embeddings (curation.diversity) and their effective number
    (exp of the entropy of the cluster sizes)."""
    if analysis.vectors is None:
        return None, None, "needs embeddings (" + analysis.method + ")"
    assignments = cluster(analysis.vectors, seed=seed)
    sizes = np.bincount(assignments)
    sizes = sizes[sizes > 0]
    shares = sizes / sizes.sum()
    effective = float(math.exp(-(shares * np.log(shares)).sum()))
    return len(sizes), effective, f"k-means (curation.diversity) into {len(sizes)} clusters; effective number " \
        f"{effective:.1f}"


def _label_errors(engine: Engine, actor: User, analysis: _Analysis, project: Project,
                  model: str | None) -> tuple[set[int], str]:
    """Example ids of the suspected label errors left, exactly as the Label issues page counts them
    (`curation.rereview.suspected_left` on the project's labelled items: flagged and not confirmed by
    an expert); classification with embeddings only."""
    if analysis.vectors is None or TaskType(project.task_type) is not TaskType.classification:
        return set(), ""
    report = find_label_issues_in_project(engine, actor, project.id, model)
    left = suspected_left(report, expert_confirmed_ids(engine, actor, project.id))
    return {issue.example_id for issue in left}, \
        "suspected label errors not confirmed by experts, counted as on the Label issues page (curation.quality: " \
        "cleanlab on out-of-sample probabilities, or the neighbours and the classifier agreeing on another label)"


_TOKEN = re.compile(r"\w+|[^\w\s]")


def _token_counter(name: str | None) -> tuple[Any, str]:
    if name:
        try:
            from transformers import AutoTokenizer

            tokenizer = AutoTokenizer.from_pretrained(name, local_files_only=True)
            return (lambda text: len(tokenizer(text, add_special_tokens=False)["input_ids"])), f"tokenizer {name}"
        except Exception as error:  # noqa: BLE001 - any loading problem falls back to the estimate
            return (lambda text: len(_TOKEN.findall(text))), \
                f"approximate count (tokenizer {name} not available locally: {type(error).__name__})"
    return (lambda text: len(_TOKEN.findall(text))), "approximate count: words and punctuation marks"


def _template(messages: list[dict[str, Any]] | None) -> tuple[str, bool]:
    roles = [m.get("role") for m in messages or []]
    system = bool(roles) and roles[0] == "system"
    rest = roles[1:] if system else roles
    valid = bool(rest) and len(rest) % 2 == 0 and all(
        role == ("user" if i % 2 == 0 else "assistant") for i, role in enumerate(rest))
    return ("system + user/assistant" if system else "user/assistant"), valid


def measure(engine: Engine, actor: User, project: Project, drafts: list[_Draft], analysis: _Analysis,
            thresholds: ChecklistThresholds, info: dict[str, Any]) -> tuple[Measures, dict[str, Any]]:
    """Measure the candidate's items for the checklist; also returns the agreement figures."""
    task_type = TaskType(project.task_type)
    ids = [d.example_id for d in drafts]
    with read_session(engine) as session:
        annotations = session.execute(select(Annotation.example_id, Annotation.flags).join(
            Example, Example.id == Annotation.example_id).where(Example.project_id == project.id)).all()
        adjudicated = set(session.execute(select(Adjudication.example_id).join(
            Example, Example.id == Adjudication.example_id).where(Example.project_id == project.id)).scalars())
    included = set(ids)
    n_labels: Counter[int] = Counter()
    off_task: set[int] = set()
    for example_id, flags in annotations:
        if example_id in included:
            n_labels[example_id] += 1
            if flags and "off_task" in flags:
                off_task.add(example_id)
    agreement = _agreement(engine, actor, project, thresholds)
    counter, token_method = _token_counter(thresholds.tokenizer)
    lengths: dict[str, int] = {}
    for d in drafts:
        if d.messages:
            lengths[d.external_id] = sum(counter(str(m.get("content", ""))) + 4 for m in d.messages)
        else:
            lengths[d.external_id] = counter(d.text or "")
    templates: Counter[str] = Counter()
    invalid = []
    if task_type is TaskType.generation:
        for d in drafts:
            name, valid = _template(d.messages)
            templates[name] += 1
            if not valid:
                invalid.append(d.external_id)
    if task_type is TaskType.generation:
        empty = [d.external_id for d in drafts if not d.messages or not str(d.messages[-1].get("content", "")).strip()]
    else:
        empty = [d.external_id for d in drafts if not (d.text or "").strip()]
    n_clusters, effective, clusters_reason = _clusters(analysis, info.get("seed", 0))
    leaking, leakage_method = _leakage(drafts, analysis, thresholds.near_duplicate_similarity)
    test_leaks, test_leak_method, n_test = test_leakage(engine, project.id, drafts, analysis,
                                                        thresholds.near_duplicate_similarity,
                                                        info.get("embedding_model"))
    flagged, suspected_method = _label_errors(engine, actor, analysis, project, info.get("embedding_model"))
    labels = list(project.labels)
    m = Measures(
        task_type=task_type.value, n_items=len(drafts),
        n_train=sum(d.split == "train" for d in drafts), n_eval=sum(d.split == "eval" for d in drafts),
        project_labels=labels,
        train_label_counts=dict(Counter(d.label for d in drafts if d.split == "train" and d.label)),
        label_counts={label: sum(d.label == label for d in drafts) for label in labels},
        off_task_items=len(off_task), k_labelled_items=sum(n_labels[i] >= project.overlap_k for i in ids),
        overlap_k=project.overlap_k, adjudicated_items=len(adjudicated & included),
        disputed_left_out=info.get("disputed", 0),
        unreviewed_left_out=info.get("unreviewed", 0),
        imported_final=sum(1 for i in ids if not n_labels[i] and i not in adjudicated)
        if task_type is TaskType.generation else 0,
        suspected_left=len(flagged & included),
        suspected_method=suspected_method,
        agreement=agreement, project_min_agreement=project.min_agreement,
        near_duplicate_pairs=len(analysis.pairs), near_duplicate_method=analysis.method,
        near_duplicate_conflicts=sum(drafts[a].label != drafts[b].label for a, b in analysis.pairs),
        near_duplicate_cross_split=sum(drafts[a].split != drafts[b].split for a, b in analysis.pairs),
        near_duplicate_redundant=len(drafts) - len(set(analysis.groups)),
        project_max_near_duplicate_pairs=project.max_near_duplicate_pairs,
        clusters=round(effective) if effective is not None else None, clusters_reason=clusters_reason, leaking_eval=leaking, leakage_method=leakage_method,
        test_items=n_test, test_leaks=test_leaks, test_leak_method=test_leak_method,
        missing_source=[d.external_id for d in drafts if not (d.source or "").strip()],
        missing_licence=[d.external_id for d in drafts if not (d.licence or "").strip()],
        licences=dict(sorted(Counter(d.licence or "(none)" for d in drafts).items())),
        chat_templates=dict(templates), invalid_chat=invalid,
        token_max=max(lengths.values(), default=0),
        token_over=sorted(k for k, v in lengths.items() if v > thresholds.max_tokens), token_method=token_method,
        empty_content=empty,
        unknown_labels=[d.external_id for d in drafts if task_type is TaskType.classification
                        and d.label not in labels],
    )

    m.source_labels, m.project_max_source_error = source_label_measures(engine, project, ids), project.max_source_error
    return m, agreement


def _agreement(engine: Engine, actor: User, project: Project, thresholds: ChecklistThresholds) -> dict[str, Any]:
    try:
        report = agreement_report(engine, actor, project.id, n_resamples=thresholds.agreement_resamples)
    except CurationError as error:
        return {"alpha": None, "low": None, "high": None, "reason": str(error), "n_scored": 0}

    def finite(value: float | None) -> float | None:
        return value if value is not None and math.isfinite(value) else None

    alpha = report.alpha
    return {"alpha": finite(alpha.value), "low": finite(alpha.low), "high": finite(alpha.high),
            "reason": alpha.reason, "level": report.level, "n_scored": report.n_scored,
            "n_raters": report.n_raters, "threshold": report.threshold, "band": report.band}


def create_candidate(engine: Engine, actor: User, project_id: int, options: BuildOptions | None = None,
                     thresholds: ChecklistThresholds | None = None) -> DatasetVersion:
    """Build a version candidate from the project's current state (leads and admins). Audited."""
    require_role(actor, *LEADS)
    options = options or BuildOptions()
    thresholds = thresholds or ChecklistThresholds()
    if not 0 < options.eval_fraction < 1:
        raise InputError("the eval fraction must be between 0 and 1", field="eval_fraction")
    with read_session(engine) as session:
        project = get_or_not_found(session, Project, project_id)
        examples = list(session.execute(select(Example).where(Example.project_id == project_id)
                                        .order_by(Example.id)).scalars())
    task_type = TaskType(project.task_type)
    left_out: Counter[str] = Counter()
    drafts: list[_Draft] = []
    seen: set[str] = set()
    for example in examples:
        status = ExampleStatus(example.status)
        if example.test_set_id is not None:  # test items never enter a training version
            left_out["test item"] += 1
            continue
        if status is ExampleStatus.excluded:
            left_out["excluded"] += 1
            continue
        if status is ExampleStatus.disputed:
            left_out["disputed"] += 1
            continue
        if task_type is TaskType.classification and not example.final_label:
            left_out[f"no final label ({status.value})"] += 1
            continue
        if task_type is TaskType.generation and (status is not ExampleStatus.labelled
                                                 or example.final_response is None):
            # Reviewed means reviewed: the imported response alone is a draft until experts (or a
            # lead) settle it, or the import said explicitly that it is final.
            left_out[f"{UNREVIEWED} ({status.value})"] += 1
            continue
        if options.drop_exact_duplicates:
            if example.content_hash in seen:
                left_out["exact duplicate"] += 1
                continue
            seen.add(example.content_hash)
        drafts.append(_draft(example, task_type))
    if not drafts:
        raise Conflict(f"Project '{project.name}' has no items ready for a version "
                       f"(left out: {dict(left_out) or 'none'}).")
    threshold = thresholds.near_duplicate_similarity
    analysis = analyse(drafts, options, threshold)
    split_method = _assign_splits(drafts, analysis, options, threshold)
    measures, agreement = measure(engine, actor, project, drafts, analysis, thresholds,
                                  {"disputed": left_out.get("disputed", 0), "seed": options.seed,
                                   "unreviewed": sum(n for reason, n in left_out.items()
                                                     if reason.startswith(UNREVIEWED)),
                                   "embedding_model": options.embedding_model})
    dup_method = analysis.method
    checks = evaluate(measures, thresholds)
    records = [d.record() for d in drafts]
    stats = _stats(drafts, left_out, agreement, options, split_method, dup_method)

    def work(session: Session) -> DatasetVersion:
        number = (session.execute(select(func.max(DatasetVersion.number)).where(
            DatasetVersion.project_id == project_id)).scalar() or 0) + 1
        version = DatasetVersion(
            project_id=project_id, number=number, status=VersionStatus.candidate, created_by_id=actor.id,
            content_hash=version_hash(records), item_count=len(records), stats=stats,
            checklist={"thresholds": thresholds.to_dict(), "items": [c.to_dict() for c in checks],
                       "attested": False, "overridden": [],
                       # the Krippendorff level the agreement item was measured at (ordinal for ordered labels)
                       "agreement_level": agreement.get("level")},
            split_seed=options.seed, task_type=task_type, labels=list(project.labels))
        session.add(version)
        session.flush()
        session.add_all([DatasetVersionItem(version_id=version.id, example_id=d.example_id, content_hash=item_hash(r),
                                            **r) for d, r in zip(drafts, records)])
        audit.record(session, actor, "version.create", "dataset_version", version.id, project_id=project_id,
                     after={"number": number, "items": len(records), "content_hash": version.content_hash,
                            "failing": [c.key for c in failing(checks)]})
        return version

    return run_write(engine, work)


def _stats(drafts: list[_Draft], left_out: Counter[str], agreement: dict[str, Any], options: BuildOptions,
           split_method: str, dup_method: str) -> dict[str, Any]:
    def count(values: Any) -> dict[str, int]:
        return dict(sorted(Counter(values).items()))

    return {
        "items": len(drafts),
        "splits": {name: sum(d.split == name for d in drafts) for name in SPLITS},
        "labels": count(d.label for d in drafts if d.label is not None),
        "labels_by_split": {name: count(d.label for d in drafts if d.split == name and d.label is not None)
                            for name in SPLITS},
        "sources": count(d.source or "(none)" for d in drafts),
        "licences": count(d.licence or "(none)" for d in drafts),
        "left_out": dict(sorted(left_out.items())),
        "agreement": agreement,
        "eval_fraction": options.eval_fraction,
        "split_method": split_method,
        "near_duplicate_method": dup_method,
    }


def discard_candidate(engine: Engine, actor: User, version_id: int) -> None:
    """Delete a candidate (approved versions are kept for good). Audited."""
    require_role(actor, *LEADS)

    def work(session: Session) -> None:
        version = _locked(session, version_id)
        if version.status != VersionStatus.candidate:
            raise Conflict(f"Version {version.number} is approved and cannot be discarded.")
        for item in session.execute(select(DatasetVersionItem).where(
                DatasetVersionItem.version_id == version_id)).scalars():
            session.delete(item)
        session.flush()
        session.delete(version)
        audit.record(session, actor, "version.discard", "dataset_version", version_id, project_id=version.project_id,
                     before={"number": version.number, "content_hash": version.content_hash})

    run_write(engine, work)
