"""pages/train.py: approved versions only, presets driving the advanced fields, QLoRA shown as
unavailable with its reason on CPU, the preflight (in the background: the Start button is there at
once), starting a run that then shows live progress, the last run's outcome staying on the page with
a link, a reload attaching the form to the running run's settings, and Cancel's feedback."""

from __future__ import annotations

import time

from sqlalchemy.engine import Engine

from curation.models import TaskType, User, VersionStatus
from tests.pages.helpers import by_label, logged_in, no_exception, values
from tests.pages.training_fixtures import classification_version, tiny_models  # noqa: F401
from tests.training.helpers import classification_rows, make_version
from training import jobs
from training.config import qlora_available
from training.preflight_job import abandon


def _await_preflight(at, seconds: float = 240):  # noqa: ANN001, ANN202
    """Rerun until the background preflight's numbers are on the page (polling a process, not timing)."""
    deadline = time.monotonic() + seconds
    while "Train / eval examples" not in [m.label for m in at.metric] or any(
            "Refreshing the preflight" in v for v in values(at.info)):
        assert time.monotonic() < deadline, (values(at.info), values(at.warning))
        time.sleep(0.5)
        at.run()
        no_exception(at)
    return at


def _page():  # noqa: ANN202
    at = logged_in("lena", "lead-password")
    at.switch_page("pages/train.py").run()
    no_exception(at)
    assert values(at.title) == ["Train"]
    return at


def test_only_approved_versions_are_offered(engine: Engine, lead: User) -> None:
    make_version(engine, lead, "Draft", TaskType.classification, classification_rows(), labels=["billing", "shipping"],
                 status=VersionStatus.candidate)
    at = _page()
    assert any("Only approved dataset versions can be trained" in v for v in values(at.info))


def test_presets_preflight_and_start(engine: Engine, lead: User, classification_version: int,  # noqa: F811
                                     tiny_models: dict[str, str]) -> None:  # noqa: F811
    at = _page()
    assert by_label(at.selectbox, "Dataset version (approved)").value == classification_version
    by_label(at.text_input, "Base model").input(tiny_models["bert"]).run()
    no_exception(at)
    assert by_label(at.number_input, "Rank").value == 8
    assert by_label(at.number_input, "Epochs").value == 3.0
    by_label(at.radio, "Preset").set_value("thorough").run()
    assert by_label(at.number_input, "Rank").value == 16 and by_label(at.number_input, "Epochs").value == 5.0
    ok, reason = qlora_available()
    if not ok:
        assert by_label(at.checkbox, "QLoRA (4-bit base)").disabled
        assert any(reason in c for c in values(at.caption))
    by_label(at.radio, "Preset").set_value("quick").run()
    by_label(at.number_input, "Max steps (0: epochs)").set_value(3).run()
    no_exception(at)
    # The preflight runs in the background: the Start button is there at once, and says so.
    assert not by_label(at.button, "Start training").disabled
    _await_preflight(at)
    labels = [m.label for m in at.metric]
    for label in ("Train / eval examples", "Train tokens", "Truncated", "Trainable parameters",
                  "Per training example", "Estimated time", "Estimated memory"):
        assert label in labels
    assert by_label(at.metric, "Train / eval examples").value == "40 / 12"
    assert any("training examples" in w for w in values(at.warning))  # 40 examples: small-set warning
    by_label(at.button, "Start training").click().run()
    no_exception(at)
    assert any(v.startswith("Run #1 ") for v in values(at.success))
    run = jobs.get_run(engine, 1)
    assert run.config["max_steps"] == 3 and run.preset == "quick" and run.base_model == tiny_models["bert"]
    deadline = time.monotonic() + 180
    while jobs.poll(engine, 1).status in ("queued", "running"):
        assert time.monotonic() < deadline
        time.sleep(1)
    assert jobs.get_run(engine, 1).status == "succeeded", jobs.get_run(engine, 1).error


def test_the_page_is_usable_while_the_preflight_runs(engine: Engine, lead: User, classification_version: int,  # noqa: F811
                                                      tiny_models: dict[str, str]) -> None:  # noqa: F811
    at = _page()
    by_label(at.text_input, "Base model").input(tiny_models["bert"]).run()
    # First sight of these settings: no numbers yet, a note that they are coming, and the Start button.
    assert any("in the background" in v for v in values(at.info)), values(at.info)
    assert not by_label(at.button, "Start training").disabled
    _await_preflight(at)
    assert by_label(at.metric, "Train / eval examples").value == "40 / 12"
    # A changed setting keeps the old numbers on screen, marked as being refreshed.
    original = by_label(at.number_input, "Max length (tokens)").value
    by_label(at.number_input, "Max length (tokens)").set_value(48).run()
    no_exception(at)
    if "Train / eval examples" in [m.label for m in at.metric] and not any(
            "Refreshing the preflight" in v for v in values(at.info)):
        return  # the background process already finished (a fast machine): nothing left to show
    assert any("Refreshing the preflight" in v for v in values(at.info))
    assert by_label(at.metric, "Train / eval examples").value == "40 / 12"
    assert not by_label(at.button, "Start training").disabled
    _await_preflight(at)
    # The same settings again: the background result is the cache, answered at once.
    by_label(at.number_input, "Max length (tokens)").set_value(original).run()
    assert by_label(at.metric, "Train / eval examples").value == "40 / 12"
    assert not any("Refreshing" in v or "in the background" in v for v in values(at.info))


def _queued_run(engine: Engine, lead: User, version_id: int, monkeypatch) -> int:  # noqa: ANN001
    """A quick run with 3 max steps, queued only (TRAIN_AUTOSTART=false: no worker starts)."""
    from curation.settings import get_settings

    monkeypatch.setenv("TRAIN_AUTOSTART", "false")
    get_settings.cache_clear()
    return jobs.start_run(engine, lead, version_id, "quick", base="some-base", overrides={"max_steps": 3}).id


def test_a_reload_mid_run_shows_the_runs_settings(engine: Engine, lead: User, classification_version: int,  # noqa: F811
                                                   monkeypatch) -> None:  # noqa: ANN001
    run_id = _queued_run(engine, lead, classification_version, monkeypatch)
    at = _page()  # a new session: what a reload starts
    assert any(f"settings of run #{run_id}" in c for c in values(at.caption))
    assert by_label(at.radio, "Preset").value == "quick"
    assert by_label(at.number_input, "Max steps (0: epochs)").value == 3
    assert by_label(at.number_input, "Rank").value == 8 and by_label(at.number_input, "Epochs").value == 1.0
    assert by_label(at.text_input, "Base model").value == "some-base"
    by_label(at.radio, "Preset").set_value("thorough").run()  # and the form stays editable
    assert by_label(at.number_input, "Rank").value == 16


def test_cancel_says_cancelling_then_when_it_stopped_and_the_outcome_stays(
        engine: Engine, lead: User, classification_version: int, monkeypatch) -> None:  # noqa: ANN001, F811
    import subprocess

    from sqlalchemy import update

    from curation.models import TrainingRun, utcnow

    run_id = _queued_run(engine, lead, classification_version, monkeypatch)
    stand_in = subprocess.Popen(["sleep", "300"], start_new_session=True)  # a live "worker" pid
    try:
        with engine.begin() as conn:
            conn.execute(update(TrainingRun).where(TrainingRun.id == run_id).values(
                status="running", pid=stand_in.pid, started_at=utcnow(), heartbeat_at=utcnow(), max_steps=3, step=1))
        at = _page()
        assert f"**Run #{run_id}** 🏃 `running`" in values(at.markdown)
        by_label(at.button, "Cancel run").click().run()
        no_exception(at)
        assert f"**Run #{run_id}** 🛑 `cancelling`" in values(at.markdown)
        assert any(v.startswith("Cancelling: requested at ") for v in values(at.warning))
        assert by_label(at.button, "Cancelling…").disabled
        assert jobs.get_run(engine, run_id).cancel_requested_at is not None
        with engine.begin() as conn:  # what the worker writes when it stops at its next step
            conn.execute(update(TrainingRun).where(TrainingRun.id == run_id).values(
                status="cancelled", finished_at=utcnow(), error="cancelled at step 2", step=2))
        at.run()
        no_exception(at)
        assert any(v.startswith(f"**Last run: #{run_id}** 🚫 `cancelled`") for v in values(at.markdown))
        assert any(v.startswith("Cancelled: stopped at ") and "(step 2 of 3)" in v for v in values(at.info))
        assert "Cancel run" not in [b.label for b in at.button]
        link = at.get("page_link")[0].proto
        assert (link.label, link.query_string) == (f"Open run #{run_id} on the Runs page", f"run={run_id}")
        again = _page()  # and it stays there after a reload
        assert any(v.startswith(f"**Last run: #{run_id}**") for v in values(again.markdown))
    finally:
        stand_in.kill()
        stand_in.wait()


def test_no_preflight_starts_while_a_run_trains(engine: Engine, lead: User, classification_version: int,  # noqa: F811
                                               monkeypatch) -> None:  # noqa: ANN001
    """Steps timed beside a training run would measure the contention: the page says the preflight waits
    and starts no background process until the run ends, then measures."""
    import subprocess

    from sqlalchemy import update

    from curation.models import TrainingRun, utcnow
    from curation.settings import get_settings

    run_id = _queued_run(engine, lead, classification_version, monkeypatch)
    stand_in = subprocess.Popen(["sleep", "300"], start_new_session=True)  # a live "worker" pid
    jobs_dir = get_settings().data_dir / "jobs"
    try:
        with engine.begin() as conn:
            conn.execute(update(TrainingRun).where(TrainingRun.id == run_id).values(
                status="running", pid=stand_in.pid, started_at=utcnow(), heartbeat_at=utcnow(), max_steps=3, step=1))
        at = _page()
        assert any(v.startswith("The preflight for these settings waits until the training run in progress")
                   for v in values(at.info)), values(at.info)
        by_label(at.number_input, "Max length (tokens)").set_value(48).run()  # other settings: still waiting
        no_exception(at)
        assert any("waits until the training run" in v for v in values(at.info))
        assert not list(jobs_dir.glob("preflight-*")), "a preflight started beside a training run"
        assert not by_label(at.button, "Start training").disabled  # the next run can still be queued
        with engine.begin() as conn:
            conn.execute(update(TrainingRun).where(TrainingRun.id == run_id).values(
                status="succeeded", finished_at=utcnow()))
        at.run()
        assert not any("waits until the training run" in v for v in values(at.info))
        assert list(jobs_dir.glob("preflight-*.json")), "the preflight starts once the run is done"
    finally:
        stand_in.kill()
        stand_in.wait()
        for path in jobs_dir.glob("preflight-*.json"):  # stop the preflight the last render started
            abandon(str(path))


def test_a_finished_run_stays_with_its_metrics_and_a_link(engine: Engine, lead: User, classification_version: int,  # noqa: F811
                                                          tiny_models: dict[str, str]) -> None:  # noqa: F811
    from tests.pages.training_fixtures import trained

    run_id = trained(engine, lead, classification_version, tiny_models["bert"])
    at = _page()
    assert any(v.startswith(f"**Last run: #{run_id}** ✅ `succeeded`") for v in values(at.markdown))
    assert {m.label for m in at.metric} >= {"accuracy", "macro f1"}
    link = at.get("page_link")[0].proto
    assert (link.label, link.query_string) == (f"Open run #{run_id} on the Runs page", f"run={run_id}")
