"""The review queue: which item an annotator labels next, with leases so that k is never exceeded.

Glossary: an item *needs labels* while its status is `new` or `in_review` (fewer than k labels).
A *slot* is one of its k places; a label fills one for good, a live *lease* (an Assignment in state
`leased`) holds one until it expires. `next_item` hands an annotator an item they have neither
labelled nor skipped that has a free slot, and leases that slot to them in the same transaction.

Speed: the candidate is found by walking the index (project_id, status, id) in order and stopping at
the first item that passes the per-item checks (each an index lookup), so a call costs about the
same at 1k and at 100k examples. On PostgreSQL the candidate row is locked with
`FOR UPDATE SKIP LOCKED` (concurrent annotators move on to different items) and the slot count is
read again after the lock; on SQLite the whole transaction holds the writer lock (`BEGIN IMMEDIATE`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from sqlalchemy import ColumnElement, and_, delete, exists, func, or_, select, update
from sqlalchemy.engine import Engine
from sqlmodel import Session

from curation.access import audit
from curation.access.roles import LEADS, require_role
from curation.db import read_session
from curation.embeddings.suggest import PROBE_SOURCE
from curation.errors import InputError
from curation.lookup import get_or_not_found
from curation.models import (
    Annotation,
    Assignment,
    AssignmentState,
    Example,
    ExampleStatus,
    Project,
    QueueOrder,
    RereviewState,
    Suggestion,
    User,
    UserKind,
    utcnow,
)
from curation.retry import run_write
from curation.review.annotate import (
    ANNOTATING_ROLES,
    OPEN_STATUSES,
    ReviewItem,
    _count_annotations,
    _count_live_leases,
    review_item,
)
from curation.review.rereview import send_for_rereview
from curation.review.sources import counted_condition

LEASE = timedelta(minutes=30)
_MAX_PROBES = 50  # candidates tried per call before giving up (each failed probe is a lost race)

_example = Example.__table__
_annotation = Annotation.__table__
_assignment = Assignment.__table__


def next_item(engine: Engine, actor: User, project_id: int, *, lease: timedelta = LEASE) -> ReviewItem | None:
    """The item `actor` should label next in the project, leased to them, or None when nothing is left
    for them. Asking again before submitting returns the same item (its lease renewed); items a lead
    assigned to them come first, oldest first."""
    require_role(actor, *ANNOTATING_ROLES)

    def work(session: Session) -> ReviewItem | None:
        project = _project(session, project_id)
        now = utcnow()
        example_id = _current_lease(session, project, actor, now, lease)
        if example_id is None:
            example_id = _claim(session, project, actor, now, now + lease, assigned_by=None)
        if example_id is None:
            return None
        example = session.get(Example, example_id)
        assert example is not None
        return review_item(session, project, example, None, _as_utc(now + lease))

    return run_write(engine, work)


def skip_item(engine: Engine, actor: User, example_id: int) -> None:
    """Skip an item: its slot is released and the queue does not offer it to `actor` again
    (until `return_skipped`)."""
    require_role(actor, *ANNOTATING_ROLES)

    def work(session: Session) -> None:
        example = get_or_not_found(session, Example, example_id)
        row = session.execute(select(Assignment).where(Assignment.example_id == example_id,
                                                       Assignment.annotator_id == actor.id)).scalars().first()
        if row is None:
            session.add(Assignment(project_id=example.project_id, example_id=example_id,
                                   annotator_id=actor.id, state=AssignmentState.skipped, expires_at=utcnow()))
        else:
            row.state, row.expires_at = AssignmentState.skipped, utcnow()
            session.add(row)

    run_write(engine, work)


def return_skipped(engine: Engine, actor: User, project_id: int) -> int:
    """Put the items `actor` skipped in the project back into their queue; returns how many."""
    require_role(actor, *ANNOTATING_ROLES)

    def work(session: Session) -> int:
        result = session.execute(delete(Assignment).where(
            Assignment.project_id == project_id, Assignment.annotator_id == actor.id,
            Assignment.state == AssignmentState.skipped.value))
        return int(result.rowcount or 0)

    return run_write(engine, work)


def assign_items(engine: Engine, actor: User, project_id: int, annotator: User, count: int,
                 *, lease: timedelta = timedelta(days=7)) -> list[int]:
    """A lead reserves up to `count` items for `annotator` (leases of `lease`, default a week), taken
    in queue order; the annotator's queue serves them first. Returns the example ids. Audited."""
    require_role(actor, *LEADS)
    require_role(annotator, *ANNOTATING_ROLES)
    if not 1 <= count <= 10_000:
        raise InputError("assign between 1 and 10,000 items at a time", field="count")

    def work(session: Session) -> list[int]:
        project = _project(session, project_id)
        now = utcnow()
        _drop_lapsed(session, project, annotator, now)
        ids: list[int] = []
        while len(ids) < count:
            example_id = _claim(session, project, annotator, now, now + lease, assigned_by=actor)
            if example_id is None:
                break
            ids.append(example_id)
        audit.record(session, actor, "queue.assign", "user", annotator.id, project_id=project.id,
                     after={"annotator": annotator.username, "examples": ids,
                            "until": (now + lease).isoformat()})
        return ids

    return run_write(engine, work)


def set_queue_order(engine: Engine, actor: User, project_id: int, order: QueueOrder | str) -> Project:
    """Choose what the queue hands out first: unlabelled items, or suspected problems. Audited."""
    require_role(actor, *LEADS)
    order = QueueOrder(order)

    def work(session: Session) -> Project:
        project = _project(session, project_id)
        before = QueueOrder(project.queue_order).value
        project.queue_order = order
        session.add(project)
        audit.record(session, actor, "project.queue_order", "project", project.id, project_id=project.id,
                     before={"queue_order": before}, after={"queue_order": order.value})
        return project

    return run_write(engine, work)


def set_priority(engine: Engine, actor: User, project_id: int, scores: Mapping[int, float | None]) -> int:
    """Set suspicion scores (example id -> score, None clears); with the `suspected_first` order the
    queue serves scored items first, highest first. For analyses that find likely problems. Audited."""
    require_role(actor, *LEADS)

    def work(session: Session) -> int:
        _project(session, project_id)
        changed = 0
        for example_id, score in scores.items():
            result = session.execute(update(Example)
                                     .where(Example.id == example_id, Example.project_id == project_id)
                                     .values(priority=None if score is None else float(score)))
            changed += int(result.rowcount or 0)
        audit.record(session, actor, "queue.priority", "project", project_id, project_id=project_id,
                     after={"examples": changed})
        return changed

    return run_write(engine, work)


def request_rereview(engine: Engine, actor: User, project_id: int, scores: Mapping[int, float], reason: str) -> int:
    """Send labelled items back for re-review with their scores as priority: `curation.rereview.
    send_for_rereview` (who re-reviews is the project's `rereview_by`). Returns how many were sent."""

    return len(send_for_rereview(engine, actor, project_id, scores, reason=reason).sent)


@dataclass(frozen=True)
class Progress:
    done: int  # items the annotator labelled in the project
    remaining: int  # items that still need labels and that they have neither labelled nor skipped
    skipped: int


def progress(engine: Engine, actor: User, project_id: int) -> Progress:
    """The annotator's own progress in the project (no one else's labels are revealed)."""
    require_role(actor, *ANNOTATING_ROLES)
    with read_session(engine) as session:
        done = session.execute(select(func.count()).select_from(_annotation).join(
            _example, _example.c.id == _annotation.c.example_id).where(
            _annotation.c.annotator_id == actor.id, _example.c.project_id == project_id)).scalar_one()
        remaining = session.execute(select(func.count()).select_from(_example).where(
            _example.c.project_id == project_id, _example.c.status.in_(OPEN_STATUSES),
            ~_labelled_by(actor.id), ~_skipped_by(actor.id))).scalar_one()
        skipped = session.execute(select(func.count()).select_from(_assignment).where(
            _assignment.c.project_id == project_id, _assignment.c.annotator_id == actor.id,
            _assignment.c.state == AssignmentState.skipped.value)).scalar_one()
    return Progress(done=int(done), remaining=int(remaining), skipped=int(skipped))


def queue_stats(engine: Engine, actor: User, project_id: int) -> dict[str, Any]:
    """Leads: items that need labels, open slots, live leases, skips, disputes, labels per annotator."""
    require_role(actor, *LEADS)
    now = utcnow()
    with read_session(engine) as session:
        project = _project(session, project_id)
        by_status = dict(session.execute(select(_example.c.status, func.count()).where(
            _example.c.project_id == project_id).group_by(_example.c.status)).all())
        labels_on_open = session.execute(select(func.count()).select_from(_annotation).join(
            _example, _example.c.id == _annotation.c.example_id).where(
            _example.c.project_id == project_id, _example.c.status.in_(OPEN_STATUSES),
            _annotation.c.superseded.is_(False))).scalar_one()
        leases = session.execute(select(func.count()).select_from(_assignment).where(
            _assignment.c.project_id == project_id, _assignment.c.state == AssignmentState.leased.value,
            _assignment.c.expires_at > now)).scalar_one()
        skips = session.execute(select(func.count()).select_from(_assignment).where(
            _assignment.c.project_id == project_id,
            _assignment.c.state == AssignmentState.skipped.value)).scalar_one()
        per_annotator = session.execute(select(User.username, func.count()).select_from(_annotation).join(
            _example, _example.c.id == _annotation.c.example_id)
            .join(User, User.id == _annotation.c.annotator_id)
            .where(_example.c.project_id == project_id).group_by(User.username).order_by(User.username)).all()
    needs = sum(int(by_status.get(s, 0)) for s in OPEN_STATUSES)
    return {
        "project": project.name,
        "overlap_k": project.overlap_k,
        "queue_order": QueueOrder(project.queue_order).value,
        "needs_labels": needs,
        "open_slots": max(0, needs * project.overlap_k - int(labels_on_open)),
        "live_leases": int(leases),
        "skipped": int(skips),
        "disputed": int(by_status.get(ExampleStatus.disputed.value, 0)),
        "labelled": int(by_status.get(ExampleStatus.labelled.value, 0)),
        "excluded": int(by_status.get(ExampleStatus.excluded.value, 0)),
        "labels_by_annotator": {str(name): int(n) for name, n in per_annotator},
    }


# --------------------------------------------------------------------------- internals


def _project(session: Session, project_id: int) -> Project:
    return get_or_not_found(session, Project, project_id)


def _as_utc(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=timezone.utc)


def _labelled_by(annotator_id: int) -> ColumnElement[bool]:
    return exists().where(and_(_annotation.c.example_id == _example.c.id,
                               _annotation.c.annotator_id == annotator_id))


def _skipped_by(annotator_id: int) -> ColumnElement[bool]:
    return exists().where(and_(_assignment.c.example_id == _example.c.id,
                               _assignment.c.annotator_id == annotator_id,
                               _assignment.c.state == AssignmentState.skipped.value))


def _drop_lapsed(session: Session, project: Project, annotator: User, now: datetime) -> None:
    session.execute(delete(Assignment).where(
        Assignment.project_id == project.id, Assignment.annotator_id == annotator.id,
        Assignment.state == AssignmentState.leased.value, Assignment.expires_at <= now))


def _current_lease(session: Session, project: Project, actor: User, now: datetime,
                   lease: timedelta) -> int | None:
    """The item the actor already holds (renewed), dropping lapsed leases and ones on items that no
    longer need labels (a lead settled or excluded them)."""
    _drop_lapsed(session, project, actor, now)
    rows = session.execute(select(Assignment.id, Assignment.example_id, Assignment.expires_at, Example.status)
                           .join(Example, Example.id == Assignment.example_id)
                           .where(Assignment.project_id == project.id, Assignment.annotator_id == actor.id,
                                  Assignment.state == AssignmentState.leased.value)
                           .order_by(Assignment.created_at, Assignment.id)).all()
    for assignment_id, example_id, expires_at, status in rows:
        if status in OPEN_STATUSES:
            if _as_utc(expires_at) < now + lease:
                session.execute(update(Assignment).where(Assignment.id == assignment_id)
                                .values(expires_at=now + lease))
            return int(example_id)
        session.execute(delete(Assignment).where(Assignment.id == assignment_id))
    return None


def _phases(project: Project, held: Any) -> list[tuple[list[ColumnElement[bool]], list[Any]]]:
    """(conditions, order) of each index walk, in the order the queue tries them: (suspected items,)
    items nobody has labelled or holds, unlabelled items someone else holds, then partly labelled ones."""
    new = _example.c.status == ExampleStatus.new.value
    phases: list[tuple[list[ColumnElement[bool]], list[Any]]] = [_rereview_phase()]
    # Items of an open label audit first (issue 12): the audit's estimate waits for them.
    phases.append(([_example.c.status.in_(OPEN_STATUSES), _example.c.audit_id.is_not(None)], [_example.c.id]))
    phases += _active_learning_phases(project)  # issue 12: lowest margin, disagreement
    if QueueOrder(project.queue_order) is QueueOrder.suspected_first:
        phases.append(([_example.c.status.in_(OPEN_STATUSES), _example.c.priority.is_not(None)],
                       [_example.c.priority.desc(), _example.c.id]))
    phases += [([new, held == 0], [_example.c.id]), ([new], [_example.c.id]),
               ([_example.c.status == ExampleStatus.in_review.value], [_example.c.id])]
    return phases


def _counted_labels(project: Project) -> Any:
    """Correlated count of an item's annotations that fill its k slots (issue 12: source votes only
    where the project counts them, never in a label audit; issue 13: not superseded by a re-review)."""

    return (select(func.count()).select_from(_annotation).join(User, User.id == _annotation.c.annotator_id)
            .where(_annotation.c.example_id == _example.c.id,
                   counted_condition(bool(project.source_votes_count), _example.c.audit_id),
                   _annotation.c.superseded.is_(False))
            .correlate(_example).scalar_subquery())


def _active_learning_phases(project: Project) -> list[tuple[list[ColumnElement[bool]], list[Any]]]:
    """Index walks of the active-learning orders (issue 12), over items with a probe suggestion
    (curation.suggest): smallest margin first; or items whose source label the probe contradicts,
    most confident probe first."""

    order = QueueOrder(project.queue_order)
    if order not in (QueueOrder.lowest_margin, QueueOrder.disagreement, QueueOrder.uncovered_clusters):
        return []
    probe = Suggestion.__table__.alias("probe")
    of_item = and_(probe.c.example_id == _example.c.id, probe.c.source == PROBE_SOURCE)
    is_open = _example.c.status.in_(OPEN_STATUSES)
    margin = select(probe.c.margin).where(of_item).correlate(_example).scalar_subquery()
    if order is QueueOrder.lowest_margin:
        return [([is_open, exists().where(of_item)], [margin.asc(), _example.c.id])]
    if order is QueueOrder.uncovered_clusters:  # least reviewed clusters first; inside one, least certain first
        coverage = select(probe.c.cluster_coverage).where(of_item).correlate(_example).scalar_subquery()
        return [([is_open, exists().where(of_item)], [coverage.asc(), margin.asc(), _example.c.id])]
    other = Suggestion.__table__.alias("other")
    voter = User.__table__.alias("voter")
    vote_disagrees = exists().where(and_(
        _annotation.c.example_id == _example.c.id, voter.c.id == _annotation.c.annotator_id,
        voter.c.kind == UserKind.source.value, of_item, _annotation.c.label != probe.c.label))
    suggestion_disagrees = exists().where(and_(
        other.c.example_id == _example.c.id, other.c.source != PROBE_SOURCE, of_item,
        other.c.label != probe.c.label))
    score = select(probe.c.score).where(of_item).correlate(_example).scalar_subquery()
    return [([is_open, or_(vote_disagrees, suggestion_disagrees)], [score.desc(), _example.c.id])]


def _rereview_phase() -> tuple[list[ColumnElement[bool]], list[Any]]:
    """Items sent back to annotators for fresh labels (curation.rereview) come first under every
    queue order, highest suspicion first."""
    return ([_example.c.status.in_(OPEN_STATUSES), _example.c.rereview == RereviewState.pending.value],
            [_example.c.priority.desc(), _example.c.id])


def _claim(session: Session, project: Project, annotator: User, now: datetime, until: datetime,
           *, assigned_by: User | None) -> int | None:
    """Lease the next free slot to `annotator`; the example id, or None when there is none."""
    k = project.overlap_k
    labels = _counted_labels(project)
    held = (select(func.count()).select_from(_assignment)
            .where(_assignment.c.example_id == _example.c.id,
                   _assignment.c.state == AssignmentState.leased.value,
                   _assignment.c.expires_at > now).scalar_subquery())
    mine = exists().where(and_(_assignment.c.example_id == _example.c.id,
                               _assignment.c.annotator_id == annotator.id))
    tried: list[int] = []
    # PostgreSQL: first pass over rows nobody has locked (concurrent annotators spread out); when that
    # finds nothing, a second pass waits for locked rows, so a slot that is free but momentarily
    # locked by someone else's claim is never reported as "nothing left".
    passes = (True,) if session.get_bind().dialect.name == "sqlite" else (True, False)
    walks = [(skip, phase) for skip in passes for phase in _phases(project, held)]
    for skip_locked, (conditions, order) in walks:
        for _ in range(_MAX_PROBES):
            query = (select(_example.c.id)
                     .where(_example.c.project_id == project.id, *conditions, ~_labelled_by(annotator.id),
                            ~mine, labels + held < k)
                     .order_by(*order).limit(1).with_for_update(skip_locked=skip_locked, of=_example))
            if tried:
                query = query.where(_example.c.id.not_in(tried))
            candidate = session.execute(query).scalar()
            if candidate is None:
                break
            # Re-count after the row lock: on PostgreSQL a lease or label committed since the query's
            # snapshot is visible to this new statement. (On SQLite nothing can have changed.)
            taken = _count_annotations(session, candidate) + _count_live_leases(session, candidate, now,
                                                                                 exclude_annotator=None)
            if taken < k:
                session.add(Assignment(project_id=project.id, example_id=candidate, annotator_id=annotator.id,
                                       state=AssignmentState.leased, expires_at=until, created_at=now,
                                       assigned_by_id=assigned_by.id if assigned_by else None))
                session.flush()
                return int(candidate)
            tried.append(int(candidate))
    return None
