"""First start and the demo: `python -m curation init` / `demo` against a real database."""

from __future__ import annotations

import pytest
from sqlalchemy import select
from sqlalchemy.engine import Engine

from curation.access.accounts import authenticate, get_user
from curation.data.bootstrap import DEMO_CLASSIFICATION, DEMO_GENERATION, load_demo
from curation.db import read_session
from curation.models import Example, Project, User
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


def test_the_demo_story_ends_in_an_approved_version_that_passes_its_checklist(engine: Engine) -> None:
    from curation.data.projects import get_project
    from curation.review.adjudication import adjudication_queue_size
    from curation.versions.checklist import FAIL, items_of
    from curation.versions.records import list_versions, verify_version

    load_demo(engine)
    lead = get_user(engine, "lead")
    project = get_project(engine, DEMO_CLASSIFICATION)
    assert project.id is not None
    (version,) = list_versions(engine, lead, project.id)
    assert (version.status, version.number, version.override_reason) == ("approved", 1, None)
    assert version.checklist["attested"] is True and version.checklist["overridden"] == []
    assert [i.key for i in items_of(version.checklist) if i.status == FAIL] == []
    assert verify_version(engine, lead, version.id).ok
    # disputes settled, re-sent copies excluded: nothing waits for a lead
    assert adjudication_queue_size(engine, lead, project.id) == 0
    with read_session(engine) as session:
        excluded = dict(session.execute(select(Example.external_id, Example.exclusion_reason).where(
            Example.project_id == project.id, Example.status == "excluded")).all())
    planted_copies = {"T-00099", "T-00378", "T-00379", "T-00250", "T-00252", "T-00033", "T-00292",  # conflicting
                      "T-00017", "T-00061", "T-00427"}  # exact duplicates
    assert planted_copies <= set(excluded)
    assert excluded["T-00017"] == "duplicate: re-send of T-00015; the first ticket is kept"
    assert excluded["T-00209"].startswith("personal_data") and excluded["T-00064"].startswith("off_task")
    assert version.stats["left_out"].get("disputed", 0) == 0


def test_the_demo_reply_project_builds_an_approvable_version_of_reviewed_responses(engine: Engine) -> None:
    """Issue 17: the published macros are imported as final, the six weak drafts wait for review; a
    version built on first start holds the macros only and says what it left out."""
    from curation.data.projects import get_project
    from curation.review.queue import next_item
    from curation.versions.approve import approve_version
    from curation.versions.build import BuildOptions, create_candidate
    from curation.versions.checklist import FAIL, items_of

    load_demo(engine)
    lead, alice = get_user(engine, "lead"), get_user(engine, "alice")
    project = get_project(engine, DEMO_GENERATION)
    assert project.id is not None
    candidate = create_candidate(engine, lead, project.id, BuildOptions(use_embeddings=False))
    assert candidate.item_count == 94
    assert candidate.stats["left_out"] == {"response not reviewed (new)": 6}
    checks = {item.key: item for item in items_of(candidate.checklist)}
    assert checks["reviewed_responses"].value == "0 reviewed by experts, 94 imported as final"
    assert checks["reviewed_responses"].detail == "6 items left out: response not reviewed"
    assert [key for key, item in checks.items() if item.status == FAIL] == ["attestation"]
    approved = approve_version(engine, lead, candidate.id, attest=True, note="published macros")
    assert approved.status == "approved"
    # the drafts are what the reviewers see
    item = next_item(engine, alice, project.id)
    assert item is not None and item.example.external_id in {"I-008", "I-029", "I-069", "I-070", "I-085", "I-088"}
