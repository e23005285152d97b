"""pages/adjudicate.py through AppTest: the disputed items, most disputed first, with every label,
annotator and comment; settling with a reason; the agreement page's `adjudicate.example_id` contract;
excluding and including; the queue order; and annotators refused."""

from __future__ import annotations

from sqlalchemy.engine import Engine
from streamlit.testing.v1 import AppTest

from curation.data.projects import get_project_by_id
from curation.models import ExampleStatus, FinalLabelRule, Project, QueueOrder, TaskType, User
from curation.review.annotate import submit_annotation
from tests.curation.test_review_queue import example_ids, fast_passwords, get_example, make_project, users
from tests.pages.helpers import REPO, TIMEOUT, by_label, logged_in, markup_values, no_exception, values
from ui.session import USER_KEY

__all__ = ["fast_passwords"]
IMG = "<img src=x onerror=alert(1)>"


def _world(engine: Engine, admin: User, lead: User) -> tuple[Project, list[int]]:
    """k=3 unanimous: item 0 agrees, item 1 splits 2-1, item 2 (markup text) three ways."""
    project = make_project(engine, lead, 3, k=3, rule=FinalLabelRule.unanimous,
                           texts=["all agree", "two and one", IMG])
    people = users(engine, admin, "ana", "ben", "cy")
    ids = example_ids(engine, project)
    votes = {ids[0]: ["billing"] * 3, ids[1]: ["billing", "billing", "refund"],
             ids[2]: ["billing", "refund", "shipping"]}
    for example_id, labels in votes.items():
        for person, label in zip(people, labels, strict=True):
            submit_annotation(engine, person, example_id, label=label, comment=f"{person.username}: {label}?")
    return project, ids


def _page(at: AppTest | None = None) -> AppTest:
    at = at or logged_in("lena", "lead-password")
    at.switch_page("pages/adjudicate.py").run()
    no_exception(at)
    assert values(at.title) == ["Adjudication"]
    return at


def test_lead_settles_the_most_disputed_item_first(engine: Engine, admin: User, lead: User) -> None:
    project, ids = _world(engine, admin, lead)
    at = _page()
    assert [m.value for m in at.metric][:1] == ["2"]
    assert at.dataframe[0].value["#"].tolist() == [ids[2], ids[1]]
    assert values(at.subheader) == [f"Item #{ids[2]}"]
    assert IMG in values(at.text) and IMG not in markup_values(at)  # dataset text stays literal
    labels = at.dataframe[1].value
    assert labels[["annotator", "label", "comment"]].values.tolist() == [
        ["ana", "billing", "ana: billing?"], ["ben", "refund", "ben: refund?"],
        ["cy", "shipping", "cy: shipping?"]]

    by_label(at.button, "refund").click().run()  # no reason yet
    assert values(at.error) == ["field 'reason': give a reason: it goes into the audit trail"]
    assert get_example(engine, ids[2]).status == ExampleStatus.disputed
    at.text_input(key=f"adjudicate.{project.id}.{ids[2]}.reason").input("asks for the money back")
    by_label(at.button, "refund").click().run()
    no_exception(at)
    assert values(at.success) == [f"Item #{ids[2]}: final label refund."]
    settled = get_example(engine, ids[2])
    assert (settled.status, settled.final_label) == (ExampleStatus.labelled, "refund")
    assert values(at.subheader) == [f"Item #{ids[1]}"]  # the next disputed item
    assert at.dataframe[0].value["#"].tolist() == [ids[1]]


def test_another_page_opens_an_item_here(engine: Engine, admin: User, lead: User) -> None:
    _, ids = _world(engine, admin, lead)
    at = logged_in("lena", "lead-password")
    at.session_state["adjudicate.example_id"] = ids[0]  # what the agreement page sets before switch_page
    _page(at)
    assert values(at.subheader) == [f"Item #{ids[0]}"]
    assert "adjudicate.example_id" not in at.session_state  # taken, so it opens only once
    assert any("final label: billing" in t for t in values(at.text))


def test_a_requested_item_of_another_project_switches_project(engine: Engine, admin: User,
                                                              lead: User) -> None:
    _world(engine, admin, lead)
    other = make_project(engine, lead, 1, name="Other")
    at = logged_in("lena", "lead-password")
    at.session_state["adjudicate.example_id"] = example_ids(engine, other)[0]
    at.switch_page("pages/adjudicate.py").run()
    at.run()
    no_exception(at)
    assert values(at.subheader) == [f"Item #{example_ids(engine, other)[0]}"]


def test_exclude_and_include_with_a_reason(engine: Engine, admin: User, lead: User) -> None:
    project, ids = _world(engine, admin, lead)
    at = _page()
    key = f"adjudicate.{project.id}.{ids[2]}"
    at.selectbox(key=f"{key}.category").select("personal_data")
    at.text_input(key=f"{key}.reason").input("a phone number")
    by_label(at.button, "Exclude item").click().run()
    no_exception(at)
    assert values(at.success) == [f"Item #{ids[2]} is excluded (personal data)."]
    assert get_example(engine, ids[2]).exclusion_reason == "personal_data: a phone number"
    at.number_input(key=f"adjudicate.{project.id}.any").set_value(ids[2]).run()
    assert values(at.subheader) == [f"Item #{ids[2]}"]
    assert "personal_data: a phone number" in values(at.text)
    at.text_input(key=f"{key}.reason").input("the shop's number")
    by_label(at.button, "Include again").click().run()
    assert get_example(engine, ids[2]).status == ExampleStatus.disputed


def test_queue_order_and_generation_items(engine: Engine, admin: User, lead: User) -> None:
    project = make_project(engine, lead, 1, k=2, task=TaskType.generation)
    a, b = users(engine, admin, "ana", "ben")
    only = example_ids(engine, project)[0]
    submit_annotation(engine, a, only, response="Short.", rating=2)
    submit_annotation(engine, b, only, response="Longer and kinder.", rating=4)
    at = _page()
    at.radio(key=f"adjudicate.{project.id}.order").set_value("suspected_first").run()
    assert get_project_by_id(engine, project.id).queue_order == QueueOrder.suspected_first
    # each response's diff from the original, by word
    assert [c.value for c in at.code] == ["[-reply 1-]{+Short.+}", "[-reply 1-]{+Longer and kinder.+}"]
    at.text_area(key=f"adjudicate.{project.id}.{only}.final").input("Longer and kinder!")
    at.text_input(key=f"adjudicate.{project.id}.{only}.reason").input("kinder, fixed the ending")
    by_label(at.button, "Set final response").click().run()
    no_exception(at)
    assert get_example(engine, only).final_response == "Longer and kinder!"


def test_annotators_are_refused(engine: Engine, annotator: User, lead: User) -> None:
    make_project(engine, lead, 1)
    at = AppTest.from_file(str(REPO / "pages/adjudicate.py"), default_timeout=TIMEOUT)
    at.session_state[USER_KEY] = annotator.id
    at.run()
    assert values(at.error) == ["User 'anna' is annotator; this needs lead or admin."]
    assert not at.button
    at = logged_in("anna", "annotator-password")
    try:
        at.switch_page("pages/adjudicate.py")
    except ValueError:
        pass  # not even in the annotator's navigation
    else:
        raise AssertionError("the adjudication page is in an annotator's navigation")


def test_active_learning_queue_orders_can_be_chosen(engine: Engine, lead: User) -> None:
    """Issue 12: the new orders are offered (with names) and saved."""
    project = make_project(engine, lead, 2, k=2)
    at = _page()
    radio = at.radio(key=f"adjudicate.{project.id}.order")
    assert radio.options == ["Unlabelled items first", "Suspected problems first",
                             "Least certain model suggestions first", "Source vs model disagreements first",
                             "Least reviewed clusters first"]
    radio.set_value("disagreement").run()
    no_exception(at)
    assert get_project_by_id(engine, project.id).queue_order == QueueOrder.disagreement
