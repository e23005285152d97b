"""Review rules shared by import, the review queue and adjudication.

`resolve_status` is the one place that decides an example's status and final label from its
annotations, so imported labels and labels given in the browser follow the same project rule.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, update
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from curation.access import audit
from curation.access.roles import require_role
from curation.db import read_session
from curation.errors import Conflict, InputError, PermissionDenied
from curation.lookup import get_or_not_found
from curation.models import (
    Adjudication,
    Annotation,
    Assignment,
    AssignmentState,
    Example,
    ExampleStatus,
    FinalLabelRule,
    Project,
    RereviewState,
    Role,
    TaskType,
    User,
    UserKind,
    utcnow,
)
from curation.retry import run_write
from curation.review.rules import RATING_SCALE, resolve_status
from curation.review.sources import counted_condition, is_blind, visible_suggestions

# --------------------------------------------------------------------------- annotating
#
# Blind review: what an annotator gets from this module is the example's content, the project's
# labels and guidelines, and their own annotation. Other people's labels and comments, the status
# and the final label stay with the leads (curation.adjudication).
ANNOTATING_ROLES = (Role.annotator, Role.lead, Role.admin)

FLAGS: dict[str, str] = {
    "ambiguous": "Ambiguous",
    "off_task": "Off-task",
    "personal_data": "Personal data",
    "bad_formatting": "Bad formatting",
}

MAX_COMMENT = 10_000

OPEN_STATUSES = (ExampleStatus.new.value, ExampleStatus.in_review.value)


@dataclass(frozen=True)
class ReviewItem:
    """What the review screen shows for one item.

    `example` carries the content only (text, prompt/response or messages): no status, final
    label, exclusion reason or metadata. `annotation` is the caller's own label, when they gave
    one (going back to change it); its `row_version` guards the edit."""

    example: Example
    project_id: int
    task_type: TaskType
    labels: list[str]
    guidelines: str
    guidelines_version: int
    annotation: Annotation | None = None
    lease_expires_at: datetime | None = None
    # Issue 12: suggestions and source votes the project lets this annotator see now (none on blind
    # items; with `after_choice` only once `annotation` exists). Never pre-selected.
    suggestions: tuple[Any, ...] = ()
    blind: bool = False


def content_only(example: Example) -> Example:
    """A detached copy of the example with its content and nothing an annotator must not see."""
    return Example(id=example.id, project_id=example.project_id, external_id=example.external_id,
                   text=example.text, prompt=example.prompt, response=example.response,
                   messages=example.messages, content_hash=example.content_hash)


def review_item(session: Session, project: Project, example: Example, annotation: Annotation | None,
                lease_expires_at: datetime | None = None) -> ReviewItem:

    return ReviewItem(example=content_only(example), project_id=project.id or 0,
                      task_type=TaskType(project.task_type), labels=list(project.labels),
                      guidelines=project.guidelines, guidelines_version=project.guidelines_version,
                      annotation=annotation, lease_expires_at=lease_expires_at,
                      suggestions=tuple(visible_suggestions(session, project, example, annotation)),
                      blind=is_blind(project, example))


def get_review_item(engine: Engine, actor: User, example_id: int) -> ReviewItem:
    """One item as the review screen shows it to `actor`. Annotators may open only items the queue
    handed them (an active lease) or that they labelled; leads and admins any item."""
    require_role(actor, *ANNOTATING_ROLES)
    with read_session(engine) as session:
        example = _example(session, example_id)
        project = session.get(Project, example.project_id)
        assert project is not None
        mine = _own_annotation(session, example_id, actor)
        lease = session.exec(select(Assignment).where(
            Assignment.example_id == example_id, Assignment.annotator_id == actor.id,
            Assignment.state == AssignmentState.leased.value)).first()
        if actor.role == Role.annotator and mine is None and lease is None:
            raise PermissionDenied(f"Item #{example_id} is not assigned to you.")
        return review_item(session, project, example, mine, lease.expires_at if lease else None)


def submit_annotation(
    engine: Engine,
    actor: User,
    example_id: int,
    *,
    label: str | None = None,
    response: str | None = None,
    rating: int | None = None,
    comment: str = "",
    flags: Sequence[str] = (),
) -> Annotation:
    """Record `actor`'s label (classification) or edited response and 1-5 rating (generation).

    One transaction: the annotation, the example's status and final label by the project rule
    (`resolve_status`), the release of the actor's lease, and the audit event. The item never gets
    more than k labels: with a live lease the actor's slot is reserved; without one (it lapsed) the
    label is taken only while a slot is free. Transient conflicts are retried here."""
    require_role(actor, *ANNOTATING_ROLES)
    comment, flag_list = _clean_comment_flags(comment, flags)

    def work(session: Session) -> Annotation:
        example = _example(session, example_id, lock=True)
        project = session.get(Project, example.project_id)
        assert project is not None
        label_value, response_value = _validate_value(project, example, label, response, rating)
        if _own_annotation(session, example_id, actor) is not None:
            raise Conflict(f"You have already labelled item #{example_id}; "
                           "go back to it to change your label.")
        if example.status == ExampleStatus.excluded:
            raise Conflict(f"Item #{example_id} was excluded by a lead; your label was not needed. "
                           "Take the next item.")
        full = Conflict(f"Item #{example_id} already has its {project.overlap_k} labels; "
                        "your label was not saved. Take the next item.")
        if example.status not in OPEN_STATUSES:
            raise full if _count_annotations(session, example_id) >= project.overlap_k else \
                _not_open(example, project)
        now = utcnow()
        taken = _count_annotations(session, example_id) + _count_live_leases(session, example_id, now,
                                                                             exclude_annotator=actor.id)
        if taken >= project.overlap_k:
            raise full
        annotation = Annotation(example_id=example_id, annotator_id=actor.id, label=label_value,
                                response=response_value, rating=rating, comment=comment, flags=flag_list,
                                created_at=now, updated_at=now)
        session.add(annotation)
        session.execute(delete(Assignment).where(Assignment.example_id == example_id,
                                                 Assignment.annotator_id == actor.id))
        session.flush()
        change = resolve_example(session, project, example)
        audit.record(session, actor, "annotation.create", "example", example_id, project_id=project.id,
                     before=change[0], after={**_annotation_snapshot(annotation), **change[1]})
        return annotation

    return run_write(engine, work)


def update_annotation(
    engine: Engine,
    actor: User,
    annotation_id: int,
    row_version: int,
    *,
    label: str | None = None,
    response: str | None = None,
    rating: int | None = None,
    comment: str = "",
    flags: Sequence[str] = (),
) -> Annotation:
    """Change one's own earlier label. `row_version` is the version the caller saw: when the row has
    moved on since (an edit in another tab or by another process), nothing is written and Conflict
    says so; never a silent overwrite. The example's status is resolved again (unless a lead has
    settled or excluded it)."""
    require_role(actor, *ANNOTATING_ROLES)
    comment, flag_list = _clean_comment_flags(comment, flags)

    def work(session: Session) -> Annotation:
        annotation = get_or_not_found(session, Annotation, annotation_id)
        if annotation.annotator_id != actor.id:
            raise PermissionDenied("You can change only your own labels; "
                                   "leads settle items on the Adjudication page.")
        example = _example(session, annotation.example_id, lock=True)
        project = session.get(Project, example.project_id)
        assert project is not None
        label_value, response_value = _validate_value(project, example, label, response, rating)
        before = _annotation_snapshot(annotation)
        result = session.execute(
            update(Annotation).where(Annotation.id == annotation_id, Annotation.row_version == row_version)
            .values(label=label_value, response=response_value, rating=rating, comment=comment,
                    flags=flag_list, row_version=Annotation.row_version + 1, updated_at=utcnow()))
        if result.rowcount != 1:
            session.refresh(annotation)
            raise Conflict(f"Your label on item #{annotation.example_id} was changed elsewhere since you "
                           f"opened it (version {row_version}, now {annotation.row_version}); nothing was "
                           "saved. Reload to see the current label, then edit again.")
        session.refresh(annotation)
        change = resolve_example(session, project, example)
        audit.record(session, actor, "annotation.update", "example", example.id, project_id=project.id,
                     before={**before, **change[0]}, after={**_annotation_snapshot(annotation), **change[1]})
        return annotation

    return run_write(engine, work)


def previous_annotation(engine: Engine, actor: User, project_id: int,
                        before_id: int | None = None) -> ReviewItem | None:
    """The caller's own most recent annotation in the project (before annotation `before_id` when
    given), as a review item to change: the review screen's "back"."""
    require_role(actor, *ANNOTATING_ROLES)
    with read_session(engine) as session:
        project = get_or_not_found(session, Project, project_id)
        query = (select(Annotation).join(Example, Example.id == Annotation.example_id)
                 .where(Annotation.annotator_id == actor.id, Example.project_id == project_id))
        if before_id is not None:
            query = query.where(Annotation.id < before_id)
        annotation = session.exec(query.order_by(Annotation.id.desc()).limit(1)).first()
        if annotation is None:
            return None
        example = _example(session, annotation.example_id)
        return review_item(session, project, example, annotation)


def resolve_example(session: Session, project: Project,
                    example: Example) -> tuple[dict[str, Any], dict[str, Any]]:
    """Set the example's status and final label/response from its annotations by the project rule
    (`resolve_status`). An excluded item stays excluded; an item a lead settled keeps the lead's
    decision, except while it waits for fresh labels after being sent back (`Example.rereview`
    pending): then only the fresh (not superseded) labels count, and when they settle it the
    re-review is settled. Returns the (before, after) status snapshot for the audit event."""
    before = status_snapshot(example)
    if example.status == ExampleStatus.excluded:
        return before, before
    pending = example.rereview == RereviewState.pending
    adjudication = None if pending else session.exec(
        select(Adjudication).where(Adjudication.example_id == example.id)
        .order_by(Adjudication.id.desc()).limit(1)).first()
    if adjudication is not None:
        example.status, example.final_label = ExampleStatus.labelled, adjudication.final_label
        example.final_response = adjudication.final_response
    else:
        rows = counted_annotations(session, project, example)
        rule, k = FinalLabelRule(project.final_label_rule), project.overlap_k
        if TaskType(project.task_type) is TaskType.generation:
            votes = [_response_vote(example, row) for row in rows]
            status, winner = resolve_status(votes, k, rule)
            example.status, example.final_label, example.final_response = status, None, winner
        else:
            status, winner = resolve_status([row.label for row in rows], k, rule)
            example.status, example.final_label, example.final_response = status, winner, None
        if pending and example.status == ExampleStatus.labelled:
            example.rereview = RereviewState.settled
    after = status_snapshot(example)
    if after != before:
        example.updated_at = utcnow()
        session.add(example)
    return before, after


def counted_annotations(session: Session, project: Project, example: Example) -> list[Annotation]:
    """The example's annotations that fill its k slots: every person's; a source account's vote only
    when the project counts source votes and the item is in no label audit (issue 12); none superseded
    by a re-review (issue 13)."""
    rows = session.exec(select(Annotation, User.kind).join(User, User.id == Annotation.annotator_id)
                        .where(Annotation.example_id == example.id,
                               Annotation.superseded == False)).all()  # noqa: E712 (issue 13: re-review)
    sources_count = bool(project.source_votes_count) and example.audit_id is None
    return [row for row, kind in rows if kind != UserKind.source.value or sources_count]


def original_response(example: Example) -> str:
    """The response a generation annotator edits: `response`, or a chat's last assistant turn."""
    return response_of(example.response, example.messages)


def response_of(response: str | None, messages: list[dict[str, Any]] | None) -> str:
    if response is not None:
        return response
    for message in reversed(messages or []):
        if message.get("role") == "assistant":
            return str(message.get("content") or "")
    return ""


def status_snapshot(example: Example) -> dict[str, Any]:
    return {"status": ExampleStatus(example.status).value, "final_label": example.final_label,
            "final_response": example.final_response, "exclusion_reason": example.exclusion_reason}


def _response_vote(example: Example, annotation: Annotation) -> str:
    """A generation annotation's vote: its (edited) response, line endings and outer blanks normalised."""
    text = annotation.response if annotation.response is not None else original_response(example)
    return text.replace("\r\n", "\n").strip()


def _annotation_snapshot(annotation: Annotation) -> dict[str, Any]:
    return {"annotation_id": annotation.id, "annotator_id": annotation.annotator_id,
            "label": annotation.label, "response": annotation.response, "rating": annotation.rating,
            "comment": annotation.comment, "flags": list(annotation.flags),
            "row_version": annotation.row_version}


def _validate_value(project: Project, example: Example, label: str | None, response: str | None,
                    rating: int | None) -> tuple[str | None, str | None]:
    if TaskType(project.task_type) is TaskType.generation:
        if rating is None or int(rating) not in RATING_SCALE:
            raise InputError(f"rate the response from {RATING_SCALE[0]} to {RATING_SCALE[-1]}", field="rating")
        text = original_response(example) if response is None else response
        if not text.strip():
            raise InputError("the response must not be empty", field="response")
        if label is not None:
            raise InputError("a generation project takes a response and a rating, not a label", field="label")
        return None, text
    if rating is not None or response is not None:
        raise InputError("a classification project takes a label, not a response or rating", field="label")
    if not label:
        raise InputError("choose a label", field="label")
    if label not in project.labels:
        raise InputError(f"'{label}' is not one of the project's labels ({', '.join(project.labels)})",
                         field="label")
    return label, None


def _clean_comment_flags(comment: str, flags: Sequence[str]) -> tuple[str, list[str]]:
    comment = (comment or "").strip()
    if len(comment) > MAX_COMMENT:
        raise InputError(f"a comment may have at most {MAX_COMMENT:,} characters", field="comment")
    unknown = [flag for flag in flags if flag not in FLAGS]
    if unknown:
        raise InputError(f"unknown flag '{unknown[0]}' (one of {', '.join(FLAGS)})", field="flags")
    return comment, [flag for flag in FLAGS if flag in flags]


def _example(session: Session, example_id: int, *, lock: bool = False) -> Example:
    """The example row; `lock` takes its row lock (PostgreSQL; SQLite's writer lock is already held)."""
    return get_or_not_found(session, Example, example_id, lock=lock)


def _own_annotation(session: Session, example_id: int, actor: User) -> Annotation | None:
    return session.exec(select(Annotation).where(Annotation.example_id == example_id,
                                                 Annotation.annotator_id == actor.id)).first()


def _count_annotations(session: Session, example_id: int) -> int:
    """Annotations filling the item's k slots (source votes only where they count: issue 12; superseded
    ones, from before a re-review, never: issue 13)."""

    return int(session.execute(select(func.count()).select_from(Annotation)
                               .join(User, User.id == Annotation.annotator_id)
                               .join(Example, Example.id == Annotation.example_id)
                               .join(Project, Project.id == Example.project_id)
                               .where(Annotation.example_id == example_id,
                                      counted_condition(Project.source_votes_count, Example.audit_id),
                                      Annotation.superseded == False)  # noqa: E712
                               ).scalar_one())


def _not_open(example: Example, project: Project) -> Conflict:
    """Why a label on an item that no longer takes labels was refused, in words that are true."""
    number = f"Item #{example.id}"
    if example.status == ExampleStatus.disputed:
        why = ("was sent back for re-review by a lead" if example.rereview == RereviewState.pending
               else "has disagreeing labels and waits for a lead's decision")
        return Conflict(f"{number} {why}; your label was not saved. Take the next item.")
    return Conflict(f"{number} already has its final label (imported or set by a lead); your label was not "
                    "saved. Take the next item.")


def _count_live_leases(session: Session, example_id: int, now: datetime, *,
                       exclude_annotator: int | None) -> int:
    query = select(func.count()).select_from(Assignment).where(
        Assignment.example_id == example_id, Assignment.state == AssignmentState.leased.value,
        Assignment.expires_at > now)
    if exclude_annotator is not None:
        query = query.where(Assignment.annotator_id != exclude_annotator)
    return int(session.execute(query).scalar_one())
