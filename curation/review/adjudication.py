"""Leads' side of review: the disagreement queue, every label of an item, settling, relabelling,
excluding and re-including items, and the long-format export of all annotations.

Leads and admins only: this is where other people's labels, comments and final labels are shown.
Every change writes an audit event in its own transaction.
"""

from __future__ import annotations

import csv
import json
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.engine import Engine
from sqlmodel import Session

from curation.access import audit
from curation.access.roles import LEADS, require_role
from curation.db import read_session
from curation.errors import Conflict, InputError
from curation.lookup import get_or_not_found
from curation.models import (
    Adjudication,
    Annotation,
    Example,
    ExampleStatus,
    Project,
    RereviewState,
    TaskType,
    User,
    utcnow,
)
from curation.retry import run_write
from curation.review.annotate import resolve_example, response_of, status_snapshot
from curation.review.rereview import rereview_evidence
from curation.review.rules import most_disputed_first

EXCLUSION_REASONS: dict[str, str] = {
    "off_task": "Off-task",
    "personal_data": "Personal data",
    "duplicate": "Duplicate",
    "other": "Other",
}
ANNOTATION_EXPORT_FORMATS = ("csv", "jsonl")


@dataclass(frozen=True)
class DisputedItem:
    example_id: int
    external_id: str
    labels: int  # how many labels it has
    votes: dict[str, int]  # label (or edited response) -> how many annotators gave it
    disagreement: float  # 1 - share of the most common answer: 0 = all agree
    suspicion: float | None = None  # sent back as a suspected label error: its score (curation.rereview)
    evidence: dict[str, Any] = field(default_factory=dict)  # earlier label, proposed label, probabilities...

    @property
    def rereview(self) -> bool:
        """Sent back for re-review as a suspected label error (not a disagreement of labels)."""
        return self.suspicion is not None and not self.votes

    @property
    def distinct(self) -> int:
        return len(self.votes)


@dataclass
class AnnotationView:
    annotation: Annotation
    annotator: str


@dataclass
class ExampleDetail:
    """Everything about one example, for leads: the full row, each label with its annotator and
    comment, and the lead decisions so far (newest last)."""

    example: Example
    project: Project
    annotations: list[AnnotationView] = field(default_factory=list)
    adjudications: list[tuple[Adjudication, str]] = field(default_factory=list)


def adjudication_queue(engine: Engine, actor: User, project_id: int,
                       limit: int | None = None) -> list[DisputedItem]:
    """Items waiting for a lead (status `disputed`): first those whose k labels disagree, most
    disputed first (review.rules.most_disputed_first: the lowest share for the most common answer, the
    most distinct answers, the highest entropy, the most labels, then the oldest item); then the items
    sent back for re-review as suspected label errors (curation.review.rereview), highest suspicion
    first, each with its evidence. Superseded labels (from before a re-review by annotators) are not
    counted."""
    require_role(actor, *LEADS)
    with read_session(engine) as session:
        project = _project(session, project_id)
        generation = TaskType(project.task_type) is TaskType.generation
        waiting = session.execute(
            select(Example.id, Example.external_id, Example.priority, Example.rereview)
            .where(Example.project_id == project_id, Example.status == ExampleStatus.disputed.value)).all()
        rows = session.execute(
            select(Example.id, Example.response, Example.messages, Annotation.label, Annotation.response)
            .join(Annotation, Annotation.example_id == Example.id)
            .where(Example.project_id == project_id, Example.status == ExampleStatus.disputed.value,
                   Annotation.superseded == False)).all()  # noqa: E712 (SQL, not Python)
        sent_back = [int(row.id) for row in waiting if row.rereview == RereviewState.pending.value]
        evidence = rereview_evidence(session, sent_back) if sent_back else {}
    votes: dict[int, Counter[str]] = defaultdict(Counter)
    for example_id, original, messages, label, response in rows:
        if generation:
            vote = (response if response is not None else response_of(original, messages))
            vote = vote.replace("\r\n", "\n").strip()
        else:
            vote = label if label is not None else "(no label)"
        votes[example_id][vote] += 1
    items = []
    for example_id, external_id, priority, rereview in waiting:
        counter = votes.get(example_id, Counter())
        total = sum(counter.values())
        pending = rereview == RereviewState.pending.value
        items.append(DisputedItem(
            example_id=example_id, external_id=external_id, labels=total, votes=dict(counter.most_common()),
            disagreement=1 - counter.most_common(1)[0][1] / total if total else 0.0,
            suspicion=(float(priority) if priority is not None else 0.0) if pending else None,
            evidence=evidence.get(example_id, {})))
    disputed = [item for item in items if not item.rereview]
    sent = sorted((item for item in items if item.rereview), key=lambda item: (-(item.suspicion or 0.0),
                                                                              item.example_id))
    if disputed:
        width = max(max(item.distinct for item in disputed), 1)
        counts = [sorted(item.votes.values(), reverse=True) + [0] * (width - item.distinct) for item in disputed]
        disputed = [disputed[j] for j in most_disputed_first(counts, [item.example_id for item in disputed])]
    items = disputed + sent
    return items[:limit] if limit is not None else items


def adjudication_queue_size(engine: Engine, actor: User, project_id: int) -> int:
    require_role(actor, *LEADS)
    with read_session(engine) as session:
        _project(session, project_id)
        return int(session.execute(select(func.count()).select_from(Example).where(
            Example.project_id == project_id, Example.status == ExampleStatus.disputed.value)).scalar_one())


def example_detail(engine: Engine, actor: User, example_id: int) -> ExampleDetail:
    require_role(actor, *LEADS)
    with read_session(engine) as session:
        example = _example(session, example_id)
        project = _project(session, example.project_id)
        detail = ExampleDetail(example=example, project=project)
        for annotation, username in session.execute(
                select(Annotation, User.username).join(User, User.id == Annotation.annotator_id)
                .where(Annotation.example_id == example_id)
                .order_by(Annotation.created_at, Annotation.id)).all():
            detail.annotations.append(AnnotationView(annotation, username))
        detail.adjudications = [(a, name) for a, name in session.execute(
            select(Adjudication, User.username).join(User, User.id == Adjudication.lead_id)
            .where(Adjudication.example_id == example_id).order_by(Adjudication.id)).all()]
    return detail


def adjudicate(engine: Engine, actor: User, example_id: int, *, reason: str, final_label: str | None = None,
               final_response: str | None = None) -> Example:
    """Set an item's final label (classification) or final response (generation), with a reason.

    Works on any item: settling a dispute, or relabelling one that looked settled (an excluded item
    is included again with this label). The decision stands when annotators later change their labels."""
    require_role(actor, *LEADS)
    reason = _reason(reason)

    def work(session: Session) -> Example:
        example = _example(session, example_id, lock=True)
        project = _project(session, example.project_id)
        label, response = _final_value(project, final_label, final_response)
        before = status_snapshot(example)
        session.add(Adjudication(example_id=example_id, lead_id=actor.id, final_label=label,
                                 final_response=response, reason=reason))
        example.status, example.final_label, example.final_response = ExampleStatus.labelled, label, response
        example.exclusion_reason = None
        if example.rereview == RereviewState.pending:
            example.rereview = RereviewState.settled
        example.updated_at = utcnow()
        session.add(example)
        audit.record(session, actor, "example.adjudicate", "example", example_id, project_id=project.id,
                     before=before, after={**status_snapshot(example), "reason": reason})
        return example

    return run_write(engine, work)


def exclude_example(engine: Engine, actor: User, example_id: int, category: str, note: str = "") -> Example:
    """Exclude an item from every dataset version (off-task, personal data, ...), with a reason."""
    require_role(actor, *LEADS)
    if category not in EXCLUSION_REASONS:
        raise InputError(f"exclusion reason must be one of {', '.join(EXCLUSION_REASONS)}", field="category")
    note = (note or "").strip()
    if category == "other" and not note:
        raise InputError("say why the item is excluded", field="reason")
    reason = f"{category}: {note}" if note else category

    def work(session: Session) -> Example:
        example = _example(session, example_id, lock=True)
        if example.status == ExampleStatus.excluded:
            raise Conflict(f"Item #{example_id} is already excluded ({example.exclusion_reason}).")
        before = status_snapshot(example)
        example.status, example.exclusion_reason = ExampleStatus.excluded, reason
        example.updated_at = utcnow()
        session.add(example)
        audit.record(session, actor, "example.exclude", "example", example_id, project_id=example.project_id,
                     before=before, after=status_snapshot(example))
        return example

    return run_write(engine, work)


def include_example(engine: Engine, actor: User, example_id: int, reason: str) -> Example:
    """Undo an exclusion: the status comes back from the labels (or the last lead decision)."""
    require_role(actor, *LEADS)
    reason = _reason(reason)

    def work(session: Session) -> Example:
        example = _example(session, example_id, lock=True)
        if example.status != ExampleStatus.excluded:
            raise Conflict(f"Item #{example_id} is not excluded.")
        project = _project(session, example.project_id)
        before = status_snapshot(example)
        example.status, example.exclusion_reason = ExampleStatus.new, None
        resolve_example(session, project, example)
        example.updated_at = utcnow()
        session.add(example)
        audit.record(session, actor, "example.include", "example", example_id, project_id=project.id,
                     before=before, after={**status_snapshot(example), "reason": reason})
        return example

    return run_write(engine, work)


def annotation_rows(engine: Engine, actor: User, project_id: int) -> Iterator[dict[str, Any]]:
    """Every annotation of the project in long format, one row per (item, annotator), oldest first:
    item, annotator, label, time, plus rating, response, comment and flags."""
    require_role(actor, *LEADS)
    with read_session(engine) as session:
        _project(session, project_id)
        result = session.execute(
            select(Example.external_id, Example.id, User.username, Annotation)
            .join(Annotation, Annotation.example_id == Example.id)
            .join(User, User.id == Annotation.annotator_id)
            .where(Example.project_id == project_id).order_by(Annotation.created_at, Annotation.id)
            .execution_options(yield_per=2000))
        for external_id, example_id, username, annotation in result:
            yield {"item": external_id, "example_id": example_id, "annotator": username,
                   "label": annotation.label, "time": _iso(annotation.updated_at),
                   "rating": annotation.rating, "response": annotation.response,
                   "comment": annotation.comment, "flags": ",".join(annotation.flags)}


def export_annotations(engine: Engine, actor: User, project_id: int, out: str | Path,
                       file_format: str = "csv") -> int:
    """Write `annotation_rows` to `out` as CSV or JSONL; returns the number of rows."""
    if file_format not in ANNOTATION_EXPORT_FORMATS:
        raise InputError(f"format must be one of {', '.join(ANNOTATION_EXPORT_FORMATS)}", field="format")
    rows = annotation_rows(engine, actor, project_id)
    first = next(rows, None)  # runs the role check before a file is created
    path = Path(out)
    path.parent.mkdir(parents=True, exist_ok=True)
    count = 0
    with path.open("w", encoding="utf-8", newline="") as handle:
        columns = ["item", "example_id", "annotator", "label", "time", "rating", "response", "comment",
                   "flags"]
        writer = csv.DictWriter(handle, fieldnames=columns) if file_format == "csv" else None
        if writer:
            writer.writeheader()
        for row in _chain(first, rows):
            if writer:
                writer.writerow(row)
            else:
                handle.write(json.dumps(row, ensure_ascii=False) + "\n")
            count += 1
    return count


# --------------------------------------------------------------------------- internals


def _chain(first: dict[str, Any] | None, rest: Iterator[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    if first is not None:
        yield first
        yield from rest


def _iso(value: Any) -> str:
    return value.isoformat() if hasattr(value, "isoformat") else str(value)


def _reason(reason: str) -> str:
    reason = (reason or "").strip()
    if not reason:
        raise InputError("give a reason: it goes into the audit trail", field="reason")
    if len(reason) > 10_000:
        raise InputError("a reason may have at most 10,000 characters", field="reason")
    return reason


def _final_value(project: Project, label: str | None, response: str | None) -> tuple[str | None, str | None]:
    if TaskType(project.task_type) is TaskType.generation:
        if label is not None:
            raise InputError("a generation project takes a final response, not a label", field="final_label")
        if response is None or not response.strip():
            raise InputError("the final response must not be empty", field="final_response")
        return None, response.replace("\r\n", "\n").strip()
    if response is not None:
        raise InputError("a classification project takes a final label, not a response",
                         field="final_response")
    if not label or label not in project.labels:
        raise InputError(f"the final label must be one of the project's labels ({', '.join(project.labels)})",
                         field="final_label")
    return label, None


def _project(session: Session, project_id: int) -> Project:
    return get_or_not_found(session, Project, project_id)


def _example(session: Session, example_id: int, *, lock: bool = False) -> Example:
    return get_or_not_found(session, Example, example_id, lock=lock)
