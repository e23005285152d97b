"""Fixtures shared by the training pages' tests (imported by them): tiny models, approved versions,
a finished run trained in this process."""

from __future__ import annotations

import pytest
from sqlalchemy.engine import Engine

from curation.models import TaskType, User
from tests.training.helpers import (
    WORDS,
    build_tiny_models,
    classification_rows,
    generation_rows,
    make_version,
)

FAST = {"max_steps": 6, "batch_size": 8, "max_length": 32, "eval_steps": 3}


@pytest.fixture(scope="module")
def tiny_models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    return build_tiny_models(tmp_path_factory.mktemp("tiny"))


@pytest.fixture
def classification_version(engine: Engine, lead: User) -> int:
    return make_version(engine, lead, "Tickets", TaskType.classification, classification_rows(), labels=list(WORDS))


@pytest.fixture
def generation_version(engine: Engine, lead: User) -> int:
    return make_version(engine, lead, "Replies", TaskType.generation, generation_rows())


def trained(engine: Engine, lead: User, version_id: int, base: str, **overrides: object) -> int:
    from training import jobs, run

    queued = jobs.start_run(engine, lead, version_id, "quick", base=base, overrides={**FAST, **overrides},
                            launch=False)
    run.work(engine, queued.id)
    done = jobs.get_run(engine, queued.id)
    assert done.status == "succeeded", done.error
    return queued.id
