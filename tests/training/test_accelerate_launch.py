"""`accelerate launch --multi_gpu --num_processes 2 -m training.run --run-id N` with no GPU visible:
the command README's "Several GPUs" offers, run for real as two CPU processes over gloo on a tiny BERT
built from a config. (`accelerate launch --cpu --num_processes 2` would start one process only.)

The run succeeds; both processes train (the step count is that of a data set split in two); only the
main process writes to the database (`training.run.update_run` refuses on any other rank, so a write
from rank 1 would fail that process and the launch) and saves; the adapter loads; the metrics are
recorded once, by the main process.
"""

from __future__ import annotations

import math
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

from sqlalchemy.engine import Engine

from curation.models import RunStatus, User
from tests.training.helpers import classification_rows
from training import jobs
from training.models import load_adapter

REPO = Path(__file__).resolve().parents[2]
PROCESSES, BATCH, EPOCHS = 2, 4, 2
LAUNCH_TIMEOUT_S = 600


def _accelerate() -> list[str]:
    """The venv's `accelerate` script when there is one, else the same command through the module."""
    script = Path(sys.executable).parent / "accelerate"
    if script.exists():
        return [str(script)]
    found = shutil.which("accelerate")
    return [found] if found else [sys.executable, "-m", "accelerate.commands.accelerate_cli"]


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_two_processes_train_and_only_the_main_one_writes(engine: Engine, lead: User, classification_version: int,
                                                          tiny_models: dict[str, str], tmp_path: Path) -> None:
    overrides = {"epochs": EPOCHS, "max_steps": 0, "batch_size": BATCH, "max_length": 32, "early_stopping": False,
                 "eval_steps": 0}
    queued = jobs.start_run(engine, lead, classification_version, "quick", base=tiny_models["bert"],
                            overrides=overrides, launch=False)
    assert queued.status == RunStatus.queued
    env = dict(os.environ)
    env.update(DATABASE_URL=engine.url.render_as_string(hide_password=False),
               PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")])),
               TOKENIZERS_PARALLELISM="false", OMP_NUM_THREADS="1",
               HF_HOME=str(tmp_path / "hf"))  # a fresh accelerate config: no developer's default_config.yaml
    # `--cpu --num_processes 2` starts ONE process (accelerate's simple launcher; several CPU processes
    # need mpirun there). `--multi_gpu` is its torchrun launcher; with no visible GPU the processes
    # join over gloo on the CPU.
    env["CUDA_VISIBLE_DEVICES"] = ""
    command = [*_accelerate(), "launch", "--multi_gpu", "--num_processes", str(PROCESSES), "--num_machines", "1",
               "--main_process_port", str(_free_port()), "--mixed_precision", "no", "--dynamo_backend", "no",
               "-m", "training.run", "--run-id", str(queued.id)]
    done = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=LAUNCH_TIMEOUT_S,
                          check=False)
    log = f"{done.stdout}\n{done.stderr}"
    assert done.returncode == 0, log[-6000:]

    finished = jobs.get_run(engine, queued.id)
    assert finished.status == RunStatus.succeeded, finished.error
    n_train = sum(1 for row in classification_rows() if row["split"] == "train")
    # Each process takes half the examples: the steps of a world of two, not of one process.
    per_process_steps = math.ceil(math.ceil(n_train / PROCESSES) / BATCH)
    assert per_process_steps * EPOCHS != math.ceil(n_train / BATCH) * EPOCHS
    assert finished.max_steps == finished.step == per_process_steps * EPOCHS
    metrics = finished.metrics
    assert metrics["processes"] == PROCESSES
    assert metrics["final_step"] == per_process_steps * EPOCHS
    assert metrics["train_examples"] == n_train and metrics["eval_examples"] == 12
    assert sum(map(sum, metrics["adapter"]["confusion"])) == 12  # evaluated once, on the whole eval split
    # The loss history was written by one process: one point per step, none twice.
    steps = [point["step"] for point in finished.history if "loss" in point]
    assert steps == list(range(1, per_process_steps * EPOCHS + 1))
    assert finished.pid is not None and str(finished.pid) not in ("", "0")

    folder = Path(finished.output_dir)
    assert sorted(p.name for p in folder.iterdir() if p.is_dir()) == ["adapter"]  # checkpoints cleaned up
    assert (folder / "adapter" / "adapter_model.safetensors").exists()
    assert (folder / "adapter" / "README.md").exists()
    model, tokenizer, meta = load_adapter(folder)
    assert meta["labels"] == ["billing", "shipping"] and meta["run_id"] == queued.id
    import torch

    batch = tokenizer(["refund my card payment please"], return_tensors="pt")
    with torch.no_grad():
        logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
    assert tuple(logits.shape) == (1, 2) and bool(torch.isfinite(logits).all())
