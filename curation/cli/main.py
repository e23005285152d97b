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

from sqlalchemy.engine import Engine

from curation.cli.accounts import _users
from curation.cli.audits import HANDLERS as AUDIT_HANDLERS
from curation.cli.audits import add_commands as add_audit_commands
from curation.cli.common import acting_user
from curation.cli.data import _demo, _export, _import, _stats
from curation.cli.embeddings import HANDLERS as EMBEDDING_HANDLERS
from curation.cli.embeddings import add_commands as add_embedding_commands
from curation.cli.registry import registered
from curation.cli.review import _adjudication, _agreement, _annotations, _assign, _queue
from curation.cli.suggest import HANDLERS as SUGGEST_HANDLERS
from curation.cli.suggest import add_commands as add_suggest_commands
from curation.cli.test_sets import HANDLERS as TEST_SET_HANDLERS
from curation.cli.test_sets import add_commands as add_test_set_commands
from curation.cli.versions import run_version_command
from curation.data.bootstrap import initialise
from curation.data.export import EXPORT_FORMATS
from curation.data.formats import FORMATS
from curation.data.importer import REPEAT_POLICIES
from curation.data.projects import project_overview
from curation.db import make_engine
from curation.errors import CurationError
from curation.models import Role, TaskType
from curation.settings import get_settings
from curation.versions.export import VERSION_EXPORT_FORMATS


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
    imp.add_argument("--responses-as", choices=["review", "final"], default="review",
                     help="generation: what the file's responses are: for experts to review (default; a version "
                          "includes an item once its response is reviewed) or final (experts will not see them)")
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
    vexport.add_argument("--format", action="append", choices=VERSION_EXPORT_FORMATS,
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
    add_audit_commands(commands)  # issue 12
    add_suggest_commands(commands)  # issue 12
    add_embedding_commands(commands)
    add_test_set_commands(commands)
    for group in registered():
        group.add_commands(commands)
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
        handler.update(EMBEDDING_HANDLERS)
        handler.update(TEST_SET_HANDLERS)
        handler.update(AUDIT_HANDLERS)
        handler.update(SUGGEST_HANDLERS)
        for group in registered():
            handler.update(group.handlers)
        handler.update({"assign": _assign, "annotations": _annotations, "adjudication": _adjudication,
                        "queue": _queue})
        return handler[args.command](engine, args)
    except CurationError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    finally:
        engine.dispose()


def _projects(engine: Engine, args: argparse.Namespace) -> int:
    rows = project_overview(engine, acting_user(engine, args))
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
    return run_version_command(engine, acting_user(engine, args), args)


if __name__ == "__main__":
    sys.exit(main())
