"""Review journeys in a real Chromium against `streamlit run` on a seeded database:

1. alice labels 5 items by keyboard alone (digits, B to go back and change one, typing in the
   comment box labels nothing), and dataset text like `<img src=x onerror=alert(1)>` or `<script>`
   shows as literal text (no dialog, no element);
2. bob labels the same 5 items without seeing alice's labels;
3. the lead settles one of their disagreements on the Adjudication page.

The tests run in this order on one server (module scope); fixtures and Chromium flags come from
tests/e2e/conftest.py.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import select

from curation.access.accounts import create_user
from curation.data.projects import create_project
from curation.db import make_engine, migrate, read_session, write_session
from curation.models import Adjudication, Annotation, Example, ExampleStatus, Role, User
from tests.e2e.conftest import (
    _require_chromium,
    launched_chromium,
    opened_page,
    serve_app,
)

pytestmark = pytest.mark.browser

IMG = "<img src=x onerror=alert(1)>"
SCRIPT = "<script>alert('xss')</script>"
TEXTS = ["Where is my parcel? It is a week late.", IMG, SCRIPT, "I was charged twice this month.",
         "The box arrived crushed, please send a new one."]
LABELS = ["billing", "shipping", "refund"]
PROJECT = "Keyboard tickets"


class Server:
    def __init__(self, url: str, database_url: str) -> None:
        self.url, self.database_url = url, database_url
        self.engine = make_engine(database_url)
        self.ids: list[int] = []
        self.alice_items: list[int] = []

    def annotations(self, username: str) -> list[tuple[int, str | None, str, list[str]]]:
        with read_session(self.engine) as session:
            rows = session.execute(select(Annotation.example_id, Annotation.label, Annotation.comment,
                                          Annotation.flags)
                                   .join(User, User.id == Annotation.annotator_id)
                                   .where(User.username == username).order_by(Annotation.example_id)).all()
        return [tuple(row) for row in rows]  # type: ignore[misc]


def _seed(database_url: str) -> list[int]:
    from argon2 import PasswordHasher

    from curation.access import accounts as auth

    auth._hasher = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)  # this process only
    engine = make_engine(database_url)
    migrate(engine)
    admin = create_user(engine, None, "root", Role.admin, "root-password")
    lead = create_user(engine, admin, "lead", Role.lead, "lead-password")
    for name in ("alice", "bob"):
        create_user(engine, admin, name, Role.annotator, f"{name}-password")
    project = create_project(engine, lead, PROJECT, labels=LABELS,
                             guidelines="Label by what the customer needs.", overlap_k=2)
    with write_session(engine) as session:
        for i, text in enumerate(TEXTS, start=1):
            session.add(Example(project_id=project.id, external_id=f"K-{i}", text=text,
                                content_hash=hashlib.sha256(text.encode()).hexdigest()))
    with read_session(engine) as session:
        ids = list(session.execute(select(Example.id).order_by(Example.id)).scalars())
    engine.dispose()
    return ids


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    _require_chromium()
    data_dir = tmp_path_factory.mktemp("e2e-review")
    database_url = f"sqlite:///{data_dir / 'curation.db'}"
    ids = _seed(database_url)
    with serve_app(data_dir, DATABASE_URL=database_url, LOAD_DEMO="false", ADMIN_USERNAME="",
                   ADMIN_PASSWORD="") as url:
        state = Server(url, database_url)
        state.ids = ids
        yield state
        state.engine.dispose()


@pytest.fixture(scope="module")
def chromium(server: Server) -> Iterator[Any]:
    with launched_chromium(30_000) as browser:
        yield browser


@pytest.fixture
def page(chromium: Any, server: Server) -> Iterator[Any]:
    with opened_page(chromium, server.url, 30_000) as page:
        dialogs: list[str] = []  # any alert() that dataset text managed to run would land here
        page.dialogs = dialogs  # type: ignore[attr-defined]
        page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
        yield page


# --------------------------------------------------------------------------- helpers


def _idle(page: Any) -> None:
    """Wait until the script run finished (Streamlit marks the app element)."""
    page.wait_for_function("() => document.querySelector('[data-testid=\"stApp\"]')"
                           "?.getAttribute('data-test-script-state') === 'notRunning'")


def _log_in_by_keyboard(page: Any, username: str, password: str) -> None:
    page.goto("/")
    page.get_by_role("textbox", name="Username").focus()
    page.keyboard.type(username)
    page.keyboard.press("Tab")
    page.keyboard.type(password)
    page.keyboard.press("Enter")
    from playwright.sync_api import expect

    expect(page.get_by_test_id("stSidebar").get_by_text(re.compile(f"^{username} ·"))).to_be_visible()


def _open(page: Any, title: str) -> Any:
    from playwright.sync_api import expect

    page.get_by_test_id("stSidebar").get_by_role("link", name=title).click()
    main = page.get_by_test_id("stMain")
    expect(main.get_by_role("heading", name=title)).to_be_visible()
    _idle(page)
    return main


def _item(main: Any) -> int:
    # .first: until a rerun ends, its stale copy of the caption can sit beside the new one (same text)
    caption = main.get_by_text(re.compile(r"^Item #\d+ · K-\d$")).first.inner_text()
    return int(caption.split("#")[1].split(" ")[0])


_SETTLED = """([before, last]) => {
  const app = document.querySelector('[data-testid="stApp"]');
  if (!app || app.getAttribute('data-test-script-state') !== 'notRunning') { return false; }
  const main = document.querySelector('[data-testid="stMain"]');
  if (main.querySelector('[data-stale="true"]')) { return false; }
  if (last) { return main.innerText.includes('Nothing left for you to label in this project.'); }
  const items = [...main.querySelectorAll('[data-testid="stCaptionContainer"]')]
    .map((e) => e.innerText.trim()).filter((t) => /^Item #\\d+ · K-\\d$/.test(t));
  return items.length === 1 && !items[0].startsWith(`Item #${before} `);
}"""


_FLAG_SET = """(name) => {
  const app = document.querySelector('[data-testid="stApp"]');
  if (!app || app.getAttribute('data-test-script-state') !== 'notRunning') { return false; }
  const main = document.querySelector('[data-testid="stMain"]');
  if (main.querySelector('[data-stale="true"]')) { return false; }
  const boxes = main.querySelectorAll(`input[type="checkbox"][aria-label="${name}"]`);
  return boxes.length === 1 && boxes[0].checked;
}"""


def _wait_flag_set(page: Any, name: str) -> None:
    """Wait until the rerun a flag's click started has ended with exactly one, checked, box named `name`
    (until then a stale copy of the box sits beside the new one)."""
    page.wait_for_function(_FLAG_SET, arg=name)


def _press_and_wait(page: Any, key: str, before: int, last: bool = False) -> None:
    """Press `key` and wait until the page shows another item (or the end of the queue), rendered
    completely: a rerun shows stale and new elements side by side until it ends."""
    page.keyboard.press(key)
    try:
        page.wait_for_function(_SETTLED, arg=[before, last])
    except Exception:
        if os.environ.get("E2E_DEBUG"):
            page.screenshot(path=f"/tmp/e2e-{key}-{before}.png", full_page=True)
        raise


def _assert_literal(page: Any, main: Any, text: str) -> None:
    from playwright.sync_api import expect

    expect(main.get_by_text(text, exact=True)).to_be_visible()
    assert page.locator("img[src='x']").count() == 0
    injected = "() => [...document.scripts].some(s => s.textContent.includes(\"alert('xss')\"))"
    assert page.evaluate(injected) is False


# --------------------------------------------------------------------------- journeys


def test_alice_labels_five_items_by_keyboard_alone(page: Any, server: Server) -> None:
    from playwright.sync_api import expect

    _log_in_by_keyboard(page, "alice", "alice-password")
    main = _open(page, "Review")
    seen: list[int] = []
    keys = {0: "1", 1: "2", 2: "3", 3: "1", 4: "2"}
    for index in range(5):
        current = _item(main)
        seen.append(current)
        text = TEXTS[server.ids.index(current)]
        _assert_literal(page, main, text)
        if index == 2:  # B goes back to the previous item; 3 changes its label; then on with the queue
            _press_and_wait(page, "B", current)
            assert _item(main) == seen[1]
            changing = f"Changing your earlier label on item #{seen[1]} (version 1)."
            expect(main.get_by_text(changing)).to_be_visible()
            _press_and_wait(page, "3", seen[1])
            assert _item(main) == current
        if index == 3:  # digits typed into the comment box label nothing; Tab, Space sets a flag
            page.get_by_role("textbox", name="Comment (optional)").focus()
            page.keyboard.type("2 charges, 1 refund?")
            page.keyboard.press("Tab")  # leaves the text box (the comment is kept) for the first flag
            _idle(page)
            page.keyboard.press("Space")
            _wait_flag_set(page, "Ambiguous")
            assert _item(main) == current
        _press_and_wait(page, keys[index], current, last=index == 4)
    expect(main.get_by_text("5 done · 0 remaining")).to_be_visible()
    assert page.dialogs == []  # type: ignore[attr-defined]
    assert seen == server.ids
    server.alice_items = seen
    assert server.annotations("alice") == [
        (seen[0], "billing", "", []), (seen[1], "refund", "", []), (seen[2], "refund", "", []),
        (seen[3], "billing", "2 charges, 1 refund?", ["ambiguous"]), (seen[4], "shipping", "", [])]


def test_bob_labels_the_same_items_blind(page: Any, server: Server) -> None:
    from playwright.sync_api import expect

    assert server.alice_items, "runs after alice's journey"
    _log_in_by_keyboard(page, "bob", "bob-password")
    main = _open(page, "Review")
    seen = []
    for index, key in enumerate(["1", "1", "3", "1", "1"]):
        current = _item(main)
        seen.append(current)
        _assert_literal(page, main, TEXTS[server.ids.index(current)])
        shown = main.inner_text()
        assert "alice" not in shown and "2 charges" not in shown and "final" not in shown.lower()
        assert main.get_by_test_id("stBaseButton-primary").count() == 0  # no label marked as chosen
        expect(main.get_by_role("checkbox", name="Ambiguous")).not_to_be_checked()
        _press_and_wait(page, key, current, last=index == 4)
    assert seen == server.alice_items
    assert page.dialogs == []  # type: ignore[attr-defined]
    page.reload()  # a reload keeps the signed-in user (a revocable session cookie), never another's view
    sidebar = page.get_by_test_id("stSidebar")
    expect(sidebar.get_by_role("button", name="Log out")).to_be_visible()
    expect(sidebar.get_by_text("bob", exact=True)).to_be_visible()
    expect(page.get_by_role("button", name="Log in")).to_have_count(0)
    with read_session(server.engine) as session:
        statuses = dict(session.execute(select(Example.id, Example.status)).all())
    ids = server.ids
    assert [statuses[i] for i in ids] == [ExampleStatus.labelled, ExampleStatus.disputed,
                                          ExampleStatus.labelled, ExampleStatus.labelled,
                                          ExampleStatus.disputed]


def test_lead_resolves_a_disagreement(page: Any, server: Server) -> None:
    from playwright.sync_api import expect

    _log_in_by_keyboard(page, "lead", "lead-password")
    main = _open(page, "Adjudication")
    disputed = main.get_by_test_id("stMetric").filter(has_text="Disputed")
    expect(disputed.get_by_test_id("stMetricValue")).to_have_text("2")
    first = server.ids[1]
    expect(main.get_by_role("heading", name=f"Item #{first}")).to_be_visible()
    _assert_literal(page, main, IMG)
    reason = main.get_by_role("textbox", name="Reason (required; goes into the audit trail)")
    reason.fill("shipping damage: refund")
    page.keyboard.press("Tab")
    _idle(page)
    page.keyboard.press("3")  # refund
    expect(main.get_by_text(f"Item #{first}: final label refund.")).to_be_visible()
    expect(disputed.get_by_test_id("stMetricValue")).to_have_text("1")
    assert page.dialogs == []  # type: ignore[attr-defined]
    with read_session(server.engine) as session:
        example = session.get(Example, first)
        decision = session.execute(select(Adjudication).where(Adjudication.example_id == first)).scalar_one()
    assert (example.status, example.final_label) == (ExampleStatus.labelled, "refund")
    assert (decision.final_label, decision.reason) == ("refund", "shipping damage: refund")
