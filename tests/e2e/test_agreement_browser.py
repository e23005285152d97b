"""A lead opens the Agreement page on the demo project in a real Chromium and sees the alpha metric, its
band and the annotator x annotator heatmap (fixtures: tests/e2e/conftest.py)."""

from __future__ import annotations

import re
from typing import Any

import pytest
from sqlalchemy.engine import Engine

from curation.access.accounts import get_user
from curation.agreement.figures import fmt
from curation.agreement.report import agreement_report
from curation.data.bootstrap import DEMO_CLASSIFICATION, load_demo
from curation.data.projects import get_project
from tests.e2e.conftest import log_in, open_page

pytestmark = pytest.mark.browser


def test_lead_sees_agreement_of_the_demo_project(page: Any, engine: Engine) -> None:
    from playwright.sync_api import expect

    # The figures the page must show: the same demo, loaded into this test's own database.
    load_demo(engine)
    demo = get_project(engine, DEMO_CLASSIFICATION)
    assert demo.id is not None
    expected = agreement_report(engine, get_user(engine, "lead"), demo.id)

    log_in(page, "lead", "lead-demo")
    main = open_page(page, DEMO_CLASSIFICATION, "Agreement")
    expect(main.get_by_role("heading", name="Agreement")).to_be_visible()
    alpha = main.get_by_test_id("stMetric").filter(has_text="Krippendorff's alpha (nominal)")
    expect(alpha).to_be_visible()
    expect(alpha.get_by_test_id("stMetricValue")).to_have_text(fmt(expected.alpha.value))
    interval = f"95% interval {fmt(expected.alpha.low)} to {fmt(expected.alpha.high)} (1,000 bootstrap"
    expect(main.get_by_text(interval)).to_be_visible()
    band = expected.band_text.split(":")[0]
    expect(main.get_by_text(re.compile(f"^{band}"))).to_be_visible()
    expect(main.get_by_test_id("stMetric").filter(has_text="Items scored")
           .get_by_test_id("stMetricValue")).to_have_text(f"{expected.n_scored:,}")

    heatmap = main.get_by_test_id("stPlotlyChart")
    expect(heatmap).to_be_visible()
    expect(heatmap.locator(".heatmaplayer")).to_have_count(1)
    for name in expected.pairwise.annotators:
        expect(heatmap.locator("g.xtick text", has_text=name)).to_have_count(1)
