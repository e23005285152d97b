"""A lead opens the Duplicates page on the demo project in a real Chromium, keeps one ticket of an
exact-duplicate group and excludes the other: the group leaves the set and the database records the
exclusion as "duplicate of #id" (fixtures: tests/e2e/conftest.py).

The server's embedding cache is filled up front with random vectors for the demo texts (so no model
runs in the test; only the exact duplicates group), under the default model's cache key."""

from __future__ import annotations

import re
from typing import Any

import numpy as np
import pytest
from sqlalchemy import select

from curation.access.accounts import get_user
from curation.data.bootstrap import DEMO_CLASSIFICATION
from curation.data.projects import get_project
from curation.db import make_engine, read_session
from curation.embeddings.encode import EmbeddingCache, read_project_items, text_hash
from curation.models import Example
from curation.review.adjudication import include_example
from curation.settings import get_settings
from tests.e2e.conftest import server_data_dir

pytestmark = pytest.mark.browser


def test_lead_excludes_a_duplicate_group(
    page: Any, tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    from playwright.sync_api import expect

    monkeypatch.delenv("EMBEDDING_MODEL", raising=False)  # the server's default model key
    get_settings.cache_clear()
    page.goto("/")
    page.get_by_role("textbox", name="Username").fill("lead")
    page.get_by_role("textbox", name="Password").fill("lead-demo")
    page.get_by_role("button", name="Log in").click()
    sidebar = page.get_by_test_id("stSidebar")
    expect(sidebar.get_by_role("link", name="Duplicates")).to_be_visible()  # the demo is loaded by now

    data_dir = server_data_dir(tmp_path_factory)
    engine = make_engine(f"sqlite:///{data_dir / 'curation.db'}")
    try:
        project = get_project(engine, DEMO_CLASSIFICATION)
        assert project.id is not None
        # The demo's story ends with its re-sent copies excluded: bring one back, as an undone decision.
        with read_session(engine) as session:
            copy = session.execute(select(Example.id).where(Example.project_id == project.id,
                                                             Example.external_id == "T-00427")).scalar_one()
        include_example(engine, get_user(engine, "lead"), copy, "e2e: re-check this re-sent ticket")
        items = read_project_items(engine, project.id)
        vectors = np.random.default_rng(0).normal(size=(len(items), 384)).astype(np.float32)
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
        EmbeddingCache(root=data_dir / "embeddings").add([text_hash(t) for t in items.texts], vectors)
        ids = dict(zip(items.external_ids, items.ids))
        keep, drop = ids["T-00426"], ids["T-00427"]

        picker = sidebar.get_by_role("combobox", name="Project")
        picker.click()
        page.get_by_role("option", name=DEMO_CLASSIFICATION).click()
        expect(picker).to_have_value(DEMO_CLASSIFICATION)
        sidebar.get_by_role("link", name="Duplicates").click()

        main = page.get_by_test_id("stMain")
        expect(main.get_by_role("heading", name="Duplicates")).to_be_visible()
        groups = (
            main.get_by_test_id("stMetric")
            .filter(has_text="Duplicate groups")
            .get_by_test_id("stMetricValue")
        )
        expect(groups).to_have_text(re.compile(r"^\d+$"))
        before = int(groups.inner_text())
        assert before >= 1  # the exact duplicate brought back
        button = main.get_by_role("button", name=f"Keep #{keep}, exclude the rest")
        expect(button).to_be_visible()
        expect(main.get_by_text(f"#{drop} · T-00427", exact=False)).to_be_visible()
        button.click()

        expect(main.get_by_text(f"Kept #{keep}; excluded #{drop} as duplicates of #{keep}.")).to_be_visible()
        expect(groups).to_have_text(str(before - 1))
        expect(main.get_by_role("button", name=f"Keep #{keep}, exclude the rest")).to_have_count(0)
        with read_session(engine) as session:
            row = session.get(Example, drop)
        assert row is not None and row.status == "excluded"
        assert row.exclusion_reason == f"duplicate: duplicate of #{keep}"
    finally:
        engine.dispose()
