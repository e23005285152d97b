"""Links that open items, runs and versions (ui/links.py): `?item=` on Review and Adjudication,
`?version=` on Versions, `?run=` on Runs; the page writes what it shows into the URL, so a reload
(a new session with that URL) keeps it."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy.engine import Engine
from streamlit.testing.v1 import AppTest

from curation.models import User
from curation.versions.build import create_candidate
from tests.curation.test_review_queue import example_ids, fast_passwords, make_project
from tests.pages.helpers import by_label, logged_in, no_exception, values
from ui.widgets import escape_markdown

__all__ = ["fast_passwords"]


def _open(page: str, username: str, password: str, **params: int) -> AppTest:
    at = logged_in(username, password)
    for name, value in params.items():
        at.query_params[name] = str(value)
    at.switch_page(page).run()
    no_exception(at)
    return at


def _shown_item(at: AppTest) -> str:
    return next(c for c in values(at.caption) if c.startswith("Item #"))


def test_review_keeps_its_item_in_the_url_and_a_link_opens_it(engine: Engine, lead: User, annotator: User) -> None:
    project = make_project(engine, lead, 3, k=2)
    ids = example_ids(engine, project)
    at = _open("pages/review.py", "anna", "annotator-password")
    assert _shown_item(at) == f"Item #{ids[0]} · T-001"
    assert at.query_params["item"] == str(ids[0])
    assert any(c.endswith(f"?item={ids[0]}`") for c in values(at.caption))  # a link to send
    by_label(at.button, escape_markdown("billing")).click().run()
    assert at.query_params["item"] == str(ids[1])  # the URL follows the item on screen
    # A reload (a new session on the same URL) shows the same item; a link to an earlier one opens it.
    assert _shown_item(_open("pages/review.py", "anna", "annotator-password", item=ids[1])) == f"Item #{ids[1]} · T-002"
    earlier = _open("pages/review.py", "anna", "annotator-password", item=ids[0])
    assert _shown_item(earlier) == f"Item #{ids[0]} · T-001"
    assert values(earlier.info) == [f"Changing your earlier label on item #{ids[0]} (version 1)."]
    # A lead opens any item by its link; an annotator only items handed to them (the core's rule).
    assert _shown_item(_open("pages/review.py", "lena", "lead-password", item=ids[2])) == f"Item #{ids[2]} · T-003"


def test_an_annotator_cannot_open_an_item_not_handed_to_them(engine: Engine, lead: User, annotator: User) -> None:
    project = make_project(engine, lead, 3, k=2)
    ids = example_ids(engine, project)
    at = _open("pages/review.py", "anna", "annotator-password", item=ids[2])
    assert any(f"Item #{ids[2]} is not assigned to you." in e for e in values(at.error))


def test_adjudication_opens_the_linked_item(engine: Engine, lead: User) -> None:
    project = make_project(engine, lead, 3, k=2)
    ids = example_ids(engine, project)
    at = _open("pages/adjudicate.py", "lena", "lead-password", item=ids[1])
    assert values(at.subheader) == [f"Item #{ids[1]}"]
    assert at.query_params["item"] == str(ids[1])


def test_versions_opens_the_linked_version(engine: Engine, lead: User, tmp_path: Path) -> None:
    from tests.curation.test_versions import EXACT
    from tests.curation.test_versions import make_project as make_versioned_project

    project_id = make_versioned_project(engine, lead, tmp_path)
    first = create_candidate(engine, lead, project_id, EXACT)
    create_candidate(engine, lead, project_id, EXACT)
    at = _open("pages/versions.py", "lena", "lead-password", version=first.id)
    assert by_label(at.selectbox, "Version").value == first.id
    assert at.query_params["version"] == str(first.id)


def test_runs_opens_the_linked_run(engine: Engine, lead: User, monkeypatch: pytest.MonkeyPatch) -> None:
    from curation.models import TaskType
    from tests.training.helpers import classification_rows, make_version
    from training import jobs

    monkeypatch.setenv("TRAIN_AUTOSTART", "false")  # queued only: no worker process
    from curation.settings import get_settings

    get_settings.cache_clear()
    version_id = make_version(engine, lead, "Tickets", TaskType.classification, classification_rows(),
                              labels=["billing", "shipping"])
    first = jobs.start_run(engine, lead, version_id, "quick")
    jobs.start_run(engine, lead, version_id, "quick")
    at = _open("pages/runs.py", "lena", "lead-password", run=first.id)
    assert by_label(at.selectbox, "Run").value == first.id
    assert at.query_params["run"] == str(first.id)
