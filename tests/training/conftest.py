"""Fixtures of the training tests: tiny models built from a config (a 2-layer BERT and a 2-layer
Llama with a BPE tokenizer trained on the spot) and approved dataset versions."""

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


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    return build_tiny_models(tmp_path_factory.mktemp("tiny"))


@pytest.fixture
def classification_version(engine: Engine, lead: User) -> int:
    return make_version(engine, lead, "Tickets", TaskType.classification, classification_rows(),
                        labels=list(WORDS))


@pytest.fixture
def generation_version(engine: Engine, lead: User) -> int:
    return make_version(engine, lead, "Replies", TaskType.generation, generation_rows())
