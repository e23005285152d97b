"""Runs in separate worker processes: start, live progress in the database, queueing one at a
time, cancel at the next step, and a worker killed with SIGKILL marked failed with its log tail."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable

import pytest
from sqlalchemy.engine import Engine

from curation.errors import Conflict
from curation.models import RunStatus, TrainingRun, User
from tests.conftest import BOTH_BACKENDS
from training import jobs

ENDLESS = {"max_steps": 100_000, "batch_size": 4, "max_length": 16, "early_stopping": False}


def wait_for(engine: Engine, run_id: int, check: Callable[[TrainingRun], bool], timeout: float = 180) -> TrainingRun:
    deadline = time.monotonic() + timeout
    while True:
        run = jobs.poll(engine, run_id)
        if check(run):
            return run
        assert time.monotonic() < deadline, f"run {run_id} stuck: {run.status} step {run.step} {run.error}"
        time.sleep(0.5)


@BOTH_BACKENDS
def test_start_progress_queue_and_cancel(engine: Engine, lead: User, classification_version: int,
                                         tiny_models: dict[str, str]) -> None:
    first = jobs.start_run(engine, lead, classification_version, "quick", base=tiny_models["bert"], overrides=ENDLESS)
    second = jobs.start_run(engine, lead, classification_version, "quick", base=tiny_models["bert"],
                            overrides=ENDLESS)
    assert first.status == RunStatus.running and second.status == RunStatus.queued  # one at a time
    live = wait_for(engine, first.id, lambda r: r.step >= 3 and r.loss is not None)
    assert live.pid and live.max_steps == 100_000 and live.tokens_per_s and live.eta_s and live.eta_s > 0
    assert [p["step"] for p in live.history if "loss" in p][:2] == [1, 2]
    assert jobs.cancel_run(engine, lead, second.id).status == RunStatus.cancelled  # queued: at once
    jobs.cancel_run(engine, lead, first.id)
    done = wait_for(engine, first.id, lambda r: r.status != RunStatus.running, timeout=60)
    assert done.status == RunStatus.cancelled and done.step < 100_000
    assert done.adapter_path is None
    with pytest.raises(Conflict):
        jobs.cancel_run(engine, lead, first.id)


def test_a_cancel_before_the_first_step_stops_the_loading_worker_at_once(
        engine: Engine, lead: User, classification_version: int, tiny_models: dict[str, str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A worker still importing torch and loading its model has nothing to lose: it gets SIGTERM on the
    cancel and exits, instead of the grace period (here longer than the test waits) running out first."""
    from curation.settings import get_settings

    monkeypatch.setenv("TRAIN_CANCEL_GRACE_S", "600")
    get_settings.cache_clear()
    started = jobs.start_run(engine, lead, classification_version, "quick", base=tiny_models["bert"],
                             overrides=ENDLESS)
    loading = wait_for(engine, started.id, lambda r: r.pid is not None)
    assert loading.step == 0  # its pid is written before torch is imported
    jobs.cancel_run(engine, lead, started.id)
    done = wait_for(engine, started.id, lambda r: r.status != RunStatus.running, timeout=60)
    assert (done.status, done.step, done.adapter_path) == (RunStatus.cancelled, 0, None)
    # killed by SIGTERM's default action before the worker's handler is installed, else its handler's exit
    assert done.error in ("cancelled (worker killed by signal SIGTERM)", "cancelled (worker exited with status 143)")


def test_a_worker_killed_with_sigkill_fails_the_run(engine: Engine, lead: User, classification_version: int,
                                                    tiny_models: dict[str, str]) -> None:
    started = jobs.start_run(engine, lead, classification_version, "quick", base=tiny_models["bert"],
                             overrides=ENDLESS)
    live = wait_for(engine, started.id, lambda r: r.pid is not None and r.step >= 1)
    os.kill(live.pid, signal.SIGKILL)
    dead = wait_for(engine, started.id, lambda r: r.status != RunStatus.running, timeout=60)
    assert dead.status == RunStatus.failed
    assert "killed by signal SIGKILL" in dead.error
    assert dead.adapter_path is None


@BOTH_BACKENDS
def test_reconcile_marks_an_orphaned_run_failed(engine: Engine, lead: User, classification_version: int,
                                                tiny_models: dict[str, str]) -> None:
    """A run whose worker and supervisor are both gone (e.g. the machine rebooted) is failed on poll."""
    from curation.db import write_session

    run = jobs.start_run(engine, lead, classification_version, "quick", base=tiny_models["bert"], launch=False)
    with write_session(engine) as session:
        row = session.get(TrainingRun, run.id)
        row.status, row.pid = RunStatus.running, 2**22 + 12345  # no such process
        session.add(row)
    failed = jobs.poll(engine, run.id)
    assert failed.status == RunStatus.failed and "is gone" in failed.error
