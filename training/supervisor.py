"""The supervisor of a training worker: `python -m training.supervisor --run-id N` (what `training.jobs`
starts for the pages and the CLI).

A small parent that starts the worker (`python -m training.run --run-id N`) with its output in the
run's `worker.log`, records the worker's process id at once (so a cancel can reach a worker that is
still importing torch), waits for it, and marks the run failed, with the tail of its log, when the
worker crashes or is killed (SIGKILL included), or cancelled when a cancel was asked for; then it
starts the next queued run. It imports neither torch nor transformers, so it is up in a moment.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Sequence
from typing import Any

from sqlalchemy.engine import Engine

from curation.models import RunStatus
from training.jobs import dispatch
from training.store import get_run, log_tail, now, run_dir, run_process_main, update_run


def supervise(engine: Engine, run_id: int) -> int:
    folder = run_dir(run_id)
    folder.mkdir(parents=True, exist_ok=True)
    log_path = folder / "worker.log"
    with open(log_path, "ab") as log:
        child = subprocess.Popen([sys.executable, "-m", "training.run", "--run-id", str(run_id)],
                                 stdout=log, stderr=subprocess.STDOUT, env=os.environ.copy())

        def forward(signum: int, _frame: Any) -> None:
            try:
                child.send_signal(signum)
            except ProcessLookupError:
                pass

        signal.signal(signal.SIGTERM, forward)
        # The worker writes its pid too, but only after its imports (seconds): a cancel meanwhile signals it.
        update_run(engine, run_id, pid=child.pid)
        code = child.wait()
    run = get_run(engine, run_id)
    if run.status in (RunStatus.queued, RunStatus.running):
        if code < 0:
            reason = f"worker killed by signal {signal.Signals(-code).name}"
        else:
            reason = f"worker exited with status {code}"
        if run.cancel_requested_at is not None:
            update_run(engine, run_id, status=RunStatus.cancelled, finished_at=now(), error=f"cancelled ({reason})")
        else:
            tail = log_tail(log_path)
            update_run(engine, run_id, status=RunStatus.failed, finished_at=now(),
                       error=f"{reason}.\n{tail}".strip())
    dispatch(engine)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    return run_process_main("python -m training.supervisor", __doc__.splitlines()[0], supervise, argv)


if __name__ == "__main__":
    sys.exit(main())
