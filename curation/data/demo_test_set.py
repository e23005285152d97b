"""The demo's evaluation set-up: the ticket project's objective (stated before its labels are
imported) and a frozen test set drawn from its reviewed tickets, so a new user sees scores on a test
set, with intervals and the objective line, on the first start."""

from __future__ import annotations

from sqlalchemy.engine import Engine

from curation.access.accounts import get_user
from curation.data.projects import get_project
from curation.db import read_session
from curation.evaluation.objective import set_objective
from curation.models import Example
from curation.versions import test_sets

DEMO_TEST_SIZE = 40
DEMO_SEED = 7


def set_demo_objective(engine: Engine, project_name: str) -> None:
    """Accuracy ≥ 0.85 on the test set: called right after the project is created, before review."""
    set_objective(engine, get_user(engine, "admin"), get_project(engine, project_name).id, "accuracy", 0.85)


def load_demo_test_set(engine: Engine, project_name: str) -> None:
    """A seeded sample of reviewed tickets (k=2 labels that agree), stratified by label, exact-duplicate
    groups whole, approved as test-set version 1. The demo plants near-duplicates (typos, edited
    numbers); without embeddings at start-up, tickets with a close word-overlap neighbour are left out
    of the draw, so a version built later with embeddings finds no copy of a test item."""

    lead = get_user(engine, "lead")
    project = get_project(engine, project_name)
    test_set = test_sets.create_test_set(engine, lead, project.id, "test set",
                                         "Demo: a seeded sample of reviewed tickets, never trained on.")
    test_sets.sample_items(engine, lead, test_set.id, DEMO_TEST_SIZE, seed=DEMO_SEED, labelled_only=True,
                           use_embeddings=False, among=_far_from_others(engine, project.id))
    test_sets.approve_test_set(engine, lead, test_set.id, note="demo test set: reviewed by two annotators each")


def _far_from_others(engine: Engine, project_id: int, max_overlap: float = 0.5) -> list[int]:
    """Ids of the project's tickets whose word sets overlap no other ticket's by more than
    `max_overlap` (Jaccard) and are not 80% contained in another's: a cheap stand-in for the embedding
    near-duplicate check (480 tickets)."""
    import re

    from sqlalchemy import select


    with read_session(engine) as session:
        rows = session.execute(select(Example.id, Example.text).where(Example.project_id == project_id)).all()
    words = [(i, set(re.findall(r"[a-z]+", (text or "").lower()))) for i, text in rows]
    crowded: set[int] = set()
    for a in range(len(words)):
        for b in range(a + 1, len(words)):
            x, y = words[a][1], words[b][1]
            common = len(x & y)
            # similar word sets, or one ticket wrapped in another's greeting and sign-off
            if x and y and (common / len(x | y) > max_overlap or common / min(len(x), len(y)) > 0.8):
                crowded |= {words[a][0], words[b][0]}
    return [i for i, _ in words if i not in crowded]
