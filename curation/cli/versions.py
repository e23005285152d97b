"""`python -m curation version ...`: the dataset-version commands (parsed in curation/cli.py)."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from sqlalchemy.engine import Engine

from curation.data.projects import get_project
from curation.icons import STATUS_ICONS
from curation.models import DatasetVersion, User
from curation.versions import approve, build, export, records
from curation.versions import diff as V_diff
from curation.versions.checklist import items_of


def _summary(engine: Engine, version: DatasetVersion) -> dict[str, Any]:
    provenance = records.version_provenance(engine, version.id)
    return {**provenance, "checklist": [item.to_dict() for item in items_of(version.checklist or {})],
            "blocking": approve.blocking_items(version, attest=bool((version.checklist or {}).get("attested")))}


def _print_version(engine: Engine, version: DatasetVersion) -> None:
    p = records.version_provenance(engine, version.id)
    print(f"version {version.number} (id {version.id}) of {p['project']}: {version.status}, {version.item_count} items "
          f"({', '.join(f'{k} {v}' for k, v in p['splits'].items())})")
    print(f"  sha256 {version.content_hash}")
    if p["approved_by"]:
        print(f"  approved by {p['approved_by']} at {p['approved_at']}" + (f": {p['approval_note']}"
                                                                             if p["approval_note"] else ""))
    if version.override_reason:
        print(f"  OVERRIDE of {p['overridden_summary']}: {version.override_reason}")
    for item in items_of(version.checklist or {}):
        print(f"  {STATUS_ICONS.get(item.status, '')} {item.status:<4} {item.name}: {item.value}  [{item.threshold}]")


def run_version_command(engine: Engine, actor: User, args: argparse.Namespace) -> int:
    command = args.version_command
    assert actor is not None
    if command == "verify":
        result = records.verify_version(engine, actor, args.id)
        if result.ok:
            print(result.message)
            return 0
        print(f"error: {result.message}", file=sys.stderr)
        return 1
    if command == "create":
        project = get_project(engine, args.project)
        options = build.BuildOptions(eval_fraction=args.eval_fraction, seed=args.seed,
                                 keep_existing_splits=args.keep_splits, use_embeddings=not args.no_embeddings)
        version = build.create_candidate(engine, actor, project.id, options)
    elif command == "approve":
        version = approve.approve_version(engine, actor, args.id, note=args.note, attest=args.attest,
                                    override_reason=args.override_reason)
    elif command == "export":
        formats = tuple(dict.fromkeys(args.format)) if args.format else export.VERSION_EXPORT_FORMATS
        paths = export.export_version(engine, actor, args.id, args.out, formats)
        version = records.read_version(engine, actor, args.id)
        print(f"version {version.number} (sha256 {version.content_hash}) -> {args.out}: "
              f"{len(paths)} files ({', '.join(formats)}, README.md)")
        return 0
    elif command == "diff":
        diff = V_diff.diff_versions(engine, actor, args.a, args.b)
        if args.json:
            print(json.dumps(diff.to_dict(), indent=2, ensure_ascii=False, default=str))
        else:
            print(f"v{diff.a_number} -> v{diff.b_number}: {len(diff.added)} added, {len(diff.removed)} removed, "
                  f"{len(diff.relabelled)} relabelled, {len(diff.content_changed)} changed, {len(diff.moved)} moved")
            for key, change in diff.stats.items():
                print(f"  {key}: {change['a']} -> {change['b']}")
        return 0
    elif command == "list":
        project = get_project(engine, args.project)
        versions = records.list_versions(engine, actor, project.id)
        if args.json:
            print(json.dumps([records.version_provenance(engine, v.id) for v in versions], indent=2, ensure_ascii=False))
        else:
            for version in versions:
                print(records.version_label(version) + (f" ({version.override_reason})" if version.override_reason else ""))
        return 0
    else:  # show
        version = records.read_version(engine, actor, args.id)
    if getattr(args, "json", False):
        print(json.dumps(_summary(engine, version), indent=2, ensure_ascii=False, default=str))
    else:
        _print_version(engine, version)
    return 0
