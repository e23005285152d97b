"""Issue 12, item 2: suggestions in review per project setting, blind items never carry suggestions
or source votes (property test over settings), sources against the experts' labels, and sources
kept out of inter-annotator agreement."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select, update
from sqlalchemy.engine import Engine

from curation.agreement.loading import load_ratings
from curation.agreement.sources import blind_summary, compare, set_source_settings, source_report
from curation.db import read_session, write_session
from curation.errors import PermissionDenied
from curation.models import Example, Project, SuggestionDisplay, User
from curation.review.annotate import get_review_item, submit_annotation
from curation.review.queue import next_item
from curation.review.sources import blind_by_hash, store_source_labels
from tests.curation.test_review_queue import example_ids, make_project, users

NOW = datetime(2026, 11, 29, tzinfo=timezone.utc)


def _with_sources(engine: Engine, project: Project, n: int) -> None:
    """Every item gets a suggestion of `model` (score i/10) and a vote of the source `vendor`."""
    with write_session(engine) as session:
        project = session.get(Project, project.id)
        ids = [f"T-{i:03d}" for i in range(1, n + 1)]
        store_source_labels(session, project, "model", "suggestion",
                            [(e, "billing", (i % 10) / 10) for i, e in enumerate(ids)], None, NOW)
        store_source_labels(session, project, "vendor", "vote", [(e, "shipping", None) for e in ids], None, NOW)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(display=st.sampled_from(list(SuggestionDisplay)), votes_count=st.booleans(),
       fraction=st.sampled_from([0.0, 0.3, 0.7, 1.0]), audited=st.sets(st.integers(0, 11), max_size=4))
def test_blind_items_never_carry_suggestions_or_source_votes(engine: Engine, lead: User, display: SuggestionDisplay,
                                                             votes_count: bool, fraction: float,
                                                             audited: set[int]) -> None:
    with read_session(engine) as session:
        project = session.execute(select(Project).where(Project.name == "Prop")).scalars().first()
    if project is None:
        project = make_project(engine, lead, 12, k=3, name="Prop")
        _with_sources(engine, project, 12)
    ids = example_ids(engine, project)
    set_source_settings(engine, lead, project.id, suggestion_display=display, source_votes_count=votes_count,
                        blind_fraction=fraction)
    with write_session(engine) as session:
        session.execute(update(Example).where(Example.project_id == project.id).values(audit_id=None))
        chosen = [ids[i] for i in audited]
        if chosen:
            session.execute(update(Example).where(Example.id.in_(chosen)).values(audit_id=999))
    for index, example_id in enumerate(ids):
        item = get_review_item(engine, lead, example_id)  # a lead without an own label: "before choosing"
        blind = index in audited or blind_by_hash(project.id, f"T-{index + 1:03d}", fraction)
        assert item.blind == blind
        if blind or display is not SuggestionDisplay.beside:
            assert item.suggestions == ()
        else:
            assert [(s.source, s.label, s.kind) for s in item.suggestions] == [
                ("model", "billing", "suggestion"), ("vendor", "shipping", "vote")]


def test_after_choice_reveals_only_once_the_annotator_labelled(engine: Engine, lead: User, admin: User) -> None:
    project = make_project(engine, lead, 4, k=2)
    _with_sources(engine, project, 4)
    set_source_settings(engine, lead, project.id, suggestion_display="after_choice", blind_fraction=0.0)
    anna, = users(engine, admin, "anna")
    item = next_item(engine, anna, project.id)
    assert item is not None and item.suggestions == ()
    submit_annotation(engine, anna, item.example.id, label="refund")
    after = get_review_item(engine, anna, item.example.id)
    assert [(s.source, s.label) for s in after.suggestions] == [("model", "billing"), ("vendor", "shipping")]
    assert after.annotation is not None and after.annotation.label == "refund"  # nothing chosen for her


def test_source_report_accuracy_kappa_and_per_label(engine: Engine, lead: User, admin: User) -> None:
    project = make_project(engine, lead, 6, k=1)
    anna, = users(engine, admin, "anna")
    given_labels = ["billing", "billing", "shipping", "shipping", "refund", "billing"]
    with write_session(engine) as session:
        store_source_labels(session, session.get(Project, project.id), "vendor", "vote",
                            [(f"T-{i + 1:03d}", label, None) for i, label in enumerate(given_labels)], None, NOW)
    expert = ["billing", "shipping", "shipping", "shipping", "refund", "billing"]
    for example_id, label in zip(example_ids(engine, project), expert, strict=True):
        submit_annotation(engine, lead, example_id, label=label)
    [report] = source_report(engine, lead, project.id, n_resamples=200)
    assert (report.source, report.n, report.agree) == ("vendor", 6, 5)
    assert report.accuracy == pytest.approx(5 / 6)
    # Hand-computed kappa: po = 5/6; marginals vendor (3,2,1), experts (2,3,1) over billing, shipping, refund:
    # pe = (3*2 + 2*3 + 1*1) / 36 = 13/36; kappa = (5/6 - 13/36) / (1 - 13/36) = 17/23.
    assert report.kappa == pytest.approx(17 / 23)
    assert report.kappa_low is not None and report.kappa_high is not None
    assert report.kappa_low <= report.kappa <= report.kappa_high
    assert [(r.label, r.n, r.agree) for r in report.per_label] == [("billing", 2, 2), ("refund", 1, 1),
                                                                   ("shipping", 3, 2)]
    assert report.summary().startswith("vendor agrees with experts on 83% [")
    # The source's vote is no annotator for agreement.
    with read_session(engine) as session:
        project_row = session.get(Project, project.id)
    assert load_ratings(engine, project_row).annotators == [lead.username]
    with pytest.raises(PermissionDenied):
        source_report(engine, anna, project.id)


def test_compare_on_hand_made_pairs() -> None:
    result = compare([("a", "a")] * 8 + [("a", "b")] * 2, "s", n_resamples=100)
    assert (result.n, result.agree, result.accuracy) == (10, 8, 0.8)
    assert result.low == pytest.approx(0.4901625, abs=1e-6) and result.high == pytest.approx(0.9433178, abs=1e-6)
    assert result.kappa == pytest.approx(0.0)  # the source says "a" whatever the truth: no better than chance
    assert compare([], "s").accuracy is None


def test_blind_summary_counts_hash_chosen_and_audited_items(engine: Engine, lead: User) -> None:
    project = make_project(engine, lead, 20, k=2)
    set_source_settings(engine, lead, project.id, blind_fraction=0.25)
    summary = blind_summary(engine, lead, project.id)
    expected = [f"T-{i:03d}" for i in range(1, 21) if blind_by_hash(project.id, f"T-{i:03d}", 0.25)]
    assert (summary.blind_items, summary.items, summary.blind_external_ids) == (len(expected), 20, expected)


def test_the_sources_fingerprint_moves_with_suggestions_votes_and_audits(engine: Engine, lead: User) -> None:
    """The Agreement page caches the sources section on (data version, sources version): each change
    it shows must change one of them."""
    from curation.agreement.loading import data_version
    from curation.agreement.sources import sources_version
    from curation.review.audits import close_audit, start_audit
    from curation.review.sources import list_sources

    project = make_project(engine, lead, 12, k=1)
    seen = {(data_version(engine, project.id), sources_version(engine, project.id))}
    _with_sources(engine, project, 12)  # suggestions of "model", votes of "vendor"
    seen.add((data_version(engine, project.id), sources_version(engine, project.id)))
    with read_session(engine) as session:
        assert list_sources(session, project.id) == ["model", "vendor"]
    record = start_audit(engine, lead, project.id, "vendor", 4, 0)
    seen.add((data_version(engine, project.id), sources_version(engine, project.id)))
    close_audit(engine, lead, record.id)
    seen.add((data_version(engine, project.id), sources_version(engine, project.id)))
    assert len(seen) == 4
