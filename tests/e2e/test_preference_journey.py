"""Blind preference journey in a real Chromium against `streamlit run`, on a generation project with
one finished run (a tiny Llama from a config, trained here for a few steps):

1. the lead starts a round (run #1's adapter vs the base model, 3 prompts, 2 judgements each) on the
   Preference page; the real background worker generates the responses while the page shows progress;
2. alice and bob judge by keyboard alone (A, B, T, X) and never see which system wrote which;
3. the lead sees the win rate with its interval, as the core computes it.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest

from curation.access.accounts import create_user
from curation.db import make_engine, migrate
from curation.evaluation import preference
from curation.models import Role
from curation.settings import get_settings
from tests.curation.preference_helpers import generation_project
from tests.e2e.conftest import (
    VIEWPORT,
    _require_chromium,
    launched_chromium,
    opened_page,
    serve_app,
)
from tests.pages.training_fixtures import trained
from tests.training.helpers import build_tiny_models

pytestmark = pytest.mark.browser
PROJECT = "Replies"


class Server:
    def __init__(self, url: str, database_url: str, run_id: int) -> None:
        self.url, self.database_url, self.run_id = url, database_url, run_id
        self.engine = make_engine(database_url)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    from argon2 import PasswordHasher

    from curation.access import accounts as auth

    _require_chromium()
    data_dir = tmp_path_factory.mktemp("e2e-preference")
    database_url = f"sqlite:///{data_dir / 'curation.db'}"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DATA_DIR", str(data_dir))  # the run's adapter folder lands where the server looks
        patch.setenv("DATABASE_URL", database_url)
        patch.setattr(auth, "_hasher", PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))
        get_settings.cache_clear()
        engine = make_engine(database_url)
        migrate(engine)
        admin = create_user(engine, None, "root", Role.admin, "root-password")
        lead = create_user(engine, admin, "lead", Role.lead, "lead-password")
        for name in ("alice", "bob"):
            create_user(engine, admin, name, Role.annotator, f"{name}-password")
        version_id = generation_project(engine, lead, PROJECT, n_eval=4)
        run_id = trained(engine, lead, version_id, build_tiny_models(data_dir / "tiny")["llama"])
        engine.dispose()
    get_settings.cache_clear()
    with serve_app(data_dir, DATABASE_URL=database_url, LOAD_DEMO="false", ADMIN_USERNAME="",
                   ADMIN_PASSWORD="") as url:
        state = Server(url, database_url, run_id)
        yield state
        state.engine.dispose()


@pytest.fixture(scope="module")
def chromium(server: Server) -> Iterator[Any]:
    with launched_chromium(90_000) as browser:
        yield browser


@pytest.fixture
def page(chromium: Any, server: Server) -> Iterator[Any]:
    with opened_page(chromium, server.url, 90_000) as page:
        yield page


def _log_in(page: Any, username: str) -> Any:
    """Log in and open the Preference page; returns the main area."""
    from playwright.sync_api import expect

    page.goto("/")
    expect(page.get_by_role("textbox", name="Username")).to_be_visible(timeout=90_000)  # a cold server is slow
    page.get_by_role("textbox", name="Username").fill(username)
    page.get_by_role("textbox", name="Password").fill(f"{username}-password")
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_test_id("stSidebar").get_by_text(re.compile(f"^{username} ·"))).to_be_visible()
    page.get_by_test_id("stSidebar").get_by_role("link", name="Preference").click()
    main = page.get_by_test_id("stMain")
    expect(main.get_by_role("heading", name="Preference")).to_be_visible()
    return main


def _judge_by_keyboard(page: Any, main: Any, keys: list[str], last: str) -> None:
    """Press each key on a fresh pair and wait until the next one is shown (or `last` at the end);
    every pair on screen names no system."""
    from playwright.sync_api import expect

    for done, key in enumerate(keys):
        expect(main.get_by_text(f"{done} of {len(keys)} prompts judged")).to_be_visible()
        expect(main.get_by_text("Response A", exact=True)).to_be_visible()
        expect(main.get_by_text("Response B", exact=True)).to_be_visible()
        shown = main.inner_text()
        assert "base model" not in shown and "run #" not in shown and "adapter" not in shown.lower()
        page.keyboard.press(key)
        if done + 1 < len(keys):
            expect(main.get_by_text(f"{done + 1} of {len(keys)} prompts judged")).to_be_visible()
    expect(main.get_by_text(last)).to_be_visible()


def test_lead_starts_a_round_and_its_responses_are_generated_in_the_background(page: Any, server: Server) -> None:
    from playwright.sync_api import expect

    main = _log_in(page, "lead")
    main.get_by_role("tab", name="Rounds").click()
    main.get_by_role("spinbutton", name="Prompts").fill("3")
    main.get_by_role("spinbutton", name="Judgements per prompt").fill("2")
    main.get_by_role("button", name="Start round").click()
    expect(main.get_by_text("Round 1 started: its responses are being generated in the background.")).to_be_visible()
    # the worker's progress, then the (empty) result once the responses are written
    expect(main.get_by_text(f"System A: run #{server.run_id} adapter · System B: base model · 0 of 6 judgements")
           ).to_be_visible(timeout=180_000)
    assert preference.get_round(server.engine, _lead(server), 1).status == "open"


def test_two_annotators_judge_blind_by_keyboard(chromium: Any, server: Server) -> None:
    for username, keys, last in (("alice", ["a", "t", "x"], "Nothing left for you to judge in this round."),
                                 ("bob", ["b", "a", "a"], "No preference round is open for judging")):
        context = chromium.new_context(viewport=VIEWPORT, base_url=server.url)
        context.set_default_timeout(90_000)
        try:
            page = context.new_page()
            main = _log_in(page, username)
            _judge_by_keyboard(page, main, keys, last)
        finally:
            context.close()
    result = preference.round_result(server.engine, _lead(server), 1)
    assert result["status"] == "done" and result["judgements"] == 6
    assert (result["ties"], result["both_bad"]) == (1, 1)


def test_lead_sees_the_win_rate(page: Any, server: Server) -> None:
    from playwright.sync_api import expect

    result = preference.round_result(server.engine, _lead(server), 1)
    main = _log_in(page, "lead")
    main.get_by_role("tab", name="Rounds").click()
    expect(main.get_by_text(f"System A: run #{server.run_id} adapter · System B: base model · 6 of 6 judgements")
           ).to_be_visible()
    rate = result["win_rate"]
    win = main.get_by_test_id("stMetric").filter(has_text="Win rate")
    expect(win).to_contain_text(f"{rate['value']:.3f}")
    expect(main.get_by_test_id("stMetric").filter(has_text="95% interval")).to_contain_text(
        f"[{rate['low']:.3f}, {rate['high']:.3f}]")


def _lead(server: Server) -> Any:
    from curation.access.accounts import get_user

    return get_user(server.engine, "lead")
