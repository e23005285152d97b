"""First start and the demo: `python -m curation init` / `demo` against a real database."""

from __future__ import annotations

import pytest
from sqlalchemy import select
from sqlalchemy.engine import Engine

from curation.auth import authenticate, get_user
from curation.bootstrap import DEMO_CLASSIFICATION, DEMO_GENERATION
from curation.db import read_session
from curation.models import Project, User
from curation.settings import get_settings
from tests.curation.test_cli import cli


def project_names(engine: Engine) -> set[str]:
    with read_session(engine) as session:
        return set(session.execute(select(Project.name)).scalars())


def usernames(engine: Engine) -> set[str]:
    with read_session(engine) as session:
        return set(session.execute(select(User.username).where(User.imported.is_(False))).scalars())


def test_init_with_a_named_admin_still_loads_the_demo(engine: Engine, capsys: pytest.CaptureFixture[str],
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ADMIN_USERNAME", "admin")
    monkeypatch.setenv("ADMIN_PASSWORD", "a-real-password")
    monkeypatch.setenv("LOAD_DEMO", "true")
    get_settings.cache_clear()
    code, out, _ = cli(capsys, "init")
    assert code == 0 and out.startswith("database ready")
    assert {DEMO_CLASSIFICATION, DEMO_GENERATION} <= project_names(engine)
    assert usernames(engine) == {"admin", "lead", "alice", "bob"}
    # the named admin keeps the password from the environment, not the demo's
    assert authenticate(engine, "admin", "a-real-password") is not None
    assert authenticate(engine, "admin", "admin-demo") is None
    assert authenticate(engine, "lead", "lead-demo") is not None
    # a second start loads nothing again
    assert cli(capsys, "init")[0] == 0


def test_load_demo_off_then_demo_command_by_an_admin(engine: Engine, capsys: pytest.CaptureFixture[str],
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ADMIN_USERNAME", "boss")
    monkeypatch.setenv("ADMIN_PASSWORD", "a-real-password")
    monkeypatch.setenv("LOAD_DEMO", "false")
    get_settings.cache_clear()
    assert cli(capsys, "init")[0] == 0
    assert project_names(engine) == set() and usernames(engine) == {"boss"}
    assert cli(capsys, "--user", "boss", "users", "add", "lena", "--role", "lead", "--password", "lead-password")[0] == 0
    assert cli(capsys, "--user", "lena", "demo") == (2, "", "error: User 'lena' is lead; this needs admin.\n")
    assert cli(capsys, "--user", "boss", "demo") == (0, "demo users and projects loaded\n", "")
    assert {DEMO_CLASSIFICATION, DEMO_GENERATION} <= project_names(engine)
    assert get_user(engine, "admin").role == "admin"  # the demo's own accounts arrive too
    code, _, err = cli(capsys, "--user", "boss", "demo")
    assert code == 2 and "already loaded" in err
