"""Two app servers, one database: two `streamlit run` processes on 127.0.0.1 share one throwaway
PostgreSQL, and two annotators label through them at the same time in Chromium.

The project asks for one label per item (k = 1), so every item the two could both be shown is a race
between the servers. Each round presses a label on both pages before waiting on either, so the two
servers' writes overlap. At the end: every item has exactly one label (none over k, none left
unlabelled), the two annotators saw disjoint items, and every label pressed is in the database with
the label that was pressed (none lost).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.engine import Engine

from curation.access.accounts import create_user
from curation.data.projects import create_project
from curation.db import read_session, write_session
from curation.models import Annotation, Example, Role, User
from tests.e2e.conftest import CHROMIUM, CHROMIUM_ARGS, VIEWPORT, _require_chromium, serve_app

pytestmark = [pytest.mark.browser, pytest.mark.postgres,
              pytest.mark.parametrize("database_url", ["postgres"], indirect=True)]

ITEMS = 10
LABELS = ["billing", "shipping", "refund"]
ANNOTATORS = {"alice": ("1", "billing"), "bob": ("2", "shipping")}  # the key each presses, and its label
CAPTION = re.compile(r"^Item #\d+ · T-\d+$")
DONE_TEXT = "Nothing left for you to label in this project."

# Settled: the script run ended, nothing stale on screen, and either the end of the queue or exactly
# one item caption that is not the item shown before the key press.
_SETTLED = """(before) => {
  const app = document.querySelector('[data-testid="stApp"]');
  if (!app || app.getAttribute('data-test-script-state') !== 'notRunning') { return false; }
  const main = document.querySelector('[data-testid="stMain"]');
  if (!main || main.querySelector('[data-stale="true"]')) { return false; }
  if (main.innerText.includes('Nothing left for you to label in this project.')) { return true; }
  const items = [...main.querySelectorAll('[data-testid="stCaptionContainer"]')]
    .map((e) => e.innerText.trim()).filter((t) => /^Item #\\d+ · T-\\d+$/.test(t));
  return items.length === 1 && !items[0].startsWith(`Item #${before} `);
}"""


def _seed(engine: Engine) -> list[int]:
    from argon2 import PasswordHasher

    from curation.access import accounts as auth

    auth._hasher = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)  # seeding only
    admin = create_user(engine, None, "root", Role.admin, "root-password")
    lead = create_user(engine, admin, "lead", Role.lead, "lead-password")
    for name in ANNOTATORS:
        create_user(engine, admin, name, Role.annotator, f"{name}-password")
    project = create_project(engine, lead, "Shared tickets", labels=LABELS, overlap_k=1)
    with write_session(engine) as session:
        for i in range(1, ITEMS + 1):
            text = f"Ticket {i}: where is my parcel number {i}?"
            session.add(Example(project_id=project.id, external_id=f"T-{i:02d}", text=text,
                                content_hash=hashlib.sha256(text.encode()).hexdigest()))
    with read_session(engine) as session:
        return list(session.execute(select(Example.id).order_by(Example.id)).scalars())


@pytest.fixture
def two_servers(engine: Engine, database_url: str, tmp_path: Path) -> Iterator[tuple[list[int], list[str]]]:
    _require_chromium()
    ids = _seed(engine)
    settings = {"DATABASE_URL": database_url, "LOAD_DEMO": "false", "ADMIN_USERNAME": "", "ADMIN_PASSWORD": ""}
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    with serve_app(tmp_path / "a", **settings) as first, serve_app(tmp_path / "b", **settings) as second:
        yield ids, [first, second]


def _log_in(page: Any, username: str) -> None:
    from playwright.sync_api import expect

    page.goto("/")
    # the first script run of a fresh server imports the whole app: slow on a busy 2-core machine
    page.get_by_role("textbox", name="Username").fill(username, timeout=120_000)
    page.get_by_role("textbox", name="Password").fill(f"{username}-password")
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_test_id("stSidebar").get_by_text(re.compile(f"^{username} ·"))).to_be_visible()
    page.get_by_test_id("stSidebar").get_by_role("link", name="Review").click()
    expect(page.get_by_test_id("stMain").get_by_role("heading", name="Review")).to_be_visible()
    page.wait_for_function(_SETTLED, arg=-1)


def _current(page: Any) -> int | None:
    """The item the page shows, or None at the end of the queue."""
    main = page.get_by_test_id("stMain")
    if DONE_TEXT in main.inner_text():
        return None
    caption = main.get_by_text(CAPTION).inner_text()
    return int(caption.split("#")[1].split(" ")[0])


def test_two_annotators_label_through_two_servers_at_once(two_servers: tuple[list[int], list[str]],
                                                          engine: Engine) -> None:
    from playwright.sync_api import expect, sync_playwright

    ids, urls = two_servers
    expect.set_options(timeout=30_000)
    pressed: dict[str, list[int]] = {name: [] for name in ANNOTATORS}
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        pages = {}
        for name, url in zip(ANNOTATORS, urls, strict=True):  # alice on the first server, bob on the second
            context = browser.new_context(viewport=VIEWPORT, base_url=url)
            context.set_default_timeout(30_000)
            pages[name] = context.new_page()
            _log_in(pages[name], name)
        for _round in range(ITEMS + 2):
            shown = {name: _current(page) for name, page in pages.items()}
            active = {name: item for name, item in shown.items() if item is not None}
            if not active:
                break
            # Both presses go out before either page is waited on: the servers write at the same time.
            for name, item in active.items():
                pages[name].keyboard.press(ANNOTATORS[name][0])
                pressed[name].append(item)
            for name, item in active.items():
                pages[name].wait_for_function(_SETTLED, arg=item)
        else:
            pytest.fail(f"the queues did not end after {ITEMS + 2} rounds: {pressed}")
        for page in pages.values():
            expect(page.get_by_test_id("stMain").get_by_text(DONE_TEXT)).to_be_visible()
            assert not page.get_by_test_id("stException").count()
        browser.close()

    alice, bob = pressed["alice"], pressed["bob"]
    assert not set(alice) & set(bob), "both annotators were given the same item although k = 1"
    assert sorted(alice + bob) == ids  # every item labelled through one server or the other
    assert alice and bob  # both servers did part of the work
    with read_session(engine) as session:
        per_item = dict(session.execute(select(Annotation.example_id, func.count())
                                        .group_by(Annotation.example_id)).all())
        stored = {(row.username, row.example_id, row.label) for row in session.execute(
            select(User.username, Annotation.example_id, Annotation.label)
            .join(User, User.id == Annotation.annotator_id))}
    assert per_item == {item: 1 for item in ids}  # no item over k, none without its label
    expected = {(name, item, ANNOTATORS[name][1]) for name, items in pressed.items() for item in items}
    assert stored == expected  # no label lost or changed
