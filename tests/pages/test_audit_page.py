"""pages/audit.py through AppTest: leads see the events with filters and one item's history;
annotators are refused."""

from __future__ import annotations

from sqlalchemy.engine import Engine
from streamlit.testing.v1 import AppTest

from curation.access.accounts import set_role
from curation.models import Role, User
from curation.review.adjudication import adjudicate
from curation.review.annotate import submit_annotation
from tests.curation.test_review_queue import example_ids, fast_passwords, make_project, users
from tests.pages.helpers import REPO, TIMEOUT, logged_in, no_exception, values
from ui.session import USER_KEY

__all__ = ["fast_passwords"]


def test_lead_filters_events_and_reads_an_items_history(engine: Engine, admin: User, lead: User) -> None:
    project = make_project(engine, lead, 2, k=1)
    ids = example_ids(engine, project)
    (ana,) = users(engine, admin, "ana")
    submit_annotation(engine, ana, ids[0], label="billing")
    submit_annotation(engine, ana, ids[1], label="refund")
    adjudicate(engine, lead, ids[0], final_label="shipping", reason="it is about a parcel")
    set_role(engine, admin, ana.id, Role.lead)

    at = logged_in("lena", "lead-password")
    at.switch_page("pages/audit.py").run()
    no_exception(at)
    assert values(at.title) == ["Audit"]
    table = at.dataframe[0].value
    assert table["action"].tolist() == ["example.adjudicate", "annotation.create", "annotation.create",
                                        "project.create"]  # this project's events, newest first
    at.radio(key="audit.scope").set_value("all projects").run()
    assert "user.role" in at.dataframe[0].value["action"].tolist()
    at.multiselect(key="audit.actions").select("annotation.create").run()
    assert at.dataframe[0].value["by"].tolist() == ["ana", "ana"]
    at.multiselect(key="audit.actions").unselect("annotation.create")
    at.number_input(key="audit.example").set_value(ids[0]).run()
    no_exception(at)
    assert at.dataframe[0].value["action"].tolist() == ["example.adjudicate", "annotation.create"]
    assert values(at.subheader) == [f"History of item #{ids[0]}"]
    history = values(at.text)
    assert [line.split(" · ", 1)[1] for line in history] == ["ana · annotation.create",
                                                             "lena · example.adjudicate"]
    assert '"reason": "it is about a parcel"' in at.code[-1].value


def test_annotators_are_refused(engine: Engine, annotator: User) -> None:
    at = AppTest.from_file(str(REPO / "pages/audit.py"), default_timeout=TIMEOUT)
    at.session_state[USER_KEY] = annotator.id
    at.run()
    assert values(at.error) == ["User 'anna' is annotator; this needs lead or admin."]
    assert not at.dataframe
