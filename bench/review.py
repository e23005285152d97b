"""Benchmark: next-item latency of the review queue (``curation.queue.next_item``) through the core,
on SQLite, with 1,000 and with 100,000 examples and 5 annotators.

Each project is mid-way, in the same proportions at both sizes: 40% of the items labelled (two labels
by imported annotators), 30% in review (one label, from one of the five annotators or an imported one),
30% new; k = 2. The five annotators take turns: ask for the next item (timed: a write transaction
that finds the item and leases its slot), then submit a label (not timed), 60 rounds each after 5
warm-up rounds, so every size answers 300 timed calls.

Targets: p95 <= 50 ms at 100k, and p95(100k) / p95(1k) <= 2 (the call costs the same however big the
project is). Prints both sizes, their ratio and the query plan of the candidate walk; exits 1 if a
target is missed.

Run: ``python bench/review.py`` from the repository root.
"""

from __future__ import annotations

import hashlib
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlalchemy import insert, select, text  # noqa: E402

from curation.access.accounts import create_user  # noqa: E402
from curation.data.projects import create_project  # noqa: E402
from curation.db import make_engine, migrate, read_session, write_session  # noqa: E402
from curation.models import Annotation, Example, ExampleStatus, Role, User, utcnow  # noqa: E402
from curation.review.annotate import submit_annotation  # noqa: E402
from curation.review.queue import next_item  # noqa: E402

SIZES = (1_000, 100_000)
ANNOTATORS, K, ROUNDS, WARMUP, SEED = 5, 2, 60, 5, 0
LABELS = ["billing", "technical_issue", "account_access", "shipping", "refund_request"]
P95_TARGET_MS, RATIO_TARGET = 50.0, 2.0


def build(path: Path, n: int) -> tuple[object, int, list[User]]:
    """A migrated SQLite database with one project of `n` examples in the mid-way state."""
    engine = make_engine(f"sqlite:///{path}")
    migrate(engine)
    admin = create_user(engine, None, "admin", Role.admin, None)
    people = [create_user(engine, admin, f"annotator{i}", Role.annotator, None) for i in range(ANNOTATORS)]
    imported = [create_user(engine, admin, f"imported{i}", Role.annotator, None) for i in range(2)]
    project = create_project(engine, admin, f"Bench {n}", labels=LABELS, overlap_k=K)
    rng = random.Random(SEED)
    now = utcnow()
    examples, annotations = [], []
    for i in range(1, n + 1):
        share = rng.random()
        status = (ExampleStatus.labelled if share < 0.4 else ExampleStatus.in_review if share < 0.7
                  else ExampleStatus.new)
        label = rng.choice(LABELS)
        examples.append({"project_id": project.id, "external_id": f"t{i:06d}", "text": f"ticket {i}: {label}",
                         "meta": {}, "content_hash": hashlib.sha256(str(i).encode()).hexdigest(),
                         "status": status.value, "created_at": now, "updated_at": now,
                         "final_label": label if status is ExampleStatus.labelled else None})
        if status is ExampleStatus.labelled:
            annotations += [(i, imported[0].id, label), (i, imported[1].id, label)]
        elif status is ExampleStatus.in_review:
            annotations.append((i, rng.choice(people + imported[:1]).id, label))
    with write_session(engine) as session:
        for start in range(0, len(examples), 5000):
            session.execute(insert(Example), examples[start:start + 5000])
        first_id = session.execute(select(Example.id).where(Example.project_id == project.id)
                                   .order_by(Example.id)).scalars().first()
        rows = [{"example_id": first_id + i - 1, "annotator_id": who, "label": label, "comment": "",
                 "flags": [], "row_version": 1, "created_at": now, "updated_at": now}
                for i, who, label in annotations]
        for start in range(0, len(rows), 5000):
            session.execute(insert(Annotation), rows[start:start + 5000])
    with engine.connect() as connection:
        connection.exec_driver_sql("ANALYZE")
    return engine, int(project.id), people  # type: ignore[arg-type]


def measure(n: int) -> tuple[float, float, str]:
    with tempfile.TemporaryDirectory() as tmp:
        engine, project_id, people = build(Path(tmp) / "bench.db", n)
        rng = random.Random(SEED)
        timings: list[float] = []
        for round_number in range(WARMUP + ROUNDS):
            for person in people:
                start = time.perf_counter()
                item = next_item(engine, person, project_id)  # type: ignore[arg-type]
                elapsed = time.perf_counter() - start
                if item is None:
                    raise SystemExit(f"{n}: the queue ran dry for {person.username}")
                if round_number >= WARMUP:
                    timings.append(elapsed * 1000)
                label = rng.choice(LABELS)
                submit_annotation(engine, person, item.example.id, label=label)  # type: ignore[arg-type]
        plan = query_plan(engine)  # type: ignore[arg-type]
        engine.dispose()  # type: ignore[attr-defined]
    timings.sort()
    return statistics.median(timings), timings[int(0.95 * (len(timings) - 1))], plan


def query_plan(engine: object) -> str:
    """SQLite's plan for the first walk of the queue (new items nobody holds), to show the index."""
    sql = ("EXPLAIN QUERY PLAN SELECT example.id FROM example WHERE example.project_id = 1 "
           "AND example.status = 'new' AND NOT EXISTS (SELECT 1 FROM annotation "
           "WHERE annotation.example_id = example.id AND annotation.annotator_id = 2) "
           "ORDER BY example.id LIMIT 1")
    with read_session(engine) as session:  # type: ignore[arg-type]
        rows = session.execute(text(sql)).all()
    return "; ".join(str(row[-1]) for row in rows)


def main() -> int:
    results = {}
    for n in SIZES:
        p50, p95, plan = measure(n)
        results[n] = (p50, p95)
        print(f"next_item with {n:>7,} examples, {ANNOTATORS} annotators (SQLite): p50 {p50:6.2f} ms  "
              f"p95 {p95:6.2f} ms")
    small, large = results[SIZES[0]], results[SIZES[1]]
    ratio = large[1] / small[1]
    print(f"plan: {plan}")
    print(f"ratio p95 100k/1k: {ratio:.2f} (target <= {RATIO_TARGET}); p50 ratio {large[0] / small[0]:.2f}; "
          f"p95 at 100k {large[1]:.2f} ms (target <= {P95_TARGET_MS:.0f} ms)")
    ok = large[1] <= P95_TARGET_MS and ratio <= RATIO_TARGET
    print("targets met" if ok else "TARGET MISSED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
