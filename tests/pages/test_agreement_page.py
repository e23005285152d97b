"""pages/agreement.py through AppTest: the headline alpha with its interval, band and threshold; the other
coefficients; warnings for a tiny project; "undefined" with the reason for a degenerate one; the level
selector; the heatmap, per-label, per-annotator, confusion and disputed tables; fresh figures after new
labels; ConvAbuse through the page; annotators cannot open it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.engine import Engine
from streamlit.testing.v1 import AppTest

from curation.agreement.figures import ONE_CATEGORY, fmt
from curation.agreement.report import agreement_report
from curation.data.formats import open_table
from curation.data.importer import import_table
from curation.data.mapping import guess_mapping
from curation.models import User
from tests.conftest import IN_CI, SHARED
from tests.curation.test_agreement_report import JUDGEMENTS, import_long, write_long_csv
from tests.pages.helpers import REPO, by_label, by_label_prefix, logged_in, no_exception, rendered, values
from ui.session import PROJECT_KEY

PAGE = "pages/agreement.py"
ADJUDICATE_KEY = "adjudicate.example_id"
CONVABUSE = SHARED / "datasets" / "convabuse" / "1_full" / "ConvAbuseEMNLPfull.csv"


def open_page(project_id: int) -> AppTest:
    at = logged_in("lena", "lead-password")
    at.session_state[PROJECT_KEY] = project_id
    at.switch_page(PAGE).run()
    no_exception(at)
    assert values(at.title) == ["Agreement"]
    return at



def metric(at: AppTest, prefix: str) -> Any:
    return by_label_prefix(at.metric, prefix)


def frames(at: AppTest) -> list[Any]:
    return [frame.value for frame in at.dataframe]


def test_tiny_project_shows_every_figure_and_warns(engine: Engine, lead: User, tmp_path: Path) -> None:
    project_id = import_long(engine, lead, tmp_path, JUDGEMENTS)
    report = agreement_report(engine, lead, project_id)
    at = open_page(project_id)

    alpha = metric(at, "Krippendorff's alpha (nominal)")
    assert alpha.value == fmt(report.alpha.value)
    assert f"95% interval {fmt(report.alpha.low)} to {fmt(report.alpha.high)} (1,000 bootstrap resamples of the " \
           "items)" in values(at.caption)
    assert any(rendered(m) == ":red[**unreliable: do not train on these labels yet**]" for m in values(at.markdown))
    assert values(at.error) == [f"Below the project's approval threshold: alpha {fmt(report.alpha.value)} < 0.667."]
    assert metric(at, "Items scored").value == "9" and metric(at, "Annotators").value == "3"
    assert metric(at, "Gwet's AC1").value == fmt(report.ac1.value)
    assert metric(at, "Cohen's kappa (mean pairwise)").value == fmt(report.cohen.value)
    assert metric(at, "Percent agreement").value == f"{report.percent.value:.1%}"
    assert metric(at, "Fleiss' kappa").value == "n/a"
    assert any("between 2 and 3 ratings" in rendered(c) for c in values(at.caption))
    assert [rendered(w) for w in values(at.warning)] == report.warnings
    assert "fewer than 30 scored items" in rendered(at.warning[0].value)

    labels, annotators, confusion, disputed = frames(at)
    assert labels["label"].tolist() == ["a", "b", "c"] and labels["ratings"].tolist() == [10, 9, 5]
    assert annotators["annotator"].tolist() == ["x", "y", "z"]
    assert confusion.index.tolist() == ["A: a", "A: b", "A: c"] and int(confusion.to_numpy().sum()) == 7
    assert disputed["id"].tolist() == ["i5", "i9", "i2", "i4"]
    assert len(at.get("plotly_chart")) == 1

    # Another pair of annotators: the confusion matrix follows the select boxes.
    by_label(at.selectbox, "Annotator B (columns)").select_index(2).run()
    no_exception(at)
    assert int(frames(at)[2].to_numpy().sum()) == 6  # x and z share six items

    # The chosen disputed item opens in the adjudication queue (once that page exists).
    button = by_label(at.button, "Open in adjudication queue")
    if not (REPO / "pages" / "adjudicate.py").is_file():
        assert button.disabled and button.help == "adjudication queue not available"
        return
    assert not button.disabled
    chosen = report.disputed[1].example_id
    by_label(at.selectbox, "Disputed item").select(chosen).run()
    by_label(at.button, "Open in adjudication queue").click().run()
    assert "Agreement" not in values(at.title)  # switched to the adjudication page
    handed_over = at.session_state[ADJUDICATE_KEY] if ADJUDICATE_KEY in at.session_state else None
    assert handed_over in (chosen, None)  # None: that page took the request


def test_confusion_opens_on_the_pair_that_shares_most_items(engine: Engine, lead: User, tmp_path: Path) -> None:
    """Annotators ann_a and ann_b share no item; ann_b and ann_c share four, ann_a and ann_c two: the section
    opens on ann_b x ann_c, not on the first two names."""
    judgements = {f"i{n}": {"ann_b": "a", "ann_c": "a" if n % 2 else "b"} for n in range(1, 5)}
    judgements |= {f"j{n}": {"ann_a": "b", "ann_c": "b"} for n in range(1, 3)}
    project_id = import_long(engine, lead, tmp_path, judgements, name="Pairs")
    at = open_page(project_id)
    shared = [c for c in values(at.caption) if "shared items" in c]
    assert len(shared) == 1 and shared[0].startswith("4 shared items"), shared
    assert int(frames(at)[2].to_numpy().sum()) == 4


def test_most_shared_pair_picks_the_largest_off_diagonal_count() -> None:
    from curation.agreement.figures import PairwiseMatrix

    nan = float("nan")
    matrix = PairwiseMatrix([1, 2, 3], ["a", "b", "c"], [[nan] * 3] * 3, [[5, 0, 2], [0, 4, 4], [2, 4, 6]], None)
    assert matrix.most_shared_pair() == (1, 2)
    tie = PairwiseMatrix([1, 2, 3], ["a", "b", "c"], [[nan] * 3] * 3, [[3, 3, 3], [3, 3, 0], [3, 0, 3]], None)
    assert tie.most_shared_pair() == (0, 1)
    nobody = PairwiseMatrix([1, 2], ["a", "b"], [[nan] * 2] * 2, [[1, 0], [0, 1]], None)
    assert nobody.most_shared_pair() == (0, 1)


def test_level_selector_and_new_labels_refresh_the_figures(engine: Engine, lead: User, tmp_path: Path) -> None:
    project_id = import_long(engine, lead, tmp_path, JUDGEMENTS)
    at = open_page(project_id)
    by_label(at.selectbox, "Level of measurement").select("ordinal").run()
    no_exception(at)
    ordinal = agreement_report(engine, lead, project_id, "ordinal")
    assert metric(at, "Krippendorff's alpha (ordinal)").value == fmt(ordinal.alpha.value)

    # New labels arrive (here: an import); the next run shows them, not a cached report.
    table = open_table(write_long_csv(tmp_path / "more.csv", {f"n{i}": {"x": "c", "y": "c"} for i in range(30)}))
    mapping = guess_mapping(table)
    mapping.id = ["item_id"]
    import_table(engine, lead, table, mapping, "Hand")
    at.run()
    no_exception(at)
    fresh = agreement_report(engine, lead, project_id, "ordinal")
    assert fresh.alpha.value != ordinal.alpha.value
    assert metric(at, "Krippendorff's alpha (ordinal)").value == fmt(fresh.alpha.value)
    assert metric(at, "Items scored").value == "39"
    assert not any("fewer than 30" in rendered(w) for w in values(at.warning))

    by_label(at.selectbox, "Level of measurement").select("interval").run()  # labels a, b, c are not numbers
    no_exception(at)
    assert metric(at, "Krippendorff's alpha (interval)").value == "undefined"
    assert any("needs numeric labels" in rendered(m) for m in values(at.markdown))


def test_degenerate_project_says_undefined_and_why(engine: Engine, lead: User, tmp_path: Path) -> None:
    project_id = import_long(engine, lead, tmp_path, {f"s{i}": {"x": "a", "y": "a"} for i in range(4)}, "Same")
    at = open_page(project_id)
    assert metric(at, "Krippendorff's alpha (nominal)").value == "undefined"
    assert any(rendered(m) == f":gray[**undefined: {ONE_CATEGORY}**]" for m in values(at.markdown))
    assert any(ONE_CATEGORY in rendered(w) for w in values(at.warning))
    assert any("has 100% of all ratings" in rendered(w) for w in values(at.warning))
    assert values(at.error) == ["The approval threshold (alpha ≥ 0.667) cannot be met: alpha is undefined."]
    assert "No item has two different labels yet." in values(at.caption)


def test_project_without_labels_renders(engine: Engine, lead: User) -> None:
    from curation.data.projects import create_project

    project = create_project(engine, lead, "Blank", labels=["yes", "no"])
    assert project.id is not None
    at = open_page(project.id)
    assert metric(at, "Krippendorff's alpha (nominal)").value == "undefined"
    assert values(at.info) == ["The heatmap needs at least two annotators.", "Needs at least two annotators."]
    assert len(at.get("plotly_chart")) == 0


def test_annotators_have_no_agreement_page(engine: Engine, annotator: User) -> None:
    at = logged_in("anna", "annotator-password")
    with pytest.raises(ValueError):  # not in an annotator's navigation
        at.switch_page(PAGE)


def test_convabuse_figures_through_the_page(engine: Engine, lead: User) -> None:
    if not CONVABUSE.is_file():
        if IN_CI:
            pytest.fail(f"{CONVABUSE} is missing")
        pytest.skip(f"{CONVABUSE} is missing (shared datasets not present)")
    table = open_table(CONVABUSE)
    report = import_table(engine, lead, table, guess_mapping(table), "ConvAbuse", create=True)
    assert report.examples_added == 4059 and len(report.annotators_created) == 8
    from curation.data.projects import get_project

    project_id = get_project(engine, "ConvAbuse").id
    assert project_id is not None
    nominal = agreement_report(engine, lead, project_id)
    at = open_page(project_id)
    assert metric(at, "Krippendorff's alpha (nominal)").value == fmt(nominal.alpha.value)
    assert metric(at, "Items scored").value == "4,059" and metric(at, "Annotators").value == "8"
    assert metric(at, "Fleiss' kappa").value == "n/a"
    assert len(frames(at)[3]) == 20  # the 20 most disputed items
    by_label(at.selectbox, "Level of measurement").select("ordinal").run()
    no_exception(at)
    ordinal = agreement_report(engine, lead, project_id, "ordinal")
    assert metric(at, "Krippendorff's alpha (ordinal)").value == fmt(ordinal.alpha.value)
    assert 0 < ordinal.alpha.value < 1  # type: ignore[operator]


def test_ordered_labels_open_at_the_ordinal_level(engine: Engine, lead: User, tmp_path: Path) -> None:
    from curation.data.projects import update_project

    project_id = import_long(engine, lead, tmp_path, JUDGEMENTS)
    update_project(engine, lead, project_id, labels_ordered=True)
    at = open_page(project_id)
    assert by_label(at.selectbox, "Level of measurement").value == "ordinal"
    ordinal = agreement_report(engine, lead, project_id, "ordinal")
    assert metric(at, "Krippendorff's alpha (ordinal)").value == fmt(ordinal.alpha.value)


def test_sources_section_reports_each_source_against_experts_and_saves_settings(engine: Engine, lead: User) -> None:
    """Issue 12: the Agreement page says which items were blind, reports each source against the
    experts' final labels with intervals, and saves the project's source settings."""
    from datetime import datetime, timezone

    from curation.agreement.sources import source_report
    from curation.db import read_session, write_session
    from curation.models import Project
    from curation.review.annotate import submit_annotation
    from curation.review.sources import blind_by_hash, store_source_labels
    from tests.curation.test_review_queue import example_ids, make_project

    project = make_project(engine, lead, 6, k=1)
    with write_session(engine) as session:
        store_source_labels(session, session.get(Project, project.id), "vendor-2024", "vote",
                            [(f"T-{i:03d}", "billing", None) for i in range(1, 7)], None,
                            datetime(2026, 11, 29, tzinfo=timezone.utc))
    for example_id, label in zip(example_ids(engine, project), ["billing"] * 4 + ["refund", "shipping"], strict=True):
        submit_annotation(engine, lead, example_id, label=label)
    [expected] = source_report(engine, lead, project.id)
    at = open_page(project.id)
    blind = sum(blind_by_hash(project.id, f"T-{i:03d}", 0.1) for i in range(1, 7))
    assert any(f"Blind items: {blind} of 6 never show suggestions or source votes" in rendered(c)
               for c in values(at.caption))
    assert expected.summary() in values(at.text)
    assert expected.summary().startswith("vendor-2024 agrees with experts on 67% [")
    sources = next(f for f in frames(at) if "source" in f.columns and "Cohen's kappa" in f.columns)
    assert sources.to_dict("records") == [{
        "source": "vendor-2024", "items with an expert label": 6, "agree": 4, "accuracy": "66.7%",
        "95% interval (Wilson)": f"[{expected.low:.1%}, {expected.high:.1%}]",
        "Cohen's kappa": "0.000", "kappa 95% interval (bootstrap)": "—" if expected.kappa_low is None
        else f"[{expected.kappa_low:.3f}, {expected.kappa_high:.3f}]"}]
    per_label = next(f for f in frames(at) if "expert label" in f.columns)
    assert per_label[["expert label", "items", "source agrees"]].to_dict("records") == [
        {"expert label": "billing", "items": 4, "source agrees": 4},
        {"expert label": "refund", "items": 1, "source agrees": 0},
        {"expert label": "shipping", "items": 1, "source agrees": 0}]

    by_label(at.selectbox, "Suggestions in review").select("beside")
    by_label(at.checkbox, "A source's vote fills one of an item's k slots").check()
    by_label(at.number_input, "Share of items kept blind for agreement").set_value(0.25)
    by_label(at.button, "Save source settings").click().run()
    no_exception(at)
    assert "Source settings saved." in values(at.success)
    with read_session(engine) as session:
        saved = session.get(Project, project.id)
    assert (saved.suggestion_display, saved.source_votes_count, saved.blind_fraction) == ("beside", True, 0.25)


def test_lead_starts_a_label_audit_and_reads_its_estimate(engine: Engine, lead: User) -> None:
    """Issue 12: the sample-size calculator, starting an audit, its estimate once reviewed."""
    from datetime import datetime, timezone

    from curation.db import write_session
    from curation.models import Project
    from curation.review.annotate import submit_annotation
    from curation.review.audits import clopper_pearson
    from curation.review.queue import next_item
    from curation.review.sources import store_source_labels
    from tests.curation.test_review_queue import make_project

    project = make_project(engine, lead, 8, k=1)
    with write_session(engine) as session:
        store_source_labels(session, session.get(Project, project.id), "vendor-2024", "vote",
                            [(f"T-{i:03d}", "billing", None) for i in range(1, 9)], None,
                            datetime(2026, 11, 29, tzinfo=timezone.utc))
    at = open_page(project.id)
    assert ("Sample size: 427 reviewed items give a 95% Clopper-Pearson interval at most ±3.5% wide around 15%."
            in values(at.caption))
    by_label(at.number_input, "Items").set_value(4)
    by_label(at.button, "Start audit").click().run()
    no_exception(at)
    assert any("4 items drawn" in s for s in values(at.success))
    assert any(t.endswith("of vendor-2024: 0 of 4 items reviewed; no estimate yet") for t in values(at.text))
    for label in ("billing", "billing", "billing", "refund"):
        item = next_item(engine, lead, project.id)
        assert item is not None and item.blind
        submit_annotation(engine, lead, item.example.id, label=label)
    at.run()
    no_exception(at)
    low, high = clopper_pearson(1, 4)
    assert any(t.endswith(f"4 of 4 items reviewed; error rate 25.0% [{low:.1%}, {high:.1%}] (95% Clopper-Pearson)")
               for t in values(at.text))
    audits = next(f for f in frames(at) if "source label" in f.columns)
    assert audits[["source label", "sampled", "reviewed", "errors", "error rate"]].to_dict("records") == [
        {"source label": "billing", "sampled": 4, "reviewed": 4, "errors": 1, "error rate": "25.0%"}]
    by_label(at.button, "Close audit (its items leave blind review)").click().run()
    no_exception(at)
    assert any(t.endswith("(closed)") for t in values(at.text))
