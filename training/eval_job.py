"""`eval RUN` for generation runs, in the background: scoring a generation adapter on a test set
(losses of base and adapter, generations) takes minutes on CPU, so the CLI queues it as a detached
task (curation/embeddings/tasks.py) with progress and returns; the scores land on the run.

`python -m training.eval_job --run-id N --actor NAME [--testset M] --task-file F`

One task file per (database, run): asking again while it runs shows it; after it finished (or
failed) asking again starts a fresh scoring.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from sqlalchemy.engine import Engine

from curation.access.accounts import get_user
from curation.access.roles import LEADS, require_role
from curation.db import make_engine
from curation.embeddings.tasks import RUNNING, read_task, run_task, start_task, task_path
from curation.errors import Conflict
from curation.models import User
from curation.settings import get_settings
from training.eval_run import evaluate_run, summary
from training.store import get_run
from training.test_scoring import resolve_test_set_version


def eval_key(run_id: int) -> str:
    return json.dumps({"db": get_settings().resolved_database_url, "eval_run": run_id}, sort_keys=True)


def eval_path(run_id: int) -> Path:
    return task_path("eval", eval_key(run_id))


def eval_state(run_id: int) -> dict[str, Any] | None:
    """The run's latest background scoring: {"status", "done", "total", "note", "error", "result"}."""
    return read_task(eval_path(run_id))


def start_eval(engine: Engine, actor: User, run_id: int, test_set_version_id: int | None = None) -> dict[str, Any]:
    """Queue the scoring of a finished run in the background (leads). The cheap checks run here, so a
    run that cannot be scored is refused at once; a scoring already running is returned as it is."""
    require_role(actor, *LEADS)
    run = get_run(engine, run_id)
    if str(run.status) != "succeeded" or not run.output_dir:
        raise Conflict(f"Run {run_id} is {run.status}: only a finished run with its adapter can be scored.")
    version_id = resolve_test_set_version(engine, run.project_id, test_set_version_id)
    if version_id is None:
        raise Conflict("The project has no approved test-set version to score on.")
    path = eval_path(run_id)
    current = read_task(path)
    if current and current["status"] == RUNNING:
        return current
    path.unlink(missing_ok=True)  # a finished scoring is not a cache: asking again scores again
    argv = ["-m", "training.eval_job", "--run-id", str(run_id), "--actor", actor.username,
            "--testset", str(version_id)]
    return start_task(path, eval_key(run_id), argv)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--run-id", type=int, required=True)
    parser.add_argument("--actor", required=True)
    parser.add_argument("--testset", type=int)
    parser.add_argument("--task-file", required=True)
    args = parser.parse_args(argv)

    def work(progress: Any) -> dict[str, Any]:
        engine = make_engine()
        try:
            progress(0, 1, "scoring the adapter and the base model on the test set")
            run = evaluate_run(engine, get_user(engine, args.actor), args.run_id, args.testset)
            progress(1, 1, "scored")
            return summary(run)
        finally:
            engine.dispose()

    state = run_task(Path(args.task_file), eval_key(args.run_id), work)
    return 0 if state["status"] == "done" else 1


if __name__ == "__main__":
    raise SystemExit(main())
