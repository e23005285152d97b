"""Label-issue scoring in the background (curation/embeddings/tasks.py): cross-validating the softmax
regression on 10k items takes tens of seconds, so the Label issues page never scores in its script.
One task per (database, project, data fingerprint, embedding model): the fingerprint covers every
text and final label, so after each batch of expert decisions the page asks for a new task and shows
its progress (also after a reload or in another tab), and a finished task is the cache of its report.
`python -m curation label-issues` scores in its own process and writes the same task file, so a page
open meanwhile shows the CLI's progress and then its report.

`python -m curation.embeddings.label_issues_job --project-id N --fingerprint F --task-file FILE`
"""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

from curation.db import make_engine
from curation.embeddings.encode import embed_texts, model_key, read_project_items
from curation.embeddings.quality import LabelIssue, LabelIssueReport, label_issue_report
from curation.embeddings.tasks import DONE, RUNNING, read_task, run_task, start_task, task_path
from curation.settings import get_settings

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

KIND = "label-issues"  # task files: DATA_DIR/jobs/label-issues-<project id>-<digest of the key>.json


def label_issues_key(project_id: int, fingerprint: str, model: str | None = None) -> str:
    settings = get_settings()
    return json.dumps({"db": settings.resolved_database_url, "project": project_id, "fingerprint": fingerprint,
                       "model": model_key(model)}, sort_keys=True)


def label_issues_path(project_id: int, fingerprint: str, model: str | None = None) -> Path:
    return task_path(f"{KIND}-{project_id}", label_issues_key(project_id, fingerprint, model))


def prune_old_reports(project_id: int, keep: Path) -> list[Path]:
    """Delete the project's other finished or failed scorings (earlier data: each holds a full report,
    megabytes at 10k items, and a new one comes after every batch of expert decisions); running ones
    stay. Returns the files deleted."""
    gone = []
    for path in keep.parent.glob(f"{KIND}-{project_id}-*.json"):
        state = read_task(path)
        if path != keep and (state is None or state["status"] != RUNNING):
            path.unlink(missing_ok=True)
            path.with_suffix(".log").unlink(missing_ok=True)
            gone.append(path)
    return gone


def label_issues_state(project_id: int, fingerprint: str, start: bool = True) -> dict[str, Any] | None:
    """The scoring of this project's data as it is now (`fingerprint`): done (`result`, read it with
    `report_from_result`), running (`done`/`total`, `note`) or failed (`error`). Starts the task when it
    never ran and `start` is set (a failed one is retried after a minute). The caller checks the role."""
    key = label_issues_key(project_id, fingerprint)
    path = label_issues_path(project_id, fingerprint)
    if not start:
        return read_task(path)
    argv = ["-m", "curation.embeddings.label_issues_job", "--project-id", str(project_id),
            "--fingerprint", fingerprint]
    known = read_task(path)
    state = start_task(path, key, argv)
    if known is None:  # a new scoring of new data: the earlier ones are stale
        prune_old_reports(project_id, path)
    return {**state, "path": str(path)}


def report_to_result(report: LabelIssueReport) -> dict[str, Any]:
    """The report as the task file holds it (plain JSON; `report_from_result` reads it back)."""
    return asdict(report)


def report_from_result(result: dict[str, Any]) -> LabelIssueReport:
    """The LabelIssueReport of a finished task (issues in their ranked order)."""
    issues = [LabelIssue(**{**issue, "disagreeing_neighbours": [tuple(pair) for pair in
                                                                 issue["disagreeing_neighbours"]]})
              for issue in result["issues"]]
    return LabelIssueReport(project_id=int(result["project_id"]), fingerprint=str(result["fingerprint"]),
                            labelled=int(result["labelled"]), issues=issues,
                            skipped_labels=list(result["skipped_labels"]), folds=int(result["folds"]))


def compute(project_id: int, fingerprint: str, progress: Any, model: str | None = None,
            engine: Engine | None = None) -> dict[str, Any]:
    """Score the project's current items (`progress(done, total, note)` per embedding batch and per
    fold) on `engine` (default: a new one from the settings). Refuses when the data changed since the
    caller read it (its fingerprint differs)."""
    own = engine is None
    engine = engine if engine is not None else make_engine()
    try:
        items = read_project_items(engine, project_id)
    finally:
        if own:
            engine.dispose()
    if items.fingerprint != fingerprint:
        raise RuntimeError("the data changed while the label issues were being scored; reopen the page")
    vectors = embed_texts(items.texts, model,
                          progress=lambda done, total: progress(done, total, "reading the embeddings")).vectors
    report = label_issue_report(items, vectors,
                                progress=lambda done, total: progress(done, total, "cross-validation folds"))
    return report_to_result(report)


def score_now(engine: Engine, project_id: int, fingerprint: str, progress: Any,
              model: str | None = None) -> tuple[LabelIssueReport, bool]:
    """(report, reused): score in this process (the CLI), writing the same task file as the page's
    background task, so the page shows this progress and then reuses the report. A report already
    done for this data is returned as is (reused True). A task running elsewhere is not waited for:
    this process scores too, and the last to finish writes the file (the same report)."""
    key = label_issues_key(project_id, fingerprint, model)
    path = label_issues_path(project_id, fingerprint, model)
    state = read_task(path)
    reused = bool(state and state["status"] == DONE)
    if not reused:
        def work(to_file: Any) -> dict[str, Any]:
            def both(done: int, total: int, note: str) -> None:
                progress(done, total, note)
                to_file(done, total, note)

            return compute(project_id, fingerprint, both, model, engine)

        state = run_task(path, key, work)
        if state["status"] != DONE:
            raise RuntimeError(f"scoring the label issues failed: {state['error']}")
    assert state is not None
    return report_from_result(state["result"]), reused


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--project-id", type=int, required=True)
    parser.add_argument("--fingerprint", required=True)
    parser.add_argument("--task-file", required=True)
    args = parser.parse_args(argv)
    key = label_issues_key(args.project_id, args.fingerprint)
    state = run_task(Path(args.task_file), key, lambda progress: compute(args.project_id, args.fingerprint, progress))
    return 0 if state["status"] == DONE else 1


if __name__ == "__main__":
    raise SystemExit(main())
