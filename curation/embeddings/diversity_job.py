"""The Diversity page's map and clusters in the background (curation/tasks.py): UMAP (with its JIT
compilation on first use), k-means and TF-IDF top terms take seconds to tens of seconds, so they
never run in the page's script. One task per (database, project data fingerprint, embedding model,
k, map method): the finished task file is the cache, so reopening the page, a reload, another lead
or a change of colour reads it at once; any change of the data gives a new fingerprint and a new task.

`python -m curation.embeddings.diversity_job --project-id N --k K --method auto|umap|pca --task-file F`
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from curation.db import make_engine
from curation.embeddings.diversity import diversity_report, map_2d, map_rows
from curation.embeddings.encode import embed_texts, model_key, read_project_items
from curation.embeddings.tasks import read_task, run_task, start_task, task_path
from curation.settings import get_settings


def diversity_key(project_id: int, fingerprint: str, k: int, method: str) -> str:

    settings = get_settings()
    return json.dumps({"db": settings.resolved_database_url, "project": project_id, "fingerprint": fingerprint,
                       "model": model_key(), "k": k, "method": method}, sort_keys=True)


def diversity_state(project_id: int, fingerprint: str, k: int, method: str, start: bool = True) -> dict[str, Any] | None:
    """The map and clusters for this data and these settings: done (`result`, see `compute`), running
    (with `note`), or failed. Starts the task when it never ran and `start` is set."""
    key = diversity_key(project_id, fingerprint, k, method)
    path = task_path("diversity", key)
    if not start:
        return read_task(path)
    argv = ["-m", "curation.embeddings.diversity_job", "--project-id", str(project_id), "--k", str(k), "--method", method,
            "--fingerprint", fingerprint]
    return start_task(path, key, argv)


def compute(project_id: int, fingerprint: str, k: int, method: str, progress: Any) -> dict[str, Any]:
    """{"fingerprint", "method" (used), "map_rows" (the items drawn, `map_rows`), "coords" [[x, y]] (one
    per drawn item), "assignments", "clusters" [...],
    "label_counts", "label_balance", "effective_clusters", "lengths"} for the project's current items.
    Refuses when the data changed since the page asked (its fingerprint differs)."""

    engine = make_engine()
    try:
        items = read_project_items(engine, project_id)
    finally:
        engine.dispose()
    if items.fingerprint != fingerprint:
        raise RuntimeError("the data changed while the map was being computed; reopen the page")
    progress(0, 3, "reading the embeddings")
    vectors = embed_texts(items.texts).vectors
    progress(1, 3, "clustering (k-means) and top terms")
    report = diversity_report(items, vectors, k)
    progress(2, 3, "projecting to 2-D")
    rows = map_rows(len(items))  # only the drawn items are projected: UMAP of 20k, not of 100k
    coords, used = map_2d(vectors[rows], method)
    return {
        "fingerprint": fingerprint, "method": used, "map_rows": rows.tolist(), "coords": coords.tolist(),
        "assignments": [int(a) for a in report.assignments],
        "clusters": [{"cluster_id": c.cluster_id, "size": c.size, "label_mix": c.label_mix, "samples": c.samples,
                      "top_terms": c.top_terms, "under_covered": c.under_covered} for c in report.clusters],
        "label_counts": report.label_counts, "label_balance": report.label_balance,
        "effective_clusters": report.effective_clusters, "lengths": report.lengths,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--project-id", type=int, required=True)
    parser.add_argument("--k", type=int, required=True)
    parser.add_argument("--method", default="auto")
    parser.add_argument("--fingerprint", required=True)
    parser.add_argument("--task-file", required=True)
    args = parser.parse_args(argv)
    key = diversity_key(args.project_id, args.fingerprint, args.k, args.method)
    state = run_task(Path(args.task_file), key,
                     lambda progress: compute(args.project_id, args.fingerprint, args.k, args.method, progress))
    return 0 if state["status"] == "done" else 1


if __name__ == "__main__":
    raise SystemExit(main())
