"""Benchmark (issue 12): how well a sampled audit measures a source's label noise, and how many noisy
labels the active-learning queue orders find early, on BANKING77 train.

1. BANKING77 train (../shared/datasets/banking77/train.csv, 10,003 items, 77 labels) gets 15% uniform
   label noise (seed 1: exactly round(0.15 n) items, each given one of the other 76 labels at random)
   and is imported as votes of the source `vendor-2024` (k = 1; source votes do not count).
2. A lead audits 400 items of the source (stratified by its label, seed 0); a simulated expert gives
   the true label to each item the queue serves (audit items come first). Prints the estimated error
   rate, its exact 95% Clopper-Pearson interval and the true rate; the interval must cover it.
3. `suggest` fits the linear probe on the embeddings (all-MiniLM-L6-v2, cached under
   BENCH_AUDIT_DIR); then, for the `disagreement` and `lowest_margin` orders, the queue's first 1,000
   items (its index walk for the order, read in one query: `first_in_queue_order`) are compared with
   a random order of the same open items: noisy items found in the first 1,000 reviews. Target: at least 3x random (the random
   order's count and its expectation are both printed). The lowest-margin order ranks by the margin of the item's
   source label (p(source label) - the best other label's, out-of-fold), so contradicted labels come first; the
   top-2 margin it used before ranked ambiguous items, not wrong labels (0.97x random).

No setting is tuned here: the probe's C and folds are fixed in curation/embeddings/suggest.py.
Run: ``python bench/audit.py`` from the repository root (about 5-10 minutes on 2 shared cores, most
of it embedding 10k texts the first time; later runs reuse the embedding cache).
"""

from __future__ import annotations

import csv
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
CACHE = Path(os.environ.get("BENCH_AUDIT_DIR", Path(tempfile.gettempdir()) / "bench-audit"))
os.environ["DATA_DIR"] = str(CACHE)  # the embedding cache survives between runs; the database does not

from sqlalchemy import select  # noqa: E402

from curation.access.accounts import create_user  # noqa: E402
from curation.data.formats import open_table  # noqa: E402
from curation.data.importer import import_table  # noqa: E402
from curation.data.mapping import ColumnMapping  # noqa: E402
from curation.db import make_engine, migrate, read_session  # noqa: E402
from curation.embeddings.suggest import run_suggest  # noqa: E402
from curation.models import Example, Project, QueueOrder, Role  # noqa: E402
from curation.review.annotate import submit_annotation  # noqa: E402
from curation.review.audits import audit_result, close_audit, start_audit  # noqa: E402
from curation.review.queue import next_item, set_queue_order  # noqa: E402
from curation.settings import get_settings  # noqa: E402

DATA = ROOT.parent / "shared" / "datasets" / "banking77" / "train.csv"
NOISE, NOISE_SEED, AUDIT_SIZE, AUDIT_SEED, REVIEWS, TARGET = 0.15, 1, 400, 0, 1000, 3.0


def noisy_labels(truth: list[str], labels: list[str]) -> list[str]:
    rng = np.random.default_rng(NOISE_SEED)
    index = {label: i for i, label in enumerate(labels)}
    chosen = rng.choice(len(truth), size=round(NOISE * len(truth)), replace=False)
    out = list(truth)
    for i in chosen:
        out[i] = labels[(index[truth[i]] + int(rng.integers(1, len(labels)))) % len(labels)]
    return out


def first_in_queue_order(engine, project, count: int) -> list[int]:  # type: ignore[no-untyped-def]
    """The first `count` items the queue serves one expert under the project's order, with k = 1, no
    audit and no suspicion scores: the order's own index walk (curation.queue._active_learning_phases),
    then the remaining new items by id (the queue's next phase). One query instead of `count` claims,
    which cost minutes each round on a loaded 2-core machine."""
    from curation.review.queue import _active_learning_phases, _example

    [(conditions, order_by)] = _active_learning_phases(project)
    with read_session(engine) as session:
        ids = list(session.execute(select(_example.c.id).where(_example.c.project_id == project.id, *conditions)
                                   .order_by(*order_by).limit(count)).scalars())
        if len(ids) < count:
            rest = session.execute(select(_example.c.id).where(
                _example.c.project_id == project.id, _example.c.status == "new", _example.c.id.not_in(ids))
                .order_by(_example.c.id).limit(count - len(ids))).scalars()
            ids += list(rest)
    return ids


def main() -> int:
    get_settings.cache_clear()
    with DATA.open(encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    texts, truth = [r["text"] for r in rows], [r["category"] for r in rows]
    labels = sorted(set(truth))
    given = noisy_labels(truth, labels)
    noisy = [g != t for g, t in zip(given, truth, strict=True)]
    true_rate = sum(noisy) / len(noisy)
    work = Path(tempfile.mkdtemp(prefix="bench-audit-"))
    try:
        path = work / "vendor.csv"
        with path.open("w", encoding="utf-8", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(["id", "text", "label"])
            writer.writerows([f"b{i}", t, g] for i, (t, g) in enumerate(zip(texts, given, strict=True)))
        engine = make_engine(f"sqlite:///{work / 'bench.db'}")
        migrate(engine)
        admin = create_user(engine, None, "admin", Role.admin, "admin-password")
        lead = create_user(engine, admin, "lead", Role.lead, "lead-password")
        expert = create_user(engine, admin, "expert", Role.annotator, "expert-password")
        started = time.perf_counter()
        report = import_table(engine, lead, open_table(path), ColumnMapping(id=["id"], text="text", label="label",
                                                                             metadata=[]),
                              "banking77-vendor", create=True, labels_as="vote", label_source="vendor-2024",
                              labels=labels, overlap_k=1)
        print(f"import: {report.summary()} ({time.perf_counter() - started:.1f} s)")
        with read_session(engine) as session:
            project_id = session.execute(select(Project.id).where(Project.name == "banking77-vendor")).scalar_one()
            external = dict(session.execute(select(Example.id, Example.external_id)
                                            .where(Example.project_id == project_id)).all())
        truth_of = {eid: truth[int(ext[1:])] for eid, ext in external.items()}
        noisy_of = {eid: noisy[int(ext[1:])] for eid, ext in external.items()}

        # --- the audit
        started = time.perf_counter()
        record = start_audit(engine, lead, project_id, "vendor-2024", AUDIT_SIZE, AUDIT_SEED)
        for _ in range(record.size):
            item = next_item(engine, expert, project_id)
            assert item is not None and item.blind and not item.suggestions
            submit_annotation(engine, expert, item.example.id, label=truth_of[item.example.id])
        result = audit_result(engine, lead, record.id)
        close_audit(engine, lead, record.id)
        covered = result.low <= true_rate <= result.high
        print(f"audit: {result.reviewed} items reviewed in {time.perf_counter() - started:.1f} s; estimated error "
              f"rate {result.rate:.2%} [{result.low:.2%}, {result.high:.2%}] (95% Clopper-Pearson); true rate "
              f"{true_rate:.2%}: {'COVERED' if covered else 'NOT COVERED'}")

        # --- model pre-labels and the active-learning orders
        started = time.perf_counter()
        suggest = run_suggest(engine, lead, project_id)
        print(f"suggest: {suggest.summary()} (wall {time.perf_counter() - started:.1f} s)")
        engine.dispose()
        base = work / "bench.db"
        with read_session(make_engine(f"sqlite:///{base}")) as session:
            open_ids = list(session.execute(select(Example.id).where(Example.project_id == project_id,
                                                                     Example.status == "new")).scalars())
        rng = np.random.default_rng(0)
        random_pick = rng.permutation(open_ids)[:REVIEWS]
        random_found = sum(noisy_of[int(i)] for i in random_pick)
        expected = REVIEWS * sum(noisy_of[i] for i in open_ids) / len(open_ids)
        print(f"random order: {random_found} noisy items in the first {REVIEWS} reviews "
              f"(expected {expected:.1f}) among {len(open_ids)} open items")
        outcome = covered
        for order in (QueueOrder.disagreement, QueueOrder.lowest_margin):
            copy = work / f"{order.value}.db"
            shutil.copy(base, copy)
            order_engine = make_engine(f"sqlite:///{copy}")
            project = set_queue_order(order_engine, lead, project_id, order)
            started = time.perf_counter()
            served = first_in_queue_order(order_engine, project, REVIEWS)
            found = sum(noisy_of[i] for i in served)
            ratio = found / max(random_found, 1)
            met = ratio >= TARGET
            outcome = outcome and met
            print(f"{order.value} order: {found} noisy items in the first {len(served)} reviews "
                  f"({time.perf_counter() - started:.1f} s to rank them); {ratio:.2f}x random "
                  f"({found / expected:.2f}x its expectation): {'MET' if met else 'MISSED'} (target >= {TARGET:g}x)")
            order_engine.dispose()
        return 0 if outcome else 1
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
