"""Start, poll, cancel and queue training runs. Runs execute in separate processes
(`python -m training.supervisor`, which starts `python -m training.run`), never in the caller's thread; the database is the only
channel between them, so a reloaded page, another server or the CLI all see the same state.

- `start_run` queues a run of an approved version and starts it when fewer than
  TRAIN_CONCURRENCY (default 1) runs are running; the worker's supervisor starts the next queued
  run when it finishes, and every `poll`/`reconcile` also does.
- `cancel_run` asks the worker to stop at its next step (a trainer callback reads the request);
  when it has not stopped after TRAIN_CANCEL_GRACE_S it gets SIGTERM, after twice that SIGKILL. A
  worker that has done no step yet (still loading its model) gets SIGTERM at once and exits.
- `reconcile` marks a running run whose worker process is gone as failed (cancelled when a cancel
  was requested), with the tail of its log.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.engine import Engine

from curation.access.roles import require_role
from curation.db import read_session, write_session
from curation.errors import Conflict, InputError
from curation.models import Role, RunStatus, TrainingRun, User
from curation.process import alive
from curation.settings import get_settings
from training.store import get_run, log_tail, now, run_dir
from training.test_scoring import resolve_test_set_version

START_GRACE_S = 120.0
ACTIVE = (RunStatus.queued, RunStatus.running)
_CHILDREN: dict[tuple[str, int], subprocess.Popen[bytes]] = {}  # (database, run id): supervisor
REPO = Path(__file__).resolve().parent.parent


def autostart() -> bool:
    """TRAIN_AUTOSTART=false: only queue runs (an operator launches them, e.g. under accelerate)."""
    return get_settings().train_autostart


def concurrency() -> int:
    return get_settings().train_concurrency


def _aware(value: datetime | None) -> datetime | None:
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=timezone.utc)  # SQLite drops the zone
    return value


def start_run(engine: Engine, actor: User, version_id: int, preset_name: str = "balanced", base: str | None = None,
              overrides: dict[str, Any] | None = None, launch: bool = True,
              test_set_version_id: int | None = None) -> TrainingRun:
    """Queue a run of an approved dataset version (leads and admins) and start it when a slot is free.
    The run is scored at its end on `test_set_version_id` (default: the project's latest approved
    test-set version; none when the project has no test set)."""
    from curation.versions.records import get_version, require_intact
    from training.config import TrainConfig, preset
    from training.models import default_base

    require_role(actor, Role.lead, Role.admin)
    version = get_version(engine, version_id)
    if str(version.status) != "approved":
        raise Conflict(f"Only approved versions can be trained; version {version.number} is {version.status}.")
    # A version whose stored rows no longer match its SHA-256 must not train (the worker checks again
    # on the rows it reads, in case they change while the run waits in the queue).
    require_intact(engine, version_id, "Refusing to train")
    try:
        config = preset(preset_name, str(version.task_type))
        config = TrainConfig.from_dict({**config.to_dict(), **(overrides or {})})
    except (ValueError, TypeError) as error:
        raise InputError(str(error)) from error
    run = TrainingRun(project_id=version.project_id, version_id=version_id, created_by_id=actor.id,
                      status=RunStatus.queued, task_type=version.task_type,
                      base_model=base or default_base(str(version.task_type)), preset=preset_name,
                      config=config.to_dict())

    run.test_set_version_id = resolve_test_set_version(engine, version.project_id, test_set_version_id)
    with write_session(engine) as session:
        session.add(run)
        session.flush()
        from curation.access import audit

        audit.record(session, actor, "training.start", "training_run", run.id, project_id=version.project_id,
                     after={"version_id": version_id, "preset": preset_name, "base_model": run.base_model,
                            "test_set_version_id": run.test_set_version_id})
    if launch:
        dispatch(engine)
    return get_run(engine, run.id)  # type: ignore[arg-type]


def list_runs(engine: Engine, project_id: int | None = None, limit: int = 200) -> list[TrainingRun]:
    query = select(TrainingRun).order_by(TrainingRun.id.desc()).limit(limit)
    if project_id is not None:
        query = query.where(TrainingRun.project_id == project_id)
    with read_session(engine) as session:
        return list(session.execute(query).scalars())


def _launch(engine: Engine, run_id: int) -> subprocess.Popen[bytes]:
    folder = run_dir(run_id)
    folder.mkdir(parents=True, exist_ok=True)
    env = os.environ.copy()
    settings = get_settings()
    env["DATABASE_URL"] = settings.resolved_database_url
    env["DATA_DIR"] = str(Path(settings.data_dir).resolve())
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    env.setdefault("TOKENIZERS_PARALLELISM", "false")
    with open(folder / "supervisor.log", "ab") as log:
        child = subprocess.Popen([sys.executable, "-m", "training.supervisor", "--run-id", str(run_id)],
                                 stdout=log, stderr=subprocess.STDOUT, env=env, cwd=str(REPO),
                                 start_new_session=True)
    _CHILDREN[(str(engine.url), run_id)] = child
    return child


def running_ids(engine: Engine) -> list[int]:
    """Ids of the runs training now (any project: they share the machine), oldest first."""
    with read_session(engine) as session:
        return list(session.execute(select(TrainingRun.id).where(TrainingRun.status == RunStatus.running.value)
                                    .order_by(TrainingRun.id)).scalars())


def dispatch(engine: Engine) -> list[int]:
    """Start queued runs, oldest first, while fewer than `concurrency()` run. Returns the started ids."""
    reconcile(engine)
    started: list[int] = []
    if not autostart():
        return started
    while True:
        running = running_ids(engine)
        with read_session(engine) as session:
            queued = session.execute(select(TrainingRun.id).where(TrainingRun.status == RunStatus.queued.value)
                                     .order_by(TrainingRun.id).limit(1)).scalar()
        if queued is None or len(running) >= concurrency():
            return started
        with write_session(engine) as session:  # claim it: only one dispatcher wins
            claimed = session.execute(update(TrainingRun).where(TrainingRun.id == queued,
                                                                TrainingRun.status == RunStatus.queued.value)
                                      .values(status=RunStatus.running.value, started_at=now(),
                                              heartbeat_at=now())).rowcount
        if claimed:
            _launch(engine, queued)
            started.append(queued)


def _signal_group(pid: int | None, sig: int) -> None:
    if pid is None:
        return
    try:
        os.killpg(os.getpgid(pid), sig)
    except (ProcessLookupError, PermissionError):
        try:
            os.kill(pid, sig)
        except (ProcessLookupError, PermissionError):
            pass


def reconcile(engine: Engine) -> None:
    """Settle runs whose worker is gone, and escalate cancels the worker did not honour."""
    for key, child in list(_CHILDREN.items()):
        if child.poll() is not None:
            _CHILDREN.pop(key, None)  # reap the finished supervisor
    with read_session(engine) as session:
        running = list(session.execute(select(TrainingRun).where(TrainingRun.status == RunStatus.running.value))
                       .scalars())
    moment = now()
    for run in running:
        supervisor = _CHILDREN.get((str(engine.url), run.id))
        supervised = supervisor is not None and supervisor.poll() is None
        started = _aware(run.started_at) or moment
        if run.pid is None:
            if not supervised and moment - started > timedelta(seconds=START_GRACE_S):
                _finish(engine, run, RunStatus.failed, "the worker never started (see its log)")
            continue
        if not alive(run.pid):
            if supervised:
                continue  # its supervisor is about to record the exit
            if run.cancel_requested_at is not None:
                _finish(engine, run, RunStatus.cancelled, "cancelled (worker stopped)")
            else:
                _finish(engine, run, RunStatus.failed, f"worker process {run.pid} is gone.\n{_worker_log_tail(run.id)}")
            continue
        asked = _aware(run.cancel_requested_at)
        if asked is not None:
            waited = (moment - asked).total_seconds()
            if waited > 2 * get_settings().train_cancel_grace_s:
                _signal_group(run.pid, signal.SIGKILL)
            elif waited > get_settings().train_cancel_grace_s or run.step == 0:
                # No step done yet (the worker is still loading): SIGTERM stops it at once (training.run)
                _signal_group(run.pid, signal.SIGTERM)


def _worker_log_tail(run_id: int) -> str:
    return log_tail(run_dir(run_id) / "worker.log")


def _finish(engine: Engine, run: TrainingRun, status: RunStatus, error: str) -> None:
    with write_session(engine) as session:
        session.execute(update(TrainingRun).where(TrainingRun.id == run.id, TrainingRun.status.in_(
            [s.value for s in ACTIVE])).values(status=status.value, finished_at=now(), error=error.strip()))


def poll(engine: Engine, run_id: int) -> TrainingRun:
    """The run's current state, after settling dead workers and starting queued runs."""
    dispatch(engine)
    return get_run(engine, run_id)


def cancel_run(engine: Engine, actor: User, run_id: int) -> TrainingRun:
    """Cancel a queued run at once; ask a running one to stop at its next step (signals as fallback)."""
    require_role(actor, Role.lead, Role.admin)
    run = get_run(engine, run_id)
    if run.status not in [s.value for s in ACTIVE]:
        raise Conflict(f"Run {run_id} is already {run.status}.")
    with write_session(engine) as session:
        session.execute(update(TrainingRun).where(TrainingRun.id == run_id, TrainingRun.status == "queued")
                        .values(status=RunStatus.cancelled.value, finished_at=now(), cancel_requested_at=now(),
                                error="cancelled before it started"))
        session.execute(update(TrainingRun).where(TrainingRun.id == run_id, TrainingRun.status == "running",
                                                  TrainingRun.cancel_requested_at.is_(None))
                        .values(cancel_requested_at=now()))
        from curation.access import audit

        audit.record(session, actor, "training.cancel", "training_run", run_id, project_id=run.project_id)
    dispatch(engine)
    return get_run(engine, run_id)


def run_summary(run: TrainingRun) -> dict[str, Any]:
    """A JSON-friendly row for lists (CLI `runs list --json`, the Runs page)."""
    metrics = run.metrics or {}
    headline: dict[str, Any] = {}
    if metrics.get("adapter"):
        adapter = metrics["adapter"]
        headline = {k: adapter[k] for k in ("accuracy", "macro_f1", "eval_loss", "perplexity") if k in adapter}
    return {"id": run.id, "project_id": run.project_id, "version_id": run.version_id, "status": str(run.status),
            "task_type": str(run.task_type), "base_model": run.base_model, "preset": run.preset,
            "step": run.step, "max_steps": run.max_steps, "loss": run.loss, "eta_s": run.eta_s,
            "created_at": run.created_at.isoformat() if run.created_at else None,
            "finished_at": run.finished_at.isoformat() if run.finished_at else None,
            "metrics": headline, "beats_baseline": metrics.get("beats_baseline"),
            "test_set_version_id": run.test_set_version_id, "scored_on": metrics.get("scored_on"),
            "objective": metrics.get("objective"),
            "warnings": list(run.warnings or []), "adapter_path": run.adapter_path, "error": run.error}
