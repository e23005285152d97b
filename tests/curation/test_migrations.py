"""The Alembic migrations own the schema: they create every table on an empty database, and the
models agree with them exactly (what `alembic check` verifies), on SQLite and PostgreSQL."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect, text
from sqlalchemy.engine import Engine
from sqlmodel import SQLModel

import curation.models  # noqa: F401  (registers every table on SQLModel.metadata)
from curation.db import _MIGRATIONS, make_engine, migrate
from tests.conftest import BOTH_BACKENDS


def _config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(_MIGRATIONS))
    return config


def _head() -> str:
    return ScriptDirectory.from_config(_config()).get_current_head()


def _model_tables() -> set[str]:
    return {table.name for table in SQLModel.metadata.sorted_tables}


def test_upgrade_head_on_an_empty_sqlite_file_creates_every_table(tmp_path: Path) -> None:
    path = tmp_path / "fresh" / "curation.db"
    engine = make_engine(f"sqlite:///{path}")
    try:
        migrate(engine)
        assert path.exists()
        with engine.connect() as connection:
            tables = set(inspect(connection).get_table_names())
            version = connection.execute(text("SELECT version_num FROM alembic_version")).scalar_one()
        assert tables == _model_tables() | {"alembic_version"}
        assert {"user", "project", "importrecord", "example", "annotation", "adjudication", "auditevent"} <= tables
        assert version == _head()
        migrate(engine)  # idempotent: a second start changes nothing
        with engine.connect() as connection:
            assert set(inspect(connection).get_table_names()) == tables
    finally:
        engine.dispose()


def test_downgrade_to_base_and_up_again(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'roundtrip.db'}")
    try:
        migrate(engine)
        config = _config()
        with engine.begin() as connection:
            config.attributes["connection"] = connection
            command.downgrade(config, "base")
        with engine.connect() as connection:
            assert set(inspect(connection).get_table_names()) == {"alembic_version"}
        migrate(engine)
        with engine.connect() as connection:
            assert set(inspect(connection).get_table_names()) == _model_tables() | {"alembic_version"}
    finally:
        engine.dispose()


@BOTH_BACKENDS
def test_models_and_migrations_agree(engine: Engine) -> None:
    """`alembic check`: autogenerate against the migrated database finds nothing to do."""
    with engine.connect() as connection:
        # the options of curation/migrations/env.py, as `alembic check` would use them
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        assert compare_metadata(context, SQLModel.metadata) == []
        assert context.get_current_revision() == _head()
