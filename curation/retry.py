"""Write transactions that retry transient conflicts inside the core, so people never see them.

SQLite serialises writers (`BEGIN IMMEDIATE` waits on the busy timeout); PostgreSQL runs writers at
once, and two of them can collide: a deadlock, a serialization failure, or a unique constraint that
a concurrent transaction filled first. `run_write` runs the whole unit of work again on a fresh
transaction, with a short randomised back-off; the work re-reads what it checks, so a re-run sees
the winner's row and decides again (for example: the slot is gone, take the next item).
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from typing import TypeVar

from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError
from sqlmodel import Session

from curation.db import write_session
from curation.errors import Conflict

T = TypeVar("T")
ATTEMPTS = 12
# PostgreSQL SQLSTATEs worth a re-run: serialization failure, deadlock, lock not available, unique violation.
_TRANSIENT_SQLSTATES = {"40001", "40P01", "55P03", "23505"}
_TRANSIENT_SQLITE = ("database is locked", "database table is locked", "unique constraint failed")


def is_transient(error: BaseException) -> bool:
    """True for a conflict with a concurrent transaction that a re-run can resolve."""
    if not isinstance(error, DBAPIError):
        return False
    original = error.orig
    state = getattr(original, "sqlstate", None) or getattr(original, "pgcode", None)
    if state is not None:
        return state in _TRANSIENT_SQLSTATES
    message = str(original).lower()
    return any(text in message for text in _TRANSIENT_SQLITE)


def run_write(engine: Engine, work: Callable[[Session], T], *, attempts: int = ATTEMPTS) -> T:
    """`work(session)` in one write transaction (committed on return), re-run on transient conflicts.

    `work` must keep its effects inside the session: it may run more than once."""
    for attempt in range(attempts):
        try:
            with write_session(engine) as session:
                return work(session)
        except DBAPIError as error:
            if not is_transient(error):
                raise
            if attempt == attempts - 1:
                raise Conflict("The database is busy with other changes; nothing was saved. "
                               "Please try again.") from error
            time.sleep(random.uniform(0, min(0.2, 0.002 * 2 ** attempt)))
    raise AssertionError("unreachable")
