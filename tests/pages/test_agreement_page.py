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

from curation.agreement_report import ONE_CATEGORY, agreement_report, fmt
from curation.io import guess_mapping, import_table, open_table
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
    from curation.agreement_report import PairwiseMatrix

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
    from curation.projects import create_project

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
    from curation.projects import get_project

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
    from curation.projects import update_project

    project_id = import_long(engine, lead, tmp_path, JUDGEMENTS)
    update_project(engine, lead, project_id, labels_ordered=True)
    at = open_page(project_id)
    assert by_label(at.selectbox, "Level of measurement").value == "ordinal"
    ordinal = agreement_report(engine, lead, project_id, "ordinal")
    assert metric(at, "Krippendorff's alpha (ordinal)").value == fmt(ordinal.alpha.value)
