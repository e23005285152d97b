"""The worker that writes a preference round's responses (curation/evaluation/preference.py), in the
background: generating two responses for each of N prompts takes minutes on CPU, so it never runs in
a page's script or the CLI's foreground.

`start_round_in_background` creates the round (status `generating`) and starts
`python -m training.preference_job --round-id N --task-file F` detached (curation/embeddings/tasks.py:
its state file holds the progress, so a reload or another user sees it). The worker acts for the lead
who started the round; it loads run A's adapter (system B: the same model with the adapter disabled,
or run B's adapter), generates greedily and writes every response in one transaction, which opens
the round for judging. On an error the round is marked failed with the error.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from sqlalchemy.engine import Engine

from curation.db import make_engine
from curation.embeddings.tasks import read_task, run_task, start_task, task_path
from curation.evaluation import preference
from curation.models import PreferenceRound, User
from curation.settings import get_settings
from training.card import with_preference_section
from training.store import get_run


def preference_key(round_id: int) -> str:
    return json.dumps({"db": get_settings().resolved_database_url, "preference_round": round_id}, sort_keys=True)


def start_generation(round_id: int) -> dict[str, Any]:
    """Start (or find running or finished) the worker of a round; its task state."""
    key = preference_key(round_id)
    return start_task(task_path("preference", key), key, ["-m", "training.preference_job", "--round-id", str(round_id)])


def generation_state(round_id: int) -> dict[str, Any] | None:
    """{"status", "done", "total", "note", "error", ...} of the round's worker, None when none ran here."""
    return read_task(task_path("preference", preference_key(round_id)))


def start_round_in_background(engine: Engine, actor: User, run_id: int, **options: Any) -> PreferenceRound:
    """`preference.start_round` (leads) and its generating worker, started detached."""
    round_ = preference.start_round(engine, actor, run_id, **options)
    assert round_.id is not None
    start_generation(round_.id)
    return round_


def generate_responses(engine: Engine, round_id: int, progress: Any = None) -> dict[str, Any]:
    """Generate both systems' responses of every prompt of the round and store them (the round opens).
    `progress(done, total, note)` after each prompt. Returns {"round_id", "prompts"}."""
    from training import evaluate, models

    actor = preference.round_creator(engine, round_id)
    spec = preference.generation_spec(engine, actor, round_id)
    report = progress or (lambda done, total, note="": None)
    items = spec["items"]
    try:
        report(0, len(items), "loading the models")
        model_a, tokenizer, _ = models.load_adapter(spec["run_dir_a"])
        model_b = models.load_adapter(spec["run_dir_b"])[0] if spec["run_dir_b"] else None
        responses: dict[int, tuple[str, str]] = {}
        for done, item in enumerate(items):
            text_a = evaluate.generate(model_a, tokenizer, item["messages"], spec["max_new_tokens"])
            if model_b is None:
                with model_a.disable_adapter():
                    text_b = evaluate.generate(model_a, tokenizer, item["messages"], spec["max_new_tokens"])
            else:
                text_b = evaluate.generate(model_b, tokenizer, item["messages"], spec["max_new_tokens"])
            responses[int(item["id"])] = (text_a, text_b)
            report(done + 1, len(items), f"generated {done + 1} of {len(items)} pairs")
        preference.store_responses(engine, actor, round_id, responses)
    except Exception as error:
        preference.fail_generation(engine, actor, round_id, f"{type(error).__name__}: {error}")
        raise
    return {"round_id": round_id, "prompts": len(items)}


def refresh_model_card(engine: Engine, run_id: int) -> bool:
    """Rewrite the run's model card with its current preference result (training/card.py); True when
    the card changed. Runs without an adapter folder or card are left alone."""
    run = get_run(engine, run_id)
    path = Path(run.adapter_path) / "README.md" if run.adapter_path else None
    if path is None or not path.exists():
        return False
    text = path.read_text(encoding="utf-8")
    updated = with_preference_section(text, run.metrics or {})
    if updated == text:
        return False
    path.write_text(updated, encoding="utf-8")
    return True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--round-id", type=int, required=True)
    parser.add_argument("--task-file", required=True)
    args = parser.parse_args(argv)

    def work(progress: Any) -> dict[str, Any]:
        engine = make_engine()
        try:
            return generate_responses(engine, args.round_id, progress)
        finally:
            engine.dispose()

    state = run_task(Path(args.task_file), preference_key(args.round_id), work)
    return 0 if state["status"] == "done" else 1


if __name__ == "__main__":
    raise SystemExit(main())
