"""Import benchmark: `python bench/import.py [--rows 100000]`.

Generates a seeded JSONL file (text, one of 6 labels, source, licence, a metadata field), imports it
into a fresh SQLite database with the real CLI in a subprocess (`python -m curation import ... --create`,
timed alone, process start included; three imports, each into its own database, and the median), and in the same run times `datasets.load_dataset("json", ...)`
merely reading the same file into a fresh cache: our import writes everything `datasets` reads, plus
validation, hashing and SQL inserts, so the ratio says what the database side costs. Then it times the
data browser's last page at that size through `curation.browse.browse_examples` (best of 5), with and
without a search filter.

Prints one summary line at the end and exits 1 when the import misses the target of 20,000 rows/s.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TARGET_ROWS_PER_S = 20_000
LABELS = ("billing", "technical_issue", "account_access", "shipping", "refund_request", "other")
WORDS = ("order", "invoice", "parcel", "password", "refund", "charged", "twice", "login", "app", "crash",
         "delivery", "late", "card", "declined", "account", "locked", "please", "help", "today", "again",
         "where", "is", "my", "the", "cannot", "why", "was", "I", "email", "address", "update", "plan")


def write_file(path: Path, rows: int, seed: int) -> None:
    rng = random.Random(seed)
    with path.open("w", encoding="utf-8") as handle:
        for i in range(rows):
            text = " ".join(rng.choice(WORDS) for _ in range(rng.randint(6, 30))) + f" #{i}"
            record = {"id": f"t{i:07d}", "text": text, "label": rng.choice(LABELS),
                      "source": rng.choice(("email", "chat", "phone")), "licence": "CC0-1.0",
                      "customer_tier": rng.choice(("free", "pro", "enterprise"))}
            handle.write(json.dumps(record) + "\n")


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def best_ms(call, repeat: int = 5) -> float:  # type: ignore[no-untyped-def]
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        call()
        times.append((time.perf_counter() - start) * 1000)
    return min(times)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--repeat", type=int, default=3, help="imports timed (the median is reported)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="bench-import-"))
    try:
        data_file = work / "bench.jsonl"
        write_file(data_file, args.rows, args.seed)
        size_mb = data_file.stat().st_size / 2**20
        base_env = {key: value for key, value in os.environ.items() if key not in ("DATABASE_URL", "CURATION_USER")}
        base_env.update(LOAD_DEMO="false", HF_DATASETS_OFFLINE="1")
        python = [sys.executable, "-m", "curation"]
        runs: list[tuple[float, float]] = []  # (wall s, CPU s) of each import into its own fresh database
        for attempt in range(args.repeat):
            env = {**base_env, "DATA_DIR": str(work / f"data{attempt}")}
            subprocess.run(python + ["users", "add", "bench-admin", "--role", "admin", "--password",
                                     "bench-password"], env=env, cwd=work, check=True, capture_output=True, text=True)
            cpu_before = _children_cpu()
            start = time.perf_counter()
            done = subprocess.run(python + ["import", str(data_file), "--project", "bench", "--create", "--json"],
                                  env=env, cwd=work, capture_output=True, text=True)
            runs.append((time.perf_counter() - start, _children_cpu() - cpu_before))
            if done.returncode != 0:
                print(done.stdout, done.stderr, sep="\n", file=sys.stderr)
                return 2
            report = json.loads(done.stdout)
            assert report["examples_added"] == args.rows, report
        import_s, import_cpu_s = sorted(runs)[len(runs) // 2]  # the median run: one noisy run decides nothing

        os.environ["HF_DATASETS_OFFLINE"] = "1"
        import datasets

        datasets.disable_progress_bars()
        start = time.perf_counter()
        read = datasets.load_dataset("json", data_files=str(data_file), split="train",
                                     cache_dir=str(work / "hf-cache"))
        read_s = time.perf_counter() - start
        assert read.num_rows == args.rows

        os.environ.update(DATA_DIR=str(work / "data0"), LOAD_DEMO="false")
        os.environ.pop("DATABASE_URL", None)
        from curation.access.accounts import get_user
        from curation.data.browse import ExampleFilter, browse_examples
        from curation.data.projects import get_project
        from curation.db import make_engine

        engine = make_engine()
        admin = get_user(engine, "bench-admin")
        project = get_project(engine, "bench")
        last = browse_examples(engine, admin, project.id, ExampleFilter(), page=10**9, page_size=50)
        browse_last_ms = best_ms(lambda: browse_examples(engine, admin, project.id, ExampleFilter(),
                                                         page=last.pages, page_size=50))
        search = ExampleFilter(search="refund charged")
        searched = browse_examples(engine, admin, project.id, search, page=10**9, page_size=50)
        browse_search_ms = best_ms(lambda: browse_examples(engine, admin, project.id, search,
                                                           page=searched.pages, page_size=50))
        filtered = ExampleFilter(labels=("shipping",), sources=("chat",))
        by_filter = browse_examples(engine, admin, project.id, filtered, page=10**9, page_size=50)
        browse_filter_ms = best_ms(lambda: browse_examples(engine, admin, project.id, filtered,
                                                           page=by_filter.pages, page_size=50))
        engine.dispose()
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)

    rows_per_s = args.rows / import_s
    ratio = import_s / read_s
    met = rows_per_s >= TARGET_ROWS_PER_S
    print(f"file: {args.rows} rows, {size_mb:.1f} MiB JSONL (seed {args.seed})")
    print(f"import (python -m curation import, fresh SQLite, process start included; median of "
          f"{', '.join(f'{wall:.2f}' for wall, _ in runs)} s): {import_s:.2f} s = "
          f"{rows_per_s:,.0f} rows/s (CPU {import_cpu_s:.2f} s; load average {os.getloadavg()[0]:.1f} on "
          f"{os.cpu_count()} CPUs)")
    print(f"datasets.load_dataset('json') reading the same file (fresh cache): {read_s:.2f} s = "
          f"{args.rows / read_s:,.0f} rows/s")
    print(f"ratio import / datasets-read: {ratio:.1f}x")
    print(f"browse last page ({last.total} rows, page {last.pages}): {browse_last_ms:.1f} ms (best of 5)")
    print(f"browse last page with search 'refund charged' ({searched.total} matches): "
          f"{browse_search_ms:.1f} ms (best of 5)")
    print(f"browse last page with label+source filter ({by_filter.total} matches): "
          f"{browse_filter_ms:.1f} ms (best of 5)")
    print(f"SUMMARY import {rows_per_s:,.0f} rows/s (target >= {TARGET_ROWS_PER_S:,}: {'MET' if met else 'MISSED'}), "
          f"{ratio:.1f}x datasets read time; browse last page {browse_last_ms:.1f} ms, "
          f"with search {browse_search_ms:.1f} ms")
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
