"""`python -m curation preference ...`: blind human preference rounds (added by training/cli.py, since
starting a round starts the training package's generating worker).

    python -m curation preference start RUN [--against RUN_B] [--prompts N] [--k K] [--seed S]
                                            [--max-new-tokens T] [--json]
    python -m curation preference status ROUND [--json]
    python -m curation preference show ROUND [--json]
    python -m curation preference list [--run RUN] [--json]
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from sqlalchemy.engine import Engine

from curation.cli.common import acting_user
from curation.evaluation import preference
from training.preference_job import generation_state, refresh_model_card, start_round_in_background


def add_commands(commands: Any) -> None:
    group = commands.add_parser("preference", help="blind human preference between two generation systems")
    sub = group.add_subparsers(dest="preference_command", required=True)
    start = sub.add_parser("start", help="start a round: the responses are generated in the background")
    start.add_argument("run", type=int, help="run whose adapter is system A")
    start.add_argument("--against", type=int, help="run whose adapter is system B (default: the base model)")
    start.add_argument("--prompts", type=int, default=20, help="prompts drawn from the run's test set (default 20)")
    start.add_argument("--k", type=int, default=2, help="judgements per prompt (default 2)")
    start.add_argument("--seed", type=int, default=0)
    start.add_argument("--max-new-tokens", type=int, default=64)
    start.add_argument("--json", action="store_true")
    status = sub.add_parser("status", help="a round's state: generation progress, judgements so far")
    status.add_argument("round", type=int)
    status.add_argument("--json", action="store_true")
    show = sub.add_parser("show", help="a round's result: win rate with interval, ties, alpha, per prompt")
    show.add_argument("round", type=int)
    show.add_argument("--json", action="store_true")
    listing = sub.add_parser("list", help="rounds, newest first")
    listing.add_argument("--run", type=int, help="only rounds of this run")
    listing.add_argument("--json", action="store_true")


def win_rate_text(result: dict[str, Any]) -> str:
    """'win rate of run #3 adapter over base model 0.667 [0.500, 0.833] on 3 prompts (6 judgements)'."""
    rate = result.get("win_rate")
    if not rate:
        return f"{result['system_a']} vs {result['system_b']}: no judgements yet"
    return (f"win rate of {result['system_a']} over {result['system_b']} {rate['value']:.3f} "
            f"[{rate['low']:.3f}, {rate['high']:.3f}] on {result['prompts']} prompts "
            f"({result['judgements']} judgements): {result['verdict']}")


def handle(engine: Engine, args: argparse.Namespace) -> int:
    actor = acting_user(engine, args)
    command = args.preference_command
    if command == "start":
        round_ = start_round_in_background(engine, actor, args.run, other_run_id=args.against, size=args.prompts,
                                           overlap_k=args.k, seed=args.seed, max_new_tokens=args.max_new_tokens)
        a, b = preference.system_names(round_)
        if args.json:
            print(json.dumps({"round_id": round_.id, "status": str(round_.status), "system_a": a, "system_b": b,
                              "prompts": round_.size, "source": round_.prompt_source}, indent=2))
        else:
            print(f"round {round_.id}: {a} vs {b} on {round_.size} prompts of {round_.prompt_source}, "
                  f"{round_.overlap_k} judgements each")
            print(f"the responses are being generated in the background; follow with "
                  f"`python -m curation preference status {round_.id}`", file=sys.stderr)
        return 0
    if command == "list":
        rows = preference.list_rounds(engine, actor, run_id=args.run)
        if args.json:
            print(json.dumps([r.__dict__ for r in rows], indent=2, default=str))
        for r in rows if not args.json else []:
            print(f"{r.id:>4} {r.status:<10} {r.system_a} vs {r.system_b}: {r.judgements}/{r.size * r.overlap_k} "
                  f"judgements")
        return 0
    round_ = preference.get_round(engine, actor, args.round)
    if command == "status":
        state = generation_state(args.round)
        rows = [r for r in preference.list_rounds(engine, actor, project_id=round_.project_id) if r.id == args.round]
        out = {"round_id": round_.id, "status": str(round_.status), "error": round_.error,
               "judgements": rows[0].judgements if rows else 0, "needed": round_.size * round_.overlap_k,
               "generation": None if state is None else {k: state.get(k) for k in ("status", "done", "total", "note",
                                                                                    "error")}}
        if args.json:
            print(json.dumps(out, indent=2, default=str))
        else:
            line = f"round {round_.id}: {out['status']}"
            if out["status"] == "generating" and state:
                line += f" ({state.get('done', 0)}/{state.get('total', 0)} pairs: {state.get('note', '')})"
            elif out["status"] == "failed":
                line += f": {round_.error}"
            else:
                line += f", {out['judgements']}/{out['needed']} judgements"
            print(line)
        return 0
    result = preference.round_result(engine, actor, args.round)
    refresh_model_card(engine, round_.run_id)  # the card carries the latest result
    if args.json:
        print(json.dumps(result, indent=2, default=str))
        return 0
    print(win_rate_text(result))
    if result["judgements"]:
        alpha = "undefined" if result["alpha"] is None else f"{result['alpha']:.3f}"
        print(f"ties {result['tie_rate']:.3f}, both bad {result['both_bad_rate']:.3f}, Krippendorff's alpha {alpha}")
    print(f"prompts from {result['prompt_source']}; status {result['status']}")
    for row in result["per_prompt"]:
        score = "-" if row["score"] is None else f"{row['score']:.2f}"
        print(f"  #{row['position']:<3} {row['external_id']:<20} A {row['a']} B {row['b']} tie {row['tie']} "
              f"both bad {row['both_bad']}  score {score}")
    return 0
