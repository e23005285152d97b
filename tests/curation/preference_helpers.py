"""Helpers for preference-round tests: a generation project with an approved version and finished runs
written straight into the tables, and rounds whose responses are precomputed (no model runs)."""

from __future__ import annotations

from sqlalchemy.engine import Engine

from curation.db import write_session
from curation.evaluation import preference
from curation.models import DatasetVersion, RunStatus, TaskType, TrainingRun, User, utcnow
from tests.training.helpers import generation_rows, make_version

RUN_METRICS = {"adapter": {"eval_loss": 1.0, "perplexity": 2.72}, "base": {"eval_loss": 2.0, "perplexity": 7.39}}


def generation_project(engine: Engine, lead: User, name: str = "Replies", n_eval: int = 6) -> int:
    """An approved generation dataset version (16 train, `n_eval` eval items); its id."""
    return make_version(engine, lead, name, TaskType.generation, generation_rows(n_eval=n_eval))


def finished_run(engine: Engine, lead: User, version_id: int, test_set_version_id: int | None = None) -> int:
    """A succeeded generation run row (its adapter folder is never read by these tests)."""
    with write_session(engine) as session:
        version = session.get(DatasetVersion, version_id)
        assert version is not None
        run = TrainingRun(project_id=version.project_id, version_id=version_id, created_by_id=lead.id,
                          status=RunStatus.succeeded, task_type=TaskType.generation, base_model="tiny-llama",
                          preset="quick", output_dir="/nonexistent/run", finished_at=utcnow(),
                          metrics=RUN_METRICS, test_set_version_id=test_set_version_id)
        session.add(run)
        session.flush()
        assert run.id is not None
        return run.id


def generated_round(engine: Engine, lead: User, run_id: int, *, size: int = 4, overlap_k: int = 2,
                    other_run_id: int | None = None) -> int:
    """A round started by `lead` whose responses were written as the worker would: A's answer is
    'adapter answer N', B's 'base answer N'."""
    round_ = preference.start_round(engine, lead, run_id, other_run_id=other_run_id, size=size, overlap_k=overlap_k)
    assert round_.id is not None
    spec = preference.generation_spec(engine, lead, round_.id)
    preference.store_responses(engine, lead, round_.id, {
        item["id"]: (f"adapter answer {n}", f"base answer {n}") for n, item in enumerate(spec["items"])})
    return round_.id
