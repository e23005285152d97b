"""The whole product in a real browser, on the demo data the server loads (imported from
curation/demo at first start): two annotators label the same items blind, a lead adjudicates their
disagreement, excludes a duplicate group, approves a dataset version, trains a classification
adapter (the real MiniLM, a few steps), sees its metrics against the baselines and gets a prediction
in the playground. `make screenshots` (E2E_SCREENSHOTS=1) refreshes the README's screenshots."""

from __future__ import annotations

import re
from typing import Any

import pytest

from curation.data.bootstrap import DEMO_CLASSIFICATION
from tests.e2e.conftest import save_screenshot, select_tab, server_data_dir

pytestmark = [pytest.mark.browser, pytest.mark.slow]
LABELS = ["billing", "technical_issue", "account_access", "shipping", "refund_request"]

_NEXT_ITEM = """([before]) => {
  const app = document.querySelector('[data-testid="stApp"]');
  if (!app || app.getAttribute('data-test-script-state') !== 'notRunning') { return false; }
  const main = document.querySelector('[data-testid="stMain"]');
  if (main.querySelector('[data-stale="true"]')) { return false; }
  const items = [...main.querySelectorAll('[data-testid="stCaptionContainer"]')]
    .map((e) => e.innerText.trim()).filter((t) => /^Item #\\d+ · /.test(t));
  return items.length === 1 && !items[0].startsWith(`Item #${before} `);
}"""


def _idle(page: Any) -> None:
    page.wait_for_function("() => document.querySelector('[data-testid=\"stApp\"]')"
                           "?.getAttribute('data-test-script-state') === 'notRunning'")


def _log_in(page: Any, username: str, password: str) -> Any:
    from playwright.sync_api import expect

    page.context.clear_cookies()
    page.goto("/")
    page.get_by_role("textbox", name="Username").fill(username)
    page.get_by_role("textbox", name="Password").fill(password)
    page.get_by_role("button", name="Log in").click()
    sidebar = page.get_by_test_id("stSidebar")
    expect(sidebar.get_by_text(re.compile(f"^{username} ·"))).to_be_visible()
    picker = sidebar.get_by_role("combobox", name="Project")
    if picker.input_value() != DEMO_CLASSIFICATION:
        picker.click()
        page.get_by_role("option", name=DEMO_CLASSIFICATION).click()
        expect(picker).to_have_value(DEMO_CLASSIFICATION)
    _idle(page)
    return sidebar


def _open(page: Any, link: str, heading: str | None = None) -> Any:
    from playwright.sync_api import expect

    sidebar = page.get_by_test_id("stSidebar")
    more = sidebar.get_by_role("button", name=re.compile(r"^View \d+ more$"))
    if not sidebar.get_by_role("link", name=link, exact=True).is_visible() and more.count():
        more.click()  # Streamlit folds a long navigation
    sidebar.get_by_role("link", name=link, exact=True).click()
    main = page.get_by_test_id("stMain")
    expect(main.get_by_role("heading", name=heading or link)).to_be_visible()
    _idle(page)
    return main


def _item(main: Any) -> int:
    caption = main.get_by_text(re.compile(r"^Item #\d+ · ")).inner_text()
    return int(caption.split("#")[1].split(" ")[0])


def _label_items(page: Any, keys: list[str]) -> list[int]:
    main = _open(page, "Review")
    seen = []
    for key in keys:
        current = _item(main)
        seen.append(current)
        page.keyboard.press(key)
        page.wait_for_function(_NEXT_ITEM, arg=[current])
    return seen


def _shot(page: Any, name: str) -> None:
    save_screenshot(page, name, full_page=True)


def _disagree_on_a_fresh_ticket(tmp_path_factory: pytest.TempPathFactory) -> None:
    from sqlalchemy import select

    from curation.access.accounts import get_user
    from curation.data.projects import get_project
    from curation.db import make_engine, read_session
    from curation.models import Annotation, Example
    from curation.review.annotate import submit_annotation

    engine = make_engine(f"sqlite:///{server_data_dir(tmp_path_factory) / 'curation.db'}")
    try:
        project = get_project(engine, DEMO_CLASSIFICATION)
        with read_session(engine) as session:
            fresh = session.execute(select(Example.id).where(
                Example.project_id == project.id, Example.status == "new",
                ~select(Annotation.id).where(Annotation.example_id == Example.id).exists()
            ).order_by(Example.id.desc()).limit(1)).scalar_one()
        submit_annotation(engine, get_user(engine, "alice"), fresh, label=project.labels[1])
        submit_annotation(engine, get_user(engine, "bob"), fresh, label=project.labels[2])
    finally:
        engine.dispose()


def test_from_demo_data_to_a_prediction(page: Any, tmp_path_factory: pytest.TempPathFactory) -> None:
    from playwright.sync_api import expect

    # Two annotators label from the review queue, blind to each other's labels.
    _log_in(page, "alice", "alice-demo")
    alice = _label_items(page, ["1", "1"])
    _log_in(page, "bob", "bob-demo")
    main = _open(page, "Review")
    assert "alice" not in main.inner_text()
    bob = _label_items(page, ["2", "2"])
    assert len(set(alice + bob)) >= 2  # the queue hands out items that still need labels

    # The demo's own disputes were settled in its story, and the queue hands alice and bob different
    # items: two annotators disagree on a fresh ticket through the core, for the lead to settle.
    _disagree_on_a_fresh_ticket(tmp_path_factory)

    # The lead settles a disagreement and excludes a duplicate group.
    _log_in(page, "lead", "lead-demo")
    main = _open(page, "Adjudication")
    main.get_by_role("textbox", name="Reason (required; goes into the audit trail)").fill("a charge: billing")
    page.keyboard.press("Tab")
    _idle(page)
    page.keyboard.press("1")
    expect(main.get_by_text(re.compile(r"^Item #\d+: final label billing\.$"))).to_be_visible()

    main = _open(page, "Duplicates")
    embed = main.get_by_role("button", name="Embed in the background")
    if embed.count():  # the first visit embeds the project in a background process
        embed.click()
    keep = main.get_by_role("button", name=re.compile(r"^Keep #\d+, exclude the rest$")).first
    # The demo's story excluded its duplicates already; a group found by the embeddings is excluded here.
    none_left = main.get_by_text("No duplicates at this threshold.")
    expect(keep.or_(none_left)).to_be_visible(timeout=600_000)
    if keep.is_visible():
        keep.click()
        expect(main.get_by_text(re.compile(r"^Kept #\d+; excluded "))).to_be_visible()

    # ... approves a version (a check that fails on the journey's own labels is overridden in writing).
    main = _open(page, "Versions", "Dataset versions")
    select_tab(main, "Build candidate", main.get_by_role("button", name="Build candidate"))
    main.get_by_role("button", name="Build candidate").click()
    built = main.get_by_text(re.compile(r"Built candidate v(\d+) with \d+ items"))
    expect(built).to_be_visible(timeout=180_000)
    attest = main.get_by_text("I attest that these items fit the project's task")
    select_tab(main, "Checklist and approval", attest)
    attest.click()
    override = main.get_by_role("textbox", name="Override reason (needed when a check fails)")
    if override.count():
        override.fill("demo data: checks fail by design")
    main.get_by_role("button", name="Approve version").click()
    expect(main.get_by_text(re.compile(r"Approved v\d+ \(SHA-256 [0-9a-f]{64}\)"))).to_be_visible()

    # ... trains a classification adapter: the quick preset, a few steps.
    main = _open(page, "Train")
    expect(main.get_by_text("Trainable parameters", exact=True)).to_be_visible(timeout=180_000)  # preflight measured
    main.get_by_text("Advanced settings").click()
    steps = main.get_by_role("spinbutton", name="Max steps (0: epochs)")
    steps.fill("6")
    steps.press("Enter")
    _idle(page)
    main.get_by_role("radiogroup", name="Preset").get_by_text("quick").click()
    _idle(page)
    steps.fill("6")
    steps.press("Enter")
    _idle(page)
    expect(main.get_by_text("Trainable parameters", exact=True)).to_be_visible(timeout=180_000)
    _shot(page, "train.png")
    main.get_by_role("button", name="Start training").click()
    expect(main.get_by_text(re.compile(r"^Run #\d+ (started|queued)\.$"))).to_be_visible()

    # ... sees its metrics against the baselines on the Runs page (the page follows the run live).
    main = _open(page, "Runs")
    expect(main.get_by_text("succeeded").first).to_be_visible(timeout=600_000)
    expect(main.get_by_text("Confusion matrix (rows: true, columns: predicted)")).to_be_visible(timeout=60_000)
    expect(main.get_by_text("Per-label F1 (eval split)")).to_be_visible()
    _shot(page, "runs.png")

    # ... and a prediction in the playground.
    main = _open(page, "Playground")
    main.get_by_role("textbox", name="Text to classify").fill("I was charged twice for my plan this month")
    main.get_by_role("button", name="Predict").click()
    prediction = main.get_by_test_id("stMetric").filter(has_text="Adapter's prediction")
    expect(prediction).to_be_visible(timeout=120_000)
    assert prediction.get_by_test_id("stMetricValue").inner_text().strip() in LABELS
    _shot(page, "playground.png")
