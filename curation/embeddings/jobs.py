"""Embedding large projects in a background process whose progress survives a page reload.

`start_job` spawns `python -m curation embed --project-id ID --job-file FILE` as a detached process
(its own session, so it outlives the Streamlit script run and the browser tab). The process writes
its state to `DATA_DIR/jobs/embed-<project id>.json` atomically (temporary file, then rename):
`{"status": "running"|"done"|"failed", "done", "total", "error", "pid", "model", "started_at",
"updated_at", "fingerprint"}`. A page only reads that file, so a reload, a second tab or another
user sees the same progress. A "running" job whose process is gone reads as failed.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from curation.errors import InputError
from curation.process import alive
from curation.settings import get_settings

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

RUNNING, DONE, FAILED = "running", "done", "failed"

WRITE_EVERY_S = 0.5


def job_path(project_id: int) -> Path:
    return get_settings().data_dir / "jobs" / f"embed-{project_id}.json"


def write_job(path: Path, state: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(state), encoding="utf-8")
    os.replace(tmp, path)


def read_job(project_id: int) -> dict[str, Any] | None:
    """The project's latest embedding job, or None when there never was one."""
    path = job_path(project_id)
    try:
        state = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if state.get("status") == RUNNING and not alive(state.get("pid")):
        state = {
            **state,
            "status": FAILED,
            "error": state.get("error") or "the embedding process ended unexpectedly",
        }
    return state


def start_job(project_id: int, model: str | None = None) -> dict[str, Any]:
    """Start embedding the project in the background, unless a job for it is already running."""
    current = read_job(project_id)
    if current and current.get("status") == RUNNING:
        return current
    path = job_path(project_id)
    log = path.with_suffix(".log")
    path.parent.mkdir(parents=True, exist_ok=True)
    command = [
        sys.executable,
        "-m",
        "curation",
        "embed",
        "--project-id",
        str(project_id),
        "--job-file",
        str(path),
    ]
    if model:
        command += ["--model", model]
    with open(log, "ab") as out:
        process = subprocess.Popen(
            command,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            cwd=os.getcwd(),
            env=os.environ.copy(),
        )
    state = {
        "status": RUNNING,
        "done": 0,
        "total": 0,
        "error": None,
        "pid": process.pid,
        "model": model,
        "started_at": time.time(),
        "updated_at": time.time(),
        "fingerprint": None,
    }
    write_job(path, state)
    return state


def run_job(engine: Engine, project_id: int, model: str | None, path: Path | None) -> dict[str, Any]:
    """The work of a job (run inside the background process, or directly by the CLI)."""
    from curation.embeddings.encode import embed_texts, read_project_items

    state: dict[str, Any] = {
        "status": RUNNING,
        "done": 0,
        "total": 0,
        "error": None,
        "pid": os.getpid(),
        "model": model,
        "started_at": time.time(),
        "updated_at": time.time(),
        "fingerprint": None,
    }
    last = [0.0]

    def save(force: bool = False) -> None:
        now = time.time()
        if path is not None and (force or now - last[0] >= WRITE_EVERY_S):
            state["updated_at"] = now
            write_job(path, state)
            last[0] = now

    try:
        items = read_project_items(engine, project_id)
        state.update(total=len(items), fingerprint=items.fingerprint)
        save(force=True)

        def progress(done: int, total: int) -> None:
            state.update(done=done, total=total)
            save()

        result = embed_texts(items.texts, model, progress=progress)
        state.update(status=DONE, done=len(items), encoded=result.encoded, cached=result.cached)
    except Exception as error:
        state.update(status=FAILED, error=f"{type(error).__name__}: {error}")
        save(force=True)
        raise
    save(force=True)
    return state


def _send_choice(words: list[str]) -> int | None:
    """`--send flagged` -> None (all), `--send top N` -> N."""

    if words == ["flagged"]:
        return None
    if len(words) == 2 and words[0] == "top" and words[1].isdigit() and int(words[1]) > 0:
        return int(words[1])
    raise InputError("--send takes 'flagged' or 'top N' (N a positive whole number)", field="send")
