"""Diversity and coverage of a project's examples, on the sentence embeddings.

- `map_2d`: a 2-D map by UMAP (cosine metric; umap-learn), PCA when UMAP is unavailable or the set is
  too small for it (< `UMAP_MIN` items); `map_rows`: the items drawn (at most `MAP_POINTS`).
- `cluster`: k-means on the unit vectors (k ~ sqrt(n/2), 2..40 unless given); per cluster its size,
  label mix, the texts nearest its centre and its top terms (mean TF-IDF in the cluster minus the mean
  elsewhere).
- `coverage`: label balance (counts, shares, normalised entropy), the effective number of clusters
  (exp of the entropy of cluster sizes; equals k when all are the same size), clusters flagged as
  under-covered (fewer than half the mean cluster size), and text lengths (words) per label.
- `agreement_by_example`: per item, the share of its annotators who gave the most common label.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from curation.embeddings.encode import ProjectItems

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine


UMAP_MIN = 30
UNDER_COVERED = 0.5  # a cluster under this share of the mean size is under-covered
# Points drawn (and projected) on the map: every point carries its hover text, so 100k points made a
# figure of ~35 MB on every render, and UMAP of 100k points takes minutes on 2 cores; a seeded sample
# of 20k keeps the picture (the clusters and coverage use every item).
MAP_POINTS = 20_000


def map_rows(n: int, limit: int | None = None, seed: int = 0) -> np.ndarray:
    """Row indices (ascending) of the items drawn on the map: all of them up to `limit` (default
    MAP_POINTS), else a seeded random `limit` of them, the same for the same n."""
    limit = MAP_POINTS if limit is None else limit
    if n <= limit:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).choice(n, limit, replace=False))


def map_2d(vectors: np.ndarray, method: str = "auto", seed: int = 0) -> tuple[np.ndarray, str]:
    """(n x 2 coordinates, the method used: "umap" or "pca")."""
    n = len(vectors)
    if n == 0:
        return np.zeros((0, 2)), "pca"
    if method in ("auto", "umap") and n >= UMAP_MIN:
        try:
            import umap

            reducer = umap.UMAP(
                n_components=2, metric="cosine", random_state=seed, n_neighbors=min(15, n - 1), n_jobs=1
            )
            return np.asarray(reducer.fit_transform(vectors)), "umap"
        except ImportError:
            pass
    if n < 3:
        return np.column_stack([np.arange(n, dtype=float), np.zeros(n)]), "pca"
    from sklearn.decomposition import PCA

    return PCA(n_components=2, random_state=seed).fit_transform(vectors), "pca"


@dataclass(frozen=True)
class Cluster:
    cluster_id: int
    size: int
    label_mix: dict[str, int]  # final label ("(unlabelled)" for none) -> count, most common first
    samples: list[str]  # texts nearest the centre
    top_terms: list[str]
    under_covered: bool


@dataclass
class DiversityReport:
    project_id: int
    fingerprint: str
    examples: int
    assignments: np.ndarray  # cluster id per item
    clusters: list[Cluster] = field(default_factory=list)
    label_counts: dict[str, int] = field(default_factory=dict)
    label_balance: float = 1.0  # normalised entropy of the labels: 1 = perfectly balanced
    effective_clusters: float = 0.0
    lengths: dict[str, list[int]] = field(default_factory=dict)  # label -> word counts

    @property
    def under_covered(self) -> list[Cluster]:
        return [c for c in self.clusters if c.under_covered]


def default_k(n: int) -> int:
    return int(min(40, max(2, round(math.sqrt(n / 2)))))


def cluster(vectors: np.ndarray, k: int | None = None, seed: int = 0) -> np.ndarray:
    """k-means cluster ids (deterministic for a seed)."""
    from sklearn.cluster import KMeans

    n = len(vectors)
    if n == 0:
        return np.zeros(0, dtype=int)
    k = min(n, k or default_k(n))
    if k < 2:
        return np.zeros(n, dtype=int)
    return KMeans(n_clusters=k, n_init=3, random_state=seed).fit_predict(vectors)


def top_terms(texts: list[str], assignments: np.ndarray, n_terms: int = 6) -> dict[int, list[str]]:
    from sklearn.feature_extraction.text import TfidfVectorizer

    ids = sorted(set(assignments.tolist()))
    if not texts:
        return {}
    try:
        vectorizer = TfidfVectorizer(
            stop_words="english", max_features=20_000, token_pattern=r"(?u)\b[a-zA-Z]{3,}\b"
        )
        matrix = vectorizer.fit_transform(texts)
    except ValueError:  # no usable words
        return {c: [] for c in ids}
    vocab = np.array(vectorizer.get_feature_names_out())
    out = {}
    for c in ids:
        inside = assignments == c
        mean_in = np.asarray(matrix[inside].mean(axis=0)).ravel()
        mean_out = np.asarray(matrix[~inside].mean(axis=0)).ravel() if (~inside).any() else 0
        score = mean_in - mean_out
        best = np.argsort(-score)[:n_terms]
        out[c] = [str(vocab[i]) for i in best if score[i] > 0]
    return out


def diversity_report(
    items: ProjectItems, vectors: np.ndarray, k: int | None = None, seed: int = 0, samples: int = 3
) -> DiversityReport:
    n = len(items)
    assignments = cluster(vectors, k, seed)
    report = DiversityReport(items.project_id, items.fingerprint, n, assignments)
    labels = [label or "(unlabelled)" for label in items.labels]
    report.label_counts = dict(Counter(label for label in items.labels if label).most_common())
    total = sum(report.label_counts.values())
    if len(report.label_counts) > 1:
        shares = np.array(list(report.label_counts.values())) / total
        report.label_balance = float(-(shares * np.log(shares)).sum() / math.log(len(shares)))
    if n:
        sizes = np.bincount(assignments)
        sizes = sizes[sizes > 0]
        p = sizes / sizes.sum()
        report.effective_clusters = float(math.exp(-(p * np.log(p)).sum()))
        mean_size = n / len(sizes)
        terms = top_terms(items.texts, assignments)
        for c in sorted(set(assignments.tolist())):
            rows = np.flatnonzero(assignments == c)
            centre = vectors[rows].mean(axis=0)
            nearest = rows[np.argsort(-(vectors[rows] @ centre))[:samples]]
            report.clusters.append(
                Cluster(
                    cluster_id=int(c),
                    size=len(rows),
                    label_mix=dict(Counter(labels[i] for i in rows).most_common()),
                    samples=[items.texts[i] for i in nearest],
                    top_terms=terms.get(c, []),
                    under_covered=len(rows) < UNDER_COVERED * mean_size,
                )
            )
    lengths: dict[str, list[int]] = defaultdict(list)
    for text, label in zip(items.texts, labels):
        lengths[label].append(len(text.split()))
    report.lengths = dict(lengths)
    return report


def annotation_stamp(engine: Engine, project_id: int) -> str:
    """A cheap marker of the project's annotations (count, largest id, latest update): unchanged, so
    is `agreement_by_example` (one query instead of reading every annotation)."""
    from sqlalchemy import func, select

    from curation.db import read_session
    from curation.models import Annotation, Example

    with read_session(engine) as session:
        row = session.execute(
            select(func.count(), func.max(Annotation.id), func.max(Annotation.updated_at))
            .join(Example, Example.id == Annotation.example_id).where(Example.project_id == project_id)).one()
    return "|".join(str(v) for v in row)


def agreement_by_example(engine: Engine, project_id: int) -> dict[int, float]:
    """Example id -> share of its annotators who gave the most common label (examples with labels)."""
    from sqlalchemy import select

    from curation.db import read_session
    from curation.models import Annotation, Example

    with read_session(engine) as session:
        rows = session.execute(
            select(Annotation.example_id, Annotation.label)
            .join(Example, Example.id == Annotation.example_id)
            .where(Example.project_id == project_id)
        ).all()
    votes: dict[int, Counter[str]] = defaultdict(Counter)
    for example_id, label in rows:
        votes[int(example_id)][label or ""] += 1
    return {i: c.most_common(1)[0][1] / sum(c.values()) for i, c in votes.items()}
