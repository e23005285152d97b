"""pages/projects.py: the project list with figures, creating a project, editing labels/guidelines."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy.engine import Engine
from sqlmodel import select

from curation.data.formats import open_table
from curation.data.importer import import_table
from curation.data.mapping import ColumnMapping
from curation.data.projects import create_project
from curation.db import read_session
from curation.models import AuditEvent, Project, TaskType, User
from tests.pages.helpers import by_label, counts, logged_in, no_exception, project_rows, values
from ui.session import PROJECT_KEY

DEFAULTS = {"final_label_rule": "majority", "min_agreement": 0.667}


def _seed_examples(engine: Engine, lead: User, tmp_path: Path, project: str) -> None:
    path = tmp_path / "seed.csv"
    path.write_text(
        "id,text,label\n1,card charged twice,billing\n2,parcel is late,shipping\n3,where is it,\n",
        encoding="utf-8",
    )
    import_table(
        engine, lead, open_table(path), ColumnMapping(id=["id"], text="text", label="label"), project
    )


def test_lead_creates_a_project_through_the_form(engine: Engine, lead: User) -> None:
    at = logged_in("lena", "lead-password")
    assert at.dataframe.len == 0  # no project yet: no table
    before = counts(engine)
    by_label(at.text_input, "Name").input("  Support tickets  ")
    by_label(at.radio, "Task type").set_value("classification")
    by_label(at.text_area, "Labels (one per line; empty: taken from the first import)").input(
        "billing\nshipping\n\n billing \nrefund\n"
    )
    by_label(at.text_area, "Guidelines (markdown)", form="create-project").input(
        "Label what the customer needs **first**."
    )
    by_label(at.number_input, "Annotators per item (k)").set_value(3)
    by_label(at.button, "Create project").click().run()
    no_exception(at)

    assert values(at.success) == ["Created project 'Support tickets'."]
    assert values(at.error) == []
    # The form is empty again for the next project (issue 14: it kept the values).
    assert by_label(at.text_input, "Name").value == ""
    assert by_label(at.text_area, "Labels (one per line; empty: taken from the first import)").value == ""
    assert by_label(at.text_area, "Guidelines (markdown)", form="create-project").value == ""
    assert by_label(at.number_input, "Annotators per item (k)", form="create-project").value == 2
    assert project_rows(engine) == [
        {
            "name": "Support tickets",
            "task_type": "classification",
            "labels": ["billing", "shipping", "refund"],
            "guidelines": "Label what the customer needs **first**.",
            "guidelines_version": 1,
            "overlap_k": 3,
            **DEFAULTS,
        }
    ]
    after = counts(engine)
    assert after["Project"] == before["Project"] + 1 and after["AuditEvent"] == before["AuditEvent"] + 1
    with read_session(engine) as session:
        event = session.exec(select(AuditEvent).where(AuditEvent.action == "project.create")).one()
        project = session.exec(select(Project)).one()
    assert (event.actor_id, event.entity_id) == (lead.id, project.id)

    # The new project is listed, becomes the current one in the sidebar and gets an edit form.
    table = at.dataframe[0].value
    assert table.to_dict("records") == [
        {
            "project": "Support tickets",
            "task": "classification",
            "labels": "billing, shipping, refund",
            "k": 3,
            "examples": 0,
            "labelled": 0,
            "disputed": 0,
            "annotations": 0,
        }
    ]
    assert at.session_state[PROJECT_KEY] == project.id
    assert by_label(at.sidebar.selectbox, "Project").value == project.id
    assert values(at.subheader) == ["Support tickets"]
    assert [b.label for b in at.main.button] == ["Save changes", "Save objective", "Create project"]
    assert by_label(at.text_area, "Labels (one per line)").value == "billing\nshipping\nrefund"
    # The flash message is shown once.
    at.run()
    assert values(at.success) == []


def test_create_a_generation_project_without_labels(engine: Engine, lead: User) -> None:
    at = logged_in("lena", "lead-password")
    by_label(at.text_input, "Name").input("Replies")
    by_label(at.radio, "Task type").set_value("generation")
    by_label(at.button, "Create project").click().run()
    no_exception(at)
    assert values(at.success) == ["Created project 'Replies'."]
    assert project_rows(engine) == [
        {
            "name": "Replies",
            "task_type": "generation",
            "labels": [],
            "guidelines": "",
            "guidelines_version": 1,
            "overlap_k": 2,
            **DEFAULTS,
        }
    ]
    # A generation project has no label set to edit.
    assert by_label(at.text_area, "Labels (one per line)").disabled


def test_duplicate_and_invalid_projects_show_the_error_and_change_nothing(engine: Engine, lead: User) -> None:
    create_project(engine, lead, "Support tickets", labels=["billing", "shipping"])
    at = logged_in("lena", "lead-password")
    before, rows = counts(engine), project_rows(engine)
    cases = [
        ("Support tickets", "a\nb", "A project named 'Support tickets' already exists."),
        ("   ", "a\nb", "field 'name': a project name must be 1-200 characters"),
        ("One label", "only", "field 'labels': a classification project needs at least two labels"),
    ]
    for name, labels, message in cases:
        by_label(at.text_input, "Name").input(name)
        by_label(at.text_area, "Labels (one per line; empty: taken from the first import)").input(labels)
        by_label(at.button, "Create project").click().run()
        no_exception(at)
        assert values(at.error) == [message]
        assert values(at.success) == []
        assert by_label(at.text_input, "Name").value == name  # kept to correct
        assert counts(engine) == before
        assert project_rows(engine) == rows


def test_lead_edits_labels_and_guidelines(engine: Engine, lead: User) -> None:
    project = create_project(
        engine, lead, "Tickets", labels=["billing", "shipping"], guidelines="First version."
    )
    at = logged_in("lena", "lead-password")
    edit = f"edit-{project.id}"
    assert [e.label for e in at.expander] == ["Guidelines (version 1)"]
    by_label(at.text_area, "Labels (one per line)").input("billing\nshipping\nrefund")
    by_label(at.text_area, "Guidelines (markdown)", form=edit).input(
        "Second version: refunds get their own label."
    )
    by_label(at.number_input, "Annotators per item (k)", form=edit).set_value(3)
    by_label(at.selectbox, "Final label rule").select("unanimous")
    by_label(at.button, "Save changes").click().run()
    no_exception(at)
    assert values(at.error) == []
    assert values(at.success) == ["Saved."]
    assert project_rows(engine) == [
        {
            "name": "Tickets",
            "task_type": "classification",
            "labels": ["billing", "shipping", "refund"],
            "guidelines": "Second version: refunds get their own label.",
            "guidelines_version": 2,
            "overlap_k": 3,
            "final_label_rule": "unanimous",
            "min_agreement": 0.667,
        }
    ]
    assert [e.label for e in at.expander] == ["Guidelines (version 2)"]
    assert "Second version: refunds get their own label." in values(at.markdown)

    # Saving with the same guidelines does not bump the version.
    by_label(at.text_area, "Labels (one per line)").input("billing\nshipping\nrefund\nother")
    by_label(at.button, "Save changes").click().run()
    no_exception(at)
    rows = project_rows(engine)
    assert rows[0]["labels"] == ["billing", "shipping", "refund", "other"]
    assert rows[0]["guidelines_version"] == 2


def test_removing_a_label_in_use_is_refused(engine: Engine, lead: User, tmp_path: Path) -> None:
    project = create_project(engine, lead, "Tickets", labels=["billing", "shipping"])
    _seed_examples(engine, lead, tmp_path, "Tickets")
    at = logged_in("lena", "lead-password")
    rows = project_rows(engine)
    by_label(at.text_area, "Labels (one per line)").input("billing\nrefund")
    by_label(at.text_area, "Guidelines (markdown)", form=f"edit-{project.id}").input("changed")
    by_label(at.button, "Save changes").click().run()
    no_exception(at)
    assert values(at.error) == ["Labels still in use cannot be removed: shipping."]
    assert project_rows(engine) == rows


def test_project_list_figures_and_sidebar_switch(engine: Engine, lead: User, tmp_path: Path) -> None:
    tickets = create_project(
        engine, lead, "Tickets", labels=["billing", "shipping"], guidelines="Tickets guide"
    )
    create_project(engine, lead, "Replies", TaskType.generation, guidelines="Replies guide")
    _seed_examples(engine, lead, tmp_path, "Tickets")
    at = logged_in("lena", "lead-password")
    assert at.dataframe[0].value.to_dict("records") == [
        {
            "project": "Replies",
            "task": "generation",
            "labels": "",
            "k": 2,
            "examples": 0,
            "labelled": 0,
            "disputed": 0,
            "annotations": 0,
        },
        {
            "project": "Tickets",
            "task": "classification",
            "labels": "billing, shipping",
            "k": 2,
            "examples": 3,
            "labelled": 2,
            "disputed": 0,
            "annotations": 0,
        },
    ]
    # Projects are ordered by name: "Replies" is current first.
    assert values(at.subheader) == ["Replies"]
    picker = by_label(at.sidebar.selectbox, "Project")
    assert picker.options == ["Replies", "Tickets"]
    picker.select(tickets.id).run()
    no_exception(at)
    assert values(at.subheader) == ["Tickets"]
    assert {m.label: m.value for m in at.metric} == {
        "Examples": "3",
        "Annotations": "0",
        "Annotators": "0",
        "Exact-duplicate groups": "0",
    }
    by_status, by_label_table = at.dataframe[1].value, at.dataframe[2].value
    assert by_status.to_dict("records") == [
        {"status": "labelled", "examples": 2},
        {"status": "new", "examples": 1},
    ]
    assert by_label_table.to_dict("records") == [
        {"label": "(none)", "examples": 1},
        {"label": "billing", "examples": 1},
        {"label": "shipping", "examples": 1},
    ]
    assert [e.label for e in at.expander] == ["Guidelines (version 1)"]
    assert "Tickets guide" in values(at.markdown)


def test_annotator_reads_guidelines_but_gets_no_forms(engine: Engine, lead: User, annotator: User) -> None:
    create_project(engine, lead, "Tickets", labels=["billing", "shipping"], guidelines="Read **me** first.")
    at = logged_in("anna", "annotator-password")
    assert values(at.subheader) == ["Tickets"]
    assert "Read **me** first." in values(at.markdown)
    assert [b.label for b in at.main.button] == []
    assert at.text_area.len == 0 and at.text_input.len == 0


def test_lead_declares_the_labels_ordered(engine: Engine, lead: User) -> None:
    from curation.data.projects import get_project

    create_project(engine, lead, "Severity", labels=["1", "0", "-1", "-2", "-3"])
    at = logged_in("lena", "lead-password")
    box = by_label(at.checkbox, "Labels are ordered (a scale, in the order listed)")
    assert box.value is False
    box.check()
    by_label(at.button, "Save changes").click().run()
    no_exception(at)
    assert values(at.success) == ["Saved."]
    assert get_project(engine, "Severity").labels_ordered is True


def test_lead_states_the_objective_before_review(engine: Engine, lead: User) -> None:
    create_project(engine, lead, "Tickets", TaskType.classification, ["billing", "shipping"])
    at = logged_in("lena", "lead-password")
    assert any(m.startswith("**Objective** no objective set") for m in values(at.markdown))
    by_label(at.selectbox, "Objective metric").set_value("label_f1")
    by_label(at.selectbox, "Label (for F1 of one label)").set_value("shipping")
    by_label(at.number_input, "Target").set_value(0.75)
    by_label(at.button, "Save objective").click().run()
    no_exception(at)
    with read_session(engine) as session:
        project = session.exec(select(Project)).one()
    assert project.objective["metric"] == "label_f1" and project.objective["label"] == "shipping"
    assert project.objective["target"] == 0.75 and project.objective["before_review"] is True
    assert any("F1 of 'shipping' ≥ 0.75 on the test set" in m for m in values(at.markdown))
    # a rate target above 1 is refused with a message, nothing saved
    by_label(at.selectbox, "Objective metric").set_value("accuracy")
    by_label(at.number_input, "Target").set_value(1.5)
    by_label(at.button, "Save objective").click().run()
    assert any("between 0 and 1" in e for e in values(at.error))
    with read_session(engine) as session:
        assert session.exec(select(Project)).one().objective["metric"] == "label_f1"


def test_lead_states_a_format_validity_objective_for_generation(engine: Engine, lead: User) -> None:
    create_project(engine, lead, "Replies", TaskType.generation)
    at = logged_in("lena", "lead-password")
    metric = by_label(at.selectbox, "Objective metric")
    assert metric.options[:3] == ["Exact match", "chrF", "ROUGE-L"] and "Win rate in blind human comparison" in \
        metric.options
    assert not [s for s in at.selectbox if s.label == "Label (for F1 of one label)"]
    metric.set_value("format_validity")
    by_label(at.selectbox, "Format (for format validity)").set_value("json_schema")
    by_label(at.text_area, "Regular expression or JSON schema").set_value('{"type": "nonsense"}')
    by_label(at.number_input, "Target").set_value(0.9)
    by_label(at.button, "Save objective").click().run()
    assert any("field 'format'" in e and "not a valid JSON schema" in e for e in values(at.error))
    with read_session(engine) as session:
        assert session.exec(select(Project)).one().objective is None or \
            not session.exec(select(Project)).one().objective
    by_label(at.text_area, "Regular expression or JSON schema").set_value(
        '{"type": "object", "required": ["intent"]}')
    by_label(at.button, "Save objective").click().run()
    no_exception(at)
    with read_session(engine) as session:
        objective = session.exec(select(Project)).one().objective
    assert objective["metric"] == "format_validity" and objective["target"] == 0.9
    assert objective["format"] == {"kind": "json_schema", "spec": {"type": "object", "required": ["intent"]}}
    assert any("format_validity ≥ 0.9 on the test set (format: json schema" in m for m in values(at.markdown))
