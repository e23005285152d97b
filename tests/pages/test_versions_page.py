"""pages/versions.py: build a candidate, read its checklist, approve (refused while a check fails, then
with an override that shows everywhere), diff two versions, export; annotators do not get the page."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy.engine import Engine
from streamlit.testing.v1 import AppTest

from curation.models import User
from curation.versions.approve import approve_version
from curation.versions.build import create_candidate
from curation.versions.records import get_version, list_versions
from tests.curation.test_versions import EXACT, make_project, ticket_rows
from tests.pages.helpers import by_label, logged_in, no_exception, rendered, values


def _page() -> AppTest:
    at = logged_in("lena", "lead-password")
    at.switch_page("pages/versions.py").run()
    no_exception(at)
    assert values(at.title) == ["Dataset versions"]
    return at


def test_build_check_and_approve_with_override(engine: Engine, lead: User, tmp_path: Path) -> None:
    rows = ticket_rows()
    [variant] = [r for r in rows if r["id"] == "v001"]
    variant["label"] = "billing"  # t001's near-duplicate with another label: that check fails
    project_id = make_project(engine, lead, tmp_path, rows)
    at = _page()
    by_label(at.checkbox, "Use sentence embeddings").uncheck()  # the exact path: fast
    by_label(at.button, "Build candidate").click().run()
    no_exception(at)
    [version] = list_versions(engine, lead, project_id)
    assert version.status == "candidate"
    assert any("Built candidate v1" in s.value for s in at.success)
    checks = at.dataframe[1].value.set_index("check")["status"].to_dict()
    assert checks["Near-duplicates"] == "❌ fail" and checks["Eval items leaking from train"] == "✅ pass"
    assert any("Failing checks block approval" in e.value for e in at.error)

    by_label(at.checkbox, "I attest that these items fit the project's task").check()
    by_label(at.button, "Approve version").click().run()
    assert any("Approval refused" in e.value for e in at.error)
    assert get_version(engine, version.id).status == "candidate"

    by_label(at.checkbox, "I attest that these items fit the project's task").check()
    by_label(at.text_area, "Override reason (needed when a check fails)").input("t001 and v001 are both wanted")
    by_label(at.text_area, "Approval note").input("first release")
    by_label(at.button, "Approve version").click().run()
    no_exception(at)
    approved = get_version(engine, version.id)
    assert approved.status == "approved" and approved.override_reason == "t001 and v001 are both wanted"
    assert any("t001 and v001 are both wanted" in w.value for w in at.warning)  # shown with the version
    # The note names the overridden check as people read it, with a correct plural (issue 14).
    assert "v1 was approved with an override of near-duplicates (1 pair: 1 with conflicting labels, 0 across " \
           "train/eval; 2.4% of items redundant). Reason: t001 and v001 are " \
           "both wanted" in [rendered(w.value) for w in at.warning]
    assert any(f"Approved v1 (SHA-256 {approved.content_hash})" in s.value for s in at.success)


def test_diff_and_export_tabs(engine: Engine, lead: User, tmp_path: Path) -> None:
    project_id = make_project(engine, lead, tmp_path, ticket_rows(40)[:40])
    v1 = approve_version(engine, lead, create_candidate(engine, lead, project_id, EXACT).id, attest=True)
    create_candidate(engine, lead, project_id, EXACT)
    at = _page()
    assert [m.label for m in at.metric][-4:] == ["Added", "Removed", "Relabelled", "Content changed"]
    assert by_label(at.selectbox, "Version to export").value == v1.id
    by_label(at.button, "Prepare export").click().run()
    no_exception(at)
    assert not at.error
    assert at.session_state[f"versions.{project_id}.download"][1].endswith("-v1.zip")


def test_verify_button_and_annotators_do_not_get_the_page(engine: Engine, lead: User, annotator: User,
                                                          tmp_path: Path) -> None:
    project_id = make_project(engine, lead, tmp_path, ticket_rows(40)[:40])
    create_candidate(engine, lead, project_id, EXACT)
    at = _page()
    by_label(at.button, "Verify hash").click().run()
    assert any("matches" in s.value for s in at.success)
    at = logged_in("anna", "annotator-password")
    with pytest.raises(ValueError, match="Could not find a navigation page"):  # not in an annotator's navigation
        at.switch_page("pages/versions.py")


def test_page_run_directly_refuses_an_annotator_and_asks_to_log_in(engine: Engine, annotator: User) -> None:
    from tests.pages.helpers import APP, TIMEOUT
    from ui.session import USER_KEY

    path = str(APP.parent / "pages" / "versions.py")
    at = AppTest.from_file(path, default_timeout=TIMEOUT).run()
    assert values(at.warning) == ["Please log in."]
    at = AppTest.from_file(path, default_timeout=TIMEOUT)
    at.session_state[USER_KEY] = annotator.id
    at.run()
    no_exception(at)
    assert values(at.error) == ["User 'anna' is annotator; this needs lead or admin."]
    assert at.dataframe.len == 0 and at.button.len == 0
