"""curation.agreement_report: the ratings matrix read from the database and every figure of the report,
checked against curation.agreement on the same hand-made matrix; undefined figures with their reasons;
the role check; ConvAbuse through the core and the CLI."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import insert, update
from sqlalchemy.engine import Engine

from curation.agreement import coefficients, statistics
from curation.agreement.figures import NO_ITEMS, NO_RATINGS, NO_SCORED, ONE_CATEGORY, band_for
from curation.agreement.loading import data_version, load_ratings
from curation.agreement.report import agreement_report, confusion
from curation.cli import main as cli
from curation.data.formats import open_table
from curation.data.importer import import_table
from curation.data.mapping import guess_mapping
from curation.data.projects import create_project, get_project
from curation.db import write_session
from curation.errors import InputError, PermissionDenied
from curation.models import Annotation, Example, ExampleStatus, Project, TaskType, User, utcnow
from tests.conftest import BOTH_BACKENDS, IN_CI, SHARED

LABELS = ["a", "b", "c"]
# item -> {annotator: label}; the file lists the items in this order, so example ids follow it.
JUDGEMENTS: dict[str, dict[str, str]] = {
    "i1": {"x": "a", "y": "a", "z": "a"},
    "i2": {"x": "a", "y": "b", "z": "a"},
    "i3": {"x": "b", "y": "b"},
    "i4": {"x": "c", "y": "c", "z": "b"},
    "i5": {"x": "a", "y": "c", "z": "b"},
    "i6": {"x": "b", "y": "b", "z": "b"},
    "i7": {"x": "a", "z": "a"},
    "i8": {"y": "c", "z": "c"},
    "i9": {"x": "a", "y": "b"},
    "i10": {"x": "a"},
}
ANNOTATORS = ["x", "y", "z"]  # import creates the accounts in name order, so user ids follow it
# Final labels by the project rule (k = 2, majority; a tie is a dispute, one rating is in review).
REFERENCE = ["a", "a", "b", "c", None, "b", "a", "c", None, None]
CONVABUSE = SHARED / "datasets" / "convabuse" / "1_full" / "ConvAbuseEMNLPfull.csv"


def write_long_csv(path: Path, judgements: dict[str, dict[str, str]]) -> Path:
    lines = ["item_id,annotator,label,text"]
    for item, by_annotator in judgements.items():
        for annotator, label in by_annotator.items():
            lines.append(f"{item},{annotator},{label},text of {item}")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def import_long(engine: Engine, actor: User, tmp_path: Path, judgements: dict[str, dict[str, str]],
                name: str = "Hand", labels: list[str] | None = None) -> int:
    project = create_project(engine, actor, name, labels=labels or LABELS, overlap_k=2)
    table = open_table(write_long_csv(tmp_path / f"{name}.csv", judgements))
    mapping = guess_mapping(table)
    assert mapping.annotator == "annotator" and mapping.label == "label"
    mapping.id = ["item_id"]  # the guess takes an id column whose values are all unique for a row number
    import_table(engine, actor, table, mapping, name)
    assert project.id is not None
    return project.id


def hand_matrix(judgements: dict[str, dict[str, str]] = JUDGEMENTS,
                annotators: list[str] = ANNOTATORS) -> list[list[str | None]]:
    return [[row.get(name) for name in annotators] for row in judgements.values()]


@BOTH_BACKENDS
def test_report_matches_the_statistics_module_on_a_hand_made_matrix(engine: Engine, lead: User,
                                                                    tmp_path: Path) -> None:
    project_id = import_long(engine, lead, tmp_path, JUDGEMENTS)
    table = open_table(tmp_path / "Hand.csv")
    assert guess_mapping(table).id == ["item_id"]  # repeated per annotator: guessed as the item id
    report = agreement_report(engine, lead, project_id, n_resamples=200, seed=7)
    matrix = hand_matrix()

    assert (report.level, report.default_level, report.labels) == ("nominal", "nominal", LABELS)
    assert (report.n_items, report.n_scored, report.n_raters, report.n_ratings) == (10, 9, 3, 24)
    exact = pytest.approx
    assert report.alpha.value == exact(coefficients.krippendorff_alpha(matrix, "nominal", LABELS), abs=1e-12)
    assert report.ac1.value == exact(coefficients.gwet_ac1(matrix, LABELS), abs=1e-12)
    assert report.percent.value == exact(coefficients.percent_agreement(matrix), abs=1e-12)
    assert (report.alpha.low, report.alpha.high) == exact(
        statistics.bootstrap_interval(matrix, "krippendorff_alpha", 200, seed=7, categories=LABELS), abs=1e-12)
    assert (report.ac1.low, report.ac1.high) == exact(
        statistics.bootstrap_interval(matrix, "gwet_ac1", 200, seed=7, categories=LABELS), abs=1e-12)
    kappa, shared = statistics.pairwise_kappa_matrix(matrix, categories=LABELS)
    upper = kappa[np.triu_indices(3, 1)]
    assert report.cohen.value == exact(float(upper[np.isfinite(upper)].mean()), abs=1e-12)
    assert "mean" in report.cohen.name and "3 of 3 annotator pairs" in report.cohen.note
    # Scored items have 2 or 3 ratings: Fleiss does not apply, and says why.
    assert report.fleiss.value is None and "between 2 and 3 ratings" in (report.fleiss.reason or "")

    assert report.band == band_for(report.alpha.value)
    assert report.meets_threshold is (report.alpha.value >= 0.667)
    assert report.pairwise.annotators == ANNOTATORS
    np.testing.assert_allclose(np.array(report.pairwise.kappa, dtype=float), kappa, atol=1e-12)
    assert report.pairwise.shared == shared.tolist()

    per_label = statistics.per_label_agreement(matrix, "krippendorff_alpha", LABELS)
    assert [row.label for row in report.per_label] == LABELS
    assert [row.n_ratings for row in report.per_label] == [10, 9, 5]
    for row in report.per_label:
        assert row.alpha == exact(per_label[row.label], abs=1e-12)
        assert row.share == exact(row.n_ratings / 24)

    expected = statistics.annotator_agreement(matrix, REFERENCE, annotators=ANNOTATORS, categories=LABELS)
    assert [a.annotator for a in report.annotators] == ANNOTATORS
    for got, want in zip(report.annotators, expected, strict=True):
        assert (got.n_rated, got.n_reference) == (want.n_rated, want.n_reference)
        for name in ("mean_pairwise_kappa", "alpha_without", "alpha_gain", "kappa_vs_reference",
                     "accuracy_vs_reference"):
            assert getattr(got, name) == exact(getattr(want, name), abs=1e-12, nan_ok=True), name

    # Most disputed first: three labels (1/3 majority), then a 1-1 tie, then the 2-of-3 majorities by id.
    assert [d.external_id for d in report.disputed] == ["i5", "i9", "i2", "i4"]
    top = report.disputed[0]
    assert (top.n_ratings, top.n_distinct, top.labels) == (3, 3, {"a": 1, "c": 1, "b": 1})
    assert top.majority_share == exact(1 / 3) and top.entropy == exact(math.log2(3))
    assert report.disputed[1].entropy == exact(1.0) and report.disputed[1].status == "disputed"

    assert any("Only 9 items with two or more ratings" in w for w in report.warnings)
    assert not any("of all ratings" in w for w in report.warnings)
    data = report.to_dict()
    assert json.loads(json.dumps(data, allow_nan=False))["alpha"]["value"] == exact(report.alpha.value)

    # Ordinal uses the project's label order (a < b < c) and a linear-weighted kappa.
    ordinal = agreement_report(engine, lead, project_id, "ordinal", n_resamples=0)
    assert ordinal.alpha.value == exact(coefficients.krippendorff_alpha(matrix, "ordinal", LABELS), abs=1e-12)
    assert ordinal.alpha.interval_reason == "no bootstrap resamples requested" and not ordinal.alpha.has_interval
    assert ordinal.pairwise.weights == "linear"
    linear, _ = statistics.pairwise_kappa_matrix(matrix, "linear", LABELS)
    np.testing.assert_allclose(np.array(ordinal.pairwise.kappa, dtype=float), linear, atol=1e-12)

    # A confusion matrix of two annotators, rows x and columns y, over the items both rated.
    pair = confusion(engine, lead, project_id, report.pairwise.annotator_ids[0], report.pairwise.annotator_ids[1])
    counts, _ = statistics.confusion_matrix([r[0] for r in matrix], [r[1] for r in matrix], LABELS)
    assert (pair.annotator_a, pair.annotator_b, pair.labels) == ("x", "y", LABELS)
    assert pair.counts == counts.tolist() and pair.n_shared == 7
    assert pair.kappa == exact(coefficients.cohen_kappa([r[0] for r in matrix], [r[1] for r in matrix],
                                                 categories=LABELS), abs=1e-12)


def test_two_annotators_with_complete_ratings_give_fleiss_and_cohen(engine: Engine, lead: User,
                                                                      tmp_path: Path) -> None:
    judgements = {f"t{i}": {"p": p, "q": q} for i, (p, q) in
                  enumerate(["aa", "ab", "bb", "cc", "ca", "bb", "aa", "cb", "cc", "ab"])}
    judgements["single"] = {"p": "a"}  # one rating: not scored, so Fleiss still applies
    project_id = import_long(engine, lead, tmp_path, judgements)
    report = agreement_report(engine, lead, project_id, n_resamples=50)
    matrix = hand_matrix(judgements, ["p", "q"])
    assert (report.n_items, report.n_scored) == (11, 10)
    assert report.fleiss.value == pytest.approx(coefficients.fleiss_kappa(matrix[:10], LABELS), abs=1e-12)
    assert report.fleiss.note == "2 ratings on each scored item"
    assert report.cohen.name == "Cohen's kappa"
    assert report.cohen.value == pytest.approx(
        coefficients.cohen_kappa([r[0] for r in matrix], [r[1] for r in matrix], categories=LABELS), abs=1e-12)
    # The alpha gain is undefined by construction with two annotators, and the CLI text says why.
    by_name = {person.annotator: person for person in report.annotators}
    assert math.isnan(by_name["p"].alpha_gain)
    assert "with two annotators" in by_name["p"].reasons["alpha_gain"]
    text = report.summary_text()
    lines = text.splitlines()
    p_line = next(i for i, line in enumerate(lines) if line.startswith("  p "))
    assert lines[p_line + 1] == ("      alpha gain undefined: with two annotators the others are one annotator, "
                                 "and alpha needs at least two: undefined by construction")
    # the "single" item has no final label, but p and q have labelled items: no reference reason
    assert "kappa vs final labels undefined" not in text


def test_undefined_figures_are_nan_with_reasons_and_never_raise(engine: Engine, lead: User,
                                                               tmp_path: Path) -> None:
    same = {f"s{i}": {"x": "a", "y": "a"} for i in range(5)}
    project_id = import_long(engine, lead, tmp_path, same)
    report = agreement_report(engine, lead, project_id)
    assert math.isnan(report.alpha.value) and report.alpha.reason == ONE_CATEGORY
    assert report.band == "undefined" and report.band_text == f"undefined: {ONE_CATEGORY}"
    assert report.meets_threshold is False
    assert f"Krippendorff's alpha (nominal) is undefined: {ONE_CATEGORY}." in report.warnings
    assert any("'a' has 100% of all ratings" in w for w in report.warnings)
    assert report.ac1.value == pytest.approx(1.0)  # AC1 counts the unused labels b and c: defined
    assert report.percent.value == pytest.approx(1.0)
    assert report.disputed == []
    data = json.loads(json.dumps(report.to_dict(), allow_nan=False))
    assert data["alpha"]["value"] is None and data["alpha"]["reason"] == ONE_CATEGORY
    assert data["band_reason"] == ONE_CATEGORY
    assert [row["alpha"] for row in data["per_label"]] == [None, None, None]
    assert "every rating is this label" in data["per_label"][0]["reason"]

    # Interval level on labels that are not numbers: NaN with the reason, not an exception.
    interval = agreement_report(engine, lead, project_id, "interval")
    assert math.isnan(interval.alpha.value) and "needs numeric labels" in (interval.alpha.reason or "")

    empty = create_project(engine, lead, "Empty", labels=LABELS)
    assert empty.id is not None
    nothing = agreement_report(engine, lead, empty.id)
    assert (nothing.n_items, nothing.n_raters, nothing.disputed, nothing.annotators) == (0, 0, [], [])
    for coefficient in (nothing.alpha, nothing.ac1, nothing.cohen, nothing.percent, nothing.fleiss):
        assert math.isnan(coefficient.value) and coefficient.reason == NO_ITEMS  # type: ignore[arg-type]
    assert json.dumps(nothing.to_dict(), allow_nan=False)
    assert "Only 0 items" in nothing.warnings[0]

    single = {f"u{i}": {"x": "a" if i % 2 else "b"} for i in range(4)}
    one_rating_each = import_long(engine, lead, tmp_path, single, name="Single")
    alone = agreement_report(engine, lead, one_rating_each)
    assert alone.n_scored == 0 and alone.alpha.reason == NO_SCORED and alone.cohen.reason == NO_SCORED

    with pytest.raises(InputError):
        agreement_report(engine, lead, project_id, "cardinal")
    with pytest.raises(InputError):
        agreement_report(engine, lead, project_id, n_resamples=-1)


def test_generation_ratings_default_to_ordinal(engine: Engine, lead: User, annotator: User) -> None:
    project = create_project(engine, lead, "Replies", TaskType.generation)
    assert project.id is not None
    no_ratings = agreement_report(engine, lead, project.id)
    assert no_ratings.level == "ordinal" and no_ratings.alpha.reason == NO_RATINGS
    ratings = [[5, 4], [3, 3], [1, 2], [4, 5], [2, 2], [5, 5]]
    now = utcnow()
    with write_session(engine) as session:
        for i, pair in enumerate(ratings):
            example_id = session.execute(insert(Example).values(
                project_id=project.id, external_id=f"r{i}", prompt="p", response="r", meta={}, content_hash=f"h{i}",
                status=ExampleStatus.disputed.value, created_at=now, updated_at=now,
            ).returning(Example.id)).scalar_one()
            for who, value in zip((lead.id, annotator.id), pair, strict=True):
                session.execute(insert(Annotation).values(
                    example_id=example_id, annotator_id=who, rating=value, comment="", flags=[], row_version=1,
                    created_at=now, updated_at=now))
    report = agreement_report(engine, lead, project.id)
    scale = [1, 2, 3, 4, 5]
    assert report.labels == ["1", "2", "3", "4", "5"] and report.level == "ordinal"
    assert report.alpha.value == pytest.approx(coefficients.krippendorff_alpha(ratings, "ordinal", scale), abs=1e-12)
    interval = agreement_report(engine, lead, project.id, "interval")
    assert interval.alpha.value == pytest.approx(coefficients.krippendorff_alpha(ratings, "interval", scale), abs=1e-12)
    assert [a.n_reference for a in report.annotators] == [0, 0]
    assert "final label" in report.annotators[0].reasons["kappa_vs_reference"]


def test_excluded_examples_and_new_labels_change_the_matrix_and_the_data_version(
        engine: Engine, lead: User, tmp_path: Path) -> None:
    project_id = import_long(engine, lead, tmp_path, JUDGEMENTS)
    project = get_project(engine, "Hand")
    before = data_version(engine, project_id)
    assert data_version(engine, project_id) == before  # stable while nothing changes
    assert load_ratings(engine, project).shape == (10, 3)
    with write_session(engine) as session:
        session.execute(update(Example).where(Example.project_id == project_id, Example.external_id == "i5")
                        .values(status=ExampleStatus.excluded.value, updated_at=utcnow()))
    excluded = data_version(engine, project_id)
    assert excluded != before
    report = agreement_report(engine, lead, project_id, n_resamples=0)
    assert report.n_items == 9 and "i5" not in [d.external_id for d in report.disputed]

    table = open_table(write_long_csv(tmp_path / "more.csv", {"i10": {"y": "a"}}))
    mapping = guess_mapping(table)
    mapping.id = ["item_id"]
    import_table(engine, lead, table, mapping, "Hand")
    assert data_version(engine, project_id) != excluded
    assert agreement_report(engine, lead, project_id, n_resamples=0).n_scored == 9  # i10 now has two ratings

    edited = data_version(engine, project_id)
    with write_session(engine) as session:  # a lead lowers the approval threshold
        session.execute(update(Project).where(Project.id == project_id).values(min_agreement=0.2,
                                                                                  updated_at=utcnow()))
    assert data_version(engine, project_id) != edited
    assert agreement_report(engine, lead, project_id, n_resamples=0).threshold == 0.2


def test_annotators_may_not_read_agreement(engine: Engine, lead: User, annotator: User, tmp_path: Path) -> None:
    project_id = import_long(engine, lead, tmp_path, JUDGEMENTS)
    with pytest.raises(PermissionDenied):
        agreement_report(engine, annotator, project_id)
    with pytest.raises(PermissionDenied):
        confusion(engine, annotator, project_id, lead.id, annotator.id)  # type: ignore[arg-type]


def test_cli_prints_the_report(engine: Engine, admin: User, tmp_path: Path,
                               capsys: pytest.CaptureFixture[str]) -> None:
    import_long(engine, admin, tmp_path, JUDGEMENTS)
    assert cli.main(["agreement", "--project", "Hand", "--resamples", "100"]) == 0
    text = capsys.readouterr().out
    assert "Krippendorff's alpha (nominal)" in text and "approval threshold alpha >= 0.667" in text
    assert "most disputed items (top 4)" in text and "#5 i5: a x1, b x1, c x1 (majority 33%)" in text
    assert cli.main(["agreement", "--project", "Hand", "--level", "interval", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["alpha"]["value"] is None and "numeric labels" in data["alpha"]["reason"]
    assert cli.main(["agreement", "--project", "Nope"]) == 2
    assert "No project named 'Nope'" in capsys.readouterr().err


def test_convabuse_gets_agreement_figures_through_the_core_and_the_cli(
        engine: Engine, admin: User, capsys: pytest.CaptureFixture[str]) -> None:
    if not CONVABUSE.is_file():
        if IN_CI:
            pytest.fail(f"{CONVABUSE} is missing")
        pytest.skip(f"{CONVABUSE} is missing (shared datasets not present)")
    table = open_table(CONVABUSE)
    import_table(engine, admin, table, guess_mapping(table), "ConvAbuse", create=True)
    project = get_project(engine, "ConvAbuse")
    assert project.id is not None
    matrix = load_ratings(engine, project)  # its speed is bench/agreement.py's business, not a test's
    assert matrix.shape == (4059, 8) and matrix.labels == ["1", "0", "-1", "-2", "-3"]

    nominal = agreement_report(engine, admin, project.id)
    ordinal = agreement_report(engine, admin, project.id, "ordinal")
    for report in (nominal, ordinal):
        assert report.n_items == 4059 and report.n_raters == 8
        assert 0 < report.alpha.value < 1 and report.alpha.has_interval  # type: ignore[operator]
        assert report.alpha.low < report.alpha.value < report.alpha.high  # type: ignore[operator]
        assert report.ac1.has_interval and report.fleiss.value is None
        assert len(report.disputed) == 20 and len(report.annotators) == 8
    assert ordinal.alpha.value > nominal.alpha.value  # type: ignore[operator]  # near-misses count less

    assert cli.main(["agreement", "--project", "ConvAbuse", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert 0 < data["alpha"]["value"] < 1 and data["alpha"]["value"] == pytest.approx(nominal.alpha.value)
    assert data["alpha"]["low"] < data["alpha"]["value"] < data["alpha"]["high"]
    assert data["ac1"]["value"] == pytest.approx(nominal.ac1.value)
    assert data["fleiss"]["value"] is None and "same number of ratings" in data["fleiss"]["reason"]
    assert len(data["per_label"]) == 5 and len(data["annotators"]) == 8
    assert len(data["pairwise"]["kappa"]) == 8 and data["pairwise"]["annotators"][0] == "Annotator1"


def test_ordered_labels_default_to_ordinal_agreement_and_the_checklist_stores_the_level(
        engine: Engine, lead: User, tmp_path: Path) -> None:
    from curation.data.projects import get_project_by_id, update_project
    from curation.versions.build import BuildOptions, create_candidate

    project_id = import_long(engine, lead, tmp_path, JUDGEMENTS)
    assert agreement_report(engine, lead, project_id, n_resamples=0).level == "nominal"
    update_project(engine, lead, project_id, labels_ordered=True)
    assert get_project_by_id(engine, project_id).labels_ordered is True
    report = agreement_report(engine, lead, project_id, n_resamples=0)
    assert report.level == "ordinal"
    assert report.alpha.value == pytest.approx(
        agreement_report(engine, lead, project_id, "ordinal", n_resamples=0).alpha.value, abs=1e-12)
    assert report.alpha.value != pytest.approx(
        agreement_report(engine, lead, project_id, "nominal", n_resamples=0).alpha.value, abs=1e-6)
    version = create_candidate(engine, lead, project_id, BuildOptions(use_embeddings=False))
    assert version.checklist["agreement_level"] == "ordinal"
    assert version.stats["agreement"]["level"] == "ordinal"
    item = next(i for i in version.checklist["items"] if i["key"] == "agreement")
    assert item["detail"].startswith("ordinal level; ")
    assert item["measured"] == pytest.approx(report.alpha.value, abs=1e-9)
