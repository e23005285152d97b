"""Test sets: a project's frozen, expert-labelled yardstick, separate from every training version.

- A lead creates a test set and fills it by importing a file as test items (`mark_import`), drawing a
  seeded stratified sample from the project (`sample_items`: near-duplicate groups go whole), or
  picking items (`add_items`). Test items are ordinary examples with `Example.test_set_id` set: the
  review queue serves them and adjudication settles them like any other item (blind, k-way). An item
  that joins the test set without the project's k reviews (e.g. a label imported in one column) is
  sent back to review: its imported label is kept in `meta["label_before_test"]`, not used.
- `approve_test_set` snapshots the labelled test items into an immutable `TestSetVersion` with a
  SHA-256 over the canonical records (the same canonical form as dataset versions, split "test");
  `verify_test_set_version` recomputes it. Later changes make a new version; an unchanged set is
  refused ("no change since version N").
- Items already trained on (in an approved dataset version) cannot become test items.
- `test_texts(engine, project_id)`: every text the project uses as a test item (current test items and
  every approved test-set version), for the no-leakage check of dataset versions (curation.versions).

Every write is audited, leads and admins only.
"""

from __future__ import annotations

import random
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.engine import Engine
from sqlmodel import Session

from curation.access import audit
from curation.access.roles import LEADS, require_role
from curation.db import read_session
from curation.embeddings.dedup import (
    DEFAULT_THRESHOLD,
    components,
    exact_duplicate_pairs,
    near_duplicate_pairs,
)
from curation.embeddings.encode import embed_texts
from curation.errors import Conflict, InputError, NotFound
from curation.lookup import get_or_not_found, read_or_not_found
from curation.models import (
    Adjudication,
    Annotation,
    DatasetVersion,
    DatasetVersionItem,
    Example,
    ExampleStatus,
    Project,
    TaskType,
    TestSet,
    TestSetItem,
    TestSetVersion,
    User,
    VersionStatus,
    utcnow,
)
from curation.retry import run_write
from curation.versions.hashing import item_hash, version_hash
from curation.versions.records import VerifyResult

TEST_SPLIT = "test"


@dataclass(frozen=True)
class TestSetStatus:
    """Where a test set stands: its items by review status and its latest approved version."""

    __test__ = False
    test_set: TestSet
    items: int
    by_status: dict[str, int]
    ready: int  # labelled items (what an approval would freeze)
    waiting: int  # items still in review or disputed
    latest: TestSetVersion | None


# --------------------------------------------------------------------------- reading


def get_test_set(engine: Engine, test_set_id: int) -> TestSet:
    return read_or_not_found(engine, TestSet, test_set_id)


def list_test_sets(engine: Engine, project_id: int) -> list[TestSet]:
    with read_session(engine) as session:
        return list(session.execute(select(TestSet).where(TestSet.project_id == project_id)
                                    .order_by(TestSet.id)).scalars())


def list_test_set_versions(engine: Engine, project_id: int | None = None,
                           test_set_id: int | None = None) -> list[TestSetVersion]:
    """Approved test-set versions, newest first."""
    query = select(TestSetVersion).order_by(TestSetVersion.id.desc())
    if project_id is not None:
        query = query.where(TestSetVersion.project_id == project_id)
    if test_set_id is not None:
        query = query.where(TestSetVersion.test_set_id == test_set_id)
    with read_session(engine) as session:
        return list(session.execute(query).scalars())


def get_test_set_version(engine: Engine, version_id: int) -> TestSetVersion:
    return read_or_not_found(engine, TestSetVersion, version_id)


def latest_test_set_version(engine: Engine, project_id: int) -> TestSetVersion | None:
    versions = list_test_set_versions(engine, project_id)
    return versions[0] if versions else None


def test_set_version_items(engine: Engine, version_id: int) -> list[TestSetItem]:
    get_test_set_version(engine, version_id)
    with read_session(engine) as session:
        items = list(session.execute(select(TestSetItem).where(TestSetItem.test_set_version_id == version_id)
                                     ).scalars())
    return sorted(items, key=lambda i: i.external_id)


def test_set_records(engine: Engine, version_id: int) -> list[dict[str, Any]]:
    """The version's items as rows for scoring: external_id, text/messages, label, response."""
    return [{"external_id": i.external_id, "text": i.text, "prompt": i.prompt, "response": i.response,
             "messages": i.messages, "label": i.label} for i in test_set_version_items(engine, version_id)]


def test_items(engine: Engine, test_set_id: int) -> list[Example]:
    with read_session(engine) as session:
        return list(session.execute(select(Example).where(Example.test_set_id == test_set_id)
                                    .order_by(Example.id)).scalars())


def test_set_status(engine: Engine, test_set_id: int) -> TestSetStatus:
    test_set = get_test_set(engine, test_set_id)
    with read_session(engine) as session:
        rows = session.execute(select(Example.status, func.count()).where(Example.test_set_id == test_set_id)
                               .group_by(Example.status)).all()
    by_status = {str(status): int(n) for status, n in rows}
    versions = list_test_set_versions(engine, test_set_id=test_set_id)
    waiting = sum(n for s, n in by_status.items() if s in ("new", "in_review", "disputed"))
    return TestSetStatus(test_set, sum(by_status.values()), by_status, by_status.get("labelled", 0), waiting,
                         versions[0] if versions else None)


def _embed_text(text: str | None, prompt: str | None, response: str | None,
                messages: list[dict[str, Any]] | None) -> str:
    """The same string dataset versions compare (curation.versions._Draft.embed_text)."""
    if prompt is not None:
        return f"{prompt}\n{response or ''}"
    if messages:
        return "\n".join(f"{m.get('role', '')}: {m.get('content', '')}" for m in messages)
    return text or ""


def test_item_ids(engine: Engine, project_id: int) -> set[int]:
    """Ids of the project's current test items."""
    with read_session(engine) as session:
        return set(session.execute(select(Example.id).where(Example.project_id == project_id,
                                                            Example.test_set_id.is_not(None))).scalars())


def test_texts(engine: Engine, project_id: int) -> list[tuple[str, str]]:
    """(external id, text) of every test item of the project: current test items and the items of
    every approved test-set version (a test item removed later still must not be trained on)."""
    with read_session(engine) as session:
        current = session.execute(select(Example.external_id, Example.text, Example.prompt, Example.response,
                                         Example.messages).where(Example.project_id == project_id,
                                                                 Example.test_set_id.is_not(None))).all()
        frozen = session.execute(select(TestSetItem.external_id, TestSetItem.text, TestSetItem.prompt,
                                        TestSetItem.response, TestSetItem.messages)
                                 .join(TestSetVersion, TestSetVersion.id == TestSetItem.test_set_version_id)
                                 .where(TestSetVersion.project_id == project_id)).all()
    out: dict[tuple[str, str], None] = {}
    for external_id, text, prompt, response, messages in [*current, *frozen]:
        out[(external_id, _embed_text(text, prompt, response, messages))] = None
    return list(out)


# --------------------------------------------------------------------------- building


def create_test_set(engine: Engine, actor: User, project_id: int, name: str = "test set",
                    description: str = "") -> TestSet:
    require_role(actor, *LEADS)
    name = (name or "").strip()
    if not name:
        raise InputError("a test set needs a name", field="name")

    def work(session: Session) -> TestSet:
        get_or_not_found(session, Project, project_id)
        if session.execute(select(TestSet.id).where(TestSet.project_id == project_id, TestSet.name == name)).first():
            raise Conflict(f"The project already has a test set named '{name}'.")
        test_set = TestSet(project_id=project_id, name=name, description=description, created_by_id=actor.id)
        session.add(test_set)
        session.flush()
        audit.record(session, actor, "testset.create", "test_set", test_set.id, project_id=project_id,
                     after={"name": name})
        return test_set

    return run_write(engine, work)


def _trained_example_ids(session: Session, project_id: int) -> set[int]:
    """Examples in an approved dataset version of the project: trained on, so never test items."""
    return set(session.execute(select(DatasetVersionItem.example_id).join(
        DatasetVersion, DatasetVersion.id == DatasetVersionItem.version_id).where(
        DatasetVersion.project_id == project_id, DatasetVersion.status == VersionStatus.approved.value,
        DatasetVersionItem.example_id.is_not(None))).scalars())


def _to_review(session: Session, project: Project, example: Example) -> None:
    """An item without the project's k reviews (or a lead's decision) goes back to the review queue:
    a label that came in one import column is kept aside, not used as the expert label."""
    n_annotations = session.execute(select(func.count()).select_from(Annotation).where(
        Annotation.example_id == example.id)).scalar_one()
    adjudicated = session.execute(select(Adjudication.id).where(Adjudication.example_id == example.id)).first()
    if adjudicated or n_annotations >= project.overlap_k or ExampleStatus(example.status) is ExampleStatus.excluded:
        return
    if example.final_label is not None or example.final_response is not None:
        meta = dict(example.meta or {})
        meta["label_before_test"] = example.final_label if example.final_label is not None else example.final_response
        example.meta = meta
    example.final_label = None
    example.final_response = None
    example.status = ExampleStatus.in_review if n_annotations else ExampleStatus.new


def add_items_by_external_id(engine: Engine, actor: User, test_set_id: int, external_ids: Sequence[str]) -> int:
    """`add_items` for the ids people see (the project's external ids, e.g. typed on the Test set page);
    an id the project does not have is refused by name, and nothing is added."""
    require_role(actor, *LEADS)
    wanted = list(dict.fromkeys(i.strip() for i in external_ids if i and i.strip()))
    if not wanted:
        raise InputError("no item ids given")
    with read_session(engine) as session:
        test_set = get_or_not_found(session, TestSet, test_set_id)
        found = dict(session.execute(select(Example.external_id, Example.id).where(  # type: ignore[arg-type]
            Example.project_id == test_set.project_id, Example.external_id.in_(wanted))).tuples().all())  # type: ignore[attr-defined]
    missing = [i for i in wanted if i not in found]
    if missing:
        raise NotFound(f"No items with these ids: {', '.join(missing[:10])}")
    return add_items(engine, actor, test_set_id, [found[i] for i in wanted])


def add_items(engine: Engine, actor: User, test_set_id: int, example_ids: Sequence[int], *,
              how: str = "picked") -> int:
    """Put these examples into the test set (one transaction); returns how many joined. Refuses
    examples of another project, in another test set, or already trained on."""
    require_role(actor, *LEADS)
    wanted = sorted({int(i) for i in example_ids})
    if not wanted:
        raise InputError("no items chosen for the test set")

    def work(session: Session) -> int:
        test_set = get_or_not_found(session, TestSet, test_set_id)
        project = session.get(Project, test_set.project_id)
        assert project is not None
        examples = list(session.execute(select(Example).where(Example.id.in_(wanted))).scalars())
        found = {e.id for e in examples}
        missing = [i for i in wanted if i not in found]
        if missing:
            raise NotFound(f"No examples with ids {missing[:10]}.")
        other = [e.external_id for e in examples if e.project_id != test_set.project_id]
        if other:
            raise InputError(f"items of another project: {', '.join(other[:10])}")
        elsewhere = [e.external_id for e in examples if e.test_set_id not in (None, test_set_id)]
        if elsewhere:
            raise Conflict(f"items already in another test set: {', '.join(elsewhere[:10])}")
        trained = _trained_example_ids(session, test_set.project_id)
        used = [e.external_id for e in examples if e.id in trained]
        if used:
            raise Conflict(f"{len(used)} items are in an approved dataset version (already trained on) and cannot "
                           f"be test items: {', '.join(used[:10])}")
        added = 0
        for example in examples:
            if example.test_set_id == test_set_id:
                continue
            example.test_set_id = test_set_id
            _to_review(session, project, example)
            example.updated_at = utcnow()
            session.add(example)
            added += 1
        audit.record(session, actor, "testset.add", "test_set", test_set_id, project_id=test_set.project_id,
                     after={"how": how, "added": added, "example_ids": wanted[:200]})
        return added

    return run_write(engine, work)


def remove_items(engine: Engine, actor: User, test_set_id: int, example_ids: Sequence[int]) -> int:
    """Take items out of the test set (approved versions keep them: they stay out of training)."""
    require_role(actor, *LEADS)
    wanted = sorted({int(i) for i in example_ids})

    def work(session: Session) -> int:
        test_set = get_or_not_found(session, TestSet, test_set_id)
        result = session.execute(update(Example).where(Example.test_set_id == test_set_id, Example.id.in_(wanted))
                                 .values(test_set_id=None, updated_at=utcnow()))
        audit.record(session, actor, "testset.remove", "test_set", test_set_id, project_id=test_set.project_id,
                     after={"removed": result.rowcount, "example_ids": wanted[:200]})
        return int(result.rowcount or 0)

    return run_write(engine, work)


def mark_import(engine: Engine, actor: User, test_set_id: int, import_id: int) -> int:
    """Every example an import added becomes a test item (import a file, then call this)."""
    with read_session(engine) as session:
        ids = list(session.execute(select(Example.id).where(Example.import_id == import_id)).scalars())
    if not ids:
        raise InputError(f"import {import_id} added no examples")
    return add_items(engine, actor, test_set_id, ids, how=f"import {import_id}")


def _groups(texts: list[str], use_embeddings: bool, threshold: float) -> tuple[list[list[int]], str]:
    """Exact and near-duplicate groups (indices), with how they were found."""
    import numpy as np


    parts = [exact_duplicate_pairs(texts)]
    how = "normalised exact text"
    if use_embeddings and texts:
        try:

            parts.append(near_duplicate_pairs(embed_texts(texts).vectors, threshold))
            how = f"normalised exact text + cosine ≥ {threshold:g}"
        except Exception as error:  # noqa: BLE001 - no embedding model: exact groups only, said
            how = f"normalised exact text (embeddings unavailable: {type(error).__name__})"
    pairs = np.concatenate([np.asarray(p, dtype=np.int64).reshape(-1, 2) for p in parts])
    grouped = components(len(texts), pairs)  # groups of two or more; every other item is its own group
    inside = {i for group in grouped for i in group}
    return grouped + [[i] for i in range(len(texts)) if i not in inside], how


def sample_items(engine: Engine, actor: User, test_set_id: int, size: int, *, seed: int = 0,
                 labelled_only: bool = False, use_embeddings: bool = True,
                 threshold: float | None = None, among: Sequence[int] | None = None) -> dict[str, Any]:
    """Draw a seeded sample of about `size` items, stratified by final label (unlabelled items form
    their own stratum), from the project's items that are not excluded, not test items and not
    trained on (and in `among`, when given); near-duplicate groups are taken whole (or not at all), so
    no near-duplicate of a test item stays behind for training. Returns {"added", "by_label",
    "groups_method"}."""

    require_role(actor, *LEADS)
    if size < 1:
        raise InputError("the sample size must be at least 1", field="size")
    threshold = DEFAULT_THRESHOLD if threshold is None else threshold
    test_set = get_test_set(engine, test_set_id)
    with read_session(engine) as session:
        trained = _trained_example_ids(session, test_set.project_id)
        pool = [e for e in session.execute(select(Example).where(
            Example.project_id == test_set.project_id, Example.test_set_id.is_(None),
            Example.status != ExampleStatus.excluded.value).order_by(Example.id)).scalars() if e.id not in trained]
    if labelled_only:
        pool = [e for e in pool if ExampleStatus(e.status) is ExampleStatus.labelled]
    if among is not None:  # a caller's own restriction of the pool (e.g. items with no close neighbour)
        allowed = set(among)
        pool = [e for e in pool if e.id in allowed]
    if not pool:
        raise Conflict("No items to sample from (all excluded, trained on or already test items).")
    texts = [_embed_text(e.text, e.prompt, e.response, e.messages) for e in pool]
    groups, how = _groups(texts, use_embeddings, threshold)
    strata: dict[str, list[list[int]]] = defaultdict(list)
    for group in groups:
        label = Counter(pool[i].final_label or "(unlabelled)" for i in group).most_common(1)[0][0]
        strata[label].append(group)
    size = min(size, len(pool))
    rng = random.Random(seed)
    chosen: list[int] = []
    by_label: dict[str, int] = {}
    for label in sorted(strata):
        stratum = strata[label]
        target = round(size * sum(len(g) for g in stratum) / len(pool))
        order = list(range(len(stratum)))
        rng.shuffle(order)
        taken = 0
        for index in order:
            group = stratum[index]
            if taken >= target:
                break
            if taken + len(group) > target and taken > 0:
                continue
            chosen += [pool[i].id for i in group]
            taken += len(group)
        by_label[label] = taken
    added = add_items(engine, actor, test_set_id, chosen, how=f"stratified sample, seed {seed}") if chosen else 0
    return {"added": added, "by_label": by_label, "groups_method": how}


# --------------------------------------------------------------------------- approval


def _snapshot(example: Example, task_type: TaskType) -> dict[str, Any]:
    if task_type is TaskType.generation:
        response = example.final_response if example.final_response is not None else example.response
        messages = [dict(m) for m in example.messages] if example.messages else None
        if messages and example.final_response is not None and messages[-1].get("role") == "assistant":
            messages[-1]["content"] = example.final_response
        return {"external_id": example.external_id, "split": TEST_SPLIT, "text": None, "prompt": example.prompt,
                "response": response, "messages": messages, "label": None, "source": example.source,
                "licence": example.licence}
    return {"external_id": example.external_id, "split": TEST_SPLIT, "text": example.text, "prompt": None,
            "response": None, "messages": None, "label": example.final_label, "source": example.source,
            "licence": example.licence}


def approve_test_set(engine: Engine, actor: User, test_set_id: int, *, note: str = "") -> TestSetVersion:
    """Freeze the test set's reviewed items into a new immutable version (leads and admins). Refused
    while items wait for review or adjudication, when nothing is labelled, or when nothing changed
    since the latest version. Excluded items are left out. Audited."""
    require_role(actor, *LEADS)

    def work(session: Session) -> TestSetVersion:
        test_set = get_or_not_found(session, TestSet, test_set_id)
        project = session.get(Project, test_set.project_id)
        assert project is not None
        task_type = TaskType(project.task_type)
        examples = list(session.execute(select(Example).where(Example.test_set_id == test_set_id)
                                        .order_by(Example.id)).scalars())
        waiting = [e.external_id for e in examples if ExampleStatus(e.status) in
                   (ExampleStatus.new, ExampleStatus.in_review, ExampleStatus.disputed)]
        if waiting:
            raise Conflict(f"{len(waiting)} test items still wait for review or adjudication "
                           f"({', '.join(waiting[:8])}{' …' if len(waiting) > 8 else ''}): their labels are not "
                           "expert labels yet.")
        ready = [e for e in examples if ExampleStatus(e.status) is ExampleStatus.labelled]
        if not ready:
            raise Conflict("The test set has no reviewed items to approve.")
        records = [_snapshot(e, task_type) for e in ready]
        if task_type is TaskType.classification:
            unknown = [r["external_id"] for r in records if r["label"] not in project.labels]
            if unknown:
                raise Conflict(f"test items with a label outside the project's label set: {', '.join(unknown[:8])}")
        digest = version_hash(records)
        previous = session.execute(select(TestSetVersion).where(TestSetVersion.test_set_id == test_set_id)
                                   .order_by(TestSetVersion.number.desc())).scalars().first()
        if previous is not None and previous.content_hash == digest:
            raise Conflict(f"Nothing changed since test-set version {previous.number} (same SHA-256).")
        labels = Counter(r["label"] for r in records if r["label"] is not None)
        version = TestSetVersion(
            test_set_id=test_set_id, project_id=test_set.project_id,
            number=(previous.number + 1) if previous else 1, content_hash=digest, item_count=len(records),
            task_type=task_type, labels=list(project.labels), approved_by_id=actor.id, approved_at=utcnow(),
            note=(note or "").strip(),
            stats={"labels": dict(sorted(labels.items())), "excluded": sum(
                ExampleStatus(e.status) is ExampleStatus.excluded for e in examples),
                "sources": dict(Counter(r["source"] or "(none)" for r in records))})
        session.add(version)
        session.flush()
        session.add_all([TestSetItem(test_set_version_id=version.id, example_id=e.id, content_hash=item_hash(r), **r)
                         for e, r in zip(ready, records)])
        audit.record(session, actor, "testset.approve", "test_set_version", version.id,
                     project_id=test_set.project_id,
                     after={"test_set": test_set.name, "number": version.number, "items": len(records),
                            "content_hash": digest, "note": version.note})
        return version

    return run_write(engine, work)


def verify_test_set_version(engine: Engine, version_id: int) -> VerifyResult:
    """Recompute the test-set version's SHA-256 from its stored items and compare."""
    version = get_test_set_version(engine, version_id)
    items = test_set_version_items(engine, version_id)
    actual = version_hash(items)
    bad = tuple(item.external_id for item in items if item_hash(item) != item.content_hash)
    name = f"test-set version {version.number} (id {version.id})"
    if actual == version.content_hash and not bad and len(items) == version.item_count:
        return VerifyResult(True, version.content_hash, actual, f"{name}: {len(items)} items, SHA-256 {actual} matches")
    problems = []
    if actual != version.content_hash:
        problems.append(f"stored SHA-256 {version.content_hash} but the items hash to {actual}")
    if bad:
        problems.append(f"{len(bad)} items differ from their own hash: {', '.join(bad[:5])}")
    if len(items) != version.item_count:
        problems.append(f"{version.item_count} items recorded but {len(items)} stored")
    return VerifyResult(False, version.content_hash, actual, f"{name} was changed after approval: "
                        + "; ".join(problems), bad)


def version_label(version: TestSetVersion) -> str:
    return f"test set v{version.number} (id {version.id}, {version.item_count} items, sha256 {version.content_hash[:12]})"
