"""pages/review.py through AppTest: labelling from the queue, comment and flags, skip, going back with
the row-version check, blind review, literal dataset text, progress, and generation items."""

from __future__ import annotations

import pytest
from sqlalchemy import select
from sqlalchemy.engine import Engine
from streamlit.testing.v1 import AppTest

from curation.db import read_session
from curation.models import Annotation, Assignment, AssignmentState, TaskType, User
from curation.review.annotate import previous_annotation, submit_annotation, update_annotation
from curation.review.queue import next_item
from tests.curation.test_review_queue import example_ids, fast_passwords, make_project, users
from tests.pages.helpers import by_label, logged_in, markup_values, no_exception, values
from ui.widgets import escape_markdown

__all__ = ["fast_passwords"]
IMG = "<img src=x onerror=alert(1)>"
SCRIPT = "<script>alert('x')</script>"


def _review(username: str = "anna", password: str = "annotator-password") -> AppTest:
    at = logged_in(username, password)
    at.switch_page("pages/review.py").run()
    no_exception(at)
    assert values(at.title) == ["Review"]
    return at


def _shown_item(at: AppTest) -> str:
    return next(c for c in values(at.caption) if c.startswith("Item #"))


def _annotations(engine: Engine, user: User) -> list[Annotation]:
    with read_session(engine) as session:
        return list(session.execute(select(Annotation).where(Annotation.annotator_id == user.id)
                                    .order_by(Annotation.id)).scalars())


def _button(at: AppTest, label: str):  # type: ignore[no-untyped-def]
    return by_label(at.button, escape_markdown(label))


def test_annotator_labels_items_with_comment_and_flags(engine: Engine, lead: User, annotator: User) -> None:
    project = make_project(engine, lead, 3, k=2)
    ids = example_ids(engine, project)
    at = _review()
    assert _shown_item(at) == f"Item #{ids[0]} · T-001"
    assert values(at.text) == ["ticket text 1"]
    assert [b.label for b in at.button if b.label != "Log out"] == ["billing", "shipping", "refund", "Skip",
                                                                     "Back"]
    assert at.get("progress")[0].proto.text == "0 done · 3 remaining"
    assert "Label by **need**." in values(at.markdown)  # the guidelines beside the item

    at.text_input(key=f"review.{project.id}.{ids[0]}.comment").input("double charge?")
    at.checkbox(key=f"review.{project.id}.{ids[0]}.flag.ambiguous").check()
    _button(at, "shipping").click().run()
    no_exception(at)
    assert f"Saved item #{ids[0]}." in values(at.success)
    assert _shown_item(at) == f"Item #{ids[1]} · T-002"
    assert at.get("progress")[0].proto.text == "1 done · 2 remaining"
    (saved,) = _annotations(engine, annotator)
    assert (saved.example_id, saved.label, saved.comment, saved.flags) == (
        ids[0], "shipping", "double charge?", ["ambiguous"])
    # The next item's widgets start empty.
    assert at.text_input(key=f"review.{project.id}.{ids[1]}.comment").value == ""


def test_skip_and_an_empty_queue(engine: Engine, lead: User, annotator: User) -> None:
    project = make_project(engine, lead, 2, k=1)
    ids = example_ids(engine, project)
    at = _review()
    by_label(at.button, "Skip").click().run()
    assert _shown_item(at) == f"Item #{ids[1]} · T-002"
    _button(at, "billing").click().run()
    no_exception(at)
    assert values(at.success)[-1] == "Nothing left for you to label in this project. Thank you!"
    by_label(at.button, "Return 1 skipped items to my queue").click().run()
    assert _shown_item(at) == f"Item #{ids[0]} · T-001"


def test_going_back_changes_an_earlier_label(engine: Engine, lead: User, annotator: User) -> None:
    project = make_project(engine, lead, 3, k=2)
    ids = example_ids(engine, project)
    at = _review()
    _button(at, "billing").click().run()
    _button(at, "shipping").click().run()
    by_label(at.button, "Back").click().run()
    assert values(at.info) == [f"Changing your earlier label on item #{ids[1]} (version 1)."]
    assert [b.label for b in at.button if b.label != "Log out"] == ["billing", "shipping", "refund",
                                                                     "Next item", "Back"]
    assert _button(at, "shipping").proto.type == "primary"  # one's own earlier label is marked
    by_label(at.button, "Back").click().run()  # further back
    assert _shown_item(at) == f"Item #{ids[0]} · T-001"
    _button(at, "refund").click().run()
    no_exception(at)
    assert f"Changed your label on item #{ids[0]}." in values(at.success)
    assert _shown_item(at) == f"Item #{ids[2]} · T-003"  # back in the queue
    assert [(a.label, a.row_version) for a in _annotations(engine, annotator)] == [
        ("refund", 2), ("shipping", 1)]


def test_a_stale_edit_gets_a_clear_message_and_changes_nothing(engine: Engine, lead: User,
                                                               annotator: User) -> None:
    project = make_project(engine, lead, 2, k=2)
    ids = example_ids(engine, project)
    at = _review()
    _button(at, "billing").click().run()
    by_label(at.button, "Back").click().run()
    assert values(at.info) == [f"Changing your earlier label on item #{ids[0]} (version 1)."]
    # Meanwhile the same person changes it in another tab.
    other_tab = previous_annotation(engine, annotator, project.id)
    assert other_tab is not None and other_tab.annotation is not None
    update_annotation(engine, annotator, other_tab.annotation.id, 1, label="shipping")
    _button(at, "refund").click().run()
    no_exception(at)
    assert values(at.error) == [f"Your label on item #{ids[0]} was changed elsewhere since you opened it "
                                "(version 1, now 2); nothing was saved. Reload to see the current label, "
                                "then edit again."]
    assert [(a.label, a.row_version) for a in _annotations(engine, annotator)] == [("shipping", 2)]
    _button(at, "refund").click().run()  # now knowingly over version 2
    assert [(a.label, a.row_version) for a in _annotations(engine, annotator)] == [("refund", 3)]


def test_review_is_blind_and_dataset_text_is_literal(engine: Engine, admin: User, lead: User,
                                                     annotator: User) -> None:
    project = make_project(engine, lead, 2, k=2, texts=[IMG, SCRIPT])
    ids = example_ids(engine, project)
    (bob,) = users(engine, admin, "bob")
    for example_id in ids:
        submit_annotation(engine, bob, example_id, label="refund", comment="bob's secret reasoning",
                          flags=["personal_data"])
    at = _review()
    for example_id, expected in zip(ids, (IMG, SCRIPT), strict=True):
        assert values(at.text) == [expected]  # st.text: literal, never markdown or HTML
        everything = " ".join(markup_values(at) + values(at.text) + values(at.caption))
        assert "bob" not in everything and "secret" not in everything and "final" not in everything.lower()
        assert expected not in markup_values(at)
        assert all(b.proto.type != "primary" for b in at.button)  # no label pre-selected
        flag = at.checkbox(key=f"review.{project.id}.{example_id}.flag.personal_data")
        assert not at.dataframe and not flag.value
        _button(at, "billing").click().run()
        no_exception(at)


def test_generation_items_edit_the_response_with_a_diff_and_rate(engine: Engine, lead: User,
                                                                  annotator: User) -> None:
    project = make_project(engine, lead, 1, k=2, task=TaskType.generation)
    ids = example_ids(engine, project)
    at = _review()
    assert values(at.text) == ["question 1", "reply 1"]
    assert [b.label for b in at.button if b.label != "Log out"] == ["★", "★★", "★★★", "★★★★", "★★★★★", "Skip",
                                                                     "Back"]
    assert "Unchanged from the original response." in values(at.caption)
    at.text_area(key=f"review.{project.id}.{ids[0]}.response").input("reply 1, with thanks").run()
    assert at.code[0].value == "reply 1{+, with thanks+}"  # by word, literal text
    at.text_area(key=f"review.{project.id}.{ids[0]}.response").input("reply 2, with thanks").run()
    assert at.code[0].value == "reply [-1-]{+2, with thanks+}"
    at.text_area(key=f"review.{project.id}.{ids[0]}.response").input("reply 1, with thanks").run()
    by_label(at.button, "★★★★").click().run()
    no_exception(at)
    (saved,) = _annotations(engine, annotator)
    assert (saved.response, saved.rating, saved.label) == ("reply 1, with thanks", 4, None)


@pytest.mark.parametrize("role", ["lead", "admin"])
def test_leads_and_admins_label_too(engine: Engine, admin: User, lead: User, role: str) -> None:
    project = make_project(engine, lead, 1, k=2)
    at = _review(*{"lead": ("lena", "lead-password"), "admin": ("root", "root-password")}[role])
    _button(at, "billing").click().run()
    no_exception(at)
    assert values(at.success)[0] == f"Saved item #{example_ids(engine, project)[0]}."


def test_the_page_keeps_the_item_across_reruns(engine: Engine, lead: User, annotator: User) -> None:
    project = make_project(engine, lead, 3, k=2)
    at = _review()
    first = _shown_item(at)
    at.run()
    assert _shown_item(at) == first
    with read_session(engine) as session:
        leases = session.execute(select(Assignment.example_id).where(
            Assignment.annotator_id == annotator.id, Assignment.state == AssignmentState.leased.value)).all()
    assert len(leases) == 1
    assert next_item(engine, annotator, project.id).example.id == leases[0][0]


def _with_suggestions(engine: Engine, project, display: str) -> None:  # type: ignore[no-untyped-def]
    from datetime import datetime, timezone

    from curation.agreement.sources import set_source_settings
    from curation.db import write_session
    from curation.models import Project
    from curation.review.sources import store_source_labels

    with write_session(engine) as session:
        row = session.get(Project, project.id)
        ids = [f"T-{i:03d}" for i in range(1, 4)]
        store_source_labels(session, row, "model-x", "suggestion", [(e, "refund", 0.75) for e in ids], None,
                            datetime(2026, 11, 29, tzinfo=timezone.utc))
        store_source_labels(session, row, "vendor", "vote", [(e, "shipping", None) for e in ids], None,
                            datetime(2026, 11, 29, tzinfo=timezone.utc))
    lead = next(u for u in users_of(engine) if u.username == "lena")
    set_source_settings(engine, lead, project.id, suggestion_display=display, blind_fraction=0.0)


def users_of(engine: Engine) -> list[User]:
    with read_session(engine) as session:
        return list(session.execute(select(User)).scalars())


def test_suggestions_beside_the_item_with_nothing_preselected(engine: Engine, lead: User, annotator: User) -> None:
    project = make_project(engine, lead, 3, k=2)
    _with_suggestions(engine, project, "beside")
    at = _review()
    assert "Suggestions from sources (nothing is chosen for you)" in values(at.caption)
    assert values(at.text) == ["ticket text 1", "model-x: refund (score 0.75)", "vendor (vote): shipping"]
    label_buttons = [b for b in at.button if b.label in ("billing", "shipping", "refund")]
    assert [b.proto.type for b in label_buttons] == ["secondary"] * 3  # nothing pre-selected


def test_suggestions_after_choosing_and_never_when_hidden(engine: Engine, lead: User, annotator: User) -> None:
    project = make_project(engine, lead, 3, k=2)
    _with_suggestions(engine, project, "after_choice")
    at = _review()
    assert values(at.text) == ["ticket text 1"]  # not before she chose
    _button(at, "billing").click().run()
    no_exception(at)
    first = example_ids(engine, project)[0]
    assert values(at.success) == [f"Saved item #{first}. Sources said: model-x: refund (score 0.75); "
                                  "vendor (vote): shipping."]
    assert values(at.text) == ["ticket text 2"]

    hidden = make_project(engine, lead, 3, k=2, name="Hidden")
    _with_suggestions(engine, hidden, "hidden")
    from ui.session import PROJECT_KEY

    at = logged_in("anna", "annotator-password")
    at.session_state[PROJECT_KEY] = hidden.id
    at.switch_page("pages/review.py").run()
    no_exception(at)
    assert values(at.text) == ["ticket text 1"]
    _button(at, "billing").click().run()
    assert values(at.success) == [f"Saved item #{example_ids(engine, hidden)[0]}."]


def test_a_lead_sees_why_the_item_came_next(engine: Engine, lead: User, annotator: User) -> None:
    """Issue 12: leads read the queue's reason; annotators do not."""
    from curation.review.audits import start_audit

    project = make_project(engine, lead, 3, k=1)
    _with_suggestions(engine, project, "beside")
    record = start_audit(engine, lead, project.id, "vendor", 1)
    at = _review("lena", "lead-password")
    assert (f"Why this item: in label audit #{record.id}: audit items come first, reviewed blind"
            in values(at.caption))
    assert len(values(at.text)) == 1  # the item's text only: blind, no suggestions shown
    submit_annotation(engine, lead, next_item(engine, lead, project.id).example.id, label="billing")
    at = _review("lena", "lead-password")
    assert "Why this item: next in the unlabelled first order (new, by id)" in values(at.caption)
    annotator_view = _review()
    assert not any(c.startswith("Why this item") for c in values(annotator_view.caption))
