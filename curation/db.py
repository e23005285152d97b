"""The one engine factory, the migration runner and the session helpers.

SQLite (the embedded default) runs in WAL mode with a busy timeout, and write transactions start
with `BEGIN IMMEDIATE`: a deferred transaction that later upgrades to a write lock can fail with
"database is locked" without waiting, while an immediate one queues behind the busy timeout.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.pool import StaticPool
from sqlmodel import Session, create_engine

from curation.settings import Settings, get_settings

_MIGRATIONS = Path(__file__).parent / "migrations"
_IMMEDIATE = "curation_sqlite_immediate"


def make_engine(url: str | None = None, *, settings: Settings | None = None) -> Engine:
    """An engine for `url` (default: the settings' database). Creates the SQLite file's folder."""
    settings = settings or get_settings()
    url = url or settings.resolved_database_url
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return create_engine(url, pool_pre_ping=True)

    database = parsed.database or ""
    in_memory = database in ("", ":memory:")
    kwargs: dict[str, Any] = {"connect_args": {"check_same_thread": False}}
    if in_memory:
        kwargs["poolclass"] = StaticPool  # one shared connection, or each session sees an empty database
    else:
        Path(database).parent.mkdir(parents=True, exist_ok=True)
        kwargs["connect_args"]["timeout"] = settings.sqlite_busy_timeout_ms / 1000
    engine = create_engine(url, **kwargs)
    busy_ms = settings.sqlite_busy_timeout_ms

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # let the "begin" hook below issue BEGIN itself
        cursor = dbapi_connection.cursor()
        if not in_memory:
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute(f"PRAGMA busy_timeout={int(busy_ms)}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        immediate = conn.get_execution_options().get(_IMMEDIATE, False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

    return engine


def migrate(engine: Engine) -> None:
    """Bring the schema to the newest Alembic revision (creates it on an empty database).

    A database already at the newest revision (every start of the CLI and the app after the first)
    is left alone without loading Alembic, which costs a large part of a CLI command's start-up."""
    head = _head_revision()
    if head is not None and _current_revisions(engine) == [head]:
        return
    from alembic import command  # the migration runner: only when there is something to do
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(_MIGRATIONS))
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "head")


_REVISION = re.compile(r"""^(down_revision|revision)\s*(?::[^=]*)?=\s*(None|'[^']*'|"[^"]*")\s*$""", re.M)


def _head_revision() -> str | None:
    """The newest revision of curation/migrations/versions, read from the files' `revision` and
    `down_revision` lines; None when that is not one plain chain end (Alembic then decides)."""
    revisions: set[str] = set()
    parents: set[str] = set()
    for path in (_MIGRATIONS / "versions").glob("*.py"):
        found = dict((key, value) for key, value in _REVISION.findall(path.read_text(encoding="utf-8")))
        if "revision" not in found or "down_revision" not in found or found["revision"] == "None":
            return None
        revisions.add(found["revision"][1:-1])
        if found["down_revision"] != "None":
            parents.add(found["down_revision"][1:-1])
    heads = revisions - parents
    return heads.pop() if len(heads) == 1 else None


def _current_revisions(engine: Engine) -> list[str]:
    """The revisions the database is stamped with ([] for a new database)."""
    with engine.connect() as connection:
        if not engine.dialect.has_table(connection, "alembic_version"):
            return []
        return [row[0] for row in connection.exec_driver_sql("SELECT version_num FROM alembic_version")]


@contextmanager
def write_session(engine: Engine) -> Iterator[Session]:
    """A session for one unit of work that writes: commits on success, rolls back on any error."""
    with Session(engine, expire_on_commit=False) as session:
        session.connection(execution_options={_IMMEDIATE: True})
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise


@contextmanager
def read_session(engine: Engine) -> Iterator[Session]:
    """A session for reads. Objects stay usable after the block (no expiry on close)."""
    with Session(engine, expire_on_commit=False) as session:
        yield session
