"""Projects: create and edit rules, audit events in the change's own transaction, and the role matrix
of every core entry point (annotator / lead / admin)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select, update
from sqlalchemy.engine import Engine

from curation.access.accounts import create_user, list_users
from curation.data.browse import ExampleFilter, browse_examples
from curation.data.export import export_project
from curation.data.formats import open_table
from curation.data.importer import import_table
from curation.data.mapping import ColumnMapping
from curation.data.projects import (
    create_project,
    get_project,
    get_project_by_id,
    list_projects,
    project_stats,
    update_project,
)
from curation.db import read_session, write_session
from curation.errors import Conflict, InputError, NotFound, PermissionDenied
from curation.models import AuditEvent, Example, FinalLabelRule, Project, Role, TaskType, User


def audit_events(engine: Engine, action: str | None = None) -> list[AuditEvent]:
    with read_session(engine) as session:
        query = select(AuditEvent).order_by(AuditEvent.id)
        if action:
            query = query.where(AuditEvent.action == action)
        return list(session.execute(query).scalars())


def n_audit(engine: Engine) -> int:
    with read_session(engine) as session:
        return session.execute(select(func.count(AuditEvent.id))).scalar_one()


def test_create_project_stores_fields_and_one_audit_event(engine: Engine, lead: User) -> None:
    before = n_audit(engine)
    project = create_project(engine, lead, "  Tickets  ", TaskType.classification,
                             labels=[" billing", "shipping ", "", "billing", "refund"], guidelines="# Rules",
                             overlap_k=3, final_label_rule=FinalLabelRule.unanimous, min_agreement=0.8)
    assert n_audit(engine) == before + 1
    stored = get_project(engine, "Tickets")
    assert (stored.id, stored.name, stored.labels, stored.guidelines, stored.guidelines_version, stored.overlap_k,
            stored.final_label_rule, stored.min_agreement) == (
        project.id, "Tickets", ["billing", "shipping", "refund"], "# Rules", 1, 3, "unanimous", 0.8)
    [event] = audit_events(engine, "project.create")
    assert (event.actor_id, event.project_id, event.entity, event.entity_id, event.before) == (
        lead.id, project.id, "project", project.id, None)
    assert event.after == {"name": "Tickets", "task_type": "classification", "labels": ["billing", "shipping", "refund"],
                           "guidelines_version": 1, "overlap_k": 3, "final_label_rule": "unanimous",
                           "min_agreement": 0.8, "labels_ordered": False}
    assert [p.name for p in list_projects(engine, lead)] == ["Tickets"]
    assert get_project_by_id(engine, project.id).name == "Tickets"


def test_generation_project_needs_no_labels(engine: Engine, lead: User) -> None:
    project = create_project(engine, lead, "Replies", TaskType.generation)
    assert (project.task_type, project.labels) == (TaskType.generation, [])


def test_name_conflict_is_refused_and_writes_nothing(engine: Engine, lead: User) -> None:
    create_project(engine, lead, "Tickets", labels=["a", "b"])
    before = n_audit(engine)
    with pytest.raises(Conflict, match="A project named 'Tickets' already exists."):
        create_project(engine, lead, " Tickets ", labels=["c", "d"])
    assert n_audit(engine) == before and len(list_projects(engine, lead)) == 1


@pytest.mark.parametrize("kwargs,field,message", [
    ({"name": "   "}, "name", "a project name must be 1-200 characters"),
    ({"name": "x" * 201}, "name", "a project name must be 1-200 characters"),
    ({"overlap_k": 0}, "overlap_k", "overlap k must be between 1 and 20"),
    ({"overlap_k": 21}, "overlap_k", "overlap k must be between 1 and 20"),
    ({"labels": ["only", " only "]}, "labels", "a classification project needs at least two labels"),
    ({"labels": ["ok", "y" * 201]}, "labels", "is longer than 200 characters"),
])
def test_create_validation_errors(engine: Engine, admin: User, kwargs: dict[str, Any], field: str,
                                  message: str) -> None:
    arguments = {"name": "P", "labels": ["a", "b"], **kwargs}
    before = n_audit(engine)
    with pytest.raises(InputError, match=message) as caught:
        create_project(engine, admin, **arguments)
    assert caught.value.field == field
    assert n_audit(engine) == before and list_projects(engine, admin) == []


def test_update_guidelines_bumps_version_only_when_they_change(engine: Engine, lead: User) -> None:
    project = create_project(engine, lead, "P", labels=["a", "b"], guidelines="v1")
    assert update_project(engine, lead, project.id, guidelines="v2").guidelines_version == 2
    assert update_project(engine, lead, project.id, guidelines="v2").guidelines_version == 2
    assert update_project(engine, lead, project.id, guidelines="v3", overlap_k=4).guidelines_version == 3
    stored = get_project(engine, "P")
    assert (stored.guidelines, stored.guidelines_version, stored.overlap_k) == ("v3", 3, 4)
    events = audit_events(engine, "project.update")
    assert len(events) == 3
    assert (events[0].before["guidelines_version"], events[0].after["guidelines_version"]) == (1, 2)
    assert (events[2].before["overlap_k"], events[2].after["overlap_k"]) == (2, 4)
    assert {e.actor_id for e in events} == {lead.id}


def test_update_rule_labels_and_thresholds(engine: Engine, lead: User) -> None:
    project = create_project(engine, lead, "P", labels=["a", "b"])
    updated = update_project(engine, lead, project.id, final_label_rule="unanimous", labels=["a", "b", " c "],
                             min_agreement=0.5, max_near_duplicate_pairs=3)
    assert updated.final_label_rule is FinalLabelRule.unanimous
    stored = get_project(engine, "P")
    assert (stored.labels, stored.final_label_rule, stored.min_agreement, stored.max_near_duplicate_pairs) == (
        ["a", "b", "c"], "unanimous", 0.5, 3)
    assert update_project(engine, lead, project.id, labels=["a", "b"]).labels == ["a", "b"]  # "c" unused: removable


@pytest.mark.parametrize("changes,error,message", [
    ({"name": "renamed"}, InputError, "cannot edit name"),
    ({"task_type": "generation", "id": 3}, InputError, "cannot edit id, task_type"),
    ({"overlap_k": 25}, InputError, "overlap k must be between 1 and 20"),
    ({"labels": ["a"]}, InputError, "a classification project needs at least two labels"),
    ({"final_label_rule": "plurality"}, ValueError, "plurality"),
])
def test_update_refusals_change_nothing(engine: Engine, admin: User, changes: dict[str, Any],
                                        error: type[Exception], message: str) -> None:
    project = create_project(engine, admin, "P", labels=["a", "b"], guidelines="g")
    before = n_audit(engine)
    with pytest.raises(error, match=message):
        update_project(engine, admin, project.id, **changes)
    stored = get_project(engine, "P")
    assert (stored.labels, stored.overlap_k, stored.final_label_rule, stored.guidelines_version) == (
        ["a", "b"], 2, "majority", 1)
    assert n_audit(engine) == before


def test_update_unknown_project(engine: Engine, lead: User) -> None:
    with pytest.raises(NotFound, match="No project with id 42."):
        update_project(engine, lead, 42, guidelines="x")
    with pytest.raises(NotFound):
        get_project(engine, "nope")


def test_removing_a_label_in_use_is_refused(engine: Engine, lead: User, tmp_path: Path) -> None:
    """In use as a final label (wide import) or only as an annotator's label (long import)."""
    project = create_project(engine, lead, "P", labels=["a", "b", "c", "d"], overlap_k=3)
    wide = tmp_path / "wide.jsonl"
    wide.write_text(json.dumps({"id": "1", "text": "x", "label": "a"}) + "\n"
                    + json.dumps({"id": "2", "text": "y", "label": None}) + "\n")
    import_table(engine, lead, open_table(wide), ColumnMapping(id=["id"], text="text", label="label"), "P")
    long = tmp_path / "long.csv"
    long.write_text("id,annotator,label\n2,ann,b\n")
    import_table(engine, lead, open_table(long), ColumnMapping(id=["id"], annotator="annotator", label="label"), "P")
    before = n_audit(engine)
    with pytest.raises(Conflict, match=r"^Labels still in use cannot be removed: a\.$"):
        update_project(engine, lead, project.id, labels=["b", "c", "d"])
    with pytest.raises(Conflict, match=r"^Labels still in use cannot be removed: a, b\.$"):
        update_project(engine, lead, project.id, labels=["c", "d"])
    assert get_project(engine, "P").labels == ["a", "b", "c", "d"] and n_audit(engine) == before
    assert update_project(engine, lead, project.id, labels=["a", "b", "d"]).labels == ["a", "b", "d"]
    assert n_audit(engine) == before + 1


def test_audit_event_is_part_of_the_change_transaction(engine: Engine, lead: User) -> None:
    """A change that fails after its event was added rolls the event back with it."""
    project = create_project(engine, lead, "P", labels=["a", "b"])
    before = n_audit(engine)
    with pytest.raises(RuntimeError):
        with write_session(engine) as session:
            from curation.access import audit

            audit.record(session, lead, "project.update", "project", project.id, project_id=project.id)
            session.flush()
            raise RuntimeError("fails after the event was written")
    assert n_audit(engine) == before


def test_project_stats_exact(engine: Engine, lead: User, tmp_path: Path) -> None:
    create_project(engine, lead, "P", labels=["pos", "neg"], overlap_k=2)
    rows = [("e1", "good", "pos", "train", "web"), ("e2", "bad", "neg", "train", "web"),
            ("e3", "good", None, "test", "mail"), ("e4", "meh", None, None, None)]
    wide = tmp_path / "stats.jsonl"
    wide.write_text("".join(json.dumps({"id": i, "text": t, "label": label, "split": s, "source": src}) + "\n"
                            for i, t, label, s, src in rows))
    import_table(engine, lead, open_table(wide), ColumnMapping(id=["id"], text="text", label="label", split="split",
                                                               source="source", default_licence="CC0-1.0"), "P")
    long = tmp_path / "votes.csv"
    long.write_text("id,annotator,label\ne3,ann1,pos\ne3,ann2,neg\ne4,ann1,pos\n")
    import_table(engine, lead, open_table(long), ColumnMapping(id=["id"], annotator="annotator", label="label"), "P")
    with write_session(engine) as session:
        session.execute(update(Example).where(Example.external_id == "e2").values(status="excluded"))
    stats = project_stats(engine, lead, get_project(engine, "P").id)
    assert stats == {
        "project": "P", "task_type": "classification", "labels": ["pos", "neg"], "overlap_k": 2, "examples": 4,
        "by_status": {"disputed": 1, "excluded": 1, "in_review": 1, "labelled": 1},
        "by_label": {"(none)": 2, "neg": 1, "pos": 1},
        "by_split": {"(none)": 1, "test": 1, "train": 2},
        "by_source": {"(none)": 1, "mail": 1, "web": 2},
        "by_licence": {"CC0-1.0": 4},
        "annotations": 3, "annotators": 2, "exact_duplicate_groups": 1,
    }


# --------------------------------------------------------------------------- role matrix


def _setup_project(engine: Engine, owner: User, tmp_path: Path) -> Project:
    project = create_project(engine, owner, "Shared", labels=["a", "b"])
    path = tmp_path / "shared.jsonl"
    path.write_text('{"id": "1", "text": "x", "label": "a"}\n')
    import_table(engine, owner, open_table(path), ColumnMapping(id=["id"], text="text", label="label"), "Shared")
    return project


ENTRY_POINTS: dict[str, Callable[[Engine, User, Project, Path], Any]] = {
    "create_project": lambda e, u, p, d: create_project(e, u, f"new by {u.username}", labels=["x", "y"]),
    "update_project": lambda e, u, p, d: update_project(e, u, p.id, guidelines=f"edited by {u.username}"),
    "import_table": lambda e, u, p, d: import_table(e, u, open_table(d / "shared.jsonl"),
                                                    ColumnMapping(id=["id"], text="text", label="label"), "Shared"),
    "export_project": lambda e, u, p, d: export_project(e, u, p.id, d / "out" / "x.jsonl", "jsonl"),
    "browse_examples": lambda e, u, p, d: browse_examples(e, u, p.id, ExampleFilter()),
    "list_users": lambda e, u, p, d: list_users(e, u),
    "create_user": lambda e, u, p, d: create_user(e, u, f"made-by-{u.username}", Role.annotator, "a-password"),
}
ALLOWED = {
    "annotator": set(),
    "lead": {"create_project", "update_project", "import_table", "export_project", "browse_examples", "list_users"},
    "admin": set(ENTRY_POINTS),
}


@pytest.mark.parametrize("role", ["annotator", "lead", "admin"])
def test_role_matrix(engine: Engine, admin: User, lead: User, annotator: User, tmp_path: Path, role: str) -> None:
    actor = {"annotator": annotator, "lead": lead, "admin": admin}[role]
    project = _setup_project(engine, admin, tmp_path)
    outcome = {}
    for name, call in ENTRY_POINTS.items():
        before = n_audit(engine)
        try:
            call(engine, actor, project, tmp_path)
            outcome[name] = "allowed"
        except PermissionDenied as denied:
            assert actor.username in str(denied) and "this needs" in str(denied)
            assert n_audit(engine) == before  # a refused call writes nothing
            outcome[name] = "denied"
    assert outcome == {name: ("allowed" if name in ALLOWED[role] else "denied") for name in ENTRY_POINTS}
    if role == "annotator":
        assert not (tmp_path / "out").exists()
        assert get_project(engine, "Shared").guidelines == ""


def test_inactive_lead_is_refused_everywhere(engine: Engine, admin: User, lead: User, tmp_path: Path) -> None:
    project = _setup_project(engine, admin, tmp_path)
    with write_session(engine) as session:
        session.execute(update(User).where(User.id == lead.id).values(active=False))
    lead.active = False
    for name, call in ENTRY_POINTS.items():
        with pytest.raises(PermissionDenied, match="active account"):
            call(engine, lead, project, tmp_path)
        assert name
    with pytest.raises(PermissionDenied):
        create_project(engine, None, "anonymous", labels=["a", "b"])  # type: ignore[arg-type]
    with read_session(engine) as session:
        assert session.execute(select(func.count(Project.id))).scalar_one() == 1


def test_changing_k_or_rule_re_resolves_annotated_examples(engine: Engine, lead: User, tmp_path: Path) -> None:
    """Two annotators agree on e1 and disagree on e2; e3 has one label. With k=2 and majority: e1 labelled,
    e2 disputed, e3 in review. Raising k to 3 reopens e1; dropping k to 1 settles e3; unanimous keeps e2 disputed."""
    project = create_project(engine, lead, "rules", labels=["a", "b"], overlap_k=2)
    items = tmp_path / "items.jsonl"
    items.write_text("".join(f'{{"id": "e{i}", "text": "text {i}"}}\n' for i in (1, 2, 3)))
    import_table(engine, lead, open_table(items), ColumnMapping(id=["id"], text="text"), "rules")
    labels = tmp_path / "labels.csv"
    labels.write_text("id,annotator,label\ne1,x,a\ne1,y,a\ne2,x,a\ne2,y,b\ne3,x,b\n")
    import_table(engine, lead, open_table(labels), ColumnMapping(id=["id"], annotator="annotator", label="label"),
                 "rules")

    def states() -> dict[str, tuple[str, str | None]]:
        with read_session(engine) as session:
            rows = session.execute(select(Example).where(Example.project_id == project.id)).scalars().all()
        return {e.external_id: (str(e.status), e.final_label) for e in rows}

    assert states() == {"e1": ("labelled", "a"), "e2": ("disputed", None), "e3": ("in_review", None)}
    update_project(engine, lead, project.id, overlap_k=3)
    assert states() == {"e1": ("in_review", None), "e2": ("in_review", None), "e3": ("in_review", None)}
    update_project(engine, lead, project.id, overlap_k=1)
    assert states() == {"e1": ("labelled", "a"), "e2": ("disputed", None), "e3": ("labelled", "b")}
    update_project(engine, lead, project.id, overlap_k=2, final_label_rule="unanimous")
    assert states() == {"e1": ("labelled", "a"), "e2": ("disputed", None), "e3": ("in_review", None)}
    with read_session(engine) as session:
        events = session.execute(select(AuditEvent).where(AuditEvent.action == "project.update")
                                 .order_by(AuditEvent.id)).scalars().all()
    assert [e.after["examples_re_resolved"] for e in events] == [2, 3, 1]


def test_listing_and_stats_need_an_active_account(engine: Engine, admin: User, lead: User) -> None:
    project = create_project(engine, lead, "Listed", labels=["a", "b"])
    assert [p.name for p in list_projects(engine, lead)] == ["Listed"]
    assert project_stats(engine, lead, project.id)["examples"] == 0
    lead.active = False
    with pytest.raises(PermissionDenied):
        list_projects(engine, lead)
    with pytest.raises(PermissionDenied):
        project_stats(engine, lead, project.id)
