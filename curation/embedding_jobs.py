"""Embedding large projects in a background process whose progress survives a page reload.

`start_job` spawns `python -m curation embed --project-id ID --job-file FILE` as a detached process
(its own session, so it outlives the Streamlit script run and the browser tab). The process writes
its state to `DATA_DIR/jobs/embed-<project id>.json` atomically (temporary file, then rename):
`{"status": "running"|"done"|"failed", "done", "total", "error", "pid", "model", "started_at",
"updated_at", "fingerprint"}`. A page only reads that file, so a reload, a second tab or another
user sees the same progress. A "running" job whose process is gone reads as failed.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, TYPE_CHECKING

from curation.settings import get_settings

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine
    import argparse


RUNNING, DONE, FAILED = "running", "done", "failed"
WRITE_EVERY_S = 0.5


def job_path(project_id: int) -> Path:
    return get_settings().data_dir / "jobs" / f"embed-{project_id}.json"


def write_job(path: Path, state: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(state), encoding="utf-8")
    os.replace(tmp, path)


def _alive(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie (finished child not yet reaped) is not running
        with open(f"/proc/{pid}/stat", encoding="utf-8") as handle:
            return handle.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return True


def read_job(project_id: int) -> dict[str, Any] | None:
    """The project's latest embedding job, or None when there never was one."""
    path = job_path(project_id)
    try:
        state = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if state.get("status") == RUNNING and not _alive(state.get("pid")):
        state = {
            **state,
            "status": FAILED,
            "error": state.get("error") or "the embedding process ended unexpectedly",
        }
    return state


def start_job(project_id: int, model: str | None = None) -> dict[str, Any]:
    """Start embedding the project in the background, unless a job for it is already running."""
    current = read_job(project_id)
    if current and current.get("status") == RUNNING:
        return current
    path = job_path(project_id)
    log = path.with_suffix(".log")
    path.parent.mkdir(parents=True, exist_ok=True)
    command = [
        sys.executable,
        "-m",
        "curation",
        "embed",
        "--project-id",
        str(project_id),
        "--job-file",
        str(path),
    ]
    if model:
        command += ["--model", model]
    with open(log, "ab") as out:
        process = subprocess.Popen(
            command,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            cwd=os.getcwd(),
            env=os.environ.copy(),
        )
    state = {
        "status": RUNNING,
        "done": 0,
        "total": 0,
        "error": None,
        "pid": process.pid,
        "model": model,
        "started_at": time.time(),
        "updated_at": time.time(),
        "fingerprint": None,
    }
    write_job(path, state)
    return state


def run_job(engine: Engine, project_id: int, model: str | None, path: Path | None) -> dict[str, Any]:
    """The work of a job (run inside the background process, or directly by the CLI)."""
    from curation.embeddings import embed_texts, read_project_items

    state: dict[str, Any] = {
        "status": RUNNING,
        "done": 0,
        "total": 0,
        "error": None,
        "pid": os.getpid(),
        "model": model,
        "started_at": time.time(),
        "updated_at": time.time(),
        "fingerprint": None,
    }
    last = [0.0]

    def save(force: bool = False) -> None:
        now = time.time()
        if path is not None and (force or now - last[0] >= WRITE_EVERY_S):
            state["updated_at"] = now
            write_job(path, state)
            last[0] = now

    try:
        items = read_project_items(engine, project_id)
        state.update(total=len(items), fingerprint=items.fingerprint)
        save(force=True)

        def progress(done: int, total: int) -> None:
            state.update(done=done, total=total)
            save()

        result = embed_texts(items.texts, model, progress=progress)
        state.update(status=DONE, done=len(items), encoded=result.encoded, cached=result.cached)
    except Exception as error:
        state.update(status=FAILED, error=f"{type(error).__name__}: {error}")
        save(force=True)
        raise
    save(force=True)
    return state


# --------------------------------------------------------------------------- command line
# `python -m curation embed | dedup | label-issues | leakage`: registered by curation/cli.py.


def add_commands(commands: Any) -> None:
    import argparse

    from curation.dedup import DEFAULT_THRESHOLD

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


def _send_choice(words: list[str]) -> int | None:
    """`--send flagged` -> None (all), `--send top N` -> N."""
    from curation.errors import InputError

    if words == ["flagged"]:
        return None
    if len(words) == 2 and words[0] == "top" and words[1].isdigit() and int(words[1]) > 0:
        return int(words[1])
    raise InputError("--send takes 'flagged' or 'top N' (N a positive whole number)", field="send")


def _embed(engine: Engine, args: argparse.Namespace) -> int:
    from curation.projects import get_project, get_project_by_id

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
    from curation.cli import _actor
    from curation.dedup import find_duplicates
    from curation.projects import get_project

    report = find_duplicates(
        engine, _actor(engine, args), get_project(engine, args.project).id, args.threshold, args.model
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
    from curation.cli import _actor
    from curation.projects import get_project
    from curation.quality import find_label_issues_in_project
    from curation.rereview import expert_confirmed_ids, send_for_rereview, suspected_left

    top = _send_choice(args.send) if args.send else None
    actor = _actor(engine, args)
    project = get_project(engine, args.project)
    started = time.monotonic()

    def stage(name: str):  # type: ignore[no-untyped-def]
        def progress(done: int, total: int) -> None:
            print(f"\r  {name}: {done}/{total} ({time.monotonic() - started:.0f} s)", end="", file=sys.stderr,
                  flush=True)
            if done >= total:
                print(file=sys.stderr)
        return progress

    report = find_label_issues_in_project(engine, actor, project.id, args.model, progress=stage("embeddings"),
                                          fold_progress=stage("cross-validation folds"))
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
    from curation.cli import _actor
    from curation.projects import get_project
    from curation.splits import project_leakage

    leaks, sizes = project_leakage(
        engine, _actor(engine, args), get_project(engine, args.project).id, args.threshold, args.model
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
