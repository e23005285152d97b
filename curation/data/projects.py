"""Projects: create, edit, look up, and summary statistics."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import func
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from curation.access import audit
from curation.access.roles import LEADS, require_role
from curation.db import read_session, write_session
from curation.errors import Conflict, InputError, NotFound
from curation.lookup import get_or_not_found
from curation.models import Annotation, Example, FinalLabelRule, Project, Role, TaskType, User, utcnow

EDITABLE_FIELDS = ("labels", "guidelines", "overlap_k", "final_label_rule", "min_agreement", "max_near_duplicate_pairs",
                   "labels_ordered")


def clean_labels(labels: Sequence[str]) -> list[str]:
    """Strip, drop empties, keep first occurrence order. Raises on a label longer than 200 characters."""
    out: list[str] = []
    for raw in labels:
        label = str(raw).strip()
        if len(label) > 200:
            raise InputError(f"label '{label[:40]}...' is longer than 200 characters", field="labels")
        if label and label not in out:
            out.append(label)
    return out


def _validate(task_type: TaskType, labels: list[str], overlap_k: int) -> None:
    if not 1 <= overlap_k <= 20:
        raise InputError("overlap k must be between 1 and 20", field="overlap_k")
    if task_type is TaskType.classification and len(labels) == 1:
        raise InputError("a classification project needs at least two labels", field="labels")


def create_project(
    engine: Engine,
    actor: User,
    name: str,
    task_type: TaskType = TaskType.classification,
    labels: Sequence[str] = (),
    guidelines: str = "",
    overlap_k: int = 2,
    final_label_rule: FinalLabelRule = FinalLabelRule.majority,
    min_agreement: float = 0.667,
    labels_ordered: bool = False,
) -> Project:
    """Create a project (leads and admins). An empty label set is filled by the first import.
    `labels_ordered`: the labels form a scale in their order (agreement defaults to ordinal)."""
    require_role(actor, *LEADS)
    name = name.strip()
    if not name or len(name) > 200:
        raise InputError("a project name must be 1-200 characters", field="name")
    label_list = clean_labels(labels)
    _validate(task_type, label_list, overlap_k)
    with write_session(engine) as session:
        if session.exec(select(Project.id).where(Project.name == name)).first() is not None:
            raise Conflict(f"A project named '{name}' already exists.")
        project = Project(
            name=name,
            task_type=task_type,
            labels=label_list,
            guidelines=guidelines,
            overlap_k=overlap_k,
            final_label_rule=final_label_rule,
            min_agreement=min_agreement,
            labels_ordered=labels_ordered,
        )
        session.add(project)
        session.flush()
        audit.record(session, actor, "project.create", "project", project.id, project_id=project.id,
                     after=_snapshot(project))
    return project


def update_project(engine: Engine, actor: User, project_id: int, **changes: Any) -> Project:
    """Change editable fields (see EDITABLE_FIELDS). New guidelines bump `guidelines_version`.

    Removing a label that examples or annotations still use is refused, so no item is left
    with a label outside the project's set."""
    require_role(actor, *LEADS)
    unknown = set(changes) - set(EDITABLE_FIELDS)
    if unknown:
        raise InputError(f"cannot edit {', '.join(sorted(unknown))}")
    with write_session(engine) as session:
        project = _get(session, project_id)
        before = _snapshot(project)
        if "labels" in changes:
            changes["labels"] = clean_labels(changes["labels"])
            removed = set(project.labels) - set(changes["labels"])
            in_use = _labels_in_use(session, project_id, removed)
            if in_use:
                raise Conflict(f"Labels still in use cannot be removed: {', '.join(sorted(in_use))}.")
        if "final_label_rule" in changes:
            changes["final_label_rule"] = FinalLabelRule(changes["final_label_rule"])
        _validate(TaskType(project.task_type), changes.get("labels", project.labels),
                  changes.get("overlap_k", project.overlap_k))
        if "guidelines" in changes and changes["guidelines"] != project.guidelines:
            project.guidelines_version += 1
        for key, value in changes.items():
            setattr(project, key, value)
        project.updated_at = utcnow()
        session.add(project)
        rule_changed = before["overlap_k"] != project.overlap_k or before["final_label_rule"] != project.final_label_rule
        resolved = _re_resolve(session, project) if rule_changed else 0
        audit.record(session, actor, "project.update", "project", project.id, project_id=project.id,
                     before=before, after={**_snapshot(project), "examples_re_resolved": resolved})
    return project


def _re_resolve(session: Session, project: Project) -> int:
    """After k or the final-label rule changed: status and final label of every annotated example
    again by the new rule (lead decisions and exclusions stay). Returns how many changed."""
    from curation.review.annotate import resolve_example  # review builds on projects' tables, not the reverse

    annotated = select(Annotation.example_id).where(Annotation.example_id == Example.id).exists()
    changed = 0
    for example in session.exec(select(Example).where(Example.project_id == project.id, annotated)):
        before, after = resolve_example(session, project, example)
        changed += before != after
    return changed


def _labels_in_use(session: Session, project_id: int, labels: set[str]) -> set[str]:
    if not labels:
        return set()
    used = set(session.exec(select(Example.final_label).where(
        Example.project_id == project_id, Example.final_label.in_(labels)).distinct()))
    used |= set(session.exec(select(Annotation.label).join(Example).where(
        Example.project_id == project_id, Annotation.label.in_(labels)).distinct()))
    return {label for label in used if label}


def _snapshot(project: Project) -> dict[str, Any]:
    return {
        "name": project.name,
        "task_type": TaskType(project.task_type).value,  # a plain str once read back from the database
        "labels": list(project.labels),
        "guidelines_version": project.guidelines_version,
        "overlap_k": project.overlap_k,
        "final_label_rule": FinalLabelRule(project.final_label_rule).value,
        "min_agreement": project.min_agreement,
        "labels_ordered": bool(project.labels_ordered),
    }


def _get(session: Session, project_id: int) -> Project:
    return get_or_not_found(session, Project, project_id)


def get_project(engine: Engine, name: str) -> Project:
    """Look a project up by name. Its settings (labels, guidelines, k) are visible to every role;
    the functions that read or change its examples check the caller's role."""
    with read_session(engine) as session:
        project = session.exec(select(Project).where(Project.name == name)).first()
    if project is None:
        raise NotFound(f"No project named '{name}'.")
    return project


def get_project_by_id(engine: Engine, project_id: int) -> Project:
    with read_session(engine) as session:
        return _get(session, project_id)


def list_projects(engine: Engine, actor: User) -> list[Project]:
    """Every project, by name (any active account)."""
    require_role(actor, *Role)
    with read_session(engine) as session:
        return list(session.exec(select(Project).order_by(Project.name)))


def project_overview(engine: Engine, actor: User) -> list[dict[str, Any]]:
    """One row per project, by name (any active account): name, task type, item count, items by status,
    overlap k and final-label rule. Two grouped queries, whatever the number of projects."""
    require_role(actor, *Role)
    with read_session(engine) as session:
        projects = list(session.exec(select(Project).order_by(Project.name)))
        counts: dict[int, dict[str, int]] = {}
        for project_id, status, n in session.exec(
                select(Example.project_id, Example.status, func.count()).group_by(Example.project_id, Example.status)):
            counts.setdefault(project_id, {})[str(status)] = int(n)
    rows = []
    for project in projects:
        by_status = dict(sorted(counts.get(project.id or 0, {}).items()))
        rows.append({"name": project.name, "task_type": TaskType(project.task_type).value,
                     "items": sum(by_status.values()), "by_status": by_status, "overlap_k": project.overlap_k,
                     "final_label_rule": FinalLabelRule(project.final_label_rule).value})
    return rows


def project_stats(engine: Engine, actor: User, project_id: int) -> dict[str, Any]:
    """Counts for the project page, the CLI and dataset cards: totals, by status, label, split,
    source and licence, annotations and annotators, and exact-duplicate content groups."""
    require_role(actor, *Role)
    with read_session(engine) as session:
        project = _get(session, project_id)

        # One scan for the five breakdowns (grouped by all five columns, then summed per column here):
        # five separate GROUP BYs read a 100k-item project five times.
        facets = (Example.status, Example.final_label, Example.split, Example.source, Example.licence)
        combos = session.exec(
            select(*facets, func.count()).where(Example.project_id == project_id).group_by(*facets)
        ).all()

        def grouped(position: int) -> dict[str, int]:
            counts: dict[Any, int] = {}
            for row in combos:
                counts[row[position]] = counts.get(row[position], 0) + int(row[-1])
            return {("(none)" if key is None else str(key)): n for key, n in sorted(counts.items(),
                                                                                    key=lambda kv: str(kv[0]))}

        n_annotations, n_annotators = session.exec(
            select(func.count(Annotation.id), func.count(func.distinct(Annotation.annotator_id)))
            .join(Example).where(Example.project_id == project_id)
        ).one()
        duplicate_groups = session.exec(
            select(func.count()).select_from(
                select(Example.content_hash).where(Example.project_id == project_id)
                .group_by(Example.content_hash).having(func.count() > 1).subquery()
            )
        ).one()
        by_status = grouped(0)
        return {
            "project": project.name,
            "task_type": TaskType(project.task_type).value,
            "labels": list(project.labels),
            "overlap_k": project.overlap_k,
            "examples": sum(by_status.values()),
            "by_status": by_status,
            "by_label": grouped(1),
            "by_split": grouped(2),
            "by_source": grouped(3),
            "by_licence": grouped(4),
            "annotations": int(n_annotations),
            "annotators": int(n_annotators),
            "exact_duplicate_groups": int(duplicate_groups),
        }
