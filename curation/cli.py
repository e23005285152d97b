"""`python -m curation <command>`: the same core the pages call.

The CLI is for a local operator with shell access. It acts as `--user NAME` (or CURATION_USER),
else as the first admin account, and every command still goes through the core's role checks.
Errors print one clear line to stderr and exit with status 2.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.engine import Engine

from curation.auth import create_user, get_user, list_users
from curation.bootstrap import initialise, load_demo
from curation.browse import ExampleFilter
from curation.db import make_engine, read_session
from curation.errors import CurationError, InputError, NotFound
from curation.io import (
    EXPORT_FORMATS,
    FORMATS,
    REPEAT_POLICIES,
    ColumnMapping,
    export_project,
    guess_mapping,
    import_table,
    mapping_warnings,
    open_table,
)
from curation.models import Role, TaskType, User
from curation.projects import get_project, project_overview, project_stats
from curation.settings import get_settings


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m curation", description=__doc__.splitlines()[0])
    parser.add_argument("--user", help="act as this account (default: CURATION_USER, else the first admin)")
    commands = parser.add_subparsers(dest="command", required=True)

    init = commands.add_parser("init", help="create or upgrade the database; load the demo into an empty one")
    init.add_argument("--no-demo", action="store_true", help="do not load the demo projects and users")

    commands.add_parser("demo", help="load the demo users and projects (an admin, into a database without the demo)")

    projects = commands.add_parser("projects", help="projects").add_subparsers(dest="projects_command", required=True)
    plist = projects.add_parser("list", help="every project: task type, items, items by status, k, final-label rule")
    plist.add_argument("--json", action="store_true")

    imp = commands.add_parser("import", help="import a file (JSONL, CSV, TSV, Parquet, Label Studio JSON, "
                                             "save_to_disk folder) into a project")
    imp.add_argument("file")
    imp.add_argument("--project", required=True)
    imp.add_argument("--task", choices=[t.value for t in TaskType])
    imp.add_argument("--create", action="store_true", help="create the project if it does not exist")
    imp.add_argument("--format", choices=FORMATS, help="default: from the file name")
    imp.add_argument("--map", action="append", default=[], metavar="FIELD=COLUMN",
                     help="override the guessed mapping, e.g. --map text=body --map id=conv_id,user "
                          "--map label=topic (a Label Studio question) "
                          "--map 'label_onehot=is_abuse.*' --map metadata=  (repeatable)")
    imp.add_argument("--source", help="source for rows without a source column; with --labels-as vote or "
                                      "suggestion also the name of the source that gave the labels")
    imp.add_argument("--labels-as", choices=["final", "vote", "suggestion"], default="final",
                     help="what the file's labels are: final labels (experts never see them), votes of the "
                          "source account --source, or suggestions of --source (score: --map score=COLUMN)")
    imp.add_argument("--labels", help="with --create: the project's label set, comma-separated, in this order")
    imp.add_argument("--k", type=int, help="with --create: labels per item (default 2)")
    imp.add_argument("--rule", choices=["majority", "unanimous"], help="with --create: the final-label rule")
    imp.add_argument("--licence", help="licence for rows without a licence column")
    imp.add_argument("--repeats", choices=list(REPEAT_POLICIES), default="latest",
                     help="an annotator who judged an item more than once: keep the first or the latest judgement, "
                          "or the latest with every judgement in the audit log (history)")
    imp.add_argument("--dry-run", action="store_true", help="print the mapping and a preview, import nothing")
    imp.add_argument("--json", action="store_true", help="print the report as JSON")

    exp = commands.add_parser("export", help="export a project or a selection")
    exp.add_argument("--project", required=True)
    exp.add_argument("--format", required=True, choices=EXPORT_FORMATS)
    exp.add_argument("--out", required=True)
    exp.add_argument("--status", action="append", default=[], help="only these statuses (repeatable)")
    exp.add_argument("--label", action="append", default=[], help="only these final labels (repeatable)")
    exp.add_argument("--source", action="append", default=[], help="only these sources (repeatable)")
    exp.add_argument("--split", action="append", default=[], help="only these splits (repeatable)")
    exp.add_argument("--search", default="", help="only examples whose text contains this")
    exp.add_argument("--include-excluded", action="store_true")

    stats = commands.add_parser("stats", help="project statistics")
    stats.add_argument("--project", required=True)
    stats.add_argument("--json", action="store_true")

    agree = commands.add_parser("agreement", help="inter-annotator agreement: coefficients with intervals, "
                                                  "per label and per annotator")
    agree.add_argument("--project", required=True)
    agree.add_argument("--level", choices=["nominal", "ordinal", "interval", "ratio"],
                       help="Krippendorff level (default: nominal for labels, ordinal for generation ratings)")
    agree.add_argument("--resamples", type=int, default=1000, help="bootstrap resamples for the intervals")
    agree.add_argument("--json", action="store_true", help="print every figure as JSON (undefined: null)")

    users = commands.add_parser("users", help="accounts").add_subparsers(dest="users_command", required=True)
    add = users.add_parser("add", help="add an account (the first one needs no admin)")
    add.add_argument("username")
    add.add_argument("--role", required=True, choices=[r.value for r in Role])
    add.add_argument("--display-name", default="")
    secret = add.add_mutually_exclusive_group()
    secret.add_argument("--password", help="visible in the process list; prefer --password-stdin")
    secret.add_argument("--password-stdin", action="store_true", help="read the password from standard input")
    listing = users.add_parser("list", help="list accounts")
    listing.add_argument("--json", action="store_true")
    change = users.add_parser("set", help="change an account's role, deactivate/activate it or reset its password "
                                          "(admins)")
    change.add_argument("username")
    change.add_argument("--role", choices=[r.value for r in Role])
    active = change.add_mutually_exclusive_group()
    active.add_argument("--inactive", action="store_true", help="deactivate: no login; labels stay")
    active.add_argument("--active", action="store_true", help="activate again")
    change.add_argument("--password-stdin", action="store_true",
                        help="set a new password, read from standard input (audited)")

    assign = commands.add_parser("assign", help="reserve the next items of the review queue for an annotator")
    assign.add_argument("--project", required=True)
    assign.add_argument("--annotator", required=True)
    assign.add_argument("--count", type=int, default=20)
    assign.add_argument("--days", type=float, default=7.0, help="how long the reservation holds (default 7)")

    annotations = commands.add_parser("annotations", help="export every annotation in long format "
                                                          "(item, annotator, label, time, ...)")
    annotations.add_argument("--project", required=True)
    annotations.add_argument("--out", required=True, help="output file; '-' writes CSV to standard output")
    annotations.add_argument("--format", choices=["csv", "jsonl"], default="csv")

    adjudication = commands.add_parser("adjudication", help="the adjudication queue: disagreements, then items "
                                       "sent back as suspected label errors (highest suspicion first)")
    adjudication.add_argument("--project", required=True)
    adjudication.add_argument("--list", type=int, default=0, metavar="N",
                              help="also list the first N items of the queue")
    adjudication.add_argument("--json", action="store_true")

    queue = commands.add_parser("queue", help="review queue figures; --order sets what it hands out first")
    queue.add_argument("--project", required=True)
    queue.add_argument("--order", choices=["unlabelled_first", "suspected_first", "lowest_margin", "disagreement",
                                                 "uncovered_clusters"],
                       help="lowest_margin, disagreement and uncovered_clusters read the probe's suggestions (run `suggest` first)")
    queue.add_argument("--rereview-by", choices=["leads", "annotators"],
                       help="who re-reviews items sent back as suspected label errors: leads (adjudication "
                            "queue, with the evidence) or annotators (k fresh blind labels)")
    queue.add_argument("--json", action="store_true")

    version = commands.add_parser("version", help="dataset versions: build a candidate, approve, verify, export, diff")
    vcmd = version.add_subparsers(dest="version_command", required=True)
    vcreate = vcmd.add_parser("create", help="build a version candidate from the project's current state")
    vcreate.add_argument("--project", required=True)
    vcreate.add_argument("--eval-fraction", type=float, default=0.2, help="share of each label's items in eval")
    vcreate.add_argument("--seed", type=int, default=0, help="split seed")
    vcreate.add_argument("--keep-splits", action="store_true", help="items imported with a train/eval split keep it")
    vcreate.add_argument("--no-embeddings", action="store_true",
                         help="exact duplicates only: no sentence embeddings (near-duplicates, clusters, label errors)")
    vcreate.add_argument("--json", action="store_true")
    vapprove = vcmd.add_parser("approve", help="approve a candidate (leads and admins)")
    vapprove.add_argument("id", type=int)
    vapprove.add_argument("--attest", action="store_true", help="attest that the items fit the project's task")
    vapprove.add_argument("--note", default="", help="approval note")
    vapprove.add_argument("--override-reason", help="approve despite failing checks, for this written reason")
    vverify = vcmd.add_parser("verify", help="recompute a version's SHA-256 (exit 1 when it does not match)")
    vverify.add_argument("id", type=int)
    vexport = vcmd.add_parser("export", help="write an approved version: DatasetDict, JSONL, Parquet, dataset card")
    vexport.add_argument("id", type=int)
    vexport.add_argument("--out", required=True, help="output folder")
    vexport.add_argument("--format", action="append", choices=["hf", "jsonl", "parquet"],
                         help="only these formats (repeatable; default all)")
    vdiff = vcmd.add_parser("diff", help="items added, removed, relabelled and changed statistics from A to B")
    vdiff.add_argument("a", type=int)
    vdiff.add_argument("b", type=int)
    vdiff.add_argument("--json", action="store_true")
    vlist = vcmd.add_parser("list", help="a project's versions")
    vlist.add_argument("--project", required=True)
    vlist.add_argument("--json", action="store_true")
    vshow = vcmd.add_parser("show", help="a version's provenance and checklist")
    vshow.add_argument("id", type=int)
    vshow.add_argument("--json", action="store_true")
    from curation.audit_cli import add_commands as add_audit_commands

    add_audit_commands(commands)  # issue 12
    from curation.suggest import add_commands as add_suggest_commands

    add_suggest_commands(commands)  # issue 12
    from curation.embedding_jobs import add_commands as add_embedding_commands

    add_embedding_commands(commands)
    from curation.test_set_cli import add_commands as add_test_set_commands

    add_test_set_commands(commands)
    from training.cli import add_commands as add_training_commands

    add_training_commands(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    settings = get_settings()
    engine = make_engine(settings=settings)
    try:
        if args.command == "init":
            if args.no_demo:
                settings = settings.model_copy(update={"load_demo": False})
            initialise(engine, settings)
            print(f"database ready: {settings.resolved_database_url}")
            return 0
        initialise(engine, settings.model_copy(update={"load_demo": False}))
        handler = {"demo": _demo, "import": _import, "export": _export, "stats": _stats, "users": _users,
                   "agreement": _agreement}
        handler["version"] = _version
        handler["projects"] = _projects
        from curation.embedding_jobs import HANDLERS as embedding_handlers

        handler.update(embedding_handlers)
        from curation.test_set_cli import HANDLERS as test_set_handlers

        handler.update(test_set_handlers)
        from curation.audit_cli import HANDLERS as audit_handlers

        handler.update(audit_handlers)
        from curation.suggest import HANDLERS as suggest_handlers

        handler.update(suggest_handlers)
        from training.cli import HANDLERS as training_handlers

        handler.update(training_handlers)
        handler.update({"assign": _assign, "annotations": _annotations, "adjudication": _adjudication,
                        "queue": _queue})
        return handler[args.command](engine, args)
    except CurationError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    finally:
        engine.dispose()


def _actor(engine: Engine, args: argparse.Namespace) -> User:
    import os

    username = args.user or os.environ.get("CURATION_USER")
    if username:
        return get_user(engine, username)
    with read_session(engine) as session:
        admin = session.execute(select(User).where(User.role == Role.admin.value, User.active.is_(True))
                                .order_by(User.id)).scalars().first()
    if admin is None:
        raise NotFound("No admin account yet: create one with "
                       "`python -m curation users add NAME --role admin --password-stdin`.")
    return admin


def _demo(engine: Engine, args: argparse.Namespace) -> int:
    with read_session(engine) as session:
        has_accounts = session.execute(select(User.id).where(User.password_hash.is_not(None))).first() is not None
    # Into a database with accounts, the acting admin (--user, CURATION_USER or the first admin) loads it.
    load_demo(engine, _actor(engine, args) if has_accounts else None)
    print("demo users and projects loaded")
    return 0


def parse_mapping_overrides(items: Sequence[str], columns: Sequence[str], base: ColumnMapping) -> ColumnMapping:
    """Apply `FIELD=COLUMN` overrides. `id` and `label_onehot` take comma lists or a glob
    (`is_abuse.*`); `metadata=` with nothing keeps no metadata; an empty value unmaps a field."""
    data = base.to_dict()
    for item in items:
        key, sep, value = item.partition("=")
        key = key.strip()
        if not sep or key not in data:
            raise InputError(f"--map takes FIELD=COLUMN with FIELD one of {', '.join(data)}; got '{item}'")
        if key in ("id", "label_onehot", "metadata"):
            parts: list[str] = []
            for part in (p.strip() for p in value.split(",") if p.strip()):
                matched = [c for c in columns if _glob(part, c)] if any(ch in part for ch in "*?[") else [part]
                parts.extend(matched)
            data[key] = parts
            if key == "label_onehot" and parts:
                data["label"] = None
        else:
            data[key] = value.strip() or None
            if key == "label" and data[key]:
                data["label_onehot"] = []
    return ColumnMapping.from_dict(data)


def _glob(pattern: str, column: str) -> bool:
    import fnmatch

    return fnmatch.fnmatchcase(column, pattern)


def _import(engine: Engine, args: argparse.Namespace) -> int:
    actor = _actor(engine, args)
    table = open_table(args.file, args.format)
    task_type = TaskType(args.task) if args.task else None
    mapping = parse_mapping_overrides(args.map, table.columns, guess_mapping(table, task_type))
    if args.source:
        mapping.default_source = args.source
    if args.licence:
        mapping.default_licence = args.licence
    if args.dry_run:
        warnings = mapping_warnings(table, mapping)
        controls = [{"name": c.name, "type": c.type, "column": c.column} for c in table.controls]
        print(json.dumps({"rows": table.n_rows, "columns": table.columns, "mapping": mapping.to_dict(),
                          **({"controls": controls} if controls else {}),
                          "warnings": warnings, "preview": table.preview(3)},
                         indent=2, default=str, ensure_ascii=False))
        for warning in warnings:
            print(f"warning: {warning}", file=sys.stderr)
        return 0

    def progress(done: int, total: int) -> None:
        if not args.json and sys.stderr.isatty():
            print(f"\r{done}/{total} rows", end="", file=sys.stderr)

    if not args.create and (args.labels or args.k is not None or args.rule):
        raise InputError("--labels, --k and --rule set up a new project: use them with --create")
    report = import_table(engine, actor, table, mapping, args.project, create=args.create, task_type=task_type,
                          progress=progress, repeats=args.repeats, labels_as=args.labels_as, label_source=args.source,
                          labels=[p for p in (args.labels or "").split(",") if p.strip()] or None,
                          overlap_k=args.k, final_label_rule=args.rule)
    if report.final_labels and not args.json:
        print("warning: labels imported as final labels: experts will not review them "
              "(--labels-as vote|suggestion --source NAME puts them in front of experts)", file=sys.stderr)
    if args.json:
        print(json.dumps(report.to_dict(), indent=2, ensure_ascii=False))
    else:
        print(f"{args.file} -> {args.project}: {report.summary()}")
        for warning in report.warnings:
            print(f"warning: {warning}", file=sys.stderr)
        groups = report.exact_duplicate_groups
        for group in groups[:10]:
            more = f" (+{len(group) - 8} more)" if len(group) > 8 else ""
            print(f"  exact duplicates: rows {', '.join(map(str, group[:8]))}{more}")
        if len(groups) > 10:
            print(f"  ... {len(groups) - 10} more groups (--json lists them all)")
    return 0


def _export(engine: Engine, args: argparse.Namespace) -> int:
    actor = _actor(engine, args)
    project = get_project(engine, args.project)
    selection = ExampleFilter(statuses=tuple(args.status), labels=tuple(args.label), sources=tuple(args.source),
                              splits=tuple(args.split), search=args.search)
    count = export_project(engine, actor, project.id, args.out, args.format, selection, args.include_excluded)
    print(f"{count} records -> {args.out} ({args.format})")
    return 0


def _print_mapping(data: dict[str, Any], as_json: bool) -> None:
    """A flat report as indented JSON, or one `key: value` line per entry."""
    if as_json:
        print(json.dumps(data, indent=2, ensure_ascii=False))
    else:
        for key, value in data.items():
            print(f"{key}: {value}")


def _stats(engine: Engine, args: argparse.Namespace) -> int:
    stats = project_stats(engine, _actor(engine, args), get_project(engine, args.project).id)
    _print_mapping(stats, args.json)
    return 0


def _agreement(engine: Engine, args: argparse.Namespace) -> int:
    from curation.agreement_report import agreement_report

    report = agreement_report(engine, _actor(engine, args), get_project(engine, args.project).id, args.level,
                              args.resamples)
    print(json.dumps(report.to_dict(), indent=2, ensure_ascii=False, allow_nan=False) if args.json
          else report.summary_text())
    return 0


def _users(engine: Engine, args: argparse.Namespace) -> int:
    if args.users_command == "add":
        password = sys.stdin.readline().rstrip("\n") if args.password_stdin else args.password
        with read_session(engine) as session:
            first = session.execute(select(User.id).where(User.password_hash.is_not(None))).first() is None
        actor = None if first else _actor(engine, args)
        user = create_user(engine, actor, args.username, Role(args.role), password, args.display_name)
        print(f"added {user.username} ({user.role})")
        return 0
    if args.users_command == "set":
        return _users_set(engine, args)
    users = list_users(engine, _actor(engine, args))
    rows: list[dict[str, Any]] = [{"username": u.username, "role": Role(u.role).value, "active": u.active,
                                   "imported": u.imported, "can_log_in": bool(u.password_hash)} for u in users]
    if args.json:
        print(json.dumps(rows, indent=2))
    else:
        for row in rows:
            flags = "" if row["can_log_in"] else " (imported, no login)"
            print(f"{row['username']:<30} {row['role']:<10}{'' if row['active'] else ' inactive'}{flags}")
    return 0


def _projects(engine: Engine, args: argparse.Namespace) -> int:
    rows = project_overview(engine, _actor(engine, args))
    if args.json:
        print(json.dumps(rows, indent=2, ensure_ascii=False))
    elif not rows:
        print("no projects yet: create one on the Projects page or with `import --create`")
    else:
        for row in rows:
            statuses = ", ".join(f"{status} {n}" for status, n in row["by_status"].items()) or "no items"
            print(f"{row['name']}  [{row['task_type']}]  {row['items']} items ({statuses})  "
                  f"k={row['overlap_k']}  rule={row['final_label_rule']}")
    return 0


def _version(engine: Engine, args: argparse.Namespace) -> int:
    from curation.version_cli import run_version_command

    return run_version_command(engine, _actor(engine, args), args)


def _users_set(engine: Engine, args: argparse.Namespace) -> int:
    from curation.auth import set_active, set_password, set_role

    actor = _actor(engine, args)
    user = get_user(engine, args.username)
    if args.role is None and not args.active and not args.inactive and not args.password_stdin:
        raise InputError("say what to change: --role, --active, --inactive or --password-stdin")
    if args.password_stdin:
        user = set_password(engine, actor, user.id, sys.stdin.readline().rstrip("\n"))
        print(f"{user.username}: password set")
    if args.role is not None:
        user = set_role(engine, actor, user.id, Role(args.role))
    if args.active or args.inactive:
        user = set_active(engine, actor, user.id, bool(args.active))
    print(f"{user.username}: {Role(user.role).value}, {'active' if user.active else 'inactive'}")
    return 0


def _assign(engine: Engine, args: argparse.Namespace) -> int:
    from datetime import timedelta

    from curation.queue import assign_items

    project = get_project(engine, args.project)
    annotator = get_user(engine, args.annotator)
    ids = assign_items(engine, _actor(engine, args), project.id, annotator, args.count,
                       lease=timedelta(days=args.days))
    print(f"assigned {len(ids)} items of {project.name} to {annotator.username} for {args.days:g} days")
    return 0


def _annotations(engine: Engine, args: argparse.Namespace) -> int:
    from curation.adjudication import annotation_rows, export_annotations

    project = get_project(engine, args.project)
    if args.out == "-":
        import csv

        writer = None
        for row in annotation_rows(engine, _actor(engine, args), project.id):
            if writer is None:
                writer = csv.DictWriter(sys.stdout, fieldnames=list(row))
                writer.writeheader()
            writer.writerow(row)
        return 0
    count = export_annotations(engine, _actor(engine, args), project.id, args.out, args.format)
    print(f"{count} annotations -> {args.out} ({args.format})", file=sys.stderr)
    return 0


def _adjudication(engine: Engine, args: argparse.Namespace) -> int:
    from curation.adjudication import adjudication_queue, adjudication_queue_size

    actor = _actor(engine, args)
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
    from curation.queue import queue_stats, set_queue_order

    actor = _actor(engine, args)
    project = get_project(engine, args.project)
    if args.order:
        set_queue_order(engine, actor, project.id, args.order)
    if args.rereview_by:
        from curation.rereview import set_rereview_by

        project = set_rereview_by(engine, actor, project.id, args.rereview_by)
    stats = queue_stats(engine, actor, project.id)
    stats["rereview_by"] = str(project.rereview_by)
    _print_mapping(stats, args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
