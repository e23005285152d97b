"""Alembic environment: runs on the connection that `curation.db.migrate` hands over, or on DATABASE_URL."""

from alembic import context
from sqlalchemy.engine import Connection
from sqlmodel import SQLModel

import curation.models  # noqa: F401  (registers the tables on SQLModel.metadata)

target_metadata = SQLModel.metadata


def run() -> None:
    connection = context.config.attributes.get("connection")
    if connection is None:
        from curation.db import make_engine

        with make_engine().begin() as own_connection:
            _run_on(own_connection)
    else:
        _run_on(connection)


def _run_on(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",  # SQLite needs table copies for ALTER
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


run()
