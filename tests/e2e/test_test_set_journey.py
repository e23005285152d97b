"""Issue 11's test-set journey in a real Chromium against `streamlit run`, on a small classification
project (30 imported tickets, labels billing/shipping, k=2) created through the core:

1. the lead builds a test set on the Test set page: a seeded stratified sample of 6 items, which go back
   to the review queue (their imported labels kept aside);
2. alice and bob review the test items blind on the Review page by keyboard, and agree;
3. the lead approves the test set into an immutable test-set version (SHA-256) on the Test set page;
4. two dataset versions are built and approved through the core (v2 relabels three training items and
   leaves one out), and each is trained for real (a tiny BERT, a few steps, in this process) and scored
   once on the test-set version;
5. the Runs page compares the two runs: the paired score difference with its interval and verdict,
   and beside it the dataset diff (relabelled / added / removed), as the core computes them.

The tests run in this order on one server (module scope). `st.dataframe` is a canvas: table contents
are checked from the core, visible words (metrics, captions, st.text) through locators.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from curation.access.accounts import create_user, get_user
from curation.data.formats import open_table
from curation.data.importer import import_table
from curation.data.mapping import ColumnMapping
from curation.data.projects import create_project
from curation.db import make_engine, migrate, read_session
from curation.errors import Conflict
from curation.models import Annotation, Example, Project, Role, User
from curation.review.adjudication import adjudicate, exclude_example
from curation.settings import get_settings
from curation.versions import test_sets
from curation.versions.approve import approve_version
from curation.versions.build import BuildOptions, create_candidate
from curation.versions.records import version_items
from tests.e2e.conftest import (
    _require_chromium,
    launched_chromium,
    opened_page,
    select_tab,
    serve_app,
)
from tests.training.helpers import build_tiny_models, texts

pytestmark = pytest.mark.browser
PROJECT = "Support tickets"
LABELS = ["billing", "shipping"]  # the Review page's keys 1 and 2
SAMPLE = 6
TIMEOUT_MS = 90_000  # a 2-core machine busy with the rest of the suite: reruns can be slow
EXACT = BuildOptions(use_embeddings=False)


class Server:
    def __init__(self, url: str, database_url: str, data_dir: Path, project_id: int) -> None:
        self.url, self.database_url, self.data_dir, self.project_id = url, database_url, data_dir, project_id
        self.engine = make_engine(database_url)
        self.test_items: list[int] = []
        self.runs: list[int] = []
        self.versions: list[int] = []

    def user(self, name: str) -> User:
        return get_user(self.engine, name)


def _seed(database_url: str, data_dir: Path) -> int:
    """Accounts, and the project with 30 labelled tickets imported (15 per label, distinct texts)."""
    from argon2 import PasswordHasher

    from curation.access import accounts as auth

    auth._hasher = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)  # this process only
    engine = make_engine(database_url)
    migrate(engine)
    admin = create_user(engine, None, "root", Role.admin, "root-password")
    lead = create_user(engine, admin, "lead", Role.lead, "lead-password")
    for name in ("alice", "bob"):
        create_user(engine, admin, name, Role.annotator, f"{name}-password")
    project = create_project(engine, lead, PROJECT, labels=LABELS, overlap_k=2)
    seen: set[str] = set()
    rows = []
    for index, label in enumerate(LABELS):
        for text in texts(label, 40, 70 + index):
            if text not in seen and sum(r["label"] == label for r in rows) < 15:
                seen.add(text)
                rows.append({"id": f"t{len(rows):03d}", "text": text, "label": label, "source": "helpdesk",
                             "licence": "CC0-1.0"})
    path = data_dir / "tickets.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    import_table(engine, lead, open_table(path), ColumnMapping(id=["id"], text="text", label="label", source="source",
                                                                licence="licence", metadata=[]), PROJECT)
    assert project.id is not None
    engine.dispose()
    return project.id


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    _require_chromium()
    data_dir = tmp_path_factory.mktemp("e2e-testset")
    database_url = f"sqlite:///{data_dir / 'curation.db'}"
    project_id = _seed(database_url, data_dir)
    with serve_app(data_dir, DATABASE_URL=database_url, LOAD_DEMO="false", ADMIN_USERNAME="",
                   ADMIN_PASSWORD="") as url:
        state = Server(url, database_url, data_dir, project_id)
        yield state
        state.engine.dispose()


@pytest.fixture(scope="module")
def chromium(server: Server) -> Iterator[Any]:
    with launched_chromium(TIMEOUT_MS) as browser:
        yield browser


@pytest.fixture
def page(chromium: Any, server: Server) -> Iterator[Any]:
    with opened_page(chromium, server.url, TIMEOUT_MS) as page:
        yield page


def _idle(page: Any) -> None:
    """Wait until the script run finished (Streamlit marks the app element)."""
    page.wait_for_function("() => document.querySelector('[data-testid=\"stApp\"]')"
                           "?.getAttribute('data-test-script-state') === 'notRunning'")


def _log_in(page: Any, username: str) -> None:
    from playwright.sync_api import expect

    page.goto("/")
    expect(page.get_by_role("textbox", name="Username")).to_be_visible()
    page.get_by_role("textbox", name="Username").fill(username)
    page.get_by_role("textbox", name="Password").fill(f"{username}-password")
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_test_id("stSidebar").get_by_text(re.compile(f"^{username} ·"))).to_be_visible()


def _open(page: Any, link: str) -> Any:
    from playwright.sync_api import expect

    page.get_by_test_id("stSidebar").get_by_role("link", name=link).click()
    main = page.get_by_test_id("stMain")
    expect(main.get_by_role("heading", name=link)).to_be_visible()
    _idle(page)
    return main


def _metric(main: Any, name: str) -> Any:
    return main.get_by_test_id("stMetric").filter(has_text=name).get_by_test_id("stMetricValue")


_SETTLED = """([before, last]) => {
  const app = document.querySelector('[data-testid="stApp"]');
  if (!app || app.getAttribute('data-test-script-state') !== 'notRunning') { return false; }
  const main = document.querySelector('[data-testid="stMain"]');
  if (main.querySelector('[data-stale="true"]')) { return false; }
  if (last) { return main.innerText.includes('Nothing left for you to label in this project.'); }
  const items = [...main.querySelectorAll('[data-testid="stCaptionContainer"]')]
    .map((e) => e.innerText.trim()).filter((t) => /^Item #\\d+ · /.test(t));
  return items.length === 1 && !items[0].startsWith(`Item #${before} `);
}"""


def _shown_item(main: Any) -> int:
    caption = main.get_by_text(re.compile(r"^Item #\d+ · t\d+$")).inner_text()
    return int(caption.split("#")[1].split(" ")[0])


def _truth(server: Server) -> dict[int, str]:
    """The test items' imported labels, kept aside while they are reviewed again."""
    with read_session(server.engine) as session:
        rows = session.execute(select(Example).where(Example.id.in_(server.test_items))).scalars()
        return {e.id: e.meta["label_before_test"] for e in rows}


def test_a_lead_builds_a_test_set_by_a_stratified_sample(page: Any, server: Server) -> None:
    from playwright.sync_api import expect

    _log_in(page, "lead")
    main = _open(page, "Test set")
    main.get_by_role("button", name="Create test set").click()
    expect(main.get_by_text("Test set created.")).to_be_visible()
    main.get_by_role("spinbutton", name="Sample size").fill(str(SAMPLE))
    main.get_by_role("button", name="Draw sample").click()
    expect(main.get_by_text(re.compile(r"^Added \d+ items"))).to_be_visible()
    (test_set,) = test_sets.list_test_sets(server.engine, server.project_id)
    items = test_sets.test_items(server.engine, test_set.id)
    server.test_items = [e.id for e in items]
    assert SAMPLE - 1 <= len(items) <= SAMPLE + 1
    labels = list(_truth(server).values())
    assert abs(labels.count("billing") - labels.count("shipping")) <= 1  # stratified
    assert all(e.final_label is None for e in items)  # back to blind review: no label decided yet
    expect(_metric(main, "Test items")).to_have_text(str(len(items)))
    expect(_metric(main, "Waiting for review")).to_have_text(str(len(items)))


@pytest.mark.parametrize("username", ["alice", "bob"])
def test_annotators_review_the_test_items_by_keyboard(page: Any, server: Server, username: str) -> None:
    assert server.test_items, "runs after the lead built the test set"
    truth = _truth(server)
    _log_in(page, username)
    main = _open(page, "Review")
    served = []
    for index in range(len(truth)):
        current = _shown_item(main)
        served.append(current)
        key = str(LABELS.index(truth[current]) + 1)
        page.keyboard.press(key)
        page.wait_for_function(_SETTLED, arg=[current, index == len(truth) - 1])
    assert sorted(served) == sorted(truth)  # the queue serves exactly the test items (the rest is labelled)
    with read_session(server.engine) as session:
        mine = dict(session.execute(select(Annotation.example_id, Annotation.label)
                                    .where(Annotation.annotator_id == server.user(username).id)).all())
    assert mine == truth


def test_the_lead_approves_an_immutable_test_set_version(page: Any, server: Server) -> None:
    from playwright.sync_api import expect

    count = len(server.test_items)
    _log_in(page, "lead")
    main = _open(page, "Test set")
    expect(_metric(main, "Reviewed (labelled)")).to_have_text(str(count))  # k=2 agreeing labels each
    note = main.get_by_role("textbox", name="Approval note")
    select_tab(main, "Approve", note)
    note.fill("two annotators agreed on every item")
    page.keyboard.press("Tab")
    _idle(page)
    main.get_by_role("button", name="Approve test-set version").click()
    approved = main.get_by_text(re.compile(r"^Approved test set v1 \(id \d+"))
    expect(approved).to_be_visible()
    (version,) = test_sets.list_test_set_versions(server.engine, project_id=server.project_id)
    expect(approved).to_have_text(f"Approved {test_sets.version_label(version)}.")
    assert version.item_count == count and len(version.content_hash) == 64
    assert test_sets.verify_test_set_version(server.engine, version.id).ok
    frozen = {i.external_id: i.label for i in test_sets.test_set_version_items(server.engine, version.id)}
    with read_session(server.engine) as session:
        examples = session.execute(select(Example).where(Example.id.in_(server.test_items))).scalars()
        assert frozen == {e.external_id: e.meta["label_before_test"] for e in examples}


def _approved(server: Server, lead: User) -> int:
    candidate = create_candidate(server.engine, lead, server.project_id, EXACT)
    try:
        approve_version(server.engine, lead, candidate.id, attest=True)
    except Conflict:  # a small synthetic project fails a size check or two: say why it still trains
        approve_version(server.engine, lead, candidate.id, attest=True,
                        override_reason="a tiny journey project: size checks do not apply")
    return candidate.id


def test_two_dataset_versions_are_trained_and_scored_on_the_test_set(server: Server) -> None:
    from tests.pages.training_fixtures import trained

    assert server.test_items, "runs after the test set was approved"
    lead = server.user("lead")
    tiny = build_tiny_models(server.data_dir / "tiny")["bert"]
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DATA_DIR", str(server.data_dir))  # the runs' adapters land where the server looks
        patch.setenv("DATABASE_URL", server.database_url)
        get_settings.cache_clear()
        try:
            first = _approved(server, lead)
            train = [i for i in version_items(server.engine, lead, first) if i.split == "train"]
            held_out = set(_external_ids(server))
            assert not held_out & {i.external_id for i in version_items(server.engine, lead, first)}  # no leakage
            ids = _example_ids(server, [i.external_id for i in train[:4]])
            for item in train[:3]:  # v2: three training items relabelled, one left out
                other = LABELS[1 - LABELS.index(item.label)]
                adjudicate(server.engine, lead, ids[item.external_id], reason="relabelled for v2", final_label=other)
            exclude_example(server.engine, lead, ids[train[3].external_id], "off_task")
            second = _approved(server, lead)
            server.versions = [first, second]
            server.runs = [trained(server.engine, lead, version, tiny) for version in (first, second)]
        finally:
            get_settings.cache_clear()
    from training import jobs

    (test_version,) = test_sets.list_test_set_versions(server.engine, project_id=server.project_id)
    for run_id in server.runs:
        scored = jobs.get_run(server.engine, run_id).metrics["scored_on"]
        assert scored["role"] == "test" and scored["test_set_version_id"] == test_version.id


def _external_ids(server: Server) -> list[str]:
    with read_session(server.engine) as session:
        return list(session.execute(select(Example.external_id).where(Example.id.in_(server.test_items))).scalars())


def _example_ids(server: Server, external_ids: list[str]) -> dict[str, int]:
    with read_session(server.engine) as session:
        rows = session.execute(select(Example.external_id, Example.id).join(Project)
                               .where(Project.id == server.project_id, Example.external_id.in_(external_ids))).all()
    return dict(rows)


def test_the_runs_page_compares_the_runs_with_the_dataset_diff_beside(page: Any, server: Server) -> None:
    from playwright.sync_api import expect

    from training import jobs
    from training.test_scoring import compare_runs

    assert len(server.runs) == 2, "runs after both versions were trained"
    first, second = (jobs.get_run(server.engine, r) for r in server.runs)
    comparison = compare_runs(server.engine, server.user("lead"), first, second)
    assert comparison["comparable"], comparison.get("reason")
    diff = comparison["dataset_diff"]
    assert (len(diff["relabelled"]), len(diff["added"]), len(diff["removed"])) == (3, 0, 1)
    _log_in(page, "lead")
    main = _open(page, "Runs")
    scored = main.get_by_text(re.compile(r"^Paired on the same items: test set v1"))
    select_tab(main, "Compare two runs", scored)  # run A is the older run (v1), run B the newer (v2)
    for metric, d in comparison["metrics"].items():
        line = f"{metric}: B − A = {d['value']:+.4f}, 95% CI [{d['low']:+.4f}, {d['high']:+.4f}]: {d['verdict']}"
        expect(main.get_by_text(line, exact=True)).to_be_visible()
        assert d["low"] <= d["value"] <= d["high"]
    expect(main.get_by_text("Dataset version diff (what curation changed)")).to_be_visible()
    expect(main.get_by_text("0 added · 1 removed · 3 relabelled · 0 text changed")).to_be_visible()
    expect(main.get_by_text("relabelled: 3 items")).to_be_visible()
