"""Shared fixtures: a migrated database per test on SQLite and, when one is reachable, PostgreSQL.

PostgreSQL comes from TEST_POSTGRES_URL (an admin URL of a throwaway cluster; .ci/run starts one).
Without it the PostgreSQL cases skip with the reason; under CI=true they fail instead, so CI can
never pass without them.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import Engine, make_url

from curation.access.accounts import create_user
from curation.db import make_engine, migrate
from curation.models import Role, User
from curation.settings import get_settings

REPO = Path(__file__).resolve().parent.parent
SHARED = REPO.parent / "shared"
POSTGRES_URL = os.environ.get("TEST_POSTGRES_URL")
IN_CI = os.environ.get("CI") == "true"


def _require_postgres() -> str:
    if POSTGRES_URL:
        return POSTGRES_URL
    if IN_CI:
        pytest.fail("CI must run the PostgreSQL tests: TEST_POSTGRES_URL is not set (see .ci/run)")
    pytest.skip("no PostgreSQL server: set TEST_POSTGRES_URL (make test-postgres starts a throwaway one)")


@pytest.fixture(autouse=True)
def isolated_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Each test gets its own DATA_DIR and no demo loading, whatever the developer's .env says.
    Embeddings take the torch path, whose vectors equal `SentenceTransformer.encode`'s: the ONNX paths
    (ONNX fp32 is the default on CPU) have their own tests in test_embeddings.py."""
    monkeypatch.setenv("DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("LOAD_DEMO", "false")
    monkeypatch.setenv("EMBEDDING_BACKEND", "torch")
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.delenv("CURATION_USER", raising=False)
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated SQLite file, copied per test (migrating once is much faster than per test)."""
    path = tmp_path_factory.mktemp("template") / "template.db"
    engine = make_engine(f"sqlite:///{path}")
    migrate(engine)
    engine.dispose()
    return path


@pytest.fixture(scope="session")
def postgres_template() -> Iterator[str | None]:
    """Name of a migrated PostgreSQL template database, or None when no server is configured."""
    if not POSTGRES_URL:
        yield None
        return
    name = f"curation_tpl_{uuid.uuid4().hex[:8]}"
    admin = create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    engine = make_engine(make_url(POSTGRES_URL).set(database=name).render_as_string(hide_password=False))
    migrate(engine)
    engine.dispose()
    yield name
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def fresh_postgres_url(template: str) -> str:
    name = f"curation_t_{uuid.uuid4().hex[:10]}"
    admin = create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}" TEMPLATE "{template}"'))
    admin.dispose()
    return make_url(POSTGRES_URL).set(database=name).render_as_string(hide_password=False)


def drop_postgres_database(url: str) -> None:
    name = make_url(url).database
    admin = create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture
def database_url(request: pytest.FixtureRequest, tmp_path: Path, sqlite_template: Path,
                 postgres_template: str | None) -> Iterator[str]:
    """URL of an empty, migrated database: SQLite by default; parametrize with
    `@pytest.mark.parametrize("database_url", ["sqlite", "postgres"], indirect=True)` for both."""
    backend = getattr(request, "param", "sqlite")
    if backend == "sqlite":
        path = tmp_path / "test.db"
        shutil.copy(sqlite_template, path)
        yield f"sqlite:///{path}"
        return
    _require_postgres()
    assert postgres_template is not None
    url = fresh_postgres_url(postgres_template)
    yield url
    drop_postgres_database(url)


@pytest.fixture
def engine(database_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Engine]:
    monkeypatch.setenv("DATABASE_URL", database_url)
    get_settings.cache_clear()
    engine = make_engine(database_url)
    yield engine
    engine.dispose()


BOTH_BACKENDS = pytest.mark.parametrize("database_url", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)],
                                        indirect=True)


@pytest.fixture
def admin(engine: Engine) -> User:
    return create_user(engine, None, "root", Role.admin, "root-password")


@pytest.fixture
def lead(engine: Engine, admin: User) -> User:
    return create_user(engine, admin, "lena", Role.lead, "lead-password")


@pytest.fixture
def annotator(engine: Engine, admin: User) -> User:
    return create_user(engine, admin, "anna", Role.annotator, "annotator-password")
