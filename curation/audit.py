"""Audit events. `record` adds the event to the caller's session, so it commits with the change itself."""

from __future__ import annotations

from typing import Any

from sqlmodel import Session

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
