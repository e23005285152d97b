"""One way to fetch a row by id or raise NotFound with a message people can read.

`get_or_not_found(session, Project, 3)` inside a session; `read_or_not_found(engine, Project, 3)` in a
short read session of its own. Messages read "No project with id 3." (the noun comes from NOUNS, else
the class name).
"""

from __future__ import annotations

import re
from typing import TypeVar

from sqlalchemy.engine import Engine
from sqlmodel import Session, SQLModel

from curation.db import read_session
from curation.errors import NotFound

Row = TypeVar("Row", bound=SQLModel)

NOUNS = {"DatasetVersion": "dataset version", "TrainingRun": "training run", "TestSetVersion": "test-set version"}


def noun(model: type[SQLModel]) -> str:
    """'project' for Project, 'dataset version' for DatasetVersion."""
    name = model.__name__
    return NOUNS.get(name) or re.sub(r"(?<!^)(?=[A-Z])", " ", name).lower()


def get_or_not_found(session: Session, model: type[Row], row_id: int | None, *, lock: bool = False) -> Row:
    """The row of `model` with primary key `row_id`; `lock` takes its row lock (PostgreSQL's
    SELECT ... FOR UPDATE; SQLite's writer lock is already held). Raises NotFound when there is none."""
    row = session.get(model, row_id, with_for_update=lock or None) if row_id is not None else None
    if row is None:
        raise NotFound(f"No {noun(model)} with id {row_id}.")
    return row


def read_or_not_found(engine: Engine, model: type[Row], row_id: int | None) -> Row:
    """get_or_not_found in a read session of its own; the row comes back detached (expire_on_commit off)."""
    with read_session(engine) as session:
        return get_or_not_found(session, model, row_id)
