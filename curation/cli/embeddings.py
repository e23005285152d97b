"""CLI commands for embeddings: embed, dedup, label-issues, leakage."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import argparse

    from sqlalchemy.engine import Engine

from curation.cli.common import acting_user
from curation.data.projects import get_project, get_project_by_id
from curation.embeddings.encode import load_items
from curation.embeddings.jobs import _send_choice, run_job
from curation.embeddings.label_issues_job import score_now
from curation.review.rereview import expert_confirmed_ids, send_for_rereview, suspected_left


# --------------------------------------------------------------------------- command line
# `python -m curation embed | dedup | label-issues | leakage`, added by curation/cli/main.py.
def add_commands(commands: Any) -> None:
    import argparse

    from curation.embeddings.dedup import DEFAULT_THRESHOLD

    embed = commands.add_parser(
        "embed", help="embed a project's texts into the cache (only new or changed text)"
    )
    who = embed.add_mutually_exclusive_group(required=True)
    who.add_argument("--project")
    who.add_argument("--project-id", type=int, help=argparse.SUPPRESS)
    embed.add_argument(
        "--model",
        help="sentence-transformers model: local path or cached hub id "
        "(default: EMBEDDING_MODEL, else the packaged all-MiniLM-L6-v2)",
    )
    embed.add_argument("--job-file", help=argparse.SUPPRESS)
    for name, text in (
        ("dedup", "exact and near-duplicate groups, with label conflicts"),
        ("label-issues", "suspected label errors (cleanlab + kNN disagreement), ranked"),
        ("leakage", "eval items that duplicate train items (by the examples' split)"),
    ):
        sub = commands.add_parser(name, help=text)
        sub.add_argument("--project", required=True)
        sub.add_argument("--model")
        if name != "label-issues":
            sub.add_argument(
                "--threshold",
                type=float,
                default=DEFAULT_THRESHOLD,
                help=f"cosine for a near-duplicate (default {DEFAULT_THRESHOLD})",
            )
        sub.add_argument("--json", action="store_true")
        if name == "label-issues":
            sub.add_argument("--all", action="store_true",
                             help="with --json: every scored item, ranked, with its score and proposed label")
            sub.add_argument("--send", nargs="+", metavar="flagged|top N",
                             help="send items back for re-review (who re-reviews: `queue --rereview-by`): "
                                  "'flagged' = every suspected item not confirmed by experts, 'top N' = the N "
                                  "highest-ranked of those")
            sub.add_argument("--force", action="store_true",
                             help="with --send: also send items an expert already decided")


def _embed(engine: Engine, args: argparse.Namespace) -> int:
    project = (
        get_project_by_id(engine, args.project_id) if args.project_id else get_project(engine, args.project)
    )
    state = run_job(engine, project.id, args.model, Path(args.job_file) if args.job_file else None)
    print(
        f"{project.name}: {state['total']} texts, {state.get('encoded', 0)} encoded, "
        f"{state.get('cached', 0)} from the cache"
    )
    return 0


def _dedup(engine: Engine, args: argparse.Namespace) -> int:
    from curation.embeddings.dedup import find_duplicates

    report = find_duplicates(
        engine, acting_user(engine, args), get_project(engine, args.project).id, args.threshold, args.model
    )
    if args.json:
        print(json.dumps(report.to_dict(), indent=2, ensure_ascii=False))
        return 0
    print(
        f"{args.project}: {len(report.groups)} duplicate groups ({len(report.conflicts)} with conflicting "
        f"labels), {report.redundant} redundant examples at cosine >= {args.threshold}"
    )
    for group in report.groups[:20]:
        flag = " CONFLICT" if group.conflict else ""
        print(
            f"  {group.kind}{flag}: "
            + ", ".join(f"#{m.example_id} {m.external_id} ({m.label or '-'})" for m in group.members)
        )
    return 0


def _label_issues(engine: Engine, args: argparse.Namespace) -> int:
    top = _send_choice(args.send) if args.send else None
    actor = acting_user(engine, args)
    project = get_project(engine, args.project)
    items = load_items(engine, actor, project.id)  # leads and admins only
    started = time.monotonic()
    shown = [""]

    def progress(done: int, total: int, note: str) -> None:
        if shown[0] and note != shown[0]:
            print(file=sys.stderr)
        shown[0] = note
        print(f"\r  {note}: {done}/{total} ({time.monotonic() - started:.0f} s)", end="", file=sys.stderr, flush=True)

    # The same task file as the Label issues page: a page open meanwhile shows this progress, then
    # this report; a report already computed for this data is reused.
    report, reused = score_now(engine, project.id, items.fingerprint, progress, args.model)
    if shown[0]:
        print(file=sys.stderr)
    if reused:
        print(f"  reused the report already computed for this data (fingerprint {items.fingerprint})",
              file=sys.stderr)
    confirmed = expert_confirmed_ids(engine, actor, project.id)
    left = suspected_left(report, confirmed)
    result = None
    if args.send:
        chosen = report.flagged if args.force else left
        result = send_for_rereview(engine, actor, project.id, chosen[:top], force=args.force)
    if args.json:
        data = report.to_dict(everything=args.all, confirmed=confirmed)
        if result is not None:
            data["sent"] = {"rereview_by": result.rereview_by.value, "sent": result.sent,
                            "confirmed_not_sent": result.confirmed, "already_pending": result.pending,
                            "not_labelled": result.not_labelled, "message": result.message()}
        print(json.dumps(data, indent=2, ensure_ascii=False))
        return 0
    print(f"{args.project}: {len(left)} suspected label errors among {report.labelled} labelled"
          + (f" ({len(report.flagged) - len(left)} more confirmed by experts)" if len(left) < len(report.flagged)
             else ""))
    for issue in left[:20]:
        print(
            f"  #{issue.example_id} {issue.external_id}: {issue.given_label} -> {issue.proposed_label} "
            f"(score {issue.score:.2f}, confidence {issue.proposed_confidence:.2f})"
        )
    if result is not None:
        print(result.message())
    return 0


def _leakage(engine: Engine, args: argparse.Namespace) -> int:
    from curation.embeddings.splits import project_leakage

    leaks, sizes = project_leakage(
        engine, acting_user(engine, args), get_project(engine, args.project).id, args.threshold, args.model
    )
    if args.json:
        print(
            json.dumps(
                {
                    "project": args.project,
                    "threshold": args.threshold,
                    "splits": sizes,
                    "leaks": [
                        {
                            "eval_id": leak.eval_id,
                            "split": leak.eval_side,
                            "train_id": leak.train_id,
                            "similarity": round(leak.similarity, 4),
                            "kind": leak.kind,
                        }
                        for leak in leaks
                    ],
                },
                indent=2,
            )
        )
        return 0
    print(f"{args.project}: {len(leaks)} eval items duplicate a train item (splits: {sizes})")
    for leak in leaks[:20]:
        where = f"{leak.eval_side} #{leak.eval_id} ~ train #{leak.train_id}"
        print(f"  {where} ({leak.kind}, {leak.similarity:.3f})")
    return 0


HANDLERS = {"embed": _embed, "dedup": _dedup, "label-issues": _label_issues, "leakage": _leakage}
