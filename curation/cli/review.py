"""CLI commands for review: assign, annotations, adjudication, queue, agreement."""

from __future__ import annotations

import argparse
import json
import sys

from sqlalchemy.engine import Engine

from curation.access.accounts import get_user
from curation.cli.common import acting_user
from curation.cli.data import _print_mapping
from curation.data.projects import get_project
from curation.review.rereview import set_rereview_by


def _agreement(engine: Engine, args: argparse.Namespace) -> int:
    from curation.agreement.report import agreement_report

    report = agreement_report(engine, acting_user(engine, args), get_project(engine, args.project).id, args.level,
                              args.resamples)
    print(json.dumps(report.to_dict(), indent=2, ensure_ascii=False, allow_nan=False) if args.json
          else report.summary_text())
    return 0


def _assign(engine: Engine, args: argparse.Namespace) -> int:
    from datetime import timedelta

    from curation.review.queue import assign_items

    project = get_project(engine, args.project)
    annotator = get_user(engine, args.annotator)
    ids = assign_items(engine, acting_user(engine, args), project.id, annotator, args.count,
                       lease=timedelta(days=args.days))
    print(f"assigned {len(ids)} items of {project.name} to {annotator.username} for {args.days:g} days")
    return 0


def _annotations(engine: Engine, args: argparse.Namespace) -> int:
    from curation.review.adjudication import annotation_rows, export_annotations

    project = get_project(engine, args.project)
    if args.out == "-":
        import csv

        writer = None
        for row in annotation_rows(engine, acting_user(engine, args), project.id):
            if writer is None:
                writer = csv.DictWriter(sys.stdout, fieldnames=list(row))
                writer.writeheader()
            writer.writerow(row)
        return 0
    count = export_annotations(engine, acting_user(engine, args), project.id, args.out, args.format)
    print(f"{count} annotations -> {args.out} ({args.format})", file=sys.stderr)
    return 0


def _adjudication(engine: Engine, args: argparse.Namespace) -> int:
    from curation.review.adjudication import adjudication_queue, adjudication_queue_size

    actor = acting_user(engine, args)
    project = get_project(engine, args.project)
    size = adjudication_queue_size(engine, actor, project.id)
    top = adjudication_queue(engine, actor, project.id, limit=args.list) if args.list else []
    if args.json:
        print(json.dumps({"project": project.name, "disputed": size,
                          "most_disputed": [{"id": item.external_id, "example_id": item.example_id,
                                             "votes": item.votes, "disagreement": round(item.disagreement, 4),
                                             "suspicion": item.suspicion, "evidence": item.evidence}
                                            for item in top]}, indent=2, ensure_ascii=False))
    else:
        print(f"{project.name}: {size} items wait for adjudication")
        for item in top:
            if item.rereview:
                evidence = item.evidence
                print(f"  #{item.example_id} {item.external_id}: sent back (suspicion {item.suspicion:.2f}); "
                      f"was {str(evidence.get('earlier_label') or '-')[:40]}, proposed "
                      f"{str(evidence.get('proposed_label') or '-')[:40]}")
            else:
                votes = ", ".join(f"{label[:40]} x{n}" for label, n in item.votes.items())
                print(f"  #{item.example_id} {item.external_id}: {votes or 'no labels'}")
    return 0


def _queue(engine: Engine, args: argparse.Namespace) -> int:
    from curation.review.queue import queue_stats, set_queue_order

    actor = acting_user(engine, args)
    project = get_project(engine, args.project)
    if args.order:
        set_queue_order(engine, actor, project.id, args.order)
    if args.rereview_by:

        project = set_rereview_by(engine, actor, project.id, args.rereview_by)
    stats = queue_stats(engine, actor, project.id)
    stats["rereview_by"] = str(project.rereview_by)
    _print_mapping(stats, args.json)
    return 0
