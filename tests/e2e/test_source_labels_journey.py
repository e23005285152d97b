"""Issue 12's journey in a real Chromium against `streamlit run`:

1. a lead imports a CSV on the Import page with its labels as suggestions of the source vendor-2024;
2. the lead starts a label audit of vendor-2024 on the Agreement page;
3. an annotator reviews: the audit items come first and are blind (nothing revealed after choosing),
   then an ordinary item reveals the vendor's suggestion once she has chosen;
4. the lead sees the audit's estimate (error rate with its 95% interval) on the Agreement page, and a
   version candidate's checklist carries it: items imported as suggestions have no label until an expert
   gives one, so no label rests on the source unreviewed, and the row is "n/a" with the estimate (the
   checklist is a canvas table in the browser, so the row is read from the stored checklist; the pass/fail
   rows of source votes are checked in tests/curation/test_label_audit.py).

The tests run in this order on one server (module scope). The project's source settings (suggestions
shown after choosing, no blind share) are set through the core between steps 1 and 2.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from curation.access.accounts import create_user
from curation.agreement.sources import set_source_settings
from curation.db import make_engine, migrate, read_session
from curation.models import Example, Project, Role, User
from tests.e2e.conftest import (
    _require_chromium,
    launched_chromium,
    opened_page,
    serve_app,
)

pytestmark = pytest.mark.browser

ROWS = [("V-1", "I was charged twice for one order.", "billing", "billing"),
        ("V-2", "Where is my parcel? It is a week late.", "shipping", "billing"),  # the vendor is wrong here
        ("V-3", "Please refund the fee on my card.", "billing", "billing"),
        ("V-4", "The courier left the box at the wrong address.", "shipping", "shipping"),
        ("V-5", "My invoice shows a payment I never made.", "billing", "billing"),
        ("V-6", "Tracking says delivered but nothing came.", "shipping", "shipping")]
TRUTH = {external: truth for external, _, truth, _ in ROWS}
LABELS = ["billing", "shipping"]
PROJECT = "Vendor tickets"
AUDIT_SIZE = 2


class Server:
    def __init__(self, url: str, database_url: str, data_dir: Path) -> None:
        self.url, self.database_url, self.data_dir = url, database_url, data_dir
        self.engine = make_engine(database_url)
        self.audited: list[str] = []


def _seed(database_url: str) -> None:
    from argon2 import PasswordHasher

    from curation.access import accounts as auth

    auth._hasher = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)  # this process only
    engine = make_engine(database_url)
    migrate(engine)
    admin = create_user(engine, None, "root", Role.admin, "root-password")
    create_user(engine, admin, "lead", Role.lead, "lead-password")
    create_user(engine, admin, "anna", Role.annotator, "anna-password")
    engine.dispose()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    _require_chromium()
    data_dir = tmp_path_factory.mktemp("e2e-sources")
    database_url = f"sqlite:///{data_dir / 'curation.db'}"
    _seed(database_url)
    with serve_app(data_dir, DATABASE_URL=database_url, LOAD_DEMO="false", ADMIN_USERNAME="",
                   ADMIN_PASSWORD="") as url:
        state = Server(url, database_url, data_dir)
        yield state
        state.engine.dispose()


@pytest.fixture(scope="module")
def chromium(server: Server) -> Iterator[Any]:
    with launched_chromium(30_000) as browser:
        yield browser


@pytest.fixture
def page(chromium: Any, server: Server) -> Iterator[Any]:
    with opened_page(chromium, server.url, 30_000) as page:
        yield page


def _idle(page: Any) -> None:
    """Wait until the script run finished (Streamlit marks the app element)."""
    page.wait_for_function("() => document.querySelector('[data-testid=\"stApp\"]')"
                           "?.getAttribute('data-test-script-state') === 'notRunning'")


def _log_in(page: Any, username: str, password: str) -> None:
    from playwright.sync_api import expect

    page.goto("/")
    expect(page.get_by_role("textbox", name="Username")).to_be_visible(timeout=90_000)  # a cold server is slow
    page.get_by_role("textbox", name="Username").fill(username)
    page.get_by_role("textbox", name="Password").fill(password)
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_test_id("stSidebar").get_by_text(re.compile(f"^{username} ·"))).to_be_visible()


def _open(page: Any, link: str, heading: str) -> Any:
    from playwright.sync_api import expect

    page.get_by_test_id("stSidebar").get_by_role("link", name=link).click()
    main = page.get_by_test_id("stMain")
    expect(main.get_by_role("heading", name=heading)).to_be_visible()
    _idle(page)
    return main


def _project(server: Server) -> Project:
    with read_session(server.engine) as session:
        return session.execute(select(Project).where(Project.name == PROJECT)).scalar_one()


def test_a_lead_imports_labels_as_suggestions(page: Any, server: Server, tmp_path: Path) -> None:
    from playwright.sync_api import expect

    csv = tmp_path / "vendor.csv"
    csv.write_text("id,text,label\n" + "".join(f'{e},"{t}",{v}\n' for e, t, _, v in ROWS), encoding="utf-8")
    _log_in(page, "lead", "lead-password")
    main = _open(page, "Import", "Import")
    main.locator("input[type=file]").set_input_files(str(csv))
    expect(main.get_by_text(re.compile(r"vendor\.csv: 6 rows"))).to_be_visible()
    _idle(page)
    main.get_by_role("textbox", name="New project name").fill(PROJECT)
    page.keyboard.press("Tab")
    _idle(page)
    main.get_by_text("Suggestions of a source (shown to experts per project setting)").click()
    _idle(page)
    source = main.get_by_role("textbox", name="Source name (who gave these labels, e.g. vendor-2024)")
    source.fill("vendor-2024")
    page.keyboard.press("Tab")
    _idle(page)
    main.get_by_role("textbox", name="Label set, comma-separated in this order (empty: from the file)").fill(
        ",".join(LABELS))
    k = main.get_by_role("spinbutton", name="Labels per item (k)")
    k.fill("1")
    main.get_by_role("button", name="Import").click()
    expect(main.get_by_text(re.compile(f"Imported into '{PROJECT}'"))).to_be_visible(timeout=60_000)
    expect(main.get_by_text(re.compile("6 labels imported as suggestions of vendor-2024"))).to_be_visible()
    project = _project(server)
    assert (project.labels, project.overlap_k) == (LABELS, 1)
    with read_session(server.engine) as session:
        statuses = set(session.execute(select(Example.status).where(Example.project_id == project.id)).scalars())
    assert statuses == {"new"}  # suggestions are not votes: every item waits for an expert
    lead = _user(server, "lead")
    set_source_settings(server.engine, lead, project.id or 0, suggestion_display="after_choice", blind_fraction=0.0)


def _user(server: Server, username: str) -> User:
    with read_session(server.engine) as session:
        return session.execute(select(User).where(User.username == username)).scalar_one()


def test_the_lead_starts_an_audit_of_the_source(page: Any, server: Server) -> None:
    from playwright.sync_api import expect

    _log_in(page, "lead", "lead-password")
    main = _open(page, "Agreement", "Agreement")
    form = main.get_by_test_id("stForm").filter(has=page.get_by_role("button", name="Start audit"))
    items = form.get_by_role("spinbutton", name="Items")
    items.fill(str(AUDIT_SIZE))
    form.get_by_role("button", name="Start audit").click()
    expect(main.get_by_text(re.compile(f"Audit #1 of vendor-2024: {AUDIT_SIZE} items drawn"))).to_be_visible()
    expect(main.get_by_text(f"audit #1 of vendor-2024: 0 of {AUDIT_SIZE} items reviewed; no estimate yet")) \
        .to_be_visible()
    with read_session(server.engine) as session:
        server.audited = sorted(session.execute(select(Example.external_id)
                                                .where(Example.audit_id.is_not(None))).scalars())
    assert len(server.audited) == AUDIT_SIZE


_SETTLED = """(before) => {
  const app = document.querySelector('[data-testid="stApp"]');
  if (!app || app.getAttribute('data-test-script-state') !== 'notRunning') { return null; }
  const main = document.querySelector('[data-testid="stMain"]');
  if (main.querySelector('[data-stale="true"]')) { return null; }
  const items = [...main.querySelectorAll('[data-testid="stCaptionContainer"]')]
    .map((e) => e.innerText.trim()).filter((t) => /^Item #\\d+ · V-\\d$/.test(t));
  return items.length === 1 && items[0] !== before ? items[0] : null;
}"""


def _next_item(page: Any, before: str | None) -> str:
    """Wait until the page shows one item other than `before`, rendered completely (a rerun shows stale
    and new elements side by side until it ends); its caption, e.g. "Item #6 · V-6"."""
    return str(page.wait_for_function(_SETTLED, arg=before).json_value())


def test_the_annotator_reviews_audit_items_blind_then_sees_the_suggestion_after_choosing(
        page: Any, server: Server) -> None:
    from playwright.sync_api import expect

    assert server.audited, "runs after the audit started"
    _log_in(page, "anna", "anna-password")
    main = _open(page, "Review", "Review")
    vendor = {e: v for e, _, _, v in ROWS}
    caption = _next_item(page, None)
    for index in range(AUDIT_SIZE + 1):
        current = caption.split(" · ")[1]
        assert (current in server.audited) == (index < AUDIT_SIZE)  # audit items come first
        assert "vendor-2024" not in main.inner_text()  # nothing before she chooses
        page.keyboard.press(str(LABELS.index(TRUTH[current]) + 1))
        caption = _next_item(page, caption)
        saved = main.get_by_text(re.compile(r"^Saved item #\d+\."))
        expect(saved).to_be_visible()
        if index < AUDIT_SIZE:
            expect(saved).not_to_contain_text("Sources said")  # audit items stay blind
        else:
            expect(saved).to_contain_text(f"Sources said: vendor-2024: {vendor[current]}")


def test_the_lead_sees_the_audits_estimate(page: Any, server: Server) -> None:
    from playwright.sync_api import expect

    from curation.review.audits import list_audits

    _log_in(page, "lead", "lead-password")
    main = _open(page, "Agreement", "Agreement")
    lead = _user(server, "lead")
    [result] = list_audits(server.engine, lead, _project(server).id or 0)
    wrong = sum(dict((e, v) for e, _, _, v in ROWS)[e] != TRUTH[e] for e in server.audited)
    assert (result.reviewed, round(result.rate * AUDIT_SIZE)) == (AUDIT_SIZE, wrong)
    expect(main.get_by_text(result.summary())).to_be_visible()
    assert re.search(r"error rate \d+\.\d% \[\d+\.\d%, \d+\.\d%\] \(95% Clopper-Pearson\)", result.summary())

    from curation.versions.build import BuildOptions, create_candidate
    from curation.versions.checklist import NA, items_of

    candidate = create_candidate(server.engine, lead, _project(server).id or 0, BuildOptions(use_embeddings=False))
    [row] = [item for item in items_of(candidate.checklist or {}) if item.key == "source_labels:vendor-2024"]
    assert row.status == NA and row.value.startswith(f"error rate {result.rate:.1%} [{result.low:.1%}, ")
