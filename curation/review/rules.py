"""Pure review rules: an item's status and final label from its k labels and the project rule."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from curation.models import ExampleStatus, FinalLabelRule

# A generation response's rating: 1 = needs a rewrite ... 5 = send as is. The review page's buttons, the
# annotation check and agreement's ordinal categories all read this one scale.
RATING_SCALE: tuple[int, ...] = (1, 2, 3, 4, 5)


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


@dataclass(frozen=True)
class DisputeFigures:
    """Per item (arrays of length N): answers given, distinct answers, the most common answer's share and the
    Shannon entropy (bits) of the answers."""

    n_answers: npt.NDArray[np.int64]
    distinct: npt.NDArray[np.int64]
    majority_share: npt.NDArray[np.float64]
    entropy: npt.NDArray[np.float64]


def dispute_figures(counts: npt.ArrayLike) -> DisputeFigures:
    """`counts`: N items x K answers, how many annotators gave each answer (zero-padded rows are fine). An
    item with no answers has share and entropy NaN."""
    table = np.asarray(counts, dtype=np.float64)
    if table.ndim != 2:
        raise ValueError(f"counts must be items x answers, got shape {table.shape}")
    n = table.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        share = table.max(axis=1, initial=0.0) / n
        p = table / n[:, None]
        entropy = -(np.where(p > 0, p * np.log2(np.where(p > 0, p, 1.0)), 0.0)).sum(axis=1)
    entropy = np.where(n > 0, entropy, np.nan)
    return DisputeFigures(n.astype(np.int64), (table > 0).sum(axis=1).astype(np.int64), share, entropy)


def most_disputed_first(counts: npt.ArrayLike, example_ids: npt.ArrayLike) -> npt.NDArray[np.intp]:
    """Positions of the items, most disputed first: the lowest share for the most common answer, then the most
    distinct answers, the highest entropy, the most answers, and the lowest example id (a stable order). The
    one ranking behind the Adjudication queue and the Agreement page's most disputed items."""
    figures = dispute_figures(counts)
    ids = np.asarray(example_ids, dtype=np.int64)
    return np.lexsort((ids, -figures.n_answers, -figures.entropy, -figures.distinct, figures.majority_share))
