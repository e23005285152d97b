"""`python -m curation audit ...` (issue 12): start, follow and read a sampled audit of a source's
labels, and size one. Registered by curation/cli.py like the embedding commands."""

from __future__ import annotations

import argparse
import json
from typing import Any

from sqlalchemy.engine import Engine

from curation.cli.common import acting_user
from curation.data.projects import get_project
from curation.errors import InputError
from curation.review.audits import audit_result, close_audit, list_audits, sample_size, start_audit


def add_commands(commands: Any) -> None:
    audit = commands.add_parser("audit", help="sampled audit of a source's label accuracy (blind expert review)")
    sub = audit.add_subparsers(dest="audit_command", required=True)
    start = sub.add_parser("start", help="draw N items of the source, stratified by its label, for blind review")
    start.add_argument("--project", required=True)
    start.add_argument("--source", required=True)
    start.add_argument("--size", type=int, required=True)
    start.add_argument("--seed", type=int, default=0)
    for name, text in (("status", "reviewed items and the estimate of the newest audit(s)"),
                       ("show", "one audit in full: estimate, per label, confusions")):
        command = sub.add_parser(name, help=text)
        command.add_argument("--project", required=True)
        command.add_argument("--source", help="only this source's audits")
        command.add_argument("--id", type=int, help="this audit (default: the newest)")
        command.add_argument("--json", action="store_true")
    close = sub.add_parser("close", help="close an audit: its items leave blind review")
    close.add_argument("--id", type=int, required=True)
    size = sub.add_parser("size", help="items an audit needs for a 95%% interval of a given half width")
    size.add_argument("--rate", type=float, required=True, help="expected error rate, e.g. 0.15")
    size.add_argument("--half-width", type=float, required=True, help="e.g. 0.035 for +/- 3.5 points")
    size.add_argument("--population", type=int, help="items the source labelled (caps the answer)")


def _audit(engine: Engine, args: argparse.Namespace) -> int:

    if args.audit_command == "size":
        try:
            n = sample_size(args.rate, args.half_width, population=args.population)
        except ValueError as error:
            raise InputError(str(error)) from None
        print(f"{n} items give a 95% Clopper-Pearson interval at most ±{args.half_width:.1%} wide around "
              f"{args.rate:.1%}")
        return 0
    actor = acting_user(engine, args)
    if args.audit_command == "close":
        record = close_audit(engine, actor, args.id)
        print(f"audit #{record.id} of {record.source}: closed")
        return 0
    project = get_project(engine, args.project)
    if args.audit_command == "start":
        record = start_audit(engine, actor, project.id, args.source, args.size, args.seed)
        strata = ", ".join(f"{label} {info['sampled']}/{info['population']}" for label, info in record.strata.items())
        print(f"audit #{record.id} of {record.source}: {record.size} items drawn (seed {record.seed}; "
              f"per label sampled/population: {strata}); they go first in the review queue, blind")
        return 0
    results = [audit_result(engine, actor, args.id)] if args.id else list_audits(engine, actor, project.id, args.source)
    if args.audit_command == "status":
        results = results[:1] if args.source or args.id else results
    if args.json:
        print(json.dumps([r.to_dict() for r in results], indent=2, ensure_ascii=False))
        return 0
    if not results:
        print(f"{project.name}: no label audit yet")
        return 0
    for result in results if args.audit_command == "status" else results[:1]:
        print(result.summary())
        if args.audit_command == "show":
            for row in result.per_label:
                rate = "—" if row.rate is None else f"{row.rate:.1%} [{row.low:.1%}, {row.high:.1%}]"
                print(f"  {row.label}: {row.reviewed}/{row.sampled} reviewed of {row.population}; errors {row.errors}; "
                      f"rate {rate}")
            for pair, n in list(result.confusions.items())[:20]:
                print(f"  {pair}: {n}")
    return 0


HANDLERS = {"audit": _audit}
