"""Re-review of suspected label errors: who re-reviews them, sending them back, and which expert
decisions stick.

The project's `rereview_by` setting (`RereviewBy`) says who looks again at an item a lead sends back:

- `leads` (default): the item becomes `disputed` (its final label cleared; the old one is in the audit
  event with the evidence: proposed label, classifier probabilities, disagreeing neighbours) and waits
  in the leads' adjudication queue (`curation.adjudication.adjudication_queue`), highest suspicion first.
- `annotators`: its earlier labels are *superseded* (kept on record, no longer counted), it becomes
  `new` again and the review queue hands it out before anything else, highest suspicion first
  (`curation.queue._rereview_phase`), for k fresh labels from annotators who have not labelled it.
  They see the content only: neither the earlier labels nor the suspicion. When the fresh labels
  disagree it goes to the adjudication queue like any dispute.

Either way the item is `Example.rereview = pending` until an expert decides (a lead's adjudication,
or the fresh labels agreeing), then `settled`. An item an expert decided (settled, or adjudicated by
a lead at any time) is *confirmed by experts*: `send_for_rereview` does not send it again unless the
lead asks for it explicitly (`force=True`), and `suspected_left` does not count it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sqlalchemy import delete, or_, select, update
from sqlalchemy.engine import Engine
from sqlmodel import Session

from curation.access import audit
from curation.access.roles import LEADS, require_role
from curation.db import read_session
from curation.errors import NotFound
from curation.lookup import get_or_not_found
from curation.models import (
    Adjudication,
    Annotation,
    Assignment,
    AuditEvent,
    Example,
    ExampleStatus,
    Project,
    RereviewBy,
    RereviewState,
    User,
    utcnow,
)
from curation.retry import run_write

if TYPE_CHECKING:
    from curation.embeddings.quality import LabelIssue, LabelIssueReport

DEFAULT_REASON = "suspected label error (classifier / kNN disagreement)"


@dataclass
class RereviewResult:
    """What `send_for_rereview` did: `sent` ids (in the order given), and why others were not sent."""

    rereview_by: RereviewBy
    sent: list[int] = field(default_factory=list)
    confirmed: list[int] = field(default_factory=list)  # an expert decided it: sent only with force
    pending: list[int] = field(default_factory=list)  # already waiting for re-review
    not_labelled: list[int] = field(default_factory=list)  # excluded, open or disputed: nothing to re-review

    def message(self) -> str:
        """A one-line summary that says what happened, for the page and the CLI."""
        where = ("the leads' adjudication queue" if self.rereview_by is RereviewBy.leads
                 else "the annotators' review queue for fresh blind labels")
        parts = [f"Sent {len(self.sent)} items back for re-review ({where}, highest suspicion first)."]
        if self.confirmed:
            parts.append(f"{len(self.confirmed)} confirmed by experts were not sent again "
                         "(send them explicitly to override).")
        if self.pending:
            parts.append(f"{len(self.pending)} were already waiting for re-review.")
        if self.not_labelled:
            parts.append(f"{len(self.not_labelled)} have no final label (excluded, disputed or still being "
                         "labelled) and were left as they are.")
        return " ".join(parts)


def set_rereview_by(engine: Engine, actor: User, project_id: int, who: RereviewBy | str) -> Project:
    """Choose who re-reviews suspected items in the project (leads). Audited."""
    require_role(actor, *LEADS)
    who = RereviewBy(who)

    def work(session: Session) -> Project:
        project = _project(session, project_id)
        before = RereviewBy(project.rereview_by).value
        project.rereview_by = who
        session.add(project)
        audit.record(session, actor, "project.rereview_by", "project", project.id, project_id=project.id,
                     before={"rereview_by": before}, after={"rereview_by": who.value})
        return project

    return run_write(engine, work)


def send_for_rereview(engine: Engine, actor: User, project_id: int,
                      items: Sequence[LabelIssue] | Mapping[int, float], *, force: bool = False,
                      reason: str = "") -> RereviewResult:
    """Send labelled items back for re-review by whoever the project's `rereview_by` names (see the
    module docstring). `items`: label issues (their score is the queue priority and their evidence
    goes into the audit event) or example id -> score. Items confirmed by experts are skipped unless
    `force`; items already pending, excluded or without a final label are skipped. One transaction,
    one audit event per item sent."""
    require_role(actor, *LEADS)
    reason = (reason or "").strip() or DEFAULT_REASON
    if isinstance(items, Mapping):
        wanted = {int(i): (float(score), {}) for i, score in items.items()}
    else:
        wanted = {issue.example_id: (issue.score, issue.evidence()) for issue in items}

    def work(session: Session) -> RereviewResult:
        project = _project(session, project_id)
        result = RereviewResult(RereviewBy(project.rereview_by))
        decided = _expert_decided(session, project_id, list(wanted))
        for example_id, (score, evidence) in wanted.items():
            example = session.get(Example, example_id, with_for_update=True)
            if example is None or example.project_id != project_id:
                raise NotFound(f"No example with id {example_id} in project {project.name}.")
            if example.rereview == RereviewState.pending:
                result.pending.append(example_id)
                continue
            if example.status != ExampleStatus.labelled:
                result.not_labelled.append(example_id)
                continue
            if example_id in decided and not force:
                result.confirmed.append(example_id)
                continue
            before = {"status": ExampleStatus(example.status).value, "final_label": example.final_label,
                      "priority": example.priority, "rereview": example.rereview}
            example.priority, example.rereview = float(score), RereviewState.pending
            example.final_label, example.final_response = None, None
            if result.rereview_by is RereviewBy.annotators:
                # k fresh labels: the earlier ones stay on record but no longer count, and nobody
                # holds or has skipped the item any more.
                session.execute(update(Annotation).where(Annotation.example_id == example_id)
                                .values(superseded=True))
                session.execute(delete(Assignment).where(Assignment.example_id == example_id))
                example.status = ExampleStatus.new
            else:
                example.status = ExampleStatus.disputed
            example.updated_at = utcnow()
            session.add(example)
            audit.record(session, actor, "example.rereview", "example", example_id, project_id=project_id,
                         before=before, after={"status": ExampleStatus(example.status).value,
                                               "priority": example.priority, "reason": reason,
                                               "rereview_by": result.rereview_by.value, "forced": force,
                                               "evidence": evidence})
            result.sent.append(example_id)
        return result

    return run_write(engine, work)


def expert_confirmed_ids(engine: Engine, actor: User, project_id: int) -> set[int]:
    """Labelled items whose label an expert decided: a lead's adjudication, or a settled re-review."""
    require_role(actor, *LEADS)
    with read_session(engine) as session:
        _project(session, project_id)
        return _expert_decided(session, project_id, None, labelled_only=True)


def pending_rereview_count(engine: Engine, actor: User, project_id: int) -> int:
    require_role(actor, *LEADS)
    with read_session(engine) as session:
        _project(session, project_id)
        return len(session.execute(select(Example.id).where(
            Example.project_id == project_id, Example.rereview == RereviewState.pending.value)).all())


def rereview_evidence(session: Session, example_ids: Sequence[int]) -> dict[int, dict[str, Any]]:
    """The latest re-review audit event's evidence and earlier label per item (leads' view)."""

    found: dict[int, dict[str, Any]] = {}
    for start in range(0, len(example_ids), 500):
        chunk = list(example_ids[start:start + 500])
        rows = session.execute(select(AuditEvent.entity_id, AuditEvent.before, AuditEvent.after).where(
            AuditEvent.action == "example.rereview", AuditEvent.entity == "example",
            AuditEvent.entity_id.in_(chunk)).order_by(AuditEvent.id)).all()
        for entity_id, before, after in rows:
            found[int(entity_id)] = {**((after or {}).get("evidence") or {}),
                                     "earlier_label": (before or {}).get("final_label"),
                                     "reason": (after or {}).get("reason", "")}
    return found


def suspected_left(report: LabelIssueReport, confirmed: set[int]) -> list[LabelIssue]:
    """The suspected items still worth an expert's look: the report's flagged items, minus those an
    expert already decided. The Label issues page and the version checklist both count this."""
    return [issue for issue in report.flagged if issue.example_id not in confirmed]


def estimated_wrong_share(report: LabelIssueReport, confirmed: set[int]) -> float:
    """Estimated share of wrong labels left among the scored items: the items cleanlab's confident
    learning flags (its count comes from the confident joint, which calibrates a threshold per class)
    that no expert has decided, over the number scored. 0.0 when nothing was scored.

    Why not the mean out-of-sample probability that the label is wrong (the first version): a
    77-class softmax regression is under-confident. On BANKING77's validation part (8,005 texts, 15%
    flips) that mean read 46% (uniform flips) / 42% (confusable) where cleanlab's count reads 14.7% /
    17.0% against a true 15.0%; after one round of expert review it still read 11% where the truth was
    0.04% / 0.36% and cleanlab's count 0.01% / 0.11%. `bench/efficacy.py` prints the estimate beside the
    true share after each round."""
    if not report.issues:
        return 0.0
    wrong = sum(
        1 for issue in report.issues if issue.flagged_by_cleanlab and issue.example_id not in confirmed
    )
    return wrong / len(report.issues)


# --------------------------------------------------------------------------- internals


def _project(session: Session, project_id: int) -> Project:
    project = get_or_not_found(session, Project, project_id)
    return project


def _expert_decided(session: Session, project_id: int, example_ids: list[int] | None,
                    *, labelled_only: bool = False) -> set[int]:
    adjudicated = select(Adjudication.example_id).where(Adjudication.example_id == Example.id).exists()
    query = select(Example.id).where(Example.project_id == project_id,
                                     or_(Example.rereview == RereviewState.settled.value, adjudicated))
    if labelled_only:
        query = query.where(Example.status == ExampleStatus.labelled.value)
    ids: set[int] = set()
    if example_ids is None:
        return {int(i) for i in session.execute(query).scalars()}
    for start in range(0, len(example_ids), 500):
        chunk = example_ids[start:start + 500]
        ids |= {int(i) for i in session.execute(query.where(Example.id.in_(chunk))).scalars()}
    return ids
