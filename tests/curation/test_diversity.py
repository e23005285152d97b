"""curation.diversity: map, clusters with label mix and top terms, coverage figures."""

from __future__ import annotations

import numpy as np
import pytest

from curation.embeddings.diversity import cluster, default_k, diversity_report, map_2d
from curation.embeddings.encode import ProjectItems
from tests.curation.embedding_helpers import labelled_clusters


def _items(texts: list[str], labels: list[str | None]) -> ProjectItems:
    n = len(texts)
    return ProjectItems(
        1, list(range(n)), [f"e{i}" for i in range(n)], texts, labels, ["labelled"] * n, [None] * n, "fp"
    )


def test_clusters_recover_planted_topics_and_flag_the_small_one() -> None:
    vectors, labels = labelled_clusters(40, ["billing", "shipping", "refund"], spread=0.1, seed=2)
    small, small_labels = labelled_clusters(6, ["rare"], spread=0.1, seed=9)
    vectors = np.vstack([vectors, small])
    labels = labels + small_labels
    words = {
        "billing": "invoice charge",
        "shipping": "parcel courier",
        "refund": "money back",
        "rare": "firmware",
    }
    texts = [f"{words[label]} ticket {i}" for i, label in enumerate(labels)]
    report = diversity_report(_items(texts, labels), vectors, k=4)
    assert sorted(c.size for c in report.clusters) == [6, 40, 40, 40]
    for c in report.clusters:
        assert len(c.label_mix) == 1 and len(c.samples) == 3
    rare = next(c for c in report.clusters if c.size == 6)
    assert rare.under_covered and rare.top_terms[0] == "firmware"
    assert [c.cluster_id for c in report.under_covered] == [rare.cluster_id]
    assert 3.0 < report.effective_clusters < 4.0
    assert report.label_counts["billing"] == 40 and 0.8 < report.label_balance < 1.0
    assert sorted(report.lengths) == ["billing", "rare", "refund", "shipping"]


def test_map_and_defaults() -> None:
    vectors, _ = labelled_clusters(5, ["a", "b"])
    coords, method = map_2d(vectors)
    assert coords.shape == (10, 2) and method == "pca"  # below UMAP_MIN
    assert default_k(2) == 2 and default_k(800) == 20 and default_k(10**6) == 40
    assert (cluster(vectors, 2, seed=1) == cluster(vectors, 2, seed=1)).all()


@pytest.mark.slow
def test_umap_map() -> None:
    """UMAP (numba compiles on first use: slow on a cold machine)."""
    vectors, _ = labelled_clusters(20, ["a", "b"])
    coords, method = map_2d(vectors, "umap")
    assert coords.shape == (40, 2) and method == "umap"


def test_map_rows_draw_everything_up_to_the_limit_then_a_fixed_sample() -> None:
    from curation.embeddings.diversity import map_rows

    assert map_rows(5, limit=5).tolist() == [0, 1, 2, 3, 4]
    rows = map_rows(1000, limit=100)
    assert len(rows) == 100 == len(set(rows.tolist())) and rows.tolist() == sorted(rows.tolist())
    assert 0 <= rows.min() and rows.max() < 1000
    assert map_rows(1000, limit=100).tolist() == rows.tolist()  # the same picture on every render
    assert map_rows(0, limit=3).tolist() == []


def test_the_job_projects_only_the_drawn_items(engine, lead, tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    """Over MAP_POINTS, the background job maps the drawn sample only; clusters cover every item."""
    from curation.data.projects import create_project
    from curation.embeddings import diversity
    from curation.embeddings.diversity_job import compute
    from curation.embeddings.encode import read_project_items
    from tests.curation.embedding_helpers import fill_cache, import_texts

    vectors, labels = labelled_clusters(20, ["a", "b"])
    texts = [f"text {i}" for i in range(40)]
    project = create_project(engine, lead, "Map", labels=["a", "b"])
    import_texts(engine, lead, tmp_path, "Map", texts, labels)
    fill_cache(texts, vectors)
    monkeypatch.setattr(diversity, "MAP_POINTS", 10)
    items = read_project_items(engine, project.id)
    result = compute(project.id, items.fingerprint, 2, "pca", lambda *_: None)
    assert result["map_rows"] == diversity.map_rows(40, 10).tolist() and len(result["coords"]) == 10
    assert len(result["assignments"]) == 40 and sum(c["size"] for c in result["clusters"]) == 40
