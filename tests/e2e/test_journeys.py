"""Real-browser journeys through the served app (Chromium via Playwright), on the demo data.

Dataframes draw on a canvas, so their contents are checked by the AppTest page tests; here the
checks are on what a person reads: headings, messages, captions, widget values, navigation links.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from playwright.sync_api import Error as PlaywrightError
from playwright.sync_api import Locator, Page, expect

from tests.e2e.conftest import save_screenshot

pytestmark = pytest.mark.browser

REPO = Path(__file__).resolve().parents[2]
DEMO_TICKETS = "Support tickets (demo)"
DEMO_REPLIES = "Support replies (demo)"
JOURNEY_CSV = (
    "id,text,label,notes\n"
    "j1,An apple a day,a,fruit\n"
    "j2,Banana bread recipe,b,\n"
    "j3,Apple pie with cream,a,dessert\n"
    "j4,Cherry on top,b,\n"
    "j5,Dates and figs,a,dried\n"
    "j6,Elderberry jam,b,\n"
)


def log_in(page: Page, username: str, password: str) -> None:
    page.goto("/")
    page.get_by_role("textbox", name="Username").fill(username)
    page.get_by_role("textbox", name="Password").fill(password)
    page.get_by_role("button", name="Log in").click()


def sidebar(page: Page) -> Locator:
    return page.get_by_test_id("stSidebar")


def settled(page: Page) -> None:
    """Wait until the script run that the last action caused has finished: a widget that a run
    still re-renders can drop a click (Streamlit's own browser tests wait the same way)."""
    expect(page.get_by_test_id("stApp")).to_have_attribute("data-test-script-state", "notRunning")


def choose(page: Page, label: str, option: str) -> None:
    """Pick `option` in the select box labelled `label` (a combobox: click, then the option)."""
    settled(page)
    box = page.get_by_role("combobox", name=label)
    # Centred first: a select box at the bottom edge of the viewport closes its list again as the
    # page scrolls to show it.
    box.evaluate("element => element.scrollIntoView({block: 'center'})")
    box.click()
    page.get_by_role("option", name=option, exact=True).click()
    expect(box).to_have_value(option)


def _demo_tickets_matching(word: str) -> int:
    """How many demo tickets the browser's search finds for `word` (text or id, case-insensitive)."""
    lines = (REPO / "curation" / "demo" / "support_tickets.jsonl").read_text(encoding="utf-8").splitlines()
    rows = [json.loads(line) for line in lines if line.strip()]
    return sum(word in (row["text"] + " " + row["ticket_id"]).lower() for row in rows)


def test_lead_journey_create_import_browse(page: Page, tmp_path: Path) -> None:
    log_in(page, "lead", "lead-demo")
    expect(page.get_by_role("heading", name="Projects", exact=True)).to_be_visible()
    nav = sidebar(page).get_by_role("navigation")
    for link in ("Projects", "Import", "Data browser"):
        expect(nav.get_by_role("link", name=link, exact=True)).to_be_visible()

    # The demo projects: the first by name is current; both are in the project picker.
    expect(page.get_by_role("heading", name=DEMO_REPLIES)).to_be_visible()
    picker = sidebar(page).get_by_role("combobox", name="Project")
    settled(page)
    picker.click()
    for name in (DEMO_REPLIES, DEMO_TICKETS):
        expect(page.get_by_role("option", name=name, exact=True)).to_be_visible()
    page.keyboard.press("Escape")

    # Create a project through the form.
    page.get_by_role("textbox", name="Name", exact=True).fill("Browser journey")
    page.get_by_role("textbox", name="Labels (one per line; empty: taken from the first import)").fill("a\nb")
    page.get_by_role("button", name="Create project").click()
    expect(page.get_by_text("Created project 'Browser journey'.")).to_be_visible()
    expect(page.get_by_role("heading", name="Browser journey")).to_be_visible()

    # Import: upload a CSV into it.
    nav.get_by_role("link", name="Import", exact=True).click()
    expect(page.get_by_role("heading", name="Import", exact=True)).to_be_visible()
    csv_path = tmp_path / "journey.csv"
    csv_path.write_text(JOURNEY_CSV, encoding="utf-8")
    page.locator('[data-testid="stFileUploader"] input[type="file"]').set_input_files(str(csv_path))
    expect(page.get_by_text("journey.csv: 6 rows · csv · columns: id, text, label, notes")).to_be_visible()
    expect(
        page.get_by_role("radiogroup", name="Into").get_by_text("Current project: Browser journey")
    ).to_be_visible()
    # The guessed mapping takes the text from the "text" column.
    expect(page.get_by_role("combobox", name="Text (classification)")).to_have_value("text")

    # A wrong mapping first: the text from a mostly empty column.
    choose(page, "Text (classification)", "notes")
    page.get_by_role("button", name="Import", exact=True).click()
    expect(
        page.get_by_text("Nothing was imported. journey.csv, row 2, field 'notes': empty content")
    ).to_be_visible()

    # Fixed, it imports.
    choose(page, "Text (classification)", "text")
    page.get_by_role("button", name="Import", exact=True).click()
    expect(
        page.get_by_text(
            "Imported into 'Browser journey': 6 rows read; 6 examples added; 0 annotations added; "
            "6 labels imported as final labels (experts will not review them)."
        )
    ).to_be_visible()
    expect(page.get_by_text("Nothing was imported.")).to_have_count(0)
    settled(page)
    save_screenshot(page, "import.png")

    # Data browser on the new project: search narrows the count.
    nav.get_by_role("link", name="Data browser", exact=True).click()
    expect(page.get_by_role("heading", name="Data browser")).to_be_visible()
    expect(page.get_by_text("Page (of 1) · 6 examples")).to_be_visible()
    search = page.get_by_role("textbox", name="Search text")
    search.fill("apple")
    search.press("Enter")
    expect(page.get_by_text("Page (of 1) · 2 examples")).to_be_visible()

    # The demo tickets: a screenshot for the README, then page through.
    choose(page, "Project", DEMO_TICKETS)
    expect(page.get_by_text("Page (of 10) · 480 examples")).to_be_visible()
    expect(page.get_by_text("Click a row to open its example.")).to_be_visible()
    expect(page.get_by_role("combobox", name="Open example")).to_have_count(0)  # rows open from the table
    settled(page)
    sidebar(page).get_by_role("combobox", name="Project").blur()
    save_screenshot(page, "browse.png")
    page_input = page.get_by_role("spinbutton", name="Page (of 10) · 480 examples")
    expect(page_input).to_have_value("1")
    page_input.fill("2")
    page_input.press("Enter")
    expect(page_input).to_have_value("2")
    # A click on the first row's selection box (left of the cells) opens that example. The grid is
    # drawn on a canvas: the box sits in the first column, one header row (35 px) down.
    opened = page.get_by_text(re.compile(r"^#\d+ · T-00051 · "))
    for attempt in range(3):  # a rerun still in flight can replace the table or swallow the click: again
        settled(page)
        try:
            table = page.get_by_test_id("stDataFrame").first
            table.scroll_into_view_if_needed()
            box = table.bounding_box()
            assert box is not None
            page.mouse.click(box["x"] + 16, box["y"] + 35 + 17)
            expect(opened).to_be_visible(timeout=20_000)
            break
        except (AssertionError, PlaywrightError):
            if attempt == 2:
                raise
    search.fill("refund")
    search.press("Enter")
    refunds = _demo_tickets_matching("refund")
    expect(page.get_by_text(f"Page (of {-(-refunds // 50)}) · {refunds} examples")).to_be_visible()
    expect(page.get_by_text("Page (of 10) · 480 examples")).to_have_count(0)


def test_annotator_sees_no_lead_pages_and_a_wrong_password_is_refused(page: Page) -> None:
    log_in(page, "alice", "wrong-password")
    expect(page.get_by_text("Unknown username or wrong password.")).to_be_visible()
    expect(page.get_by_role("heading", name="Projects", exact=True)).to_have_count(0)

    log_in(page, "alice", "alice-demo")
    expect(page.get_by_role("heading", name="Projects", exact=True)).to_be_visible()
    expect(sidebar(page).get_by_text("alice · annotator")).to_be_visible()
    expect(sidebar(page).get_by_role("button", name="Log out")).to_be_visible()
    for link in ("Import", "Data browser"):
        expect(page.get_by_role("link", name=link, exact=True)).to_have_count(0)
    # No lead forms on the Projects page either.
    expect(page.get_by_role("button", name="Create project")).to_have_count(0)
    expect(page.get_by_role("button", name="Save changes")).to_have_count(0)
