"""The demo's evaluation set-up: the ticket project's objective (stated before its labels are
imported) and a frozen test set drawn from its reviewed tickets, so a new user sees scores on a test
set, with intervals and the objective line, on the first start."""

from __future__ import annotations

from sqlalchemy.engine import Engine

from curation.auth import get_user
from curation.objective import set_objective
from curation.projects import get_project

DEMO_TEST_SIZE = 40
DEMO_SEED = 7


def set_demo_objective(engine: Engine, project_name: str) -> None:
    """Accuracy ≥ 0.85 on the test set: called right after the project is created, before review."""
    set_objective(engine, get_user(engine, "admin"), get_project(engine, project_name).id, "accuracy", 0.85)


def load_demo_test_set(engine: Engine, project_name: str) -> None:
    """A seeded sample of reviewed tickets (k=2 labels that agree), stratified by label, exact-duplicate
    groups whole (no embeddings at start-up), approved as test-set version 1."""
    from curation import test_sets

    lead = get_user(engine, "lead")
    project = get_project(engine, project_name)
    test_set = test_sets.create_test_set(engine, lead, project.id, "test set",
                                         "Demo: a seeded sample of reviewed tickets, never trained on.")
    test_sets.sample_items(engine, lead, test_set.id, DEMO_TEST_SIZE, seed=DEMO_SEED, labelled_only=True,
                           use_embeddings=False)
    test_sets.approve_test_set(engine, lead, test_set.id, note="demo test set: reviewed by two annotators each")
