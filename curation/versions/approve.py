"""Approving a candidate version: the checklist gate, overrides, edits since the build."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.engine import Engine  # noqa: E402
from sqlmodel import Session  # noqa: E402

from curation.access import audit  # noqa: E402
from curation.access.roles import LEADS, require_role  # noqa: E402
from curation.db import read_session  # noqa: E402
from curation.errors import Conflict, InputError
from curation.models import DatasetVersion, Example, Project, User, VersionStatus, utcnow
from curation.retry import run_write  # noqa: E402
from curation.versions.build import NEVER_OVERRIDDEN, _agreement
from curation.versions.checklist import FAIL, ChecklistThresholds, attestation_item, failing, items_of
from curation.versions.records import _check, _locked, _stored_items, get_version

MIN_OVERRIDE_CHARS = 10


# --------------------------------------------------------------------------- approval
def approve_version(engine: Engine, actor: User, version_id: int, *, note: str = "", attest: bool = False,
                    override_reason: str | None = None) -> DatasetVersion:
    """Approve a candidate (leads and admins): records who, when and the note. `attest` is the lead's
    statement that the items fit the task. Failing checklist items refuse approval unless
    `override_reason` says why (at least 10 characters); the reason is stored with the version and
    shown wherever it appears. The stored items must still match the version's hash. Audited."""
    require_role(actor, *LEADS)
    override = (override_reason or "").strip() or None
    check = _check(get_version(engine, version_id), _stored_items(engine, version_id))
    if not check.ok:
        raise Conflict(f"Cannot approve: {check.message}")
    candidate = get_version(engine, version_id)
    with read_session(engine) as session:
        project = session.get(Project, candidate.project_id)
    assert project is not None
    agreement_now = _agreement(engine, actor, project, ChecklistThresholds.from_dict(
        (candidate.checklist or {}).get("thresholds")))

    def work(session: Session) -> DatasetVersion:
        version = _locked(session, version_id)
        if version.status != VersionStatus.candidate:
            raise Conflict(f"Version {version.number} is already approved.")
        checklist = dict(version.checklist or {})
        thresholds = ChecklistThresholds.from_dict(checklist.get("thresholds"))
        items = [attestation_item(attest, thresholds) if item.key == "attestation" else item
                 for item in items_of(checklist)]
        failed = failing(items)
        never = [item for item in failed if item.key in NEVER_OVERRIDDEN]
        if never:
            raise Conflict("Approval refused: " + "; ".join(f"{item.name} ({item.value})" for item in never)
                           + ". This check cannot be overridden: exclude those items (or take them out of the "
                             "test set) and build a new candidate.")
        if failed and override is None:
            raise Conflict("Approval refused: failing checks: "
                           + "; ".join(f"{item.name} ({item.value})" for item in failed)
                           + ". Fix them and build a new candidate, or override with a written reason.")
        if failed and override is not None and len(override) < MIN_OVERRIDE_CHARS:
            raise InputError(f"an override reason needs at least {MIN_OVERRIDE_CHARS} characters",
                             field="override_reason")
        checklist.update(items=[i.to_dict() for i in items], attested=attest,
                         overridden=[i.key for i in failed], agreement_at_approval=agreement_now)
        version.checklist = checklist
        version.status = VersionStatus.approved
        version.approved_by_id, version.approved_at = actor.id, utcnow()
        version.approval_note = (note or "").strip()
        version.override_reason = override if failed else None
        session.add(version)
        audit.record(session, actor, "version.approve", "dataset_version", version.id, project_id=version.project_id,
                     after={"number": version.number, "content_hash": version.content_hash, "note": version.approval_note,
                            "override_reason": version.override_reason, "overridden": [i.key for i in failed]})
        return version

    return run_write(engine, work)


def edits_since(engine: Engine, actor: User, version: DatasetVersion) -> int:
    """How many of the project's examples changed (labels, decisions, exclusions, text) after the version
    was built: those edits are not in it and go into the next candidate (leads and admins)."""
    require_role(actor, *LEADS)
    with read_session(engine) as session:
        return int(session.execute(select(func.count()).select_from(Example).where(
            Example.project_id == version.project_id, Example.updated_at > version.created_at)).scalar_one())


def blocking_items(version: DatasetVersion, attest: bool = False) -> list[str]:
    """Keys of the items that would block approving `version` now (with or without the attestation)."""
    thresholds = ChecklistThresholds.from_dict((version.checklist or {}).get("thresholds"))
    items = [attestation_item(attest, thresholds) if i.key == "attestation" else i
             for i in items_of(version.checklist or {})]
    return [i.key for i in items if i.status == FAIL]
