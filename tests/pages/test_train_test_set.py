"""Issue 11, item 3 on the Train page: the run names the test-set version it is scored on (default: the
project's latest approved one) and the run records it; without one the page says so and links to the
Test set page."""

from __future__ import annotations

import pytest
from sqlalchemy.engine import Engine

from curation.models import User
from curation.settings import get_settings
from curation.versions.records import get_version
from tests.pages.helpers import by_label, logged_in, no_exception, values
from tests.pages.training_fixtures import classification_version  # noqa: F401
from tests.training.helpers import make_test_set_version
from tests.training.helpers import test_rows as held_out_rows
from training import jobs


@pytest.fixture(autouse=True)
def queue_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """Runs are queued, not launched: these tests check what the run records, not the training."""
    monkeypatch.setenv("TRAIN_AUTOSTART", "false")
    get_settings.cache_clear()


def _page():  # noqa: ANN202
    at = logged_in("lena", "lead-password")
    at.switch_page("pages/train.py").run()
    no_exception(at)
    return at


def test_without_a_test_set_the_page_says_so_and_links_to_the_test_set_page(
        engine: Engine, lead: User, classification_version: int) -> None:  # noqa: F811
    at = _page()
    assert any(v.startswith("This project has no approved test-set version") for v in values(at.info))
    links = [link.proto for link in at.get("page_link")]
    assert any(link.label == "Open the Test set page" and link.page == "test_set" for link in links), links
    by_label(at.button, "Start training").click().run()
    no_exception(at)
    assert jobs.get_run(engine, 1).test_set_version_id is None


def test_the_latest_approved_test_set_version_is_the_default_and_the_run_records_the_chosen_one(
        engine: Engine, lead: User, classification_version: int) -> None:  # noqa: F811
    project_id = get_version(engine, classification_version).project_id
    older = make_test_set_version(engine, lead, project_id, held_out_rows(8))
    newer = make_test_set_version(engine, lead, project_id, held_out_rows(12))
    at = _page()
    choice = by_label(at.selectbox, "Test-set version (scored once at the end of the run)")
    assert choice.value == newer and choice.options[0].startswith(f"test set v1 (id {newer}, 12 items, sha256 ")
    assert not any(v.startswith("This project has no approved test-set version") for v in values(at.info))
    by_label(at.button, "Start training").click().run()
    no_exception(at)
    assert jobs.get_run(engine, 1).test_set_version_id == newer
    by_label(at.selectbox, "Test-set version (scored once at the end of the run)").set_value(older).run()
    by_label(at.button, "Start training").click().run()
    no_exception(at)
    assert jobs.get_run(engine, 2).test_set_version_id == older
