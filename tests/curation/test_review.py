"""review.resolve_status: exact cases and properties of the agreement rule."""

from __future__ import annotations

from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from curation.models import ExampleStatus, FinalLabelRule
from curation.review.rules import resolve_status

MAJ, UNA = FinalLabelRule.majority, FinalLabelRule.unanimous
NEW, REVIEW, DISPUTED, LABELLED = (ExampleStatus.new, ExampleStatus.in_review, ExampleStatus.disputed,
                                   ExampleStatus.labelled)


@pytest.mark.parametrize("labels,k,rule,expected", [
    ([], 2, MAJ, (NEW, None)),
    ([], 1, UNA, (NEW, None)),
    (["a"], 2, MAJ, (REVIEW, None)),
    (["a"], 1, MAJ, (LABELLED, "a")),
    (["a"], 1, UNA, (LABELLED, "a")),
    (["a", "a"], 2, MAJ, (LABELLED, "a")),
    (["a", "b"], 2, MAJ, (DISPUTED, None)),  # a tie is a dispute
    (["a", "b"], 2, UNA, (DISPUTED, None)),
    (["a", "a", "b"], 3, MAJ, (LABELLED, "a")),
    (["a", "a", "b"], 3, UNA, (DISPUTED, None)),
    (["a", "a", "b"], 2, MAJ, (LABELLED, "a")),  # more than k annotations: all of them count
    (["a", "b", "c"], 3, MAJ, (DISPUTED, None)),
    (["a", "a", "b", "b"], 3, MAJ, (DISPUTED, None)),
    (["a", "a", "a", "b"], 4, MAJ, (LABELLED, "a")),
    (["a", "a", "b", "c"], 4, MAJ, (DISPUTED, None)),  # 2 of 4 is not more than half
    (["a", "a", "a"], 3, UNA, (LABELLED, "a")),
    (["a", None], 2, MAJ, (DISPUTED, None)),  # a missing label votes for nothing
    (["a", "a", None], 3, MAJ, (LABELLED, "a")),
    (["a", "a", None], 3, UNA, (DISPUTED, None)),
    ([None, None], 2, MAJ, (DISPUTED, None)),
    ([None], 2, MAJ, (REVIEW, None)),
    (["a", "b"], 3, MAJ, (REVIEW, None)),
])
def test_resolve_status_exact(labels: list[str | None], k: int, rule: FinalLabelRule,
                              expected: tuple[ExampleStatus, str | None]) -> None:
    assert resolve_status(labels, k, rule) == expected


labels_strategy = st.lists(st.one_of(st.none(), st.sampled_from(["a", "b", "c", "d"])), max_size=9)


@settings(max_examples=300, deadline=None)
@given(labels=labels_strategy, k=st.integers(min_value=1, max_value=6))
def test_resolve_status_properties(labels: list[str | None], k: int) -> None:
    majority = resolve_status(labels, k, MAJ)
    unanimous = resolve_status(labels, k, UNA)
    for status, final in (majority, unanimous):
        # a final label exactly when labelled, and always one of the annotators' labels
        assert (final is not None) == (status is LABELLED)
        if final is not None:
            assert final in labels
        if not labels:
            assert status is NEW
        elif len(labels) < k:
            assert status is REVIEW
        else:
            assert status in (LABELLED, DISPUTED)
    # unanimous agreement is also a majority, with the same label
    if unanimous[0] is LABELLED:
        assert majority == unanimous
    # a majority label holds more than half the votes
    if majority[0] is LABELLED:
        assert Counter(labels)[majority[1]] * 2 > len(labels)
    # the order of the annotations does not matter
    assert resolve_status(list(reversed(labels)), k, MAJ) == majority
