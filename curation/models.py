"""SQL tables (SQLModel). The schema itself is owned by Alembic migrations in `curation/migrations`.

Glossary used across the core: a *project* holds *examples*; each example gets up to k
*annotations* (one per annotator); a lead's *adjudication* settles disagreements; every change
users can lose leaves an *audit event* written in the same transaction.
"""

from __future__ import annotations

from datetime import datetime, timezone
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, Column, DateTime, Index, String, Text, UniqueConstraint, false, text
from sqlmodel import Field, SQLModel


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def _ts(**kwargs: Any) -> Any:
    return Field(default_factory=utcnow, sa_type=DateTime(timezone=True), **kwargs)


class Role(StrEnum):
    annotator = "annotator"
    lead = "lead"
    admin = "admin"


class TaskType(StrEnum):
    classification = "classification"
    generation = "generation"


class ExampleStatus(StrEnum):
    """Where an example stands. `excluded` items never enter a dataset version."""

    new = "new"  # no annotation yet
    in_review = "in_review"  # fewer than k annotations
    disputed = "disputed"  # k annotations that disagree: waits for a lead
    labelled = "labelled"  # final label set (agreement rule, import, or adjudication)
    excluded = "excluded"


class FinalLabelRule(StrEnum):
    majority = "majority"
    unanimous = "unanimous"


class QueueOrder(StrEnum):
    """Which item the review queue hands out next (among items that still need labels)."""

    unlabelled_first = "unlabelled_first"  # items without any label, then partly labelled ones; by id
    suspected_first = "suspected_first"  # items with a suspicion score (Example.priority), highest first
    # Issue 12 (active learning; need a `suggest` run): lowest margin of the item's own label first (its
    # probability minus the best other's: contradicted labels, then unsure ones; top-2 margin for items
    # without a label); disagreement: items whose source label the probe contradicts first.
    lowest_margin = "lowest_margin"
    disagreement = "disagreement"
    uncovered_clusters = "uncovered_clusters"  # items of embedding clusters with the fewest expert labels first


class UserKind(StrEnum):
    """A person logs in and labels; a source (a vendor, an earlier labelling round, a model) only
    carries imported labels as votes and can never log in (issue 12)."""

    person = "person"
    source = "source"


class SuggestionDisplay(StrEnum):
    """How the review screen shows suggestions and source votes to an annotator (issue 12).
    Items that count towards inter-annotator agreement never show them, whatever the setting."""

    hidden = "hidden"
    after_choice = "after_choice"  # revealed once the annotator has given their own label
    beside = "beside"  # shown next to the item with source and score; nothing pre-selected


class RereviewBy(StrEnum):
    """Who re-reviews items sent back as suspected label errors (curation.rereview)."""

    leads = "leads"  # the adjudication queue, with the evidence
    annotators = "annotators"  # k fresh blind labels from annotators who have not labelled the item


class RereviewState(StrEnum):
    pending = "pending"  # sent back, waiting for the re-review
    settled = "settled"  # an expert decided after it was sent back: the decision sticks


class AssignmentState(StrEnum):
    leased = "leased"  # holds one of the item's k slots until `expires_at`
    skipped = "skipped"  # the annotator skipped it: not offered to them again


class User(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    username: str = Field(sa_column=Column(String(120), unique=True, nullable=False))
    display_name: str = Field(default="", max_length=200)
    role: Role = Field(default=Role.annotator, sa_type=String(20))
    # None for accounts created by an import (annotators of an external export): they cannot log in.
    password_hash: str | None = Field(default=None, max_length=255)
    active: bool = True
    imported: bool = False
    # `source` accounts carry imported labels (votes) and can never log in or act (curation.auth).
    kind: UserKind = Field(default=UserKind.person, sa_type=String(20))
    created_at: datetime = _ts()


class Project(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(sa_column=Column(String(200), unique=True, nullable=False))
    task_type: TaskType = Field(default=TaskType.classification, sa_type=String(20))
    labels: list[str] = Field(default_factory=list, sa_type=JSON)
    guidelines: str = Field(default="", sa_type=Text)
    guidelines_version: int = 1
    overlap_k: int = Field(default=2, ge=1, le=20)
    final_label_rule: FinalLabelRule = Field(default=FinalLabelRule.majority, sa_type=String(20))
    queue_order: QueueOrder = Field(default=QueueOrder.unlabelled_first, sa_type=String(20))
    rereview_by: RereviewBy = Field(default=RereviewBy.leads, sa_type=String(20))
    # Approval thresholds that the dataset-version checklist gates on.
    min_agreement: float = 0.667
    max_near_duplicate_pairs: int = 0
    # Labels form a scale in the order of `labels` (e.g. a severity -3..1): agreement is then measured
    # at the ordinal level by default (Agreement page, version checklist).
    labels_ordered: bool = Field(default=False, sa_column_kwargs={"server_default": false()})
    # What success means, stated before review (curation/objective.py): {"metric", "target", "label"?,
    # "precision"?}; empty until a lead sets it.
    objective: dict[str, Any] = Field(default_factory=dict, sa_type=JSON)
    # Issue 12: whether a source's vote fills one of an item's k slots (else it is provenance only),
    # how annotators see suggestions, which share of items is kept blind for agreement, and the upper
    # bound of a source's audited error rate that the version checklist accepts.
    source_votes_count: bool = False
    suggestion_display: SuggestionDisplay = Field(default=SuggestionDisplay.hidden, sa_type=String(20))
    blind_fraction: float = 0.1
    max_source_error: float = 0.05
    created_at: datetime = _ts()
    updated_at: datetime = _ts()


class ImportRecord(SQLModel, table=True):
    """One import of one file: the provenance every example points back to."""

    id: int | None = Field(default=None, primary_key=True)
    project_id: int = Field(foreign_key="project.id", index=True)
    file_name: str = Field(max_length=500)
    file_sha256: str = Field(max_length=64)
    file_format: str = Field(max_length=30)
    mapping: dict[str, Any] = Field(default_factory=dict, sa_type=JSON)
    examples_added: int = 0
    annotations_added: int = 0
    actor_id: int | None = Field(default=None, foreign_key="user.id")
    created_at: datetime = _ts()


class Example(SQLModel, table=True):
    """One item to curate: `text` (classification), or `prompt`/`response`, or chat `messages`."""

    __table_args__ = (
        UniqueConstraint("project_id", "external_id", name="uq_example_project_external_id"),
        Index("ix_example_project_label", "project_id", "final_label"),
        Index("ix_example_project_hash", "project_id", "content_hash"),
        # The review queue walks this index: items of one status in id order (no sort, no scan); it also
        # serves every other lookup by (project, status).
        Index("ix_example_queue", "project_id", "status", "id"),
        # project_stamp and edits_since: the latest change of a project's examples from the index
        Index("ix_example_project_updated", "project_id", "updated_at"),
        # Partial: few items are suspected, in a test set or in an audit, and every lookup names one
        # (= id) or asks IS NOT NULL. An import leaves all three NULL: a bulk load never rebuilds these.
        Index("ix_example_project_priority", "project_id", "priority", sqlite_where=text("priority IS NOT NULL"),
              postgresql_where=text("priority IS NOT NULL")),
        Index("ix_example_test_set_id", "test_set_id", sqlite_where=text("test_set_id IS NOT NULL"),
              postgresql_where=text("test_set_id IS NOT NULL")),
        Index("ix_example_audit_id", "audit_id", sqlite_where=text("audit_id IS NOT NULL"),
              postgresql_where=text("audit_id IS NOT NULL")),
    )

    id: int | None = Field(default=None, primary_key=True)
    project_id: int = Field(foreign_key="project.id")
    external_id: str = Field(max_length=200)
    text: str | None = Field(default=None, sa_type=Text)
    prompt: str | None = Field(default=None, sa_type=Text)
    response: str | None = Field(default=None, sa_type=Text)
    messages: list[dict[str, Any]] | None = Field(default=None, sa_type=JSON)
    meta: dict[str, Any] = Field(default_factory=dict, sa_type=JSON)
    source: str | None = Field(default=None, max_length=500)
    licence: str | None = Field(default=None, max_length=200)
    content_hash: str = Field(max_length=64)
    split: str | None = Field(default=None, max_length=20)
    status: ExampleStatus = Field(default=ExampleStatus.new, sa_type=String(20))
    final_label: str | None = Field(default=None, max_length=200)
    final_response: str | None = Field(default=None, sa_type=Text)
    exclusion_reason: str | None = Field(default=None, sa_type=Text)
    # Suspicion score (e.g. a likely label error found by a later analysis): with the project's
    # `suspected_first` queue order, scored items come first, highest first. None: not suspected.
    priority: float | None = Field(default=None)
    # Re-review of a suspected label error (curation.rereview): None, `pending` or `settled`.
    rereview: RereviewState | None = Field(default=None, sa_type=String(20))
    import_id: int | None = Field(default=None, foreign_key="importrecord.id")
    # Set when the item belongs to the project's test set (curation/test_sets.py): it is reviewed like
    # any item but never enters a dataset version.
    test_set_id: int | None = Field(default=None, foreign_key="testset.id")
    # The label audit (curation.label_audit) this item was drawn into: blind expert review, source
    # votes never fill its k slots.
    audit_id: int | None = Field(default=None)
    created_at: datetime = _ts()
    updated_at: datetime = _ts()


class Annotation(SQLModel, table=True):
    """One annotator's judgement of one example. `row_version` guards against stale edits."""

    __table_args__ = (
        UniqueConstraint("example_id", "annotator_id", name="uq_annotation_example_annotator"),
        Index("ix_annotation_annotator_example", "annotator_id", "example_id"),
    )

    id: int | None = Field(default=None, primary_key=True)
    example_id: int = Field(foreign_key="example.id", index=True)
    annotator_id: int = Field(foreign_key="user.id")
    label: str | None = Field(default=None, max_length=200)
    response: str | None = Field(default=None, sa_type=Text)
    rating: int | None = Field(default=None, ge=1, le=5)
    comment: str = Field(default="", sa_type=Text)
    flags: list[str] = Field(default_factory=list, sa_type=JSON)
    # Set when the item was sent back to annotators for k fresh labels: the label stays on record
    # (and in the export) but no longer counts towards the item's k labels or its final label.
    superseded: bool = Field(default=False)
    row_version: int = 1
    created_at: datetime = _ts()
    updated_at: datetime = _ts()


class Assignment(SQLModel, table=True):
    """An item handed to an annotator by the review queue: a lease on one of the item's k slots
    that lapses at `expires_at`, or a skip. Deleted when the annotator submits their label."""

    __table_args__ = (
        UniqueConstraint("example_id", "annotator_id", name="uq_assignment_example_annotator"),
        Index("ix_assignment_project_annotator", "project_id", "annotator_id", "state"),
    )

    id: int | None = Field(default=None, primary_key=True)
    project_id: int = Field(foreign_key="project.id")
    example_id: int = Field(foreign_key="example.id", index=True)
    annotator_id: int = Field(foreign_key="user.id")
    state: AssignmentState = Field(default=AssignmentState.leased, sa_type=String(20))
    assigned_by_id: int | None = Field(default=None, foreign_key="user.id")
    created_at: datetime = _ts()
    expires_at: datetime = Field(sa_type=DateTime(timezone=True))


class Adjudication(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    example_id: int = Field(foreign_key="example.id", index=True)
    lead_id: int = Field(foreign_key="user.id")
    final_label: str | None = Field(default=None, max_length=200)
    final_response: str | None = Field(default=None, sa_type=Text)
    reason: str = Field(default="", sa_type=Text)
    created_at: datetime = _ts()


class AuditEvent(SQLModel, table=True):
    """Who did what, when, with the state before and after. Written in the change's own transaction."""

    __table_args__ = (Index("ix_auditevent_entity", "entity", "entity_id"),)

    id: int | None = Field(default=None, primary_key=True)
    at: datetime = _ts()
    actor_id: int | None = Field(default=None, foreign_key="user.id")
    project_id: int | None = Field(default=None, foreign_key="project.id", index=True)
    action: str = Field(max_length=60)
    entity: str = Field(max_length=40)
    entity_id: int | None = None
    before: dict[str, Any] | None = Field(default=None, sa_type=JSON)
    after: dict[str, Any] | None = Field(default=None, sa_type=JSON)


class VersionStatus(StrEnum):
    candidate = "candidate"  # built from the project's state; its checklist waits for a lead
    approved = "approved"  # immutable: items snapshotted, SHA-256 stored


class DatasetVersion(SQLModel, table=True):
    """A snapshot of a project's curated items (see curation/versions.py). Approved ones never change."""

    __table_args__ = (UniqueConstraint("project_id", "number", name="uq_datasetversion_project_number"),)

    id: int | None = Field(default=None, primary_key=True)
    project_id: int = Field(foreign_key="project.id", index=True)
    number: int  # 1, 2, ... per project
    status: VersionStatus = Field(default=VersionStatus.candidate, sa_type=String(20))
    created_by_id: int | None = Field(default=None, foreign_key="user.id")
    created_at: datetime = _ts()
    approved_by_id: int | None = Field(default=None, foreign_key="user.id")
    approved_at: datetime | None = Field(default=None, sa_type=DateTime(timezone=True))
    approval_note: str = Field(default="", sa_type=Text)
    # Set when a lead approved despite failing checklist items; shown wherever the version appears.
    override_reason: str | None = Field(default=None, sa_type=Text)
    content_hash: str = Field(max_length=64)  # SHA-256 hex over the canonical serialisation of the items
    item_count: int = 0
    stats: dict[str, Any] = Field(default_factory=dict, sa_type=JSON)
    checklist: dict[str, Any] = Field(default_factory=dict, sa_type=JSON)
    split_seed: int = 0
    task_type: TaskType = Field(default=TaskType.classification, sa_type=String(20))
    labels: list[str] = Field(default_factory=list, sa_type=JSON)


class DatasetVersionItem(SQLModel, table=True):
    """One item of a version, copied from its example when the version was built."""

    __table_args__ = (Index("ix_datasetversionitem_version_split", "version_id", "split"),)

    id: int | None = Field(default=None, primary_key=True)
    version_id: int = Field(foreign_key="datasetversion.id", index=True)
    example_id: int | None = Field(default=None, foreign_key="example.id")
    external_id: str = Field(max_length=200)
    split: str = Field(max_length=20)  # train | eval
    text: str | None = Field(default=None, sa_type=Text)
    prompt: str | None = Field(default=None, sa_type=Text)
    response: str | None = Field(default=None, sa_type=Text)
    messages: list[dict[str, Any]] | None = Field(default=None, sa_type=JSON)
    label: str | None = Field(default=None, max_length=200)
    source: str | None = Field(default=None, max_length=500)
    licence: str | None = Field(default=None, max_length=200)
    content_hash: str = Field(max_length=64)  # SHA-256 of this item's canonical record


class RunStatus(StrEnum):
    """A training run's state. `succeeded` only with its adapter on disk."""

    queued = "queued"
    running = "running"
    succeeded = "succeeded"
    failed = "failed"
    cancelled = "cancelled"


class TrainingRun(SQLModel, table=True):
    """One LoRA training run of one approved dataset version, executed by a separate worker process
    (`training/run.py`) that writes its progress here; the pages and the CLI only read and request."""

    __table_args__ = (Index("ix_trainingrun_status", "status", "id"),)

    id: int | None = Field(default=None, primary_key=True)
    project_id: int = Field(foreign_key="project.id", index=True)
    version_id: int = Field(index=True)  # DatasetVersion.id (approved when the run was queued)
    created_by_id: int | None = Field(default=None, foreign_key="user.id")
    status: RunStatus = Field(default=RunStatus.queued, sa_type=String(20))
    task_type: TaskType = Field(default=TaskType.classification, sa_type=String(20))
    base_model: str = Field(max_length=1000)
    preset: str = Field(default="balanced", max_length=20)
    config: dict[str, Any] = Field(default_factory=dict, sa_type=JSON)
    created_at: datetime = _ts()
    started_at: datetime | None = Field(default=None, sa_type=DateTime(timezone=True))
    finished_at: datetime | None = Field(default=None, sa_type=DateTime(timezone=True))
    heartbeat_at: datetime | None = Field(default=None, sa_type=DateTime(timezone=True))
    pid: int | None = None  # the worker process (its own process group)
    cancel_requested_at: datetime | None = Field(default=None, sa_type=DateTime(timezone=True))
    step: int = 0
    max_steps: int = 0
    epoch: float = 0.0
    loss: float | None = None
    tokens_per_s: float | None = None
    eta_s: float | None = None
    history: list[dict[str, Any]] = Field(default_factory=list, sa_type=JSON)  # {step, loss | eval_*}
    metrics: dict[str, Any] = Field(default_factory=dict, sa_type=JSON)
    warnings: list[str] = Field(default_factory=list, sa_type=JSON)
    error: str | None = Field(default=None, sa_type=Text)
    output_dir: str | None = Field(default=None, max_length=1000)
    adapter_path: str | None = Field(default=None, max_length=1000)
    merged_path: str | None = Field(default=None, max_length=1000)
    # The approved test-set version the run is scored on at its end (None: no test set; the version's
    # held-out split is then the only score, and says so).
    test_set_version_id: int | None = Field(default=None)


class TestSet(SQLModel, table=True):
    """A project's frozen yardstick: items flagged with `Example.test_set_id`, reviewed blind like any
    other, approved into immutable `TestSetVersion`s (curation/test_sets.py)."""

    __test__ = False  # not a pytest class
    __table_args__ = (UniqueConstraint("project_id", "name", name="uq_testset_project_name"),)

    id: int | None = Field(default=None, primary_key=True)
    project_id: int = Field(foreign_key="project.id", index=True)
    name: str = Field(max_length=200)
    description: str = Field(default="", sa_type=Text)
    created_by_id: int | None = Field(default=None, foreign_key="user.id")
    created_at: datetime = _ts()


class TestSetVersion(SQLModel, table=True):
    """An approved snapshot of a test set's labelled items, with its SHA-256. Never changes."""

    __test__ = False
    __table_args__ = (UniqueConstraint("test_set_id", "number", name="uq_testsetversion_set_number"),)

    id: int | None = Field(default=None, primary_key=True)
    test_set_id: int = Field(foreign_key="testset.id", index=True)
    project_id: int = Field(foreign_key="project.id", index=True)
    number: int
    content_hash: str = Field(max_length=64)
    item_count: int = 0
    task_type: TaskType = Field(default=TaskType.classification, sa_type=String(20))
    labels: list[str] = Field(default_factory=list, sa_type=JSON)
    stats: dict[str, Any] = Field(default_factory=dict, sa_type=JSON)
    approved_by_id: int | None = Field(default=None, foreign_key="user.id")
    approved_at: datetime = _ts()
    note: str = Field(default="", sa_type=Text)


class TestSetItem(SQLModel, table=True):
    """One item of an approved test-set version, copied from its example (label or reference response)."""

    __test__ = False
    id: int | None = Field(default=None, primary_key=True)
    test_set_version_id: int = Field(foreign_key="testsetversion.id", index=True)
    example_id: int | None = Field(default=None, foreign_key="example.id")
    external_id: str = Field(max_length=200)
    split: str = Field(default="test", max_length=20)
    text: str | None = Field(default=None, sa_type=Text)
    prompt: str | None = Field(default=None, sa_type=Text)
    response: str | None = Field(default=None, sa_type=Text)
    messages: list[dict[str, Any]] | None = Field(default=None, sa_type=JSON)
    label: str | None = Field(default=None, max_length=200)
    source: str | None = Field(default=None, max_length=500)
    licence: str | None = Field(default=None, max_length=200)
    content_hash: str = Field(max_length=64)


class LoginSession(SQLModel, table=True):
    """A signed-in browser: the server side of its session token (see curation/sessions.py). Only the
    SHA-256 of the token's secret part is stored; revoking sets `revoked_at`, and the token stops
    working at its next use."""

    id: int | None = Field(default=None, primary_key=True)
    user_id: int = Field(foreign_key="user.id", index=True)
    token_hash: str = Field(max_length=64)
    method: str = Field(default="password", max_length=20)  # password | oidc
    created_at: datetime = _ts()
    expires_at: datetime = Field(sa_type=DateTime(timezone=True))
    revoked_at: datetime | None = Field(default=None, sa_type=DateTime(timezone=True))


class Suggestion(SQLModel, table=True):
    """A label proposed for an item by a source (an imported file, a Label Studio prediction, a
    model): never a vote. `score` is the source's confidence or probability, when it gave one."""

    __table_args__ = (
        UniqueConstraint("example_id", "source", name="uq_suggestion_example_source"),
        Index("ix_suggestion_project_source", "project_id", "source"),
    )

    id: int | None = Field(default=None, primary_key=True)
    project_id: int = Field(foreign_key="project.id")
    example_id: int = Field(foreign_key="example.id", index=True)
    source: str = Field(max_length=200)
    label: str = Field(max_length=200)
    score: float | None = None
    margin: float | None = None  # p(item's label) - best other, or top - second (suggest.label_margins)
    # Share of the item's embedding cluster that had an expert label when the suggestion was made.
    cluster_coverage: float | None = None
    import_id: int | None = Field(default=None, foreign_key="importrecord.id")
    created_at: datetime = _ts()


class AuditStatus(StrEnum):
    open = "open"  # items wait for (or are in) expert review
    closed = "closed"  # a lead closed it; its items left blind review


class LabelAudit(SQLModel, table=True):
    """A sampled audit of one source's labels: `size` items drawn at random (stratified by the
    source's label, `seed`) for blind expert review; see curation/label_audit.py."""

    id: int | None = Field(default=None, primary_key=True)
    project_id: int = Field(foreign_key="project.id", index=True)
    source: str = Field(max_length=200)
    size: int
    seed: int = 0
    status: AuditStatus = Field(default=AuditStatus.open, sa_type=String(20))
    strata: dict[str, Any] = Field(default_factory=dict, sa_type=JSON)  # source label -> {population, sampled}
    created_by_id: int | None = Field(default=None, foreign_key="user.id")
    created_at: datetime = _ts()


class PreferenceRoundStatus(StrEnum):
    generating = "generating"  # a background worker writes both systems' responses
    open = "open"  # annotators judge
    done = "done"  # every prompt has its k judgements
    failed = "failed"  # generation failed (`error` says why)


class PreferenceRound(SQLModel, table=True):
    """A blind human comparison of two generation systems on `size` prompts (curation/evaluation/
    preference.py): system A is run `run_id`'s adapter, system B run `other_run_id`'s adapter or, when
    that is None, the base model of run `run_id`. Annotators never see which system wrote which."""

    id: int | None = Field(default=None, primary_key=True)
    project_id: int = Field(foreign_key="project.id", index=True)
    run_id: int = Field(index=True)  # TrainingRun.id of system A: the round is part of its record
    other_run_id: int | None = Field(default=None)  # TrainingRun.id of system B; None: the base model
    test_set_version_id: int | None = Field(default=None)  # where the prompts come from (None: eval split)
    prompt_source: str = Field(default="", max_length=300)
    size: int = 0
    overlap_k: int = 2  # judgements per prompt
    seed: int = 0
    max_new_tokens: int = 64
    status: PreferenceRoundStatus = Field(default=PreferenceRoundStatus.generating, sa_type=String(20))
    error: str | None = Field(default=None, sa_type=Text)
    created_by_id: int | None = Field(default=None, foreign_key="user.id")
    created_at: datetime = _ts()
    generated_at: datetime | None = Field(default=None, sa_type=DateTime(timezone=True))


class PreferenceItem(SQLModel, table=True):
    """One prompt of a round with the two systems' responses (None until the worker wrote them)."""

    __table_args__ = (UniqueConstraint("round_id", "position", name="uq_preferenceitem_round_position"),)

    id: int | None = Field(default=None, primary_key=True)
    round_id: int = Field(foreign_key="preferenceround.id", index=True)
    position: int  # 0, 1, ... in the round
    external_id: str = Field(max_length=200)
    messages: list[dict[str, Any]] = Field(default_factory=list, sa_type=JSON)  # the chat up to the answer
    reference: str | None = Field(default=None, sa_type=Text)
    response_a: str | None = Field(default=None, sa_type=Text)
    response_b: str | None = Field(default=None, sa_type=Text)


class PreferenceJudgement(SQLModel, table=True):
    """One annotator's blind judgement of one prompt, stored in system terms (`a`, `b`, `tie`,
    `both_bad`) with the order they were shown (`a_first`)."""

    __table_args__ = (UniqueConstraint("item_id", "annotator_id", name="uq_preferencejudgement_item_annotator"),)

    id: int | None = Field(default=None, primary_key=True)
    round_id: int = Field(foreign_key="preferenceround.id", index=True)
    item_id: int = Field(foreign_key="preferenceitem.id", index=True)
    annotator_id: int = Field(foreign_key="user.id")
    choice: str = Field(max_length=20)
    a_first: bool = True
    created_at: datetime = _ts()


class PreferenceLease(SQLModel, table=True):
    """An annotator's hold on one of a prompt's k judgement slots until `expires_at` (the review
    queue's lease pattern); deleted when they judge it."""

    __table_args__ = (UniqueConstraint("item_id", "annotator_id", name="uq_preferencelease_item_annotator"),)

    id: int | None = Field(default=None, primary_key=True)
    round_id: int = Field(foreign_key="preferenceround.id", index=True)
    item_id: int = Field(foreign_key="preferenceitem.id", index=True)
    annotator_id: int = Field(foreign_key="user.id")
    created_at: datetime = _ts()
    expires_at: datetime = Field(sa_type=DateTime(timezone=True))
