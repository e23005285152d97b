"""The role matrix: every review, queue, adjudication, audit and account function called directly as
each role (and as a deactivated account). The core refuses with PermissionDenied, whatever a page shows."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.engine import Engine

from curation.access import accounts as auth
from curation.access import audit
from curation.access.accounts import create_user, set_active, set_role
from curation.db import read_session
from curation.errors import Conflict, CurationError, PermissionDenied
from curation.models import AuditEvent, Role, User
from curation.review import adjudication, queue
from curation.review import annotate as review
from tests.curation.test_review_queue import example_ids, fast_passwords, make_project

__all__ = ["fast_passwords"]
ANYONE = {"annotator", "lead", "admin"}
LEADS = {"lead", "admin"}
ADMINS = {"admin"}


class World:
    """A project with one labelled and one open item, and a user of each role."""

    def __init__(self, engine: Engine, admin: User, lead: User, tmp_path: Path) -> None:
        self.engine, self.tmp_path = engine, tmp_path
        self.project = make_project(engine, lead, 4, k=1)
        self.ids = example_ids(engine, self.project)
        self.people = {"admin": admin, "lead": lead,
                       "annotator": create_user(engine, admin, "anna", Role.annotator, "anna-password"),
                       "target": create_user(engine, admin, "tim", Role.annotator, "tim-password")}
        item = queue.next_item(engine, self.people["target"], self.project.id)
        assert item is not None
        self.annotation = review.submit_annotation(engine, self.people["target"], item.example.id,
                                                   label="billing")


# (name, allowed roles, call(world, actor)). Each call is valid for an allowed role.
CALLS: list[tuple[str, set[str], Callable[[World, User], Any]]] = [
    ("next_item", ANYONE, lambda w, u: queue.next_item(w.engine, u, w.project.id)),
    ("progress", ANYONE, lambda w, u: queue.progress(w.engine, u, w.project.id)),
    ("skip_item", ANYONE, lambda w, u: queue.skip_item(w.engine, u, w.ids[3])),
    ("return_skipped", ANYONE, lambda w, u: queue.return_skipped(w.engine, u, w.project.id)),
    ("submit_annotation", ANYONE,
     lambda w, u: review.submit_annotation(w.engine, u, w.ids[2], label="refund")),
    ("previous_annotation", ANYONE, lambda w, u: review.previous_annotation(w.engine, u, w.project.id)),
    ("get_review_item (own label)", {"target", "lead", "admin"},
     lambda w, u: review.get_review_item(w.engine, u, w.annotation.example_id)),
    ("update_annotation (own)", {"target"},
     lambda w, u: review.update_annotation(w.engine, u, w.annotation.id, 1, label="shipping")),
    ("assign_items", LEADS,
     lambda w, u: queue.assign_items(w.engine, u, w.project.id, w.people["annotator"], 1)),
    ("set_queue_order", LEADS,
     lambda w, u: queue.set_queue_order(w.engine, u, w.project.id, "suspected_first")),
    ("set_priority", LEADS, lambda w, u: queue.set_priority(w.engine, u, w.project.id, {w.ids[1]: 0.5})),
    ("queue_stats", LEADS, lambda w, u: queue.queue_stats(w.engine, u, w.project.id)),
    ("adjudication_queue", LEADS, lambda w, u: adjudication.adjudication_queue(w.engine, u, w.project.id)),
    ("adjudication_queue_size", LEADS,
     lambda w, u: adjudication.adjudication_queue_size(w.engine, u, w.project.id)),
    ("example_detail", LEADS, lambda w, u: adjudication.example_detail(w.engine, u, w.ids[0])),
    ("adjudicate", LEADS, lambda w, u: adjudication.adjudicate(w.engine, u, w.ids[0], final_label="refund",
                                                              reason="guideline 2")),
    ("exclude_example", LEADS,
     lambda w, u: adjudication.exclude_example(w.engine, u, w.ids[1], "personal_data")),
    ("annotation_rows", LEADS, lambda w, u: list(adjudication.annotation_rows(w.engine, u, w.project.id))),
    ("export_annotations", LEADS,
     lambda w, u: adjudication.export_annotations(w.engine, u, w.project.id,
                                                  w.tmp_path / f"{u.username}.csv")),
    ("query_events", LEADS, lambda w, u: audit.query_events(w.engine, u, audit.EventFilter())),
    ("count_events", LEADS, lambda w, u: audit.count_events(w.engine, u, audit.EventFilter())),
    ("example_history", LEADS, lambda w, u: audit.example_history(w.engine, u, w.ids[0])),
    ("event_actions", LEADS, lambda w, u: audit.event_actions(w.engine, u, w.project.id)),
    ("list_users", LEADS, lambda w, u: auth.list_users(w.engine, u)),
    ("create_user", ADMINS,
     lambda w, u: create_user(w.engine, u, f"new-by-{u.username}", Role.annotator, None)),
    ("set_role", ADMINS, lambda w, u: set_role(w.engine, u, w.people["target"].id, Role.lead)),
    ("set_active", ADMINS, lambda w, u: set_active(w.engine, u, w.people["target"].id, False)),
]


@pytest.fixture
def world(engine: Engine, admin: User, lead: User, tmp_path: Path) -> World:
    return World(engine, admin, lead, tmp_path)


def test_role_matrix(world: World) -> None:
    """One world, every call as every role. Refused calls change nothing; an allowed call may meet a
    business rule (the item already has k labels) after a previous role made it: that is past the
    role check, so it counts as allowed."""
    outcomes: dict[tuple[str, str], str] = {}
    succeeded: set[str] = set()
    for name, allowed, call in CALLS:
        for role in ("annotator", "target", "lead", "admin"):
            if role == "target" and name not in ("get_review_item (own label)", "update_annotation (own)"):
                continue
            actor = world.people[role]
            try:
                call(world, actor)
                outcomes[(name, role)] = "ok"
                succeeded.add(name)
            except PermissionDenied as error:
                outcomes[(name, role)] = "denied"
                assert str(error), "a permission error says why"
            except CurationError:
                outcomes[(name, role)] = "ok"  # past the role check; a business rule said no (e.g. k reached)
    expected = {(name, role): ("ok" if role in allowed else "denied")
                for name, allowed, _ in CALLS for role in ("annotator", "target", "lead", "admin")
                if role != "target" or name in ("get_review_item (own label)", "update_annotation (own)")}
    assert outcomes == expected
    assert succeeded == {name for name, _, _ in CALLS}  # each call really worked for some allowed role


def test_permission_errors_are_clear(engine: Engine, annotator: User, lead: User) -> None:
    project = make_project(engine, lead, 1)
    with pytest.raises(PermissionDenied, match=r"^User 'anna' is annotator; this needs lead or admin\.$"):
        adjudication.adjudication_queue(engine, annotator, project.id)
    with pytest.raises(PermissionDenied, match=r"^User 'lena' is lead; this needs admin\.$"):
        set_role(engine, lead, annotator.id, Role.lead)


def test_a_deactivated_account_is_refused_everywhere_at_once(engine: Engine, admin: User, lead: User) -> None:
    project = make_project(engine, lead, 2)
    anna = create_user(engine, admin, "anna", Role.annotator, "anna-password")
    assert queue.next_item(engine, anna, project.id) is not None
    anna = set_active(engine, admin, anna.id, False)
    for call in (lambda: queue.next_item(engine, anna, project.id),
                 lambda: review.submit_annotation(engine, anna, example_ids(engine, project)[0],
                                                  label="billing"),
                 lambda: queue.progress(engine, anna, project.id)):
        with pytest.raises(PermissionDenied, match="active account"):
            call()
    assert auth.authenticate(engine, "anna", "anna-password") is None
    set_active(engine, admin, anna.id, True)
    assert auth.authenticate(engine, "anna", "anna-password") is not None


def test_role_changes_are_audited_and_keep_an_admin(engine: Engine, admin: User, lead: User) -> None:
    promoted = set_role(engine, admin, lead.id, Role.admin)
    assert promoted.role == Role.admin
    set_role(engine, admin, lead.id, Role.admin)  # no change: no event
    set_role(engine, admin, lead.id, Role.lead)
    with pytest.raises(Conflict, match="'root' is the last active admin"):
        set_role(engine, admin, admin.id, Role.annotator)
    with pytest.raises(Conflict, match="'root' is the last active admin"):
        set_active(engine, admin, admin.id, False)
    set_active(engine, admin, lead.id, False)
    with read_session(engine) as session:
        events = session.execute(select(AuditEvent.action, AuditEvent.actor_id, AuditEvent.entity_id,
                                        AuditEvent.before, AuditEvent.after)
                                 .where(AuditEvent.action.in_(["user.role", "user.active"]))
                                 .order_by(AuditEvent.id)).all()
    assert [(e.action, e.actor_id, e.entity_id) for e in events] == [
        ("user.role", admin.id, lead.id), ("user.role", admin.id, lead.id),
        ("user.active", admin.id, lead.id)]
    assert (events[0].before["role"], events[0].after["role"]) == ("lead", "admin")
    assert (events[2].before["active"], events[2].after["active"]) == (True, False)


def test_a_new_role_takes_effect_on_the_next_call(engine: Engine, admin: User, lead: User) -> None:
    project = make_project(engine, lead, 1)
    anna = create_user(engine, admin, "anna", Role.annotator, "anna-password")
    with pytest.raises(PermissionDenied):
        adjudication.adjudication_queue(engine, anna, project.id)
    anna = set_role(engine, admin, anna.id, Role.lead)
    assert adjudication.adjudication_queue(engine, anna, project.id) == []
