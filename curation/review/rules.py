"""Pure review rules: an item's status and final label from its k labels and the project rule."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from curation.models import ExampleStatus, FinalLabelRule


def resolve_status(
    labels: Sequence[str | None], k: int, rule: FinalLabelRule
) -> tuple[ExampleStatus, str | None]:
    """Status and final label of an example from its annotators' labels.

    - no labels: `new`; fewer than k: `in_review` (no final label yet);
    - k or more: `labelled` with the winning label when the rule is met, else `disputed`.
      `unanimous` needs every label equal; `majority` needs one label on more than half of them
      (a tie is a dispute). Missing labels (None) count as votes for nothing.
    """
    if not labels:
        return ExampleStatus.new, None
    if len(labels) < k:
        return ExampleStatus.in_review, None
    counts = Counter(label for label in labels if label is not None)
    if not counts:
        return ExampleStatus.disputed, None
    top, votes = counts.most_common(1)[0]
    if rule is FinalLabelRule.unanimous:
        agreed = votes == len(labels)
    else:
        agreed = votes * 2 > len(labels)
    return (ExampleStatus.labelled, top) if agreed else (ExampleStatus.disputed, None)
