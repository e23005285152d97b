"""Train/eval split builder that cannot leak near-duplicates, and a leakage check for any split.

Public API (issue 6 builds dataset versions on these):

- `build_split(ids, labels, texts, vectors=None, *, eval_fraction=0.2, seed=0, threshold=DEFAULT_THRESHOLD)
  -> dict[int, "train" | "eval"]`: every id on one side. Near-duplicate groups (exact normalised text,
  or cosine >= threshold when vectors are given; connected components) stay whole on one side; groups
  are stratified by their majority label, so each label's eval share is as close to `eval_fraction` as
  whole groups allow. Deterministic for a given input and seed (input order does not matter).
- `find_leakage(split, ids, texts, vectors=None, *, threshold=DEFAULT_THRESHOLD) -> list[Leak]`: eval
  items that exactly (normalised text) or nearly (cosine >= threshold) duplicate a train item, with the
  most similar train item. `split` maps id -> side; "train" is train, every other non-empty side
  ("eval", "test", "validation", ...) is checked against it.
- `project_leakage` / `project_split`: the same on a project's examples (their `split` column).
"""

from __future__ import annotations

import hashlib
from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from curation.embeddings.dedup import (
    DEFAULT_THRESHOLD,
    _unique_pairs,
    components,
    exact_duplicate_pairs,
    near_duplicate_pairs,
)
from curation.embeddings.encode import load_items, normalise_text, project_vectors

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

    from curation.embeddings.encode import Progress
    from curation.models import User


Side = Literal["train", "eval"]
TRAIN = "train"


def _groups(n: int, texts: Sequence[str], vectors: np.ndarray | None, threshold: float) -> list[list[int]]:
    parts = [exact_duplicate_pairs(texts)]
    if vectors is not None and n > 1:
        parts.append(near_duplicate_pairs(vectors, threshold))
    pairs = _unique_pairs([np.sort(p, axis=1) for p in parts if len(p)])
    grouped = components(n, pairs)
    seen = {i for g in grouped for i in g}
    return grouped + [[i] for i in range(n) if i not in seen]


def build_split(
    ids: Sequence[int],
    labels: Sequence[str | None],
    texts: Sequence[str],
    vectors: np.ndarray | None = None,
    *,
    eval_fraction: float = 0.2,
    seed: int = 0,
    threshold: float = DEFAULT_THRESHOLD,
) -> dict[int, Side]:
    """Assign each example id to "train" or "eval" (see the module docstring)."""
    if not 0 < eval_fraction < 1:
        raise ValueError("eval_fraction must be between 0 and 1")
    n = len(ids)
    if not (len(labels) == len(texts) == n) or (vectors is not None and len(vectors) != n):
        raise ValueError("ids, labels, texts (and vectors) must have the same length")
    # Canonical order (by id), so the result does not depend on the input order.
    order = sorted(range(n), key=lambda i: ids[i])
    ids = [ids[i] for i in order]
    labels = [labels[i] for i in order]
    texts = [texts[i] for i in order]
    vectors = vectors[order] if vectors is not None else None
    groups = _groups(n, texts, vectors, threshold)

    strata: dict[str, list[list[int]]] = defaultdict(list)
    for group in groups:
        votes = Counter(labels[i] or "" for i in group)
        strata[min(votes, key=lambda label: (-votes[label], label))].append(group)
    result: dict[int, Side] = {}
    for label in sorted(strata):
        members = strata[label]

        def key(group: list[int], label: str = label) -> str:
            return hashlib.sha256(f"{seed}|{label}|{ids[group[0]]}".encode()).hexdigest()

        members.sort(key=key)
        total = sum(len(g) for g in members)
        target = eval_fraction * total
        in_eval = 0
        for group in members:
            # Put the group in eval when that brings the eval count closer to the target.
            if abs(in_eval + len(group) - target) < abs(in_eval - target):
                side: Side = "eval"
                in_eval += len(group)
            else:
                side = "train"
            for i in group:
                result[int(ids[i])] = side
    return result


@dataclass(frozen=True)
class Leak:
    eval_id: int
    eval_side: str
    train_id: int  # the most similar train item
    similarity: float
    kind: str  # "exact" (same normalised text) or "near"


def find_leakage(
    split: Mapping[int, str | None],
    ids: Sequence[int],
    texts: Sequence[str],
    vectors: np.ndarray | None = None,
    *,
    threshold: float = DEFAULT_THRESHOLD,
) -> list[Leak]:
    """Eval items (any side but "train") that duplicate a train item; most similar first."""
    train = [i for i, example_id in enumerate(ids) if split.get(example_id) == TRAIN]
    held = [i for i, example_id in enumerate(ids) if split.get(example_id) not in (None, "", TRAIN)]
    if not train or not held:
        return []
    by_text: dict[str, int] = {}
    for i in train:
        by_text.setdefault(normalise_text(texts[i]), i)
    leaks: dict[int, Leak] = {}
    for i in held:
        j = by_text.get(normalise_text(texts[i]))
        if j is not None:
            leaks[i] = Leak(int(ids[i]), str(split[ids[i]]), int(ids[j]), 1.0, "exact")
    if vectors is not None:
        x_train = np.ascontiguousarray(vectors[train], dtype=np.float32)
        block = max(1, 2**25 // max(1, len(train)))  # eval rows per block: a block's sims stay ~128 MB
        for start in range(0, len(held), block):
            rows = held[start : start + block]
            sims = np.ascontiguousarray(vectors[rows], dtype=np.float32) @ x_train.T
            best = sims.argmax(axis=1)
            top = sims[np.arange(len(rows)), best]
            for r, row in enumerate(rows):
                if row in leaks or top[r] < threshold:
                    continue
                leaks[row] = Leak(
                    int(ids[row]),
                    str(split[ids[row]]),
                    int(ids[train[best[r]]]),
                    float(min(1.0, top[r])),
                    "near",
                )
    return sorted(leaks.values(), key=lambda leak: (-leak.similarity, leak.eval_id))


def project_leakage(
    engine: Engine,
    actor: User,
    project_id: int,
    threshold: float = DEFAULT_THRESHOLD,
    model: str | None = None,
    *,
    progress: Progress | None = None,
) -> tuple[list[Leak], dict[str, int]]:
    """Leaks between the project's `split` values (excluded examples left out), and the size of each side."""
    from curation.access.roles import LEADS, require_role

    require_role(actor, *LEADS)
    items = load_items(engine, actor, project_id)
    split = dict(zip(items.ids, items.splits))
    sizes = dict(Counter(s or "(none)" for s in items.splits))
    if TRAIN not in sizes or len([s for s in sizes if s not in (TRAIN, "(none)")]) == 0:
        return [], sizes
    vectors = project_vectors(items, model, progress=progress)
    return find_leakage(split, items.ids, items.texts, vectors, threshold=threshold), sizes


def project_split(
    engine: Engine,
    actor: User,
    project_id: int,
    *,
    eval_fraction: float = 0.2,
    seed: int = 0,
    threshold: float = DEFAULT_THRESHOLD,
    model: str | None = None,
    labelled_only: bool = False,
) -> dict[int, Side]:
    """`build_split` over the project's examples (not excluded; only labelled ones if asked)."""
    from curation.access.roles import LEADS, require_role

    require_role(actor, *LEADS)
    items = load_items(engine, actor, project_id)
    keep = [i for i, status in enumerate(items.statuses) if not labelled_only or status == "labelled"]
    vectors = project_vectors(items, model)[keep] if keep else None
    return build_split(
        [items.ids[i] for i in keep],
        [items.labels[i] for i in keep],
        [items.texts[i] for i in keep],
        vectors,
        eval_fraction=eval_fraction,
        seed=seed,
        threshold=threshold,
    )


def apply_split(engine: Engine, actor: User, project_id: int, assignment: Mapping[int, str]) -> int:
    """Write `assignment` (id -> side) into the examples' `split` column; one audit event. Leads."""
    from sqlalchemy import update

    from curation.access import audit
    from curation.access.roles import LEADS, require_role
    from curation.models import Example, utcnow
    from curation.retry import run_write

    require_role(actor, *LEADS)

    def work(session: Any) -> int:
        changed = 0
        by_side: dict[str, list[int]] = defaultdict(list)
        for example_id, side in assignment.items():
            by_side[side].append(int(example_id))
        for side, example_ids in by_side.items():
            for start in range(0, len(example_ids), 500):
                chunk = example_ids[start : start + 500]
                result = session.execute(
                    update(Example)
                    .where(Example.project_id == project_id, Example.id.in_(chunk))
                    .values(split=side, updated_at=utcnow())
                )
                changed += int(result.rowcount or 0)
        audit.record(
            session,
            actor,
            "project.split",
            "project",
            project_id,
            project_id=project_id,
            after={side: len(v) for side, v in by_side.items()},
        )
        return changed

    return run_write(engine, work)
