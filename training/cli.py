"""CLI commands of the training package, added to `python -m curation` through curation.cli.registry:

    python -m curation train --version ID [--preset quick|balanced|thorough] [--base PATH_OR_ID]
                             [--set FIELD=VALUE ...] [--detach] [--json]
    python -m curation runs list [--project NAME] [--json]
    python -m curation runs show ID [--json]
    python -m curation runs cancel ID
    python -m curation runs compare A B [--json]
    python -m curation eval RUN [--testset N] [--wait] [--status] [--json]   (generation: in the background)
    python -m curation preference start|status|show|list ...               (training/preference_cli.py)
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any

from sqlalchemy.engine import Engine

from curation.cli.common import acting_user
from curation.cli.registry import CommandGroup
from curation.data.projects import get_project
from curation.errors import Conflict, InputError
from training import jobs, preference_cli
from training.config import PRESETS, TrainConfig
from training.eval_job import eval_state, start_eval
from training.eval_run import evaluate_run, summary
from training.test_scoring import compare_runs


def add_commands(commands: Any) -> None:
    train = commands.add_parser("train", help="train a LoRA adapter on an approved dataset version (a separate "
                                              "worker process; queued when another run is running)")
    train.add_argument("--version", type=int, required=True, help="dataset version id (must be approved)")
    train.add_argument("--preset", choices=PRESETS, default="balanced")
    train.add_argument("--base", help="base model: a registry name, local folder or hub id (default by task)")
    train.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE",
                       help=f"override a setting ({', '.join(TrainConfig.__dataclass_fields__)})")
    train.add_argument("--detach", action="store_true", help="queue the run and return at once")
    train.add_argument("--json", action="store_true", help="print the finished run as JSON")
    train.add_argument("--testset", type=int, help="test-set version id to score on at the end (default: the "
                                                  "project's latest approved one)")
    score = commands.add_parser("eval", help="score a finished run on an approved test-set version (default: the "
                                             "project's latest), with intervals and paired baseline comparisons")
    score.add_argument("run", type=int)
    score.add_argument("--testset", type=int, help="test-set version id")
    score.add_argument("--json", action="store_true")
    score.add_argument("--wait", action="store_true", help="generation runs: follow the background scoring to its end")
    score.add_argument("--status", action="store_true", help="generation runs: the background scoring's progress")
    runs = commands.add_parser("runs", help="training runs").add_subparsers(dest="runs_command", required=True)
    listing = runs.add_parser("list", help="list runs, newest first")
    listing.add_argument("--project", help="only this project's runs")
    listing.add_argument("--json", action="store_true")
    show = runs.add_parser("show", help="one run with its metrics")
    show.add_argument("id", type=int)
    show.add_argument("--json", action="store_true")
    cancel = runs.add_parser("cancel", help="cancel a queued or running run")
    cancel.add_argument("id", type=int)
    compare = runs.add_parser("compare", help="run B against run A on the same test set: paired differences with "
                                              "intervals, per-label F1 differences, and the dataset version diff")
    compare.add_argument("a", type=int)
    compare.add_argument("b", type=int)
    compare.add_argument("--json", action="store_true")
    preference_cli.add_commands(commands)


def parse_sets(items: list[str]) -> dict[str, Any]:
    fields = TrainConfig.__dataclass_fields__
    out: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or key not in fields:
            raise InputError(f"--set takes FIELD=VALUE with FIELD one of {', '.join(fields)}; got '{item}'")
        kind = type(getattr(TrainConfig(), key))
        if kind is bool:
            out[key] = value.lower() in ("1", "true", "yes", "on")
        else:
            try:
                out[key] = kind(value)
            except ValueError as error:
                raise InputError(f"--set {key}: {error}") from error
    return out


def _train(engine: Engine, args: argparse.Namespace) -> int:
    run = jobs.start_run(engine, acting_user(engine, args), args.version, args.preset, base=args.base,
                         overrides=parse_sets(args.set), test_set_version_id=args.testset)
    print(f"run {run.id}: {run.status} ({run.preset}, base {run.base_model}); log: {jobs.run_dir(run.id)}",
          file=sys.stderr)
    if args.detach:
        if args.json:
            print(json.dumps(jobs.run_summary(run), indent=2))
        return 0
    last = None
    try:
        while run.status in ("queued", "running"):
            time.sleep(2)
            run = jobs.poll(engine, run.id)
            line = f"{run.status} step {run.step}/{run.max_steps or '?'} loss {run.loss if run.loss is None else round(run.loss, 4)}" \
                   f" eta {'?' if run.eta_s is None else int(run.eta_s)} s"
            if line != last:
                print(line, file=sys.stderr)
                last = line
    except KeyboardInterrupt:
        print(f"\nthe run goes on in the background; stop it with `python -m curation runs cancel {run.id}`",
              file=sys.stderr)
        return 130
    summary = jobs.run_summary(run)
    if args.json:
        print(json.dumps({**summary, "full_metrics": run.metrics}, indent=2, default=str))
    else:
        print(f"run {run.id}: {run.status}; metrics {json.dumps(summary['metrics'])}; adapter {run.adapter_path}")
        for warning in run.warnings or []:
            print(f"WARNING: {warning}")
        if run.error:
            print(run.error, file=sys.stderr)
    return 0 if run.status == "succeeded" else 1


def _runs(engine: Engine, args: argparse.Namespace) -> int:
    if args.runs_command == "cancel":
        run = jobs.cancel_run(engine, acting_user(engine, args), args.id)
        print(f"run {run.id}: {'cancelled' if run.status == 'cancelled' else 'stopping at the next step'}")
        return 0
    if args.runs_command == "compare":
        result = compare_runs(engine, acting_user(engine, args), jobs.get_run(engine, args.a), jobs.get_run(engine, args.b))
        if args.json:
            print(json.dumps(result, indent=2, default=str))
        elif not result["comparable"]:
            print(result["reason"])
        else:
            for metric, diff in result["metrics"].items():
                print(f"{metric}: A {diff['a']:.4f}, B {diff['b']:.4f}, B − A {diff['value']:+.4f} "
                      f"[{diff['low']:+.4f}, {diff['high']:+.4f}] ({diff['test']}): {diff['verdict']}")
            dataset = result["dataset_diff"]
            if "added" in dataset:
                print(f"dataset v{dataset['a_number']} → v{dataset['b_number']}: {len(dataset['added'])} added, "
                      f"{len(dataset['removed'])} removed, {len(dataset['relabelled'])} relabelled")
        return 0
    if args.runs_command == "show":
        run = jobs.poll(engine, args.id)
        summary = {**jobs.run_summary(run), "config": run.config, "full_metrics": run.metrics}
        print(json.dumps(summary, indent=2, default=str) if args.json else
              "\n".join(f"{k}: {v}" for k, v in summary.items() if k != "full_metrics"))
        return 0
    jobs.dispatch(engine)
    project_id = get_project(engine, args.project).id if args.project else None
    rows = [jobs.run_summary(run) for run in jobs.list_runs(engine, project_id)]
    if args.json:
        print(json.dumps(rows, indent=2, default=str))
    else:
        for row in rows:
            print(f"{row['id']:>5} {row['status']:<10} v{row['version_id']:<4} {row['preset']:<9} "
                  f"{row['base_model'][-40:]:<40} step {row['step']}/{row['max_steps']} {json.dumps(row['metrics'])}")
    return 0


def _eval_in_background(engine: Engine, args: argparse.Namespace) -> dict[str, Any] | None:
    """Generation runs are scored by a background task (training/eval_job.py); the state printed here.
    Returns the finished summary when --wait saw it end, else None."""
    state = eval_state(args.run) if args.status else start_eval(engine, acting_user(engine, args), args.run,
                                                                args.testset)
    if state is None:
        print(f"run {args.run} has not been scored in the background here")
        return None
    if not args.status:
        print(f"run {args.run} (generation) is being scored in the background on its test set; follow with "
              f"`python -m curation eval {args.run} --status`; the scores land on the run (`runs show {args.run}`)",
              file=sys.stderr)
    last = None
    while True:
        line = f"{state['status']}: {state.get('note') or ''} ({state.get('done', 0)}/{state.get('total', 0)})"
        if line != last:
            print(line, file=sys.stderr)
            last = line
        if state["status"] != "running" or not args.wait:
            break
        time.sleep(2)
        state = eval_state(args.run) or state
    if state["status"] == "failed":
        raise Conflict(f"the background scoring of run {args.run} failed: {state.get('error')}")
    return state.get("result") if state["status"] == "done" and (args.wait or args.status) else None


def _eval(engine: Engine, args: argparse.Namespace) -> int:
    if str(jobs.get_run(engine, args.run).task_type) == "generation":
        done = _eval_in_background(engine, args)
        if done is None:
            return 0
        run = jobs.get_run(engine, args.run)
    else:
        run = evaluate_run(engine, acting_user(engine, args), args.run, args.testset)
    result = summary(run)
    if args.json:
        print(json.dumps(result, indent=2, default=str))
    else:
        print(f"run {run.id} scored on {result['scored_on']['text']}")
        if result["objective"]:
            print(f"objective: {result['objective']['text']}")
        for warning in run.warnings or []:
            print(f"WARNING: {warning}")
    return 0


HANDLERS = {"train": _train, "runs": _runs, "eval": _eval, "preference": preference_cli.handle}

# named by the `curation.commands` entry point in pyproject.toml; curation.cli.registry loads it
COMMANDS = CommandGroup("training", add_commands, HANDLERS)
