"""Training run records and their folders: the one place jobs (the service) and run (the worker) share.

- `get_run` / `update_run`: the TrainingRun row (NotFound names a missing run the same way everywhere).
- `run_dir(run_id)`: DATA_DIR/runs/<id>, holding worker.log, run.json and the adapter.
- `log_tail(path)`: the last lines of a log as a terminal would show them (progress bars' carriage returns).
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from sqlalchemy.engine import Engine

from curation.db import make_engine, write_session
from curation.errors import NotFound
from curation.lookup import get_or_not_found, read_or_not_found
from curation.models import TrainingRun
from curation.settings import get_settings


def now() -> datetime:
    return datetime.now(timezone.utc)


def runs_dir() -> Path:
    return get_settings().data_dir / "runs"


def run_dir(run_id: int) -> Path:
    return runs_dir() / str(run_id)


def get_run(engine: Engine, run_id: int) -> TrainingRun:
    return read_or_not_found(engine, TrainingRun, run_id)


def is_main_process() -> bool:
    """True in a plain process and in the global rank 0 of `accelerate launch`/torchrun (RANK is set
    by the launcher before any process group exists, so this holds before training starts)."""
    return int(os.environ.get("RANK", "0")) == 0


def update_run(engine: Engine, run_id: int, **values: Any) -> None:
    """Write these columns of the run. Only the main process may: under a launcher every process runs
    the worker script, and one row written by several would lose progress and record metrics twice."""
    if not is_main_process():
        raise RuntimeError(f"update_run called on rank {os.environ.get('RANK')}: only the main process writes")
    with write_session(engine) as session:
        run = get_or_not_found(session, TrainingRun, run_id)
        for key, value in values.items():
            setattr(run, key, value)
        session.add(run)


def log_tail(path: Path, lines: int = 40) -> str:
    if not path.exists():
        return ""
    text = path.read_text(encoding="utf-8", errors="replace").splitlines()
    # progress bars write carriage returns: keep what a terminal would show
    text = [line.rsplit("\r", 1)[-1] for line in text]
    return "\n".join(text[-lines:])


def run_process_main(prog: str, description: str, body: Callable[[Engine, int], int],
                     argv: Sequence[str] | None = None) -> int:
    """The entry point of a process that serves one run (`python -m <prog> --run-id N`): parse the id,
    run `body(engine, run_id)` on a fresh engine, and end with a one-line message when there is no
    such run."""
    parser = argparse.ArgumentParser(prog=prog, description=description)
    parser.add_argument("--run-id", type=int, required=True)
    args = parser.parse_args(argv)
    engine = make_engine()
    try:
        return body(engine, args.run_id)
    except NotFound as error:
        raise SystemExit(str(error)) from error
    finally:
        engine.dispose()
