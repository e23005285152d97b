"""Exact and near-duplicates: pairs, connected groups, label conflicts, and excluding the copies.

- *Exact*: the same text after `normalise_text` (NFKC, case-folded, whitespace collapsed).
- *Near*: cosine of the sentence embeddings >= a threshold. Up to `EXACT_SEARCH_MAX` vectors the
  search is exact (blocked inner products, every pair). Above it, an inverted file: faiss k-means
  splits the vectors into ~sqrt(10 n) cells, each vector is listed in its 6 nearest cells and queried
  in its nearest one, and each cell is one dense matrix product (BLAS speed, unlike a per-query IVF
  scan). Every pair reported is the exact float32 cosine of the two vectors, so none is below the
  threshold; the approximation is only in which pairs are looked at (a pair is missed only when
  neither vector's nearest cell is among the other's 6). The cells are computed on the top 64
  principal axes (4 k-means iterations on 8 points per cell): they only decide which pairs are
  compared, and at 100k the assignment on all 384 dimensions and more training cost more than the
  comparisons. `bench/dedup.py`, 100k random 384-d vectors with 1,000 planted pairs (cosine
  0.96-0.995), quiet 2-core EPYC:
  sqrt(n) cells, 8 probes, all dimensions (the first version): 4.3 s, recall 0.999;
  sqrt(10 n) cells, 6 probes, 64 axes: 1.6 s, recall 0.996 (5 probes 0.996, 4 probes at sqrt(4 n)
  cells 0.983); exact faiss range search: 67-75 s. In the bench's own runs 2.1 s against 71.8 s
  (34.8x) and 2.5 s against 79.2 s (32.2x). On BANKING77's 13,083 train and test texts
  (all-MiniLM-L6-v2) forced through the inverted file it finds 6,191 of the 6,192 exact pairs at 0.95
  and 27,020 of 27,025 at 0.90; on `bench/scale.py`'s 100k project (BANKING77 paraphrases, groups of
  hundreds) 331,619 of the 331,674 exact pairs at 0.95 (recall 0.9998) in 4.0 s (exact: 63 s).
- Pairs become groups by connected components (a chain a~b~c is one group). A group whose labelled
  members carry more than one final label is a *conflict*.

Default threshold `DEFAULT_THRESHOLD` = 0.95, measured on the 480 demo tickets with all-MiniLM-L6-v2
(curation/demo/README.md plants 12 near-duplicate groups = 20 pairs, plus 3 exact pairs):
- the planted pairs have cosines 0.921, 0.964, 0.974, 0.976, ... 1.0; the lowest (T-00032/T-00033,
  error code E-4031 vs E-4331, one digit) is below many pairs of *different* tickets cut from one
  template (invoice INV-2026-1460 vs INV-2026-4491: 0.948), so no cosine threshold separates it;
- threshold -> planted pairs found (of 23) / planted groups complete (of 12) / groups shown:
  0.90 -> 23 / 12 / 104;  0.92 -> 23 / 12 / 96 (240 of 480 tickets in a group: a flood);
  0.95 -> 22 / 11 / 61;  0.96 -> 22 / 11 / 46;  0.97 -> 21 / 10 / 32;  0.99 -> 15 / - / -.
- 0.95 keeps every planted pair but that one, and the extra groups it shows above 0.95 are
  re-sends of one template sentence with only the greeting or sign-off changed (e.g. T-00081 /
  T-00380 at 0.994), which are near-duplicates a curator wants to see. The slider goes lower.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from curation.embeddings.encode import ProjectItems, load_items, normalise_text, project_vectors

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

    from curation.embeddings.encode import Progress
    from curation.models import User


DEFAULT_THRESHOLD = 0.95
EXACT_SEARCH_MAX = 30_000
_BLOCK = 4096
_CELL_DIMS = 64  # principal axes the IVF cells are computed on
_PROBES = 6  # cells each vector is listed in


# --------------------------------------------------------------------------- search


def near_duplicate_pairs(
    vectors: np.ndarray,
    threshold: float = DEFAULT_THRESHOLD,
    *,
    method: str = "auto",
    nprobe: int | None = None,
) -> np.ndarray:
    """Pairs (i, j), i < j, of rows of `vectors` (unit vectors) whose cosine is >= `threshold`, as an
    int64 array of shape (m, 2), sorted. `method`: "exact", "ivf", or "auto" (exact up to
    EXACT_SEARCH_MAX rows)."""
    x = np.ascontiguousarray(vectors, dtype=np.float32)
    n = len(x)
    if n < 2:
        return np.zeros((0, 2), dtype=np.int64)
    if method == "auto":
        method = "exact" if n <= EXACT_SEARCH_MAX else "ivf"
    if method == "exact":
        return _exact_pairs(x, threshold)
    if method == "ivf":
        return _ivf_pairs(x, threshold, nprobe)
    raise ValueError(f"unknown method {method!r}")


def _exact_pairs(x: np.ndarray, threshold: float) -> np.ndarray:
    found: list[np.ndarray] = []
    for start in range(0, len(x), _BLOCK):
        block = x[start : start + _BLOCK] @ x[start:].T  # only the upper triangle and the diagonal block
        rows, cols = np.nonzero(block >= threshold)
        cols = cols + start
        rows = rows + start
        keep = cols > rows
        if keep.any():
            found.append(np.stack([rows[keep], cols[keep]], axis=1))
    return _unique_pairs(found)


def _ivf_pairs(x: np.ndarray, threshold: float, nprobe: int | None) -> np.ndarray:
    """Inverted-file search done as dense blocks: k-means (faiss) into ~sqrt(10 n) cells of the vectors
    projected on their top `_CELL_DIMS` principal axes; each vector is a query in its nearest cell and
    is listed in its `nprobe` nearest cells; each cell multiplies its queries by its listed vectors (one
    matrix product on the full vectors, BLAS speed). A pair is found when one member's nearest cell is
    among the other's `nprobe` cells; every pair found is an exact float32 cosine."""
    import faiss

    n, dim = x.shape
    nlist = max(8, int(math.sqrt(10 * n)))
    probes = min(nlist, nprobe or _PROBES)
    rng = np.random.default_rng(0)
    if dim > _CELL_DIMS:  # cells only decide which pairs are compared, so a projection is enough for them
        sample = x[rng.choice(n, size=min(n, max(nlist * 8, 10_000)), replace=False)]
        mean = sample.mean(axis=0)
        _values, axes = np.linalg.eigh((sample - mean).T @ (sample - mean))  # ascending: top axes last
        basis = np.ascontiguousarray(axes[:, ::-1][:, :_CELL_DIMS])
        z = x @ basis
        z -= mean @ basis
        z /= np.maximum(np.linalg.norm(z, axis=1, keepdims=True), 1e-12)
    else:
        z = x
    kmeans = faiss.Kmeans(
        z.shape[1], nlist, niter=4, seed=1, spherical=True, verbose=False, min_points_per_centroid=1
    )  # 8 points per cell are enough to place cells
    kmeans.train(np.ascontiguousarray(z[rng.choice(n, size=min(n, nlist * 8), replace=False)]))
    _d, cells = kmeans.index.search(np.ascontiguousarray(z), probes)  # (n, probes): nearest cells first
    del z
    primary = cells[:, 0]
    order = np.argsort(cells, axis=None, kind="stable")
    flat = cells.ravel()[order]
    rows = (order // probes).astype(np.int64)
    bounds = np.searchsorted(flat, np.arange(nlist + 1))
    queries = np.argsort(primary, kind="stable")
    qbounds = np.searchsorted(primary[queries], np.arange(nlist + 1))
    found: list[np.ndarray] = []
    for cell in range(nlist):
        members = rows[bounds[cell] : bounds[cell + 1]]
        asking = queries[qbounds[cell] : qbounds[cell + 1]]
        if not len(members) or not len(asking):
            continue
        block = x[members]
        for start in range(0, len(asking), 1024):
            q = asking[start : start + 1024]
            sims = x[q] @ block.T
            i, j = np.nonzero(sims >= threshold)
            a, b = q[i], members[j]
            keep = a != b
            if keep.any():
                found.append(np.stack([np.minimum(a[keep], b[keep]), np.maximum(a[keep], b[keep])], axis=1))
    return _unique_pairs(found)


def _unique_pairs(parts: list[np.ndarray]) -> np.ndarray:
    if not parts:
        return np.zeros((0, 2), dtype=np.int64)
    pairs = np.concatenate(parts).astype(np.int64)
    if not len(pairs):
        return np.zeros((0, 2), dtype=np.int64)
    return np.unique(pairs, axis=0)


def exact_duplicate_pairs(texts: Sequence[str]) -> np.ndarray:
    """Pairs (first, other) of rows with the same normalised text (each copy paired with the first)."""
    first: dict[str, int] = {}
    pairs = []
    for i, text in enumerate(texts):
        key = normalise_text(text)
        if not key:
            continue
        if key in first:
            pairs.append((first[key], i))
        else:
            first[key] = i
    return np.array(pairs, dtype=np.int64).reshape(-1, 2)


def components(n: int, pairs: np.ndarray) -> list[list[int]]:
    """Connected components (of size >= 2) of the graph on n nodes with these edges, each sorted,
    ordered by their first member."""
    if not len(pairs):
        return []
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    graph = coo_matrix((np.ones(len(pairs)), (pairs[:, 0], pairs[:, 1])), shape=(n, n))
    _count, labels = connected_components(graph, directed=False)
    groups: dict[int, list[int]] = defaultdict(list)
    for node in np.unique(pairs):
        groups[int(labels[node])].append(int(node))
    return sorted((sorted(g) for g in groups.values() if len(g) > 1), key=lambda g: g[0])


# --------------------------------------------------------------------------- project report


@dataclass(frozen=True)
class GroupMember:
    example_id: int
    external_id: str
    text: str
    label: str | None
    status: str
    split: str | None
    similarity: float  # cosine to the group's first member


@dataclass(frozen=True)
class DuplicateGroup:
    members: list[GroupMember]
    kind: str  # "exact" when every member has the same normalised text, else "near"
    min_similarity: float  # the lowest cosine over the group's found pairs

    @property
    def labels(self) -> list[str]:
        return sorted({m.label for m in self.members if m.label})

    @property
    def conflict(self) -> bool:
        """Members that carry different final labels."""
        return len(self.labels) > 1

    @property
    def ids(self) -> list[int]:
        return [m.example_id for m in self.members]

    def suggested_keep(self) -> int:
        """The member to keep: one with the group's most common label, labelled, oldest first."""
        votes = Counter(m.label for m in self.members if m.label)
        best = votes.most_common(1)[0][0] if votes else None
        ranked = sorted(self.members, key=lambda m: (m.label != best, m.label is None, m.example_id))
        return ranked[0].example_id


@dataclass
class DuplicateReport:
    project_id: int
    threshold: float
    fingerprint: str  # of the project data the report was computed from
    examples: int
    groups: list[DuplicateGroup] = field(default_factory=list)
    pairs: int = 0  # near-or-exact pairs found (before grouping)

    @property
    def conflicts(self) -> list[DuplicateGroup]:
        return [g for g in self.groups if g.conflict]

    @property
    def redundant(self) -> int:
        """Examples that would go if one per group were kept."""
        return sum(len(g.members) - 1 for g in self.groups)

    def to_dict(self) -> dict[str, Any]:
        return {
            "project_id": self.project_id,
            "threshold": self.threshold,
            "fingerprint": self.fingerprint,
            "examples": self.examples,
            "pairs": self.pairs,
            "groups": len(self.groups),
            "conflicting_groups": len(self.conflicts),
            "redundant_examples": self.redundant,
            "duplicate_groups": [
                {
                    "kind": g.kind,
                    "conflict": g.conflict,
                    "labels": g.labels,
                    "min_similarity": round(g.min_similarity, 4),
                    "suggested_keep": g.suggested_keep(),
                    "members": [
                        {
                            "example_id": m.example_id,
                            "id": m.external_id,
                            "label": m.label,
                            "status": m.status,
                            "split": m.split,
                            "similarity": round(m.similarity, 4),
                            "text": m.text,
                        }
                        for m in g.members
                    ],
                }
                for g in self.groups
            ],
        }


def duplicate_report(
    items: ProjectItems, vectors: np.ndarray | None, threshold: float = DEFAULT_THRESHOLD
) -> DuplicateReport:
    """Groups of exact and near-duplicates among `items` (vectors: their unit embeddings; None for
    exact duplicates only)."""
    n = len(items)
    parts = [exact_duplicate_pairs(items.texts)]
    if vectors is not None and n:
        parts.append(near_duplicate_pairs(vectors, threshold))
    pairs = _unique_pairs([np.sort(p, axis=1) for p in parts if len(p)])
    report = DuplicateReport(items.project_id, threshold, items.fingerprint, n, pairs=len(pairs))
    normalised = [normalise_text(t) for t in items.texts]
    groups = components(n, pairs)
    # The weakest edge of each group, from every pair's cosine at once (scanning every pair per group
    # was groups x pairs: 10k x 331k at 100k paraphrase-heavy items, stopped after 6 minutes).
    weakest = np.ones(len(groups))
    if vectors is not None and len(groups):
        group_of = np.zeros(n, dtype=np.int64)
        for g, group in enumerate(groups):
            group_of[group] = g
        edges = np.empty(len(pairs), dtype=np.float32)
        for start in range(0, len(pairs), 65_536):  # in blocks: two (pairs x dim) gathers of 100k paraphrases are GBs
            chunk = pairs[start : start + 65_536]
            edges[start : start + len(chunk)] = np.einsum("ij,ij->i", vectors[chunk[:, 0]], vectors[chunk[:, 1]])
        np.minimum.at(weakest, group_of[pairs[:, 0]], edges)
    for group, edge in zip(groups, weakest, strict=True):
        sims = vectors[group] @ vectors[group[0]] if vectors is not None else np.ones(len(group))
        kind = "exact" if len({normalised[i] for i in group}) == 1 else "near"
        members = [
            GroupMember(
                items.ids[i],
                items.external_ids[i],
                items.texts[i],
                items.labels[i],
                items.statuses[i],
                items.splits[i],
                float(min(1.0, s)),
            )
            for i, s in zip(group, sims)
        ]
        report.groups.append(DuplicateGroup(members, kind, min(1.0, float(edge))))
    report.groups.sort(key=lambda g: (not g.conflict, g.min_similarity < 1.0, -len(g.members), g.ids[0]))
    return report


def find_duplicates(
    engine: Engine,
    actor: User,
    project_id: int,
    threshold: float = DEFAULT_THRESHOLD,
    model: str | None = None,
    *,
    progress: Progress | None = None,
) -> DuplicateReport:
    """Exact and near-duplicate groups of the project's examples (excluded ones left out). Leads."""
    from curation.access.roles import LEADS, require_role

    require_role(actor, *LEADS)
    items = load_items(engine, actor, project_id)
    vectors = project_vectors(items, model, progress=progress) if len(items) else None
    return duplicate_report(items, vectors, threshold)


def exclude_duplicates(engine: Engine, actor: User, keep_id: int, exclude_ids: Sequence[int]) -> list[int]:
    """Keep `keep_id` and exclude the others with the reason "duplicate of #<keep_id>" (each one audited
    by `curation.adjudication.exclude_example`). Items already excluded are skipped. Returns the ids
    excluded."""
    from curation.access.roles import LEADS, require_role
    from curation.db import read_session
    from curation.errors import InputError
    from curation.models import Example, ExampleStatus
    from curation.review.adjudication import exclude_example

    require_role(actor, *LEADS)
    others = [int(i) for i in dict.fromkeys(exclude_ids) if int(i) != int(keep_id)]
    with read_session(engine) as session:
        keep = session.get(Example, keep_id)
        rows = {e.id: e for e in (session.get(Example, i) for i in others) if e is not None}
    if keep is None:
        raise InputError(f"No example #{keep_id} to keep.")
    if any(e.project_id != keep.project_id for e in rows.values()) or len(rows) != len(others):
        raise InputError("The examples to exclude must exist and be in the same project as the one kept.")
    done = []
    for example_id in others:
        if rows[example_id].status == ExampleStatus.excluded:
            continue
        exclude_example(engine, actor, example_id, "duplicate", note=f"duplicate of #{keep_id}")
        done.append(example_id)
    return done


def exclude_groups(
    engine: Engine, actor: User, groups: Sequence[DuplicateGroup], *, include_conflicts: bool = False
) -> int:
    """Bulk: in each group keep `suggested_keep()` and exclude the rest. Conflicting groups are left for
    a person unless `include_conflicts`. Returns how many examples were excluded."""
    total = 0
    for group in groups:
        if group.conflict and not include_conflicts:
            continue
        keep = group.suggested_keep()
        total += len(exclude_duplicates(engine, actor, keep, [i for i in group.ids if i != keep]))
    return total
