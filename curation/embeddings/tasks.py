"""Background tasks whose result a page reads later: the same pattern as curation/embedding_jobs.py
(a detached process writes its state to a JSON file atomically; pages only read the file, so a
reload, a second tab or another user sees the same progress), for any work keyed by its inputs.

A task file `DATA_DIR/jobs/<kind>-<digest of the key>.json` holds
`{"status": "running"|"done"|"failed", "key", "pid", "started_at", "updated_at", "done", "total",
"note", "error", "result"}`; `result` is the task's JSON answer. The key is everything the result
depends on, so a finished task is also the cache of its result: the same inputs never compute twice.
A "running" task whose process is gone reads as failed.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from curation.embeddings.jobs import write_job
from curation.process import alive
from curation.settings import get_settings

RUNNING, DONE, FAILED = "running", "done", "failed"
RETRY_FAILED_AFTER_S = 60.0  # a failed task (a model not prepared yet, a lock) is tried again after this


def task_path(kind: str, key: str) -> Path:
    digest = hashlib.sha256(key.encode()).hexdigest()[:24]
    return get_settings().data_dir / "jobs" / f"{kind}-{digest}.json"


_finished: dict[Path, tuple[tuple[int, int], dict[str, Any]]] = {}  # path -> ((mtime_ns, size), state)


def read_task(path: Path) -> dict[str, Any] | None:
    """The task's state, or None when it never ran. A finished task's file is parsed once per process
    while it is unchanged (a label-issue report at 100k items is megabytes of JSON, read on every
    render of its page); treat the returned state as read-only."""
    try:
        stat = path.stat()
        stamp = (stat.st_mtime_ns, stat.st_size)
        known = _finished.get(path)
        if known is not None and known[0] == stamp:
            return known[1]
        state = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if state.get("status") in (DONE, FAILED):
        if len(_finished) >= 16:
            _finished.pop(next(iter(_finished)))
        _finished[path] = (stamp, state)
    if state.get("status") == RUNNING and not alive(state.get("pid")):
        state = {**state, "status": FAILED, "error": state.get("error") or "the background process ended unexpectedly"}
    return state


def start_task(path: Path, key: str, argv: list[str]) -> dict[str, Any]:
    """Run `python <argv> --task-file PATH` detached (its own session: it outlives the page run and the
    browser tab), unless the task is running or done; a failed one is retried after a while."""
    current = read_task(path)
    if current and (current["status"] in (RUNNING, DONE) or
                    time.time() - float(current.get("updated_at") or 0) < RETRY_FAILED_AFTER_S):
        return current
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_suffix(".log"), "ab") as out:
        process = subprocess.Popen([sys.executable, *argv, "--task-file", str(path)], stdout=out,
                                   stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True,
                                   cwd=os.getcwd(), env=os.environ.copy())
    state = {"status": RUNNING, "key": key, "pid": process.pid, "started_at": time.time(), "updated_at": time.time(),
             "done": 0, "total": 0, "note": "starting", "error": None, "result": None}
    write_job(path, state)
    return state


def abandon_task(path: Path) -> None:
    """Stop a running task nobody waits for any more (settings changed again) and forget it, so the
    CPU goes to the task that matters; a later request starts it afresh."""
    import signal

    state = read_task(path)
    if state is None or state["status"] != RUNNING:
        return
    try:
        group = os.getpgid(int(state["pid"]))
        if group != os.getpgrp():  # its own session; never ours (a pid reused since the file was written)
            os.killpg(group, signal.SIGTERM)
    except (ProcessLookupError, PermissionError, TypeError, ValueError):
        pass
    path.unlink(missing_ok=True)


def run_task(path: Path, key: str, work: Callable[[Callable[[int, int, str], None]], Any]) -> dict[str, Any]:
    """Inside the background process: run `work(progress)` and write its result (or its error).
    `progress(done, total, note)` updates the file."""
    state: dict[str, Any] = {"status": RUNNING, "key": key, "pid": os.getpid(), "started_at": time.time(),
                             "updated_at": time.time(), "done": 0, "total": 0, "note": "", "error": None,
                             "result": None}

    def progress(done: int, total: int, note: str = "") -> None:
        state.update(done=done, total=total, note=note, updated_at=time.time())
        write_job(path, state)

    write_job(path, state)
    try:
        # JSON as the file will hold it (numpy scalars and the like become plain numbers or text)
        state["result"] = json.loads(json.dumps(work(progress), default=lambda v: float(v) if hasattr(v, "__float__") else str(v)))
        state["status"] = DONE
    except Exception as error:  # noqa: BLE001 - recorded for the page, which shows it
        state.update(status=FAILED, error=f"{type(error).__name__}: {error}")
    state["updated_at"] = time.time()
    write_job(path, state)
    return state
