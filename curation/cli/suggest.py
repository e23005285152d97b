"""CLI command for model pre-labels: suggest (the linear probe, or `--run N`: a finished run's adapter
through the predictor the training package installs)."""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path
from typing import Any

from sqlalchemy.engine import Engine

from curation.cli.common import acting_user
from curation.data.projects import get_project
from curation.embeddings.jobs import DONE, FAILED, RUNNING, write_job
from curation.embeddings.suggest import run_suggest, run_suggest_from_run


def add_commands(commands: Any) -> None:
    suggest = commands.add_parser("suggest", help="model pre-labels: a linear probe on the embeddings (or, with "
                                                  "--run, a finished run's adapter) suggests a label and probability "
                                                  "for every item without an expert label")
    who = suggest.add_mutually_exclusive_group(required=True)
    who.add_argument("--project")
    who.add_argument("--project-id", type=int, help=argparse.SUPPRESS)
    suggest.add_argument("--run", type=int, help="a finished classification run's adapter instead of the probe "
                                                 "(suggestions of source model:run-N)")
    suggest.add_argument("--model", help="sentence-transformers model (default: the embedding model)")
    suggest.add_argument("--job-file", help=argparse.SUPPRESS)


def _suggest(engine: Engine, args: argparse.Namespace) -> int:
    project_id = args.project_id if args.project_id is not None else get_project(engine, args.project).id
    path = Path(args.job_file) if args.job_file else None
    state: dict[str, Any] = {"status": RUNNING, "done": 0, "total": 0, "error": None, "pid": os.getpid(),
                             "started_at": time.time(), "updated_at": time.time()}

    def progress(done: int, total: int) -> None:
        if path is not None:
            state.update(done=done, total=total, updated_at=time.time())
            write_job(path, state)

    try:
        if args.run is not None:
            report = run_suggest_from_run(engine, acting_user(engine, args), project_id, args.run, progress)
        else:
            report = run_suggest(engine, acting_user(engine, args), project_id, args.model, progress)
    except Exception as error:
        if path is not None:
            write_job(path, {**state, "status": FAILED, "error": f"{type(error).__name__}: {error}"})
        raise
    if path is not None:
        write_job(path, {**state, "status": DONE, "done": state["total"], "report": report.to_dict()})
    print(report.summary())
    return 0


HANDLERS = {"suggest": _suggest}
