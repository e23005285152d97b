"""Many annotators at once, on SQLite and PostgreSQL: 8 workers, each with its own engine, label 50
items each through the core (next_item, then submit). Afterwards the counts are exact: no lost or
duplicated annotation, no item over k, statuses as the project rule says, one audit event per
label, and no worker ever saw an error."""

from __future__ import annotations

import random
import threading
import time
from collections import Counter

import pytest
from sqlalchemy import func, select
from sqlalchemy.engine import Engine

from curation.db import make_engine, read_session
from curation.models import Annotation, Assignment, AssignmentState, AuditEvent, Example, FinalLabelRule, User
from curation.review.annotate import submit_annotation
from curation.review.queue import next_item
from curation.review.rules import resolve_status
from tests.conftest import BOTH_BACKENDS
from tests.curation.test_review_queue import LABELS, example_ids, fast_passwords, make_project, users

WORKERS = 8
SUBMISSIONS = 50
ITEMS = 250  # k=2: every item gets a first label, then 150 race for their last slot
K = 2

__all__ = ["fast_passwords"]


def _run_workers(url: str, people: list[User], project_id: int,
                 per_worker: int) -> tuple[dict[int, list[int]], list[str]]:
    done: dict[int, list[int]] = {person.id: [] for person in people}
    errors: list[str] = []
    start = threading.Barrier(len(people))

    def work(person: User) -> None:
        engine = make_engine(url)  # each worker its own engine and connections
        rng = random.Random(person.id)
        try:
            start.wait()
            for _ in range(per_worker):
                item = next_item(engine, person, project_id)
                if item is None:
                    errors.append(f"{person.username}: queue ran dry")
                    return
                submit_annotation(engine, person, item.example.id, label=rng.choice(LABELS))
                done[person.id].append(item.example.id)
        except Exception as error:  # any error a person would have seen
            errors.append(f"{person.username}: {type(error).__name__}: {error}")
        finally:
            engine.dispose()

    threads = [threading.Thread(target=work, args=(person,)) for person in people]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)
    return done, errors


@BOTH_BACKENDS
def test_eight_workers_label_at_once_with_exact_counts(engine: Engine, database_url: str, admin: User,
                                                       lead: User) -> None:
    project = make_project(engine, lead, ITEMS, k=K)
    people = users(engine, admin, *[f"w{i}" for i in range(WORKERS)])
    began = time.perf_counter()
    done, errors = _run_workers(database_url, people, project.id, SUBMISSIONS)
    elapsed = time.perf_counter() - began
    print(f"{engine.dialect.name}: {WORKERS * SUBMISSIONS} labels by {WORKERS} workers in {elapsed:.1f}s")

    assert errors == []
    assert all(len(ids) == SUBMISSIONS for ids in done.values())
    with read_session(engine) as session:
        rows = session.execute(select(Annotation.example_id, Annotation.annotator_id, Annotation.label)).all()
        statuses = dict(session.execute(select(Example.id, Example.status).where(
            Example.project_id == project.id)).all())
        finals = dict(session.execute(select(Example.id, Example.final_label)).all())
        events = session.execute(select(AuditEvent.actor_id, AuditEvent.entity_id)
                                 .where(AuditEvent.action == "annotation.create")).all()
        leases = session.execute(select(func.count()).select_from(Assignment)
                                 .where(Assignment.state == AssignmentState.leased.value)).scalar_one()
    # Exactly what the workers submitted: nothing lost, nothing doubled.
    assert len(rows) == WORKERS * SUBMISSIONS
    assert sorted((a, e) for e, a, _ in rows) == sorted((pid, e) for pid, ids in done.items() for e in ids)
    assert len({(e, a) for e, a, _ in rows}) == len(rows)
    per_item = Counter(e for e, _, _ in rows)
    assert max(per_item.values()) <= K
    assert sum(per_item.values()) == WORKERS * SUBMISSIONS
    # Unlabelled first: every item got its first label before any got a second.
    assert len(per_item) == ITEMS and Counter(per_item.values()) == {1: 100, 2: 150}
    # Each status and final label is what the project rule gives for the stored labels.
    labels: dict[int, list[str | None]] = {i: [] for i in example_ids(engine, project)}
    for e, _, label in rows:
        labels[e].append(label)
    for example_id, given in labels.items():
        status, final = resolve_status(given, K, FinalLabelRule.majority)
        assert (statuses[example_id], finals[example_id]) == (status, final), example_id
    # One audit event per label, by the labeller, on the item; no lease left behind.
    assert sorted(events) == sorted((a, e) for e, a, _ in rows)
    assert leases == 0


@BOTH_BACKENDS
def test_the_last_slot_goes_to_exactly_k_of_many_at_once(engine: Engine, database_url: str, admin: User,
                                                         lead: User) -> None:
    project = make_project(engine, lead, 1, k=K)
    people = users(engine, admin, *[f"w{i}" for i in range(WORKERS)])
    got: list[int | None] = []
    errors: list[str] = []
    barrier = threading.Barrier(WORKERS)

    def claim(person: User) -> None:
        own = make_engine(database_url)
        try:
            barrier.wait()
            item = next_item(own, person, project.id)
            got.append(item.example.id if item else None)
        except Exception as error:
            errors.append(repr(error))
        finally:
            own.dispose()

    threads = [threading.Thread(target=claim, args=(p,)) for p in people]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert errors == []
    expected = [example_ids(engine, project)[0]] * K + [None] * (WORKERS - K)
    assert sorted(got, key=str) == sorted(expected, key=str)


pytestmark = pytest.mark.timeout(300)
