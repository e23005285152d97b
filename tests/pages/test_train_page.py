"""pages/train.py: approved versions only, presets driving the advanced fields, QLoRA shown as
unavailable with its reason on CPU, the preflight, and starting a run that then shows live progress."""

from __future__ import annotations

import time

from sqlalchemy.engine import Engine

from curation.models import TaskType, User, VersionStatus
from tests.pages.helpers import by_label, logged_in, no_exception, values
from tests.pages.training_fixtures import classification_version, tiny_models  # noqa: F401
from tests.training.helpers import classification_rows, make_version
from training import jobs
from training.config import qlora_available


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
