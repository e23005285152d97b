"""Audit events. `record` adds the event to the caller's session, so it commits with the change itself."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.engine import Engine
from sqlmodel import Session

from curation.access.roles import LEADS, require_role
from curation.db import read_session
from curation.models import AuditEvent, User


def record(
    session: Session,
    actor: User | None,
    action: str,
    entity: str,
    entity_id: int | None,
    *,
    project_id: int | None = None,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
) -> AuditEvent:
    event = AuditEvent(
        actor_id=actor.id if actor else None,
        project_id=project_id,
        action=action,
        entity=entity,
        entity_id=entity_id,
        before=before,
        after=after,
    )
    session.add(event)
    return event


# --------------------------------------------------------------------------- reading (leads)


@dataclass(frozen=True)
class EventFilter:
    """Empty fields mean "any". `entity`/`entity_id` select one thing's history (e.g. an example)."""

    project_id: int | None = None
    actions: tuple[str, ...] = ()
    actor_ids: tuple[int, ...] = ()
    entity: str | None = None
    entity_id: int | None = None
    since: datetime | None = None
    until: datetime | None = None


@dataclass(frozen=True)
class EventRow:
    event: AuditEvent
    actor: str | None  # username; None for system events (first-start bootstrap)


def query_events(engine: Engine, actor: User, flt: EventFilter, limit: int = 500,
                 offset: int = 0) -> list[EventRow]:
    """Audit events matching `flt`, newest first (leads and admins)."""
    _require_lead(actor)
    query = _filtered(flt)
    with read_session(engine) as session:
        rows = session.execute(query.order_by(AuditEvent.at.desc(), AuditEvent.id.desc())
                               .offset(offset).limit(limit)).all()
    return [EventRow(event, name) for event, name in rows]


def count_events(engine: Engine, actor: User, flt: EventFilter) -> int:
    _require_lead(actor)
    query = _filtered(flt).with_only_columns(AuditEvent.id)
    with read_session(engine) as session:
        return int(session.execute(select(func.count()).select_from(query.subquery())).scalar_one())


def example_history(engine: Engine, actor: User, example_id: int) -> list[EventRow]:
    """Everything that happened to one example (labels, edits, lead decisions), oldest first."""
    rows = query_events(engine, actor, EventFilter(entity="example", entity_id=example_id), limit=10_000)
    return rows[::-1]


def event_actions(engine: Engine, actor: User, project_id: int | None = None) -> list[str]:
    """The distinct actions recorded (in a project, when given), for filter menus."""
    _require_lead(actor)
    query = select(AuditEvent.action).distinct()
    if project_id is not None:
        query = query.where(AuditEvent.project_id == project_id)
    with read_session(engine) as session:
        return sorted(session.execute(query).scalars())


def _filtered(flt: EventFilter) -> Any:
    query = select(AuditEvent, User.username).outerjoin(User, User.id == AuditEvent.actor_id)
    if flt.project_id is not None:
        query = query.where(AuditEvent.project_id == flt.project_id)
    if flt.actions:
        query = query.where(AuditEvent.action.in_(flt.actions))
    if flt.actor_ids:
        query = query.where(AuditEvent.actor_id.in_(flt.actor_ids))
    if flt.entity is not None:
        query = query.where(AuditEvent.entity == flt.entity)
    if flt.entity_id is not None:
        query = query.where(AuditEvent.entity_id == flt.entity_id)
    if flt.since is not None:
        query = query.where(AuditEvent.at >= flt.since)
    if flt.until is not None:
        query = query.where(AuditEvent.at < flt.until)
    return query


def _require_lead(actor: User) -> None:
    require_role(actor, *LEADS)
