"""The Train page's preflight in the background (curation/tasks.py): tokenising the version and
timing a few training steps takes tens of seconds on CPU, so it never runs in the page's script.
One task per (database, version, settings, base model): its file is also the cache of the answer.

`python -m training.preflight_job --version-id N --config-json JSON [--base NAME] --task-file F`
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from sqlalchemy.engine import Engine

from curation.db import make_engine
from curation.embeddings.tasks import abandon_task, read_task, run_task, start_task, task_path
from curation.settings import get_settings
from training import jobs
from training.config import TrainConfig
from training.preflight import run_preflight


def preflight_key(version_id: int, config: dict[str, Any], base: str) -> str:
    return json.dumps({"db": get_settings().resolved_database_url, "version": version_id, "config": config,
                       "base": base}, sort_keys=True)


def preflight_state(engine: Engine, version_id: int, config: dict[str, Any], base: str,
                    start: bool = True) -> dict[str, Any] | None:
    """The preflight of these settings: done (with `result`, a Preflight.to_dict()), running, failed, or
    waiting: none starts, and a running one is stopped, while a training run runs on this database,
    because steps timed beside it would measure the contention (and slow the run); a result measured
    before is still returned. Starts it in the background when it never ran (or failed a while
    ago) and `start` is set; with `start` unset, only reads it (None: never started)."""
    key = preflight_key(version_id, config, base)
    path = task_path("preflight", key)
    current = read_task(path)
    if not start:
        return None if current is None else {**current, "path": str(path)}
    if (current is None or current["status"] != "done") and jobs.running_ids(engine):
        abandon_task(path)  # one started before the run (by any session) would be timing the contention
        return {"status": "waiting"}
    argv = ["-m", "training.preflight_job", "--version-id", str(version_id), "--config-json",
            json.dumps(config, sort_keys=True), "--base", base]
    return {**start_task(path, key, argv), "path": str(path)}


def abandon(path: str) -> None:
    """Stop a preflight whose settings the page has left (see curation.tasks.abandon_task)."""
    abandon_task(Path(path))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--version-id", type=int, required=True)
    parser.add_argument("--config-json", required=True)
    parser.add_argument("--base", default="")
    parser.add_argument("--task-file", required=True)
    args = parser.parse_args(argv)
    config = json.loads(args.config_json)

    def work(progress: Any) -> dict[str, Any]:

        progress(0, 1, "tokenising and measuring a few training steps")
        engine = make_engine()
        try:
            return run_preflight(engine, args.version_id, TrainConfig.from_dict(config), base=args.base or None).to_dict()
        finally:
            engine.dispose()

    state = run_task(Path(args.task_file), preflight_key(args.version_id, config, args.base), work)
    return 0 if state["status"] == "done" else 1


if __name__ == "__main__":
    raise SystemExit(main())
