"""curation.rereview: suspected items reach the experts chosen by the project (leads or annotators),
highest suspicion first, on the queue and in the CLI; expert decisions stick."""

from __future__ import annotations

import json

import numpy as np
import pytest
from sqlalchemy import select
from sqlalchemy.engine import Engine

from curation.cli.main import main
from curation.db import read_session
from curation.embeddings.quality import LabelIssueReport, find_label_issues_in_project, proposed_labels
from curation.errors import Conflict, PermissionDenied
from curation.models import Annotation, Example, ExampleStatus, RereviewBy, RereviewState, User
from curation.review.adjudication import adjudicate, adjudication_queue
from curation.review.annotate import submit_annotation
from curation.review.queue import next_item
from curation.review.rereview import (
    estimated_wrong_share,
    expert_confirmed_ids,
    send_for_rereview,
    set_rereview_by,
    suspected_left,
)
from tests.curation.test_quality import flipped_project  # noqa: F401 - fixture
from tests.curation.test_review_queue import fast_passwords, users  # noqa: F401 - fixture


def _example(engine: Engine, example_id: int) -> Example:
    with read_session(engine) as session:
        row = session.get(Example, example_id)
        assert row is not None
        return row


def test_leads_get_sent_items_in_the_adjudication_queue_highest_suspicion_first(
    engine: Engine, lead: User, annotator: User, flipped_project: tuple[int, set[str]],  # noqa: F811
    capsys: pytest.CaptureFixture[str],
) -> None:
    project_id, _ = flipped_project
    report = find_label_issues_in_project(engine, lead, project_id)
    suspects = report.flagged
    result = send_for_rereview(engine, lead, project_id, suspects)
    assert result.rereview_by is RereviewBy.leads and result.sent == [i.example_id for i in suspects]
    assert "sent" in result.message().lower() and "adjudication queue" in result.message()
    queue = adjudication_queue(engine, lead, project_id)
    assert [item.example_id for item in queue] == [i.example_id for i in suspects]  # the report's order
    assert [item.suspicion for item in queue] == sorted((item.suspicion for item in queue), reverse=True)
    first = queue[0]
    assert first.rereview and first.evidence["earlier_label"] == suspects[0].given_label
    assert first.evidence["proposed_label"] == suspects[0].proposed_label != suspects[0].given_label
    assert set(first.evidence) >= {"classifier", "neighbours_disagreeing", "confidence"}
    # An annotator who reaches such an item hears the truth, not "already has its 2 labels".
    with pytest.raises(Conflict, match="sent back for re-review"):
        submit_annotation(engine, annotator, first.example_id, label="billing")
    # The CLI lists the rows, not only the count.
    assert main(["--user", "lena", "adjudication", "--project", "Flips", "--list", "3"]) == 0
    out = capsys.readouterr().out
    assert f"{len(suspects)} items wait" in out and f"#{first.example_id}" in out and "sent back" in out
    assert len([line for line in out.splitlines() if line.startswith("  #")]) == 3


def test_annotators_get_fresh_blind_labels_first_and_agreement_settles(
    engine: Engine, admin: User, lead: User, flipped_project: tuple[int, set[str]],  # noqa: F811
) -> None:
    project_id, _ = flipped_project
    a, b = users(engine, admin, "ann_a", "ann_b")
    with pytest.raises(PermissionDenied):
        set_rereview_by(engine, a, project_id, "annotators")
    set_rereview_by(engine, lead, project_id, RereviewBy.annotators)
    report = find_label_issues_in_project(engine, lead, project_id)
    top, second = report.flagged[0], report.flagged[1]
    result = send_for_rereview(engine, lead, project_id, [second, top])
    assert result.rereview_by is RereviewBy.annotators and len(result.sent) == 2
    sent = _example(engine, top.example_id)
    assert sent.status == ExampleStatus.new and sent.final_label is None
    assert sent.rereview == RereviewState.pending
    assert adjudication_queue(engine, lead, project_id) == []  # not the leads' queue
    item = next_item(engine, a, project_id)
    assert item is not None and item.example.id == top.example_id  # highest suspicion first
    assert item.annotation is None and item.example.final_label is None and item.example.priority is None
    assert item.example.meta == {} and item.example.status == ExampleStatus.new  # nothing but the content
    assert next_item(engine, b, project_id).example.id == top.example_id  # k = 2 fresh labels
    submit_annotation(engine, a, top.example_id, label=top.proposed_label)
    submit_annotation(engine, b, top.example_id, label=top.proposed_label)
    settled = _example(engine, top.example_id)
    assert settled.status == ExampleStatus.labelled and settled.final_label == top.proposed_label
    assert settled.rereview == RereviewState.settled
    assert top.example_id in expert_confirmed_ids(engine, lead, project_id)


def test_superseded_labels_do_not_count_for_the_fresh_round(
    engine: Engine, admin: User, lead: User, flipped_project: tuple[int, set[str]],  # noqa: F811
) -> None:
    project_id, _ = flipped_project
    a, b, c, d = users(engine, admin, "ann_a", "ann_b", "ann_c", "ann_d")
    set_rereview_by(engine, lead, project_id, "annotators")
    report = find_label_issues_in_project(engine, lead, project_id)
    issue = report.flagged[0]
    send_for_rereview(engine, lead, project_id, [issue])
    submit_annotation(engine, a, issue.example_id, label=issue.given_label)
    submit_annotation(engine, b, issue.example_id, label=issue.given_label)
    assert _example(engine, issue.example_id).final_label == issue.given_label  # a round that kept it
    # A lead asks explicitly for another round: the two labels are superseded, two fresh ones decide.
    again = send_for_rereview(engine, lead, project_id, [issue], force=True)
    assert again.sent == [issue.example_id]
    offered = next_item(engine, a, project_id)
    assert offered is None or offered.example.id != issue.example_id  # who labelled it before: not asked again
    submit_annotation(engine, c, issue.example_id, label=issue.proposed_label)
    assert _example(engine, issue.example_id).status == ExampleStatus.in_review  # 1 of 2 fresh labels
    submit_annotation(engine, d, issue.example_id, label=issue.proposed_label)
    final = _example(engine, issue.example_id)
    assert final.status == ExampleStatus.labelled and final.final_label == issue.proposed_label
    with read_session(engine) as session:
        flags = session.execute(select(Annotation.superseded).where(
            Annotation.example_id == issue.example_id).order_by(Annotation.id)).scalars().all()
    assert flags == [True, True, False, False]


def test_a_second_round_does_not_undo_expert_decisions(
    engine: Engine, lead: User, flipped_project: tuple[int, set[str]],  # noqa: F811
) -> None:
    project_id, _ = flipped_project
    report = find_label_issues_in_project(engine, lead, project_id)
    first = report.flagged[:3]
    send_for_rereview(engine, lead, project_id, first)
    kept = first[0]  # the lead keeps the given label: the suspicion was wrong
    adjudicate(engine, lead, kept.example_id, final_label=kept.given_label, reason="checked: right as given")
    for issue in first[1:]:
        adjudicate(engine, lead, issue.example_id, final_label=issue.proposed_label, reason="relabelled")
    confirmed = expert_confirmed_ids(engine, lead, project_id)
    assert confirmed == {i.example_id for i in first}
    again = find_label_issues_in_project(engine, lead, project_id)
    result = send_for_rereview(engine, lead, project_id, again.flagged)
    assert kept.example_id not in result.sent and set(result.confirmed) & confirmed
    assert _example(engine, kept.example_id).final_label == kept.given_label  # not cleared
    assert "confirmed by experts were not sent again" in result.message()
    left = suspected_left(again, confirmed)
    assert not {i.example_id for i in left} & confirmed
    forced = send_for_rereview(engine, lead, project_id, [kept], force=True)
    assert forced.sent == [kept.example_id]  # a lead may still ask explicitly


def test_cli_label_issues_send_and_all(
    engine: Engine, lead: User, flipped_project: tuple[int, set[str]],  # noqa: F811
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["--user", "lena", "label-issues", "--project", "Flips", "--json", "--all"]) == 0
    out = capsys.readouterr()
    assert "cross-validation folds: 5/5" in out.err  # progress while it scores
    data = json.loads(out.out)
    assert len(data["issues"]) == data["labelled"] == 80
    assert [row["rank"] for row in data["issues"]] == list(range(1, 81))
    scores = [row["score"] for row in data["issues"]]
    assert scores == sorted(scores, reverse=True)
    assert all(row["proposed_label"] and row["proposed_label"] != row["given_label"] for row in data["issues"])
    suspected = [row["example_id"] for row in data["issues"] if row["suspected"]]
    assert len(suspected) == data["suspected"]
    with pytest.raises(SystemExit):
        main(["--user", "lena", "label-issues", "--project", "Flips"] + ["--send"])
    capsys.readouterr()
    assert main(["--user", "lena", "label-issues", "--project", "Flips", "--send", "top", "2"]) == 0
    out = capsys.readouterr()
    # the data had not changed since the first call: its report (the page's task file) was reused
    assert "Sent 2 items back for re-review" in out.out and "reused" in out.err
    assert main(["--user", "lena", "adjudication", "--project", "Flips", "--json", "--list", "5"]) == 0
    queued = json.loads(capsys.readouterr().out)["most_disputed"]
    assert [row["example_id"] for row in queued] == suspected[:2]
    assert main(["--user", "lena", "label-issues", "--project", "Flips", "--send", "flagged"]) == 0
    assert f"Sent {len(suspected) - 2} items" in capsys.readouterr().out
    assert main(["--user", "lena", "label-issues", "--project", "Flips", "--send", "some"]) == 2


def test_proposed_labels_take_the_likeliest_other_label() -> None:
    probs = np.array([[0.7, 0.2, 0.1], [0.1, 0.3, 0.6]])
    knn = np.array([[0.2, 0.0, 0.8], [0.0, 1.0, 0.0]])
    proposal, confidence = proposed_labels(probs, knn, np.array([0, 2]))
    assert proposal.tolist() == [2, 1]  # row 0: (0.1+0.8)/2 = 0.45 beats (0.2+0)/2; row 1: 0.65 beats 0.05
    assert np.allclose(confidence, [0.45, 0.65])


def test_estimated_wrong_share_counts_cleanlab_flags_no_expert_decided() -> None:
    from curation.embeddings.quality import LabelIssue

    def issue(example_id: int, p: float, cleanlab: bool) -> LabelIssue:
        return LabelIssue(example_id, str(example_id), "", "a", "b", p, 0.0, "a", cleanlab, 1 - p)

    report = LabelIssueReport(1, "fp", 5, issues=[issue(1, 0.1, True), issue(2, 0.5, True), issue(3, 0.2, False),
                                                 issue(4, 0.9, False), issue(5, 0.3, True)])
    assert estimated_wrong_share(report, set()) == pytest.approx(3 / 5)  # the probabilities do not count
    assert estimated_wrong_share(report, {1, 3}) == pytest.approx(2 / 5)  # decided by experts: right
    assert estimated_wrong_share(report, {1, 2, 5}) == 0.0
    assert estimated_wrong_share(LabelIssueReport(1, "fp", 0), set()) == 0.0


def test_checklist_counts_the_suspected_errors_the_page_shows(
    engine: Engine, lead: User, flipped_project: tuple[int, set[str]],  # noqa: F811
) -> None:
    from curation.versions.build import BuildOptions, create_candidate

    project_id, _ = flipped_project
    report = find_label_issues_in_project(engine, lead, project_id)
    decided = report.flagged[0]
    adjudicate(engine, lead, decided.example_id, final_label=decided.given_label, reason="checked")
    page = suspected_left(find_label_issues_in_project(engine, lead, project_id),
                          expert_confirmed_ids(engine, lead, project_id))
    assert decided.example_id not in {i.example_id for i in page}
    version = create_candidate(engine, lead, project_id, BuildOptions(seed=1))
    checks = {c["key"]: c for c in version.checklist["items"]}
    assert checks["suspected_errors"]["measured"] == len(page) > 0
