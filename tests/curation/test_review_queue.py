"""The review queue and annotating (curation.queue, curation.review): leases, k, blind items,
skips, going back with row versions, queue orders, generation tasks, audit events."""

from __future__ import annotations

import hashlib
from datetime import timedelta

import pytest
from sqlalchemy import func, select, update
from sqlalchemy.engine import Engine

from curation.access.accounts import create_user
from curation.data.projects import create_project
from curation.db import read_session, write_session
from curation.errors import Conflict, InputError, NotFound, PermissionDenied
from curation.models import (
    Annotation,
    Assignment,
    AuditEvent,
    Example,
    ExampleStatus,
    FinalLabelRule,
    Project,
    QueueOrder,
    Role,
    TaskType,
    User,
    utcnow,
)
from curation.review.annotate import (
    get_review_item,
    previous_annotation,
    submit_annotation,
    update_annotation,
)
from curation.review.queue import (
    assign_items,
    next_item,
    progress,
    queue_stats,
    return_skipped,
    set_priority,
    set_queue_order,
    skip_item,
)
from curation.review.rules import resolve_status
from tests.conftest import BOTH_BACKENDS

LABELS = ["billing", "shipping", "refund"]


@pytest.fixture(autouse=True)
def fast_passwords(monkeypatch: pytest.MonkeyPatch) -> None:
    """Cheap argon2 parameters: these tests create many accounts and are not about hashing
    (verification reads the parameters from each hash, so logging in still works)."""
    from argon2 import PasswordHasher

    from curation.access import accounts as auth

    monkeypatch.setattr(auth, "_hasher", PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))


# --------------------------------------------------------------------------- helpers (shared)


def make_project(engine: Engine, lead: User, n: int = 10, *, k: int = 2, name: str = "Tickets",
                 rule: FinalLabelRule = FinalLabelRule.majority, task: TaskType = TaskType.classification,
                 texts: list[str] | None = None) -> Project:
    """A project with `n` examples (T-001...), inserted directly."""
    project = create_project(engine, lead, name, task, LABELS if task is TaskType.classification else [],
                             "Label by **need**.", k, rule)
    texts = texts or [f"ticket text {i}" for i in range(1, n + 1)]
    with write_session(engine) as session:
        for i, text in enumerate(texts, start=1):
            fields = ({"text": text} if task is TaskType.classification
                      else {"prompt": f"question {i}", "response": f"reply {i}"})
            session.add(Example(project_id=project.id, external_id=f"T-{i:03d}", meta={"secret": "x"},
                                content_hash=hashlib.sha256(f"{i}{text}".encode()).hexdigest(), **fields))
    return project


def users(engine: Engine, admin: User, *names: str, role: Role = Role.annotator) -> list[User]:
    return [create_user(engine, admin, name, role, f"{name}-password") for name in names]


def example_ids(engine: Engine, project: Project) -> list[int]:
    with read_session(engine) as session:
        return list(session.execute(select(Example.id).where(Example.project_id == project.id)
                                    .order_by(Example.id)).scalars())


def get_example(engine: Engine, example_id: int) -> Example:
    with read_session(engine) as session:
        example = session.get(Example, example_id)
        assert example is not None
        return example


def label_item(engine: Engine, user: User, project: Project, label: str) -> int:
    item = next_item(engine, user, project.id)
    assert item is not None
    submit_annotation(engine, user, item.example.id, label=label)
    return item.example.id


# --------------------------------------------------------------------------- queue


@BOTH_BACKENDS
def test_next_item_leases_and_repeats_until_submitted(engine: Engine, admin: User, lead: User) -> None:
    project = make_project(engine, lead, 5)
    alice, bob, carl = users(engine, admin, "alice", "bob", "carl")
    ids = example_ids(engine, project)
    first = next_item(engine, alice, project.id)
    assert first is not None and first.example.id == ids[0]
    assert next_item(engine, alice, project.id).example.id == ids[0]  # the same item, lease renewed
    assert first.lease_expires_at is not None and first.lease_expires_at > utcnow()
    # Unlabelled first: items nobody holds before a second slot of one that alice holds.
    assert next_item(engine, bob, project.id).example.id == ids[1]
    assert next_item(engine, carl, project.id).example.id == ids[2]
    submit_annotation(engine, alice, ids[0], label="billing")
    assert next_item(engine, alice, project.id).example.id == ids[3]
    with read_session(engine) as session:
        leases = session.execute(select(Assignment.annotator_id, Assignment.example_id)).all()
    assert sorted(leases) == sorted([(bob.id, ids[1]), (carl.id, ids[2]), (alice.id, ids[3])])


def test_an_item_never_gets_more_than_k_labels_nor_more_than_k_leases(engine: Engine, admin: User,
                                                                        lead: User) -> None:
    project = make_project(engine, lead, 1, k=2)
    a, b, c = users(engine, admin, "a", "b", "c")
    only = example_ids(engine, project)[0]
    assert next_item(engine, a, project.id).example.id == only
    assert next_item(engine, b, project.id).example.id == only
    assert next_item(engine, c, project.id) is None  # both slots leased: the last one is not handed out twice
    with pytest.raises(Conflict, match="already has its 2 labels"):
        submit_annotation(engine, c, only, label="billing")  # without a lease, no free slot either
    submit_annotation(engine, a, only, label="billing")
    submit_annotation(engine, b, only, label="billing")
    assert next_item(engine, c, project.id) is None
    with pytest.raises(Conflict, match="already has its 2 labels"):
        submit_annotation(engine, c, only, label="billing")
    with read_session(engine) as session:
        assert session.execute(select(func.count()).select_from(Annotation)).scalar_one() == 2
    assert get_example(engine, only).status == ExampleStatus.labelled


def test_leases_expire_and_the_slot_goes_to_someone_else(engine: Engine, admin: User, lead: User) -> None:
    project = make_project(engine, lead, 1, k=1)
    a, b = users(engine, admin, "a", "b")
    only = example_ids(engine, project)[0]
    assert next_item(engine, a, project.id).example.id == only
    assert next_item(engine, b, project.id) is None
    with write_session(engine) as session:  # time passes: a's lease lapses
        session.execute(update(Assignment).values(expires_at=utcnow() - timedelta(seconds=1)))
    assert next_item(engine, b, project.id).example.id == only
    with pytest.raises(Conflict, match="already has its 1 labels"):
        submit_annotation(engine, a, only, label="billing")  # a's late label finds the slot taken
    submit_annotation(engine, b, only, label="shipping")
    assert get_example(engine, only).final_label == "shipping"


def test_a_late_label_is_taken_while_a_slot_is_free(engine: Engine, admin: User, lead: User) -> None:
    project = make_project(engine, lead, 1, k=2)
    (a,) = users(engine, admin, "a")
    only = example_ids(engine, project)[0]
    next_item(engine, a, project.id, lease=timedelta(seconds=-1))  # already lapsed
    submit_annotation(engine, a, only, label="billing")
    assert get_example(engine, only).status == ExampleStatus.in_review


def test_unlabelled_first_then_partly_labelled_then_nothing(engine: Engine, admin: User, lead: User) -> None:
    project = make_project(engine, lead, 3, k=2)
    a, b = users(engine, admin, "a", "b")
    ids = example_ids(engine, project)
    assert [label_item(engine, a, project, "billing") for _ in range(3)] == ids
    assert next_item(engine, a, project.id) is None  # a has labelled everything open to a
    assert [label_item(engine, b, project, "billing") for _ in range(3)] == ids  # in_review ones, by id
    assert next_item(engine, b, project.id) is None
    assert progress(engine, a, project.id).__dict__ == {"done": 3, "remaining": 0, "skipped": 0}


def test_new_items_come_before_partly_labelled_ones(engine: Engine, admin: User, lead: User) -> None:
    project = make_project(engine, lead, 3, k=2)
    a, b = users(engine, admin, "a", "b")
    ids = example_ids(engine, project)
    label_item(engine, a, project, "billing")  # ids[0] is now in_review
    assert next_item(engine, b, project.id).example.id == ids[1]


def test_suspected_first_serves_scored_items_highest_first(engine: Engine, admin: User, lead: User) -> None:
    project = make_project(engine, lead, 6, k=1)
    (a,) = users(engine, admin, "a")
    ids = example_ids(engine, project)
    assert set_priority(engine, lead, project.id, {ids[4]: 0.9, ids[2]: 0.5, ids[5]: None}) == 3
    assert next_item(engine, a, project.id).example.id == ids[0]  # unlabelled first ignores scores
    skip_item(engine, a, ids[0])
    set_queue_order(engine, lead, project.id, QueueOrder.suspected_first)
    order = [label_item(engine, a, project, "billing") for _ in range(5)]
    assert order == [ids[4], ids[2], ids[1], ids[3], ids[5]]
    with read_session(engine) as session:
        actions = list(session.execute(select(AuditEvent.action).order_by(AuditEvent.id)).scalars())
    assert "project.queue_order" in actions and "queue.priority" in actions


def test_skip_is_remembered_and_can_be_returned(engine: Engine, admin: User, lead: User) -> None:
    project = make_project(engine, lead, 2, k=1)
    a, b = users(engine, admin, "a", "b")
    ids = example_ids(engine, project)
    assert next_item(engine, a, project.id).example.id == ids[0]
    skip_item(engine, a, ids[0])
    assert next_item(engine, b, project.id).example.id == ids[0]  # the skip released the slot
    assert next_item(engine, a, project.id).example.id == ids[1]
    submit_annotation(engine, a, ids[1], label="billing")
    assert next_item(engine, a, project.id) is None
    assert progress(engine, a, project.id).skipped == 1
    assert return_skipped(engine, a, project.id) == 1
    assert next_item(engine, a, project.id) is None  # b holds the only slot of ids[0] now
    with write_session(engine) as session:
        session.execute(update(Assignment).values(expires_at=utcnow() - timedelta(seconds=1)))
    assert next_item(engine, a, project.id).example.id == ids[0]


def test_assigned_items_come_first(engine: Engine, admin: User, lead: User) -> None:
    project = make_project(engine, lead, 6, k=1)
    a, b = users(engine, admin, "a", "b")
    ids = example_ids(engine, project)
    assert assign_items(engine, lead, project.id, a, 3) == ids[:3]
    assert next_item(engine, b, project.id).example.id == ids[3]  # k=1: a's reserved items are not offered
    assert [label_item(engine, a, project, "billing") for _ in range(3)] == ids[:3]
    assert next_item(engine, a, project.id).example.id == ids[4]
    stats = queue_stats(engine, lead, project.id)
    assert (stats["needs_labels"], stats["live_leases"], stats["labels_by_annotator"]) == (3, 2, {"a": 3})


def test_excluded_or_settled_items_leave_the_queue(engine: Engine, admin: User, lead: User) -> None:
    from curation.review.adjudication import adjudicate, exclude_example

    project = make_project(engine, lead, 3, k=2)
    a, b = users(engine, admin, "a", "b")
    ids = example_ids(engine, project)
    assert next_item(engine, a, project.id).example.id == ids[0]
    exclude_example(engine, lead, ids[0], "off_task")
    adjudicate(engine, lead, ids[1], final_label="refund", reason="obvious")
    assert next_item(engine, a, project.id).example.id == ids[2]  # lease on ids[0] dropped, ids[1] settled
    with pytest.raises(Conflict, match="excluded"):
        submit_annotation(engine, b, ids[0], label="billing")
    with pytest.raises(Conflict, match="already has"):
        submit_annotation(engine, b, ids[1], label="billing")


def test_next_item_on_a_missing_project(engine: Engine, annotator: User) -> None:
    with pytest.raises(NotFound):
        next_item(engine, annotator, 999)


# --------------------------------------------------------------------------- blind review


def test_review_items_carry_content_only(engine: Engine, admin: User, lead: User) -> None:
    project = make_project(engine, lead, 1, k=2)
    a, b = users(engine, admin, "a", "b")
    only = example_ids(engine, project)[0]
    next_item(engine, a, project.id)
    submit_annotation(engine, a, only, label="refund", comment="a's private reasoning", flags=["ambiguous"])
    item = next_item(engine, b, project.id)
    assert item is not None and item.example.id == only
    assert item.annotation is None  # nothing of a's label, comment or flags
    assert item.example.text == "ticket text 1"
    assert (item.example.status, item.example.final_label, item.example.meta) == (ExampleStatus.new, None, {})
    assert item.labels == LABELS and item.guidelines == "Label by **need**."
    submit_annotation(engine, b, only, label="billing")
    mine = get_review_item(engine, b, only)  # after submitting: still only b's own label
    assert mine.annotation is not None and mine.annotation.label == "billing"
    assert mine.example.final_label is None and mine.example.status == ExampleStatus.new


def test_annotators_open_only_items_handed_to_them(engine: Engine, admin: User, lead: User) -> None:
    project = make_project(engine, lead, 2, k=2)
    (a,) = users(engine, admin, "a")
    ids = example_ids(engine, project)
    with pytest.raises(PermissionDenied, match="not assigned to you"):
        get_review_item(engine, a, ids[1])
    next_item(engine, a, project.id)
    assert get_review_item(engine, a, ids[0]).annotation is None
    assert get_review_item(engine, lead, ids[1]).example.id == ids[1]  # leads open anything


# --------------------------------------------------------------------------- labels and the project rule


@pytest.mark.parametrize(("k", "rule", "labels", "status", "final"), [
    (2, FinalLabelRule.majority, ["billing", "billing"], ExampleStatus.labelled, "billing"),
    (2, FinalLabelRule.majority, ["billing", "refund"], ExampleStatus.disputed, None),
    (3, FinalLabelRule.majority, ["billing", "refund", "billing"], ExampleStatus.labelled, "billing"),
    (3, FinalLabelRule.unanimous, ["billing", "refund", "billing"], ExampleStatus.disputed, None),
    (3, FinalLabelRule.majority, ["billing", "refund"], ExampleStatus.in_review, None),
])
def test_status_follows_resolve_status(engine: Engine, admin: User, lead: User, k: int, rule: FinalLabelRule,
                                       labels: list[str], status: ExampleStatus, final: str | None) -> None:
    project = make_project(engine, lead, 1, k=k, rule=rule)
    people = users(engine, admin, *[f"p{i}" for i in range(len(labels))])
    only = example_ids(engine, project)[0]
    for person, label in zip(people, labels, strict=True):
        submit_annotation(engine, person, only, label=label)
    example = get_example(engine, only)
    assert (example.status, example.final_label) == (status, final) == resolve_status(labels, k, rule)


def test_bad_submissions_are_refused_with_a_clear_message(engine: Engine, admin: User, lead: User) -> None:
    project = make_project(engine, lead, 1, k=2)
    (a,) = users(engine, admin, "a")
    only = example_ids(engine, project)[0]
    with pytest.raises(InputError, match="'nope' is not one of the project's labels"):
        submit_annotation(engine, a, only, label="nope")
    with pytest.raises(InputError, match="choose a label"):
        submit_annotation(engine, a, only)
    with pytest.raises(InputError, match="takes a label, not a response or rating"):
        submit_annotation(engine, a, only, label="billing", rating=3)
    with pytest.raises(InputError, match="unknown flag"):
        submit_annotation(engine, a, only, label="billing", flags=["spam"])
    with pytest.raises(NotFound):
        submit_annotation(engine, a, 12345, label="billing")
    submit_annotation(engine, a, only, label="billing", flags=["personal_data", "ambiguous"],
                      comment="  hm  ")
    with pytest.raises(Conflict, match="already labelled"):
        submit_annotation(engine, a, only, label="billing")
    with read_session(engine) as session:
        annotation = session.execute(select(Annotation)).scalars().one()
    assert (annotation.flags, annotation.comment) == (["ambiguous", "personal_data"], "hm")


def test_generation_items_agree_on_the_response(engine: Engine, admin: User, lead: User) -> None:
    project = make_project(engine, lead, 2, k=2, task=TaskType.generation)
    a, b = users(engine, admin, "a", "b")
    first, second = example_ids(engine, project)
    with pytest.raises(InputError, match="rate the response from 1 to 5"):
        submit_annotation(engine, a, first)
    with pytest.raises(InputError, match="must not be empty"):
        submit_annotation(engine, a, first, response="  ", rating=2)
    submit_annotation(engine, a, first, rating=4)  # unchanged response
    submit_annotation(engine, b, first, response="reply 1\n", rating=5)  # the same text
    example = get_example(engine, first)
    assert (example.status, example.final_response, example.final_label) == (
        ExampleStatus.labelled, "reply 1", None)
    submit_annotation(engine, a, second, response="A better reply.", rating=2)
    submit_annotation(engine, b, second, response="Another reply.", rating=2)
    assert get_example(engine, second).status == ExampleStatus.disputed


# --------------------------------------------------------------------------- going back


def test_going_back_and_changing_a_label_uses_the_row_version(engine: Engine, admin: User,
                                                              lead: User) -> None:
    project = make_project(engine, lead, 2, k=2)
    a, b = users(engine, admin, "a", "b")
    ids = example_ids(engine, project)
    label_item(engine, a, project, "billing")
    label_item(engine, a, project, "shipping")
    submit_annotation(engine, b, ids[0], label="refund")
    assert get_example(engine, ids[0]).status == ExampleStatus.disputed

    back = previous_annotation(engine, a, project.id)
    assert back is not None and back.example.id == ids[1] and back.annotation.label == "shipping"
    back = previous_annotation(engine, a, project.id, before_id=back.annotation.id)
    assert back is not None and back.example.id == ids[0] and back.annotation.row_version == 1
    assert previous_annotation(engine, a, project.id, before_id=back.annotation.id) is None

    changed = update_annotation(engine, a, back.annotation.id, 1, label="refund", comment="misread")
    assert (changed.label, changed.row_version) == ("refund", 2)
    example = get_example(engine, ids[0])
    assert (example.status, example.final_label) == (ExampleStatus.labelled, "refund")  # resolved again

    with pytest.raises(Conflict, match=r"changed elsewhere .*version 1, now 2.*nothing was saved"):
        update_annotation(engine, a, back.annotation.id, 1, label="billing")  # a stale tab
    with read_session(engine) as session:
        stored = session.get(Annotation, back.annotation.id)
    assert (stored.label, stored.row_version, stored.comment) == ("refund", 2, "misread")  # not overwritten
    with pytest.raises(PermissionDenied, match="only your own labels"):
        update_annotation(engine, b, back.annotation.id, 2, label="billing")
    with read_session(engine) as session:
        events = session.execute(select(AuditEvent.action, AuditEvent.before, AuditEvent.after)
                                 .where(AuditEvent.action == "annotation.update")).all()
    assert len(events) == 1
    assert events[0].before["label"] == "billing" and events[0].before["status"] == "disputed"
    assert events[0].after["label"] == "refund" and events[0].after["status"] == "labelled"


def test_every_label_writes_its_audit_event(engine: Engine, admin: User, lead: User) -> None:
    project = make_project(engine, lead, 4, k=2)
    a, b = users(engine, admin, "a", "b")
    for person in (a, b):
        for _ in range(4):
            label_item(engine, person, project, "billing")
    with read_session(engine) as session:
        events = session.execute(select(AuditEvent)
                                 .where(AuditEvent.action == "annotation.create")).scalars().all()
    assert len(events) == 8
    assert {(e.entity, e.project_id) for e in events} == {("example", project.id)}
    assert sorted((e.actor_id, e.entity_id) for e in events) == sorted(
        (p.id, i) for p in (a, b) for i in example_ids(engine, project))
    assert events[-1].after["status"] == "labelled" and events[-1].before["status"] == "in_review"


def test_a_failed_submission_leaves_no_trace(engine: Engine, admin: User, lead: User) -> None:
    project = make_project(engine, lead, 1, k=1)
    (a,) = users(engine, admin, "a")
    only = example_ids(engine, project)[0]
    with pytest.raises(InputError):
        submit_annotation(engine, a, only, label="nope")
    with read_session(engine) as session:
        assert session.execute(select(func.count()).select_from(Annotation)).scalar_one() == 0
        assert session.execute(select(func.count()).select_from(AuditEvent)
                               .where(AuditEvent.action.like("annotation%"))).scalar_one() == 0


def test_chat_items_edit_the_last_assistant_turn(engine: Engine, admin: User, lead: User) -> None:
    project = create_project(engine, lead, "Chats", TaskType.generation, overlap_k=2)
    chat = [{"role": "user", "content": "Where is my order?"},
            {"role": "assistant", "content": "On its way."},
            {"role": "user", "content": "When?"}, {"role": "assistant", "content": "Tomorrow."}]
    with write_session(engine) as session:
        session.add(Example(project_id=project.id, external_id="c1", messages=chat, content_hash="c1"))
    a, b = users(engine, admin, "a", "b")
    only = example_ids(engine, project)[0]
    first = submit_annotation(engine, a, only, rating=5)  # unchanged: the last assistant turn
    assert first.response == "Tomorrow."
    submit_annotation(engine, b, only, response="Tomorrow.", rating=4)
    example = get_example(engine, only)
    assert (example.status, example.final_response) == (ExampleStatus.labelled, "Tomorrow.")
