"""pages/runs.py: the list, a finished run's metrics against the baselines, a running run's live
progress after a reload (reattach), and the comparison of two runs."""

from __future__ import annotations

import os

from sqlalchemy.engine import Engine

from curation.db import write_session
from curation.models import RunStatus, TrainingRun, User
from tests.pages.helpers import by_label, logged_in, no_exception, values
from tests.pages.training_fixtures import classification_version, tiny_models, trained  # noqa: F401


def _page():  # noqa: ANN202
    at = logged_in("lena", "lead-password")
    at.switch_page("pages/runs.py").run()
    no_exception(at)
    assert values(at.title) == ["Runs"]
    return at


def test_details_compare_and_reattach(engine: Engine, lead: User, classification_version: int,  # noqa: F811
                                      tiny_models: dict[str, str]) -> None:  # noqa: F811
    first = trained(engine, lead, classification_version, tiny_models["bert"])
    second = trained(engine, lead, classification_version, tiny_models["bert"], rank=4, learning_rate=1e-3)
    at = _page()
    table = at.dataframe[0].value
    assert table["#"].tolist() == [second, first] and set(table["status"]) == {"✅ succeeded"}
    assert "accuracy" in table.columns
    models = at.dataframe[1].value["model"].tolist()  # details of the newest run
    assert models == ["LoRA adapter", "Linear probe (frozen embeddings)", "Majority class"]
    details = at.dataframe[1].value.set_index("model")
    assert details.loc["LoRA adapter", "adapter vs this"] == "—"
    versus = details.loc["Majority class", "adapter vs this"]
    assert "better" in versus or "worse" in versus or "no detectable difference" in versus
    assert details.loc["LoRA adapter", "accuracy 95% CI"].startswith("[")
    assert any(c.startswith("Adapter (PEFT format):") for c in values(at.caption))
    diff = at.dataframe[-2].value if len(at.dataframe) > 4 else None
    settings = [d.value for d in at.dataframe if "setting" in d.value.columns]
    assert settings and set(settings[0]["setting"]) == {"rank", "learning_rate"}
    assert settings[0].set_index("setting").loc["rank"].tolist() == ["8", "4"]
    metrics = [d.value for d in at.dataframe if "metric" in d.value.columns]
    assert metrics and "accuracy" in metrics[0]["metric"].tolist()
    assert any("same version" in c for c in values(at.caption))
    del diff

    # A running run (its worker is this process, alive) shows live progress on a fresh session.
    with write_session(engine) as session:
        session.add(TrainingRun(project_id=1, version_id=classification_version, base_model="x", status=RunStatus.running,
                                pid=os.getpid(), step=5, max_steps=20, loss=0.7, tokens_per_s=1234.0, eta_s=90,
                                history=[{"step": s, "loss": 1.0 / s} for s in range(1, 6)]))
    at = _page()
    assert at.dataframe[0].value["status"].tolist()[0] == "🏃 running"
    by_label(at.selectbox, "Run").set_value(3).run()
    no_exception(at)
    assert by_label(at.metric, "Loss").value == "0.7000" and by_label(at.metric, "Tokens/s").value == "1,234"
    assert by_label(at.metric, "ETA").value == "1m 30s"
    assert any("Cancel run" == b.label for b in at.button)
    by_label(at.button, "Cancel run").click().run()
    no_exception(at)
    with write_session(engine) as session:
        assert session.get(TrainingRun, 3).cancel_requested_at is not None


def test_compare_two_versions_on_the_same_test_set(engine: Engine, lead: User, classification_version: int,  # noqa: F811
                                                   tiny_models: dict[str, str]) -> None:  # noqa: F811
    from curation.evaluation.objective import set_objective
    from curation.models import DatasetVersion, DatasetVersionItem
    from curation.versions.hashing import item_hash, version_hash
    from curation.versions.records import get_version, version_items
    from tests.training.helpers import make_test_set_version, test_rows

    project_id = get_version(engine, classification_version).project_id
    set_objective(engine, lead, project_id, "accuracy", 0.99)
    make_test_set_version(engine, lead, project_id, test_rows(16))
    # a second version: one train item relabelled, one dropped
    items = version_items(engine, lead, classification_version)
    with write_session(engine) as session:
        v2 = DatasetVersion(project_id=project_id, number=2, status="approved", content_hash="", labels=["billing",
                            "shipping"], item_count=len(items) - 1, stats={})
        session.add(v2)
        session.flush()
        copies = []
        for item in items[1:]:
            copy = DatasetVersionItem(version_id=v2.id, external_id=item.external_id, split=item.split, text=item.text,
                                      label=item.label, source=item.source, licence=item.licence, content_hash="")
            if item.external_id == items[1].external_id:
                copy.label = "shipping" if item.label == "billing" else "billing"
            copy.content_hash = item_hash(copy)
            copies.append(copy)
            session.add(copy)
        v2.content_hash = version_hash(copies)
        second_version = v2.id
    first = trained(engine, lead, classification_version, tiny_models["bert"])
    second = trained(engine, lead, second_version, tiny_models["bert"])
    at = _page()
    table = at.dataframe[0].value
    assert table["objective"].tolist()[0].startswith("accuracy ") and "target 0.99" in table["objective"].tolist()[0]
    assert any(c.startswith("Scored once on test set v1 (16 items") for c in values(at.caption))
    assert any(e.startswith("Objective: accuracy") for e in values(at.error) + values(at.success))
    compared = next(d.value for d in at.dataframe if "verdict" in d.value.columns and "metric" in d.value.columns)
    assert compared["metric"].tolist() == ["accuracy", "macro_f1"]
    assert compared.set_index("metric").loc["accuracy", "test"] == "McNemar exact"
    per_label = next(d.value for d in at.dataframe if "label" in d.value.columns and "verdict" in d.value.columns)
    assert sorted(per_label["label"]) == ["billing", "shipping"]
    changes = next(d.value for d in at.dataframe if "change" in d.value.columns).set_index("change")["items"]
    assert (changes["added"], changes["removed"], changes["relabelled"]) == (0, 1, 1)
    assert "0 added · 1 removed · 1 relabelled · 0 text changed" in values(at.caption)
    row = compared.set_index("metric").loc["accuracy"]  # the same difference in words beside the canvas table
    low, high = (float(x) for x in row["95% CI"].strip("[]").split(", "))
    assert f"accuracy: B − A = {row['B − A']:+.4f}, 95% CI [{low:+.4f}, {high:+.4f}]: {row['verdict']}" in values(at.text)
    assert {first, second} == set(table["#"])


def test_suggest_job_launches_from_the_runs_page_and_shows_its_state(engine: Engine, lead: User) -> None:
    """Issue 12: the linear-probe suggest job starts in the background and the page follows it."""
    import signal

    from curation.data.projects import create_project
    from curation.embeddings.jobs import write_job
    from curation.embeddings.suggest import read_suggest_job, suggest_job_path
    from ui.session import PROJECT_KEY

    project = create_project(engine, lead, "Probe", labels=["a", "b"])
    write_job(suggest_job_path(project.id), {"status": "done", "report": {"items": 42, "trained_on": 40}})
    at = logged_in("lena", "lead-password")
    at.session_state[PROJECT_KEY] = project.id
    at.switch_page("pages/runs.py").run()
    no_exception(at)
    assert "Last suggest run: 42 suggestions written, probe trained on 40 items." in values(at.caption)
    assert "No training runs yet. Start one on the Train page." in values(at.info)
    by_label(at.button, "Suggest labels (linear probe)").click().run()
    no_exception(at)
    state = read_suggest_job(project.id)
    assert state is not None and state["pid"]
    try:
        # Just started: running (or already failed: the project has no items for the probe).
        assert state["status"] in ("running", "failed")
        if state["status"] == "running":
            assert at.get("progress")[0].proto.text.startswith("Suggest job running:")
    finally:
        try:
            os.kill(int(state["pid"]), signal.SIGTERM)  # the process this test started, by its id
        except ProcessLookupError:
            pass


def test_a_generation_run_shows_its_metrics_with_intervals_and_the_verdict(engine: Engine, lead: User) -> None:
    """A finished generation run's record (metrics as evaluate_generation writes them, from hand-made
    responses): every metric of base and adapter with its interval, the paired difference, the verdict."""
    from curation.evaluation import generation_metrics as gm
    from curation.evaluation import stats as es
    from curation.models import DatasetVersion, TaskType
    from tests.training.helpers import generation_rows, make_version
    from training import evaluate

    version_id = make_version(engine, lead, "Replies", TaskType.generation, generation_rows())
    references = ['{"intent": "a"}', '{"intent": "b"}'] * 20
    base = gm.item_scores(["no"] * 40, references)
    adapter = gm.item_scores(references[:36] + ["no"] * 4, references)
    metrics: dict = {"base": {"intervals": {}}, "adapter": {"intervals": {}},
                     "comparisons": {"base": es.to_plain(gm.compare(base, adapter))},
                     "verdict_metric": {"metric": "exact_match", "name": "exact match", "reason": "JSON references"},
                     "generation": {"items": 40, "batch_size": 16, "max_new_tokens": 14, "tokens_per_s": 123.4},
                     "samples": [{"prompt": [{"role": "user", "content": "<b>card</b>"}], "reference": references[0],
                                  "base": "no", "adapter": references[0]}]}
    for key, scores in (("base", base), ("adapter", adapter)):
        for metric, interval in gm.intervals(scores).items():
            metrics[key][metric] = interval.value
            metrics[key]["intervals"][metric] = interval.to_dict()
    warnings = evaluate.verdict("generation", metrics)
    assert warnings == [] and metrics["beats_baseline"] is True
    with write_session(engine) as session:
        project_id = session.get(DatasetVersion, version_id).project_id
        session.add(TrainingRun(project_id=project_id, version_id=version_id, base_model="SmolLM2-135M-Instruct",
                                task_type=TaskType.generation, status=RunStatus.succeeded, preset="quick",
                                metrics=metrics, warnings=warnings))
    at = _page()
    table = next(d.value for d in at.dataframe if "adapter - base" in d.value.columns).set_index("metric")
    assert table.index.tolist() == ["exact match", "JSON valid", "chrF", "ROUGE-L"]
    assert table.loc["exact match", "base"] == 0.0 and table.loc["exact match", "adapter"] == 0.9
    assert table.loc["exact match", "adapter 95% CI"].startswith("[") and table.loc["exact match", "base 95% CI"] == \
        "[0.000, 0.000]"
    assert table.loc["exact match", "adapter - base"].startswith("+0.900 [") and "better" in \
        table.loc["exact match", "adapter - base"]
    assert any(s.startswith("The adapter beats the base model") and "exact match (JSON references)" in s
               for s in values(at.success))
    assert any("123.4 tokens/s" in c for c in values(at.caption))
