"""CLI commands for data: import, export, stats, demo."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.engine import Engine

from curation.cli.common import acting_user
from curation.data.bootstrap import load_demo
from curation.data.browse import ExampleFilter
from curation.data.export import export_project
from curation.data.formats import open_table
from curation.data.importer import import_table, mapping_warnings
from curation.data.mapping import ColumnMapping, guess_mapping
from curation.data.projects import get_project, project_stats
from curation.db import read_session
from curation.errors import InputError
from curation.models import TaskType, User


def _demo(engine: Engine, args: argparse.Namespace) -> int:
    with read_session(engine) as session:
        has_accounts = session.execute(select(User.id).where(User.password_hash.is_not(None))).first() is not None
    # Into a database with accounts, the acting admin (--user, CURATION_USER or the first admin) loads it.
    load_demo(engine, acting_user(engine, args) if has_accounts else None)
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
    actor = acting_user(engine, args)
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
                          responses_as=args.responses_as,
                          labels=[p for p in (args.labels or "").split(",") if p.strip()] or None,
                          overlap_k=args.k, final_label_rule=args.rule)
    if report.final_labels and not args.json:
        print("warning: labels imported as final labels: experts will not review them "
              "(--labels-as vote|suggestion --source NAME puts them in front of experts)", file=sys.stderr)
    if report.final_responses and not args.json:
        print("warning: responses imported as final: experts will not see them "
              "(--responses-as review puts them in front of experts)", file=sys.stderr)
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
    actor = acting_user(engine, args)
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
    stats = project_stats(engine, acting_user(engine, args), get_project(engine, args.project).id)
    _print_mapping(stats, args.json)
    return 0
