"""Issue 12, item 4 on the pages: the Runs and Train pages start a finished classification run's suggest
job in the background, follow its progress, and show the same state after a reload."""

from __future__ import annotations

import os
import signal
import time

from sqlalchemy import func, select
from sqlalchemy.engine import Engine

from curation.db import read_session, write_session
from curation.embeddings.jobs import write_job
from curation.embeddings.suggest import read_suggest_job, suggest_job_path
from curation.models import RunStatus, Suggestion, TaskType, TrainingRun, User
from curation.versions.records import get_version
from tests.pages.helpers import by_label, logged_in, no_exception, values
from tests.pages.training_fixtures import classification_version, tiny_models, trained  # noqa: F401
from tests.training.helpers import classification_rows, items_with_a_vendor, make_version
from ui.run_suggest import can_suggest
from ui.session import PROJECT_KEY


def _page(path: str, project_id: int):  # noqa: ANN202
    at = logged_in("lena", "lead-password")
    at.session_state[PROJECT_KEY] = project_id
    at.switch_page(path).run()
    no_exception(at)
    return at


def test_the_runs_page_starts_a_runs_suggest_job_and_a_reload_shows_its_outcome(
        engine: Engine, lead: User, classification_version: int, tiny_models: dict[str, str]) -> None:  # noqa: F811
    run_id = trained(engine, lead, classification_version, tiny_models["bert"])
    with read_session(engine) as session:
        project_id = session.get(TrainingRun, run_id).project_id
    items_with_a_vendor(engine, lead, project_id)
    at = _page("pages/runs.py", project_id)
    label = f"Suggest labels with run #{run_id}'s adapter"
    by_label(at.button, label).click().run()
    no_exception(at)
    state = read_suggest_job(project_id, run_id)
    assert state is not None and state["status"] in ("running", "done"), state
    deadline = time.monotonic() + 240
    done = f"Run #{run_id}'s adapter suggested labels for 18 items (model:run-{run_id})"
    while not any(c.startswith(done) for c in values(at.caption)):  # polling the background process, not timing
        assert time.monotonic() < deadline, (read_suggest_job(project_id, run_id), values(at.error))
        if any(p.proto.text.startswith(f"Run #{run_id} suggesting labels:") for p in at.get("progress")):
            assert by_label(at.button, label).disabled  # one job per run at a time
        time.sleep(0.5)
        at.run()
        no_exception(at)
    with read_session(engine) as session:
        written = session.execute(select(func.count()).select_from(Suggestion)
                                  .where(Suggestion.source == f"model:run-{run_id}")).scalar_one()
    assert written == 18
    reloaded = _page("pages/runs.py", project_id)  # a new session reads the job's outcome from its file
    assert any(c.startswith(done) for c in values(reloaded.caption))
    assert not by_label(reloaded.button, label).disabled


def test_the_train_page_offers_it_for_the_last_finished_run_and_follows_a_running_job(
        engine: Engine, lead: User) -> None:
    version_id = make_version(engine, lead, "Tickets", TaskType.classification, classification_rows(),
                              labels=["billing", "shipping"])
    project_id = get_version(engine, version_id).project_id
    with write_session(engine) as session:
        run = TrainingRun(project_id=project_id, version_id=version_id, base_model="x", status=RunStatus.succeeded,
                          task_type=TaskType.classification, output_dir="/nonexistent/run", step=6, max_steps=6)
        session.add(run)
        session.flush()
        run_id = int(run.id)  # type: ignore[arg-type]
    # A job running in another process (this one, alive): a fresh page shows its progress, button disabled.
    write_job(suggest_job_path(project_id, run_id), {"status": "running", "done": 5, "total": 18, "pid": os.getpid()})
    at = _page("pages/train.py", project_id)
    label = f"Suggest labels with run #{run_id}'s adapter"
    assert by_label(at.button, label).disabled
    assert at.get("progress")[0].proto.text == f"Run #{run_id} suggesting labels: 5 / 18 texts classified"
    # A job whose process is gone reads as failed, and the button starts a new one.
    write_job(suggest_job_path(project_id, run_id), {"status": "running", "done": 5, "total": 18, "pid": 2 ** 22 + 7})
    at = _page("pages/train.py", project_id)
    assert f"Run #{run_id}'s suggest job failed: the suggest process ended unexpectedly" in values(at.error)
    by_label(at.button, label).click().run()
    no_exception(at)
    state = read_suggest_job(project_id, run_id)
    assert state is not None and state["pid"] != 2 ** 22 + 7
    try:
        assert state["status"] in ("running", "failed")  # its adapter folder does not exist: it will fail
    finally:
        try:
            os.kill(int(state["pid"]), signal.SIGTERM)  # the process this test started, by its id
        except ProcessLookupError:
            pass


def test_only_a_finished_classification_run_can_suggest() -> None:
    def run(**fields: object) -> TrainingRun:
        return TrainingRun(**{"project_id": 1, "version_id": 1, "base_model": "x", "status": RunStatus.succeeded,
                              "task_type": TaskType.classification, "output_dir": "/runs/1", **fields})

    assert can_suggest(run())
    assert not can_suggest(run(task_type=TaskType.generation))
    assert not can_suggest(run(status=RunStatus.running))
    assert not can_suggest(run(output_dir=None))
