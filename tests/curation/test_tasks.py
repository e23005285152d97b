"""curation/tasks.py: background tasks keyed by their inputs, whose finished file is the cache."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

from curation.embeddings.jobs import write_job
from curation.embeddings.tasks import (
    DONE,
    FAILED,
    RUNNING,
    abandon_task,
    read_task,
    run_task,
    start_task,
    task_path,
)

# The background process: answers 6 * 7 through run_task, or sleeps when asked to.
WORKER = ("import sys, time; from pathlib import Path; from curation.embeddings.tasks import run_task; "
          "path = Path(sys.argv[sys.argv.index('--task-file') + 1]); "
          "run_task(path, 'k', lambda progress: (time.sleep(float(sys.argv[1])), {'answer': 6 * 7})[1])")


def _wait(path: Path, seconds: float = 60) -> dict:
    deadline = time.monotonic() + seconds
    while (state := read_task(path)) is not None and state["status"] == RUNNING:
        assert time.monotonic() < deadline
        time.sleep(0.1)
    assert state is not None
    return state


def test_run_task_records_the_result_or_the_error(tmp_path: Path) -> None:
    done = run_task(tmp_path / "a.json", "key", lambda progress: (progress(1, 2, "half"), {"x": [1, 2]})[1])
    assert (done["status"], done["result"], done["done"], done["total"], done["note"]) == (DONE, {"x": [1, 2]}, 1, 2,
                                                                                           "half")
    assert read_task(tmp_path / "a.json")["result"] == {"x": [1, 2]}  # type: ignore[index]

    def fail(progress: object) -> None:
        raise ValueError("no data")

    failed = run_task(tmp_path / "b.json", "key", fail)
    assert (failed["status"], failed["error"]) == (FAILED, "ValueError: no data")


def test_a_task_runs_once_in_the_background_and_its_file_is_the_cache() -> None:
    path = task_path("test", "inputs 1")
    assert path == task_path("test", "inputs 1") and path != task_path("test", "inputs 2")
    started = start_task(path, "inputs 1", ["-c", WORKER, "0"])
    assert started["status"] == RUNNING
    done = _wait(path)
    assert (done["status"], done["result"]) == (DONE, {"answer": 42})
    again = start_task(path, "inputs 1", ["-c", WORKER, "0"])  # done: answered from the file, no new process
    assert again["pid"] == done["pid"] and again["status"] == DONE


def test_a_dead_process_reads_as_failed_and_is_retried_later(tmp_path: Path) -> None:
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    path = tmp_path / "t.json"
    write_job(path, {"status": RUNNING, "pid": gone.pid, "updated_at": time.time()})
    assert read_task(path)["status"] == FAILED  # type: ignore[index]
    assert start_task(path, "k", ["-c", WORKER, "0"])["pid"] == gone.pid  # failed just now: not retried yet
    write_job(path, {"status": RUNNING, "pid": gone.pid, "updated_at": time.time() - 3600})
    assert start_task(path, "k", ["-c", WORKER, "0"])["pid"] != gone.pid  # failed long ago: retried
    assert _wait(path)["status"] == DONE


def test_abandon_stops_a_running_task_and_forgets_it() -> None:
    path = task_path("test", "slow")
    state = start_task(path, "slow", ["-c", WORKER, "120"])
    abandon_task(path)
    assert read_task(path) is None
    deadline = time.monotonic() + 30
    while subprocess.run(["kill", "-0", str(state["pid"])], capture_output=True, check=False).returncode == 0:
        try:  # reap if it is our child's zombie
            import os

            if os.waitpid(state["pid"], os.WNOHANG)[0]:
                break
        except ChildProcessError:
            break
        assert time.monotonic() < deadline
        time.sleep(0.1)


def test_abandon_never_signals_its_own_process_group() -> None:
    """A task file whose pid now lives in our own process group (a pid reused after a crash, or a task
    started without its own session) is forgotten, and nothing of ours is killed."""
    import os

    sibling = subprocess.Popen(["sleep", "60"])  # same process group as this test
    try:
        path = task_path("test", "ours")
        write_job(path, {"status": RUNNING, "pid": sibling.pid, "updated_at": time.time()})
        abandon_task(path)  # before the guard, killpg(our group): the test run itself would die here
        assert read_task(path) is None
        assert sibling.poll() is None and os.getpgid(sibling.pid) == os.getpgrp()
    finally:
        sibling.kill()
        sibling.wait()
