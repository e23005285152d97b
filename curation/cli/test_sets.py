"""`python -m curation testset ...`: build, approve, verify and show a project's test set.

    testset create --project NAME [--name N] (--sample SIZE [--seed S] [--labelled-only] [--no-embeddings]
                   | --pick EXTERNAL_ID ... | --import-id ID)
    testset approve --project NAME [--name N] [--note TEXT]
    testset verify ID            (a test-set version id; exit 1 when its SHA-256 does not match)
    testset show ID [--json]     (a test-set version and its label counts)
    testset list --project NAME [--json]
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from sqlalchemy import select
from sqlalchemy.engine import Engine

from curation.cli.common import acting_user
from curation.data.projects import get_project
from curation.db import read_session
from curation.errors import InputError, NotFound
from curation.models import Example, TestSetVersion
from curation.versions import test_sets as ts


def add_commands(commands: Any) -> None:
    testset = commands.add_parser("testset", help="the project's frozen test set: build, approve, verify, show, list")
    sub = testset.add_subparsers(dest="testset_command", required=True)
    create = sub.add_parser("create", help="create the test set (if needed) and add items to it")
    create.add_argument("--project", required=True)
    create.add_argument("--name", default="test set")
    how = create.add_mutually_exclusive_group()
    how.add_argument("--sample", type=int, metavar="SIZE", help="a seeded sample stratified by label "
                                                               "(near-duplicate groups go whole)")
    how.add_argument("--pick", nargs="+", metavar="EXTERNAL_ID", help="these items")
    how.add_argument("--import-id", type=int, help="every item an import added (import the file first)")
    create.add_argument("--seed", type=int, default=0)
    create.add_argument("--labelled-only", action="store_true", help="sample only items that already have a "
                                                                      "final label")
    create.add_argument("--no-embeddings", action="store_true", help="exact duplicate groups only")
    create.add_argument("--json", action="store_true")
    approve = sub.add_parser("approve", help="freeze the reviewed test items into a new test-set version")
    approve.add_argument("--project", required=True)
    approve.add_argument("--name", default="test set")
    approve.add_argument("--note", default="")
    verify = sub.add_parser("verify", help="recompute a test-set version's SHA-256 (exit 1 when it does not match)")
    verify.add_argument("id", type=int)
    show = sub.add_parser("show", help="a test-set version")
    show.add_argument("id", type=int)
    show.add_argument("--json", action="store_true")
    listing = sub.add_parser("list", help="a project's test sets and their versions")
    listing.add_argument("--project", required=True)
    listing.add_argument("--json", action="store_true")


def _test_set(engine: Engine, actor: Any, project_id: int, name: str, create: bool) -> Any:
    for test_set in ts.list_test_sets(engine, project_id):
        if test_set.name == name:
            return test_set
    if not create:
        raise NotFound(f"No test set named '{name}' in this project.")
    return ts.create_test_set(engine, actor, project_id, name)


def version_summary(version: TestSetVersion) -> dict[str, Any]:
    return {"id": version.id, "test_set_id": version.test_set_id, "number": version.number,
            "items": version.item_count, "content_hash": version.content_hash,
            "approved_at": version.approved_at.isoformat() if version.approved_at else None,
            "approved_by_id": version.approved_by_id, "note": version.note, "labels": version.stats.get("labels")}


def _testset(engine: Engine, args: argparse.Namespace) -> int:

    command = args.testset_command
    if command == "verify":
        check = ts.verify_test_set_version(engine, args.id)
        print(check.message)
        return 0 if check.ok else 1
    if command == "show":
        version = ts.get_test_set_version(engine, args.id)
        summary = version_summary(version)
        print(json.dumps(summary, indent=2) if args.json else
              f"{ts.version_label(version)}\napproved {summary['approved_at']}; labels {summary['labels']}")
        return 0
    actor = acting_user(engine, args)
    project = get_project(engine, args.project)
    if command == "list":
        rows = []
        for test_set in ts.list_test_sets(engine, project.id):
            status = ts.test_set_status(engine, test_set.id)
            rows.append({"id": test_set.id, "name": test_set.name, "items": status.items,
                         "waiting_for_review": status.waiting, "by_status": status.by_status,
                         "versions": [version_summary(v) for v in
                                      ts.list_test_set_versions(engine, test_set_id=test_set.id)]})
        if args.json:
            print(json.dumps(rows, indent=2))
        for row in [] if args.json else rows:
            print(f"{row['id']:>4} {row['name']}: {row['items']} items, {row['waiting_for_review']} waiting for review")
            for v in row["versions"]:
                print(f"       v{v['number']} (id {v['id']}): {v['items']} items, sha256 {v['content_hash']}")
        return 0
    if command == "approve":
        version = ts.approve_test_set(engine, actor, _test_set(engine, actor, project.id, args.name, False).id,
                                      note=args.note)
        print(f"approved {ts.version_label(version)}; full SHA-256 {version.content_hash}")
        return 0
    test_set = _test_set(engine, actor, project.id, args.name, True)
    result: dict[str, Any] = {"test_set_id": test_set.id}
    if args.sample:
        result.update(ts.sample_items(engine, actor, test_set.id, args.sample, seed=args.seed,
                                      labelled_only=args.labelled_only, use_embeddings=not args.no_embeddings))
    elif args.pick:
        with read_session(engine) as session:
            found = dict(session.execute(select(Example.external_id, Example.id).where(
                Example.project_id == project.id, Example.external_id.in_(args.pick))).all())
        missing = [e for e in args.pick if e not in found]
        if missing:
            raise InputError(f"no items with these ids in '{project.name}': {', '.join(missing[:10])}", field="--pick")
        result["added"] = ts.add_items(engine, actor, test_set.id, list(found.values()))
    elif args.import_id:
        result["added"] = ts.mark_import(engine, actor, test_set.id, args.import_id)
    status = ts.test_set_status(engine, test_set.id)
    result.update(items=status.items, waiting_for_review=status.waiting)
    print(json.dumps(result, indent=2) if args.json else
          f"test set '{test_set.name}' (id {test_set.id}): {status.items} items, {status.waiting} waiting for review"
          + (f" (+{result['added']} added)" if "added" in result else ""))
    return 0


HANDLERS = {"testset": _testset}
