"""Issue 12, item 3: the sampled audit of a source's labels: exact intervals on hand-made counts,
the sample-size calculator, stratified seeded sampling, blind expert review through the queue, the
estimate overall and per label, the version checklist row, and the CLI."""

from __future__ import annotations

import math
from datetime import datetime, timezone

import pytest
from scipy.stats import binom
from sqlalchemy import select, update
from sqlalchemy.engine import Engine

from curation.cli.main import main
from curation.db import read_session, write_session
from curation.errors import PermissionDenied
from curation.models import Example, Project, User
from curation.review.annotate import get_review_item, submit_annotation
from curation.review.audits import (
    allocate,
    audit_result,
    clopper_pearson,
    close_audit,
    sample_size,
    source_label_measures,
    start_audit,
    wilson,
)
from curation.review.queue import next_item
from curation.review.sources import store_source_labels
from curation.versions.build import BuildOptions, create_candidate
from curation.versions.checklist import FAIL, NA, PASS, Measures, source_label_items
from tests.curation.test_review_queue import example_ids, make_project, users

NOW = datetime(2026, 11, 29, tzinfo=timezone.utc)


# --------------------------------------------------------------------------- intervals on hand-made counts


def test_clopper_pearson_closed_forms_at_the_edges() -> None:
    # 0 of n: upper = 1 - (alpha/2)^(1/n); n of n: lower = (alpha/2)^(1/n).
    assert clopper_pearson(0, 10) == (0.0, pytest.approx(1 - 0.025 ** (1 / 10), abs=1e-12))
    assert clopper_pearson(10, 10) == (pytest.approx(0.025 ** (1 / 10), abs=1e-12), 1.0)
    assert clopper_pearson(0, 10)[1] == pytest.approx(0.308497, abs=1e-6)
    assert clopper_pearson(0, 0) == (0.0, 1.0)
    with pytest.raises(ValueError):
        clopper_pearson(5, 4)


@pytest.mark.parametrize(("errors", "n", "low", "high"), [
    (3, 40, 0.015742, 0.203865),
    (60, 400, 0.116458, 0.188822),
    (1, 2, 0.012579, 0.987421),
])
def test_clopper_pearson_exact_values_and_their_defining_tail_probabilities(errors: int, n: int, low: float,
                                                                          high: float) -> None:
    got_low, got_high = clopper_pearson(errors, n)
    assert (got_low, got_high) == (pytest.approx(low, abs=1e-6), pytest.approx(high, abs=1e-6))
    # The exact interval's ends are where each binomial tail holds 2.5%.
    assert binom.sf(errors - 1, n, got_low) == pytest.approx(0.025, abs=1e-9)
    assert binom.cdf(errors, n, got_high) == pytest.approx(0.025, abs=1e-9)


def test_wilson_hand_computed() -> None:
    assert wilson(8, 10) == (pytest.approx(0.490162, abs=1e-6), pytest.approx(0.943318, abs=1e-6))
    z2 = 1.959963984540054 ** 2
    assert wilson(0, 10) == (0.0, pytest.approx(z2 / (10 + z2), abs=1e-12))
    assert wilson(0, 0) == (0.0, 1.0)


def test_sample_size_is_the_smallest_n_with_the_asked_width() -> None:
    # 0 expected errors, +-5 points: 1 - 0.025^(1/n) <= 0.10  <=>  n >= ln 0.025 / ln 0.9 = 35.01.
    assert sample_size(0.0, 0.05) == math.ceil(math.log(0.025) / math.log(0.9)) == 36
    for rate, half in ((0.15, 0.035), (0.05, 0.02), (0.3, 0.1)):
        n = sample_size(rate, half)
        low, high = clopper_pearson(round(rate * n), n)
        assert high - low <= 2 * half
        low, high = clopper_pearson(round(rate * (n - 1)), n - 1)
        assert high - low > 2 * half
    assert sample_size(0.15, 0.035, population=300) == 300
    with pytest.raises(ValueError):
        sample_size(0.1, 0.0)


def test_allocation_is_proportional_with_largest_remainders() -> None:
    assert allocate({"a": 50, "b": 30, "c": 20}, 10) == {"a": 5, "b": 3, "c": 2}
    assert allocate({"a": 55, "b": 35, "c": 10}, 10) == {"a": 6, "b": 3, "c": 1}  # .5 > .5? a's .5 wins by name
    assert allocate({"a": 97, "b": 2, "c": 1}, 10) == {"a": 8, "b": 1, "c": 1}  # every stratum at least one
    assert allocate({"a": 3, "b": 1}, 10) == {"a": 3, "b": 1}
    assert sum(allocate({"x": 7, "y": 11, "z": 13}, 17).values()) == 17


# --------------------------------------------------------------------------- an audit end to end


def _vendor_project(engine: Engine, lead: User, n: int = 12) -> Project:
    """k = 1 and source votes count: the vendor's vote alone labels every item."""
    project = make_project(engine, lead, n, k=1)
    with write_session(engine) as session:
        session.execute(update(Project).where(Project.id == project.id).values(source_votes_count=True))
    with write_session(engine) as session:
        row = session.get(Project, project.id)
        labels = ["billing"] * (n // 2) + ["shipping"] * (n - n // 2)
        store_source_labels(session, row, "vendor", "vote",
                            [(f"T-{i + 1:03d}", label, None) for i, label in enumerate(labels)], None, NOW)
    return project


def _statuses(engine: Engine, project: Project) -> dict[int, str]:
    with read_session(engine) as session:
        return dict(session.execute(select(Example.id, Example.status).where(Example.project_id == project.id)).all())


def test_audit_draws_stratified_seeded_items_reviewed_blind_and_estimates(engine: Engine, lead: User,
                                                                          admin: User) -> None:
    project = _vendor_project(engine, lead)
    assert set(_statuses(engine, project).values()) == {"labelled"}  # settled by the vendor alone
    anna, = users(engine, admin, "anna")
    with pytest.raises(PermissionDenied):
        start_audit(engine, anna, project.id, "vendor", 4)
    record = start_audit(engine, lead, project.id, "vendor", 4, seed=7)
    assert record.strata == {"billing": {"population": 6, "sampled": 2}, "shipping": {"population": 6, "sampled": 2}}
    with read_session(engine) as session:
        drawn = list(session.execute(select(Example.id).where(Example.audit_id == record.id)
                                     .order_by(Example.id)).scalars())
    assert len(drawn) == 4
    again = start_audit(engine, lead, project.id, "vendor", 4, seed=7)  # same seed, items not yet drawn
    with read_session(engine) as session:
        second = set(session.execute(select(Example.id).where(Example.audit_id == again.id)).scalars())
    assert not second & set(drawn)
    close_audit(engine, lead, again.id)
    statuses = _statuses(engine, project)
    assert {statuses[i] for i in drawn} == {"new"}  # reopened: the vendor's vote no longer counts for them

    # Blind expert review through the queue: audit items first, no source votes shown.
    ids = example_ids(engine, project)
    truth = {example_id: ("billing" if index < 6 else "shipping") for index, example_id in enumerate(ids)}
    wrong = drawn[0]
    truth[wrong] = "refund"
    served = []
    for _ in range(4):
        item = next_item(engine, anna, project.id)
        assert item is not None and item.blind and item.suggestions == ()
        served.append(item.example.id)
        submit_annotation(engine, anna, item.example.id, label=truth[item.example.id])
    assert sorted(served) == drawn
    result = audit_result(engine, lead, record.id)
    assert (result.reviewed, result.errors, result.rate) == (4, 1, 0.25)
    assert (result.low, result.high) == clopper_pearson(1, 4)
    by_label = {row.label: (row.sampled, row.reviewed, row.errors) for row in result.per_label}
    wrong_label = "billing" if ids.index(wrong) < 6 else "shipping"
    assert by_label[wrong_label] == (2, 2, 1)
    assert result.confusions == {f"{wrong_label} -> refund": 1}
    assert result.summary() == (f"audit #{record.id} of vendor: 4 of 4 items reviewed; error rate 25.0% "
                                f"[{result.low:.1%}, {result.high:.1%}] (95% Clopper-Pearson)")
    # An annotator may open an audit item she labelled: still nothing from sources.
    assert get_review_item(engine, anna, drawn[1]).suggestions == ()

    # The checklist: 8 items stand on the vendor's vote alone; their audited upper bound is far above 5%.
    measures = source_label_measures(engine, project, ids)
    assert measures == {"vendor": {"unreviewed": 8, "audit_id": record.id, "reviewed": 4, "rate": 0.25,
                                   "low": result.low, "high": result.high}}
    version = create_candidate(engine, lead, project.id, BuildOptions(use_embeddings=False))
    [row] = [item for item in version.checklist["items"] if item["key"] == "source_labels:vendor"]
    assert (row["status"], row["value"]) == (FAIL, f"8 items; error rate 25.0% [{result.low:.1%}, {result.high:.1%}]")


def test_checklist_rows_for_sources_pass_fail_and_unaudited() -> None:
    base = Measures(task_type="classification", n_items=10, n_train=8, n_eval=2, project_max_source_error=0.05)
    base.source_labels = {
        "good": {"unreviewed": 500, "audit_id": 1, "reviewed": 300, "rate": 0.0, "low": 0.0, "high": 0.0122},
        "bad": {"unreviewed": 10, "audit_id": 2, "reviewed": 40, "rate": 0.075, "low": 0.0157, "high": 0.2039},
        "never": {"unreviewed": 3, "audit_id": None, "reviewed": 0, "rate": None, "low": None, "high": None},
        # suggestions only (no label rests on them), audited: the estimate is shown, judged n/a
        "hints": {"unreviewed": 0, "audit_id": 3, "reviewed": 50, "rate": 0.1, "low": 0.0333, "high": 0.2181},
    }
    rows = {row.key: (row.status, row.value) for row in source_label_items(base)}
    assert rows == {"source_labels:bad": (FAIL, "10 items; error rate 7.5% [1.6%, 20.4%]"),
                    "source_labels:good": (PASS, "500 items; error rate 0.0% [0.0%, 1.2%]"),
                    "source_labels:never": (FAIL, "3 items, error rate not measured"),
                    "source_labels:hints": (NA, "error rate 10.0% [3.3%, 21.8%]; no label of this version rests "
                                                "on it unreviewed")}


def test_cli_audit_start_status_show_size(engine: Engine, lead: User, capsys: pytest.CaptureFixture[str]) -> None:
    project = _vendor_project(engine, lead, 8)
    assert main(["--user", lead.username, "audit", "start", "--project", project.name, "--source", "vendor",
                 "--size", "4", "--seed", "1"]) == 0
    out = capsys.readouterr().out
    assert "4 items drawn (seed 1; per label sampled/population: billing 2/4, shipping 2/4)" in out
    assert main(["--user", lead.username, "audit", "status", "--project", project.name, "--source", "vendor"]) == 0
    assert capsys.readouterr().out.endswith("of vendor: 0 of 4 items reviewed; no estimate yet\n")
    assert main(["--user", lead.username, "audit", "show", "--project", project.name]) == 0
    assert "  billing: 0/2 reviewed of 4; errors 0; rate —" in capsys.readouterr().out
    assert main(["audit", "size", "--rate", "0", "--half-width", "0.05"]) == 0
    assert capsys.readouterr().out.startswith("36 items give a 95% Clopper-Pearson interval")
    assert main(["--user", lead.username, "audit", "start", "--project", project.name, "--source", "nobody",
                 "--size", "4"]) == 2
    assert "No labels of source 'nobody'" in capsys.readouterr().err
