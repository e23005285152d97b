"""pages/test_set.py: creating the test set, drawing a sample, the review wait, approval and verify."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import text
from sqlalchemy.engine import Engine

from curation.db import write_session
from curation.models import User
from curation.versions import test_sets
from tests.curation.test_versions import make_project
from tests.pages.helpers import by_label, logged_in, no_exception, values


def _page():  # type: ignore[no-untyped-def]
    at = logged_in("lena", "lead-password")
    at.switch_page("pages/test_set.py").run()
    no_exception(at)
    assert values(at.title) == ["Test set"]
    return at


def test_build_wait_for_review_approve_and_verify(engine: Engine, lead: User, tmp_path: Path) -> None:
    project_id = make_project(engine, lead, tmp_path)
    at = _page()
    by_label(at.button, "Create test set").click().run()
    no_exception(at)
    assert "Test set created." in values(at.success)
    by_label(at.number_input, "Sample size").set_value(6)
    by_label(at.button, "Draw sample").click().run()
    no_exception(at)
    assert any(s.startswith("Added 6 items") for s in values(at.success))
    assert by_label(at.metric, "Waiting for review").value == "6"  # imported labels are not expert labels
    by_label(at.button, "Approve test-set version").click().run()
    assert any("still wait for review" in e for e in values(at.error))
    # the two reviews (as the queue would record them), then approval
    [test_set] = test_sets.list_test_sets(engine, project_id)
    with write_session(engine) as session:
        session.execute(text("update example set status = 'labelled', final_label = 'billing' "
                             "where test_set_id = :t"), {"t": test_set.id})
    at = _page()
    by_label(at.text_input, "Approval note").input("reviewed")
    by_label(at.button, "Approve test-set version").click().run()
    no_exception(at)
    assert any(s.startswith("Approved test set v1 (id 1, 6 items") for s in values(at.success))
    table = next(d.value for d in at.dataframe if "SHA-256" in d.value.columns)
    assert table["items"].tolist() == [6] and len(table["SHA-256"][0]) == 64
    by_label(at.button, "Verify").click().run()
    assert any(s.endswith("matches") for s in values(at.success))
