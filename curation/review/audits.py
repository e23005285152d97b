"""A sampled audit of one source's label accuracy (issue 12, item 3), and the interval arithmetic it
rests on.

A lead starts an audit of N items carrying the source's labels, drawn at random stratified by the
source's label (proportional allocation, largest remainder, seeded). The items go through blind
expert review: the queue serves them first, source votes never fill their k slots and no suggestion
or source vote is shown (curation.sources.is_blind); disputes go to adjudication as usual. The
result is the share of reviewed items whose expert label differs from the source's, with an exact
Clopper-Pearson 95% interval, overall and per source label.

The sample is self-weighting up to rounding (proportional allocation), so the overall estimate is
the plain share of errors among reviewed items.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
from sqlalchemy import func, select, update
from sqlalchemy.engine import Engine
from sqlmodel import Session

from curation.access import audit
from curation.access.roles import LEADS, require_role
from curation.db import read_session
from curation.errors import Conflict, InputError, NotFound
from curation.lookup import get_or_not_found
from curation.models import AuditStatus, Example, ExampleStatus, LabelAudit, Project, User, utcnow
from curation.retry import run_write
from curation.review.annotate import resolve_example
from curation.review.sources import expert_labels, list_sources, source_labels

CONFIDENCE = 0.95


# --------------------------------------------------------------------------- intervals


def clopper_pearson(errors: int, n: int, confidence: float = CONFIDENCE) -> tuple[float, float]:
    """Exact (Clopper-Pearson) two-sided interval of a binomial proportion errors/n.

    Edge cases: errors = 0 gives lower 0; errors = n gives upper 1; n = 0 gives (0, 1) (nothing known).
    """
    if n < 0 or not 0 <= errors <= n:
        raise ValueError(f"need 0 <= errors <= n, got errors={errors}, n={n}")
    if n == 0:
        return 0.0, 1.0
    from scipy.stats import beta  # scipy.stats costs a second at start-up: loaded when an interval is needed

    alpha = 1 - confidence
    low = 0.0 if errors == 0 else float(beta.ppf(alpha / 2, errors, n - errors + 1))
    high = 1.0 if errors == n else float(beta.ppf(1 - alpha / 2, errors + 1, n - errors))
    return low, high


def _z(confidence: float) -> float:
    """The two-sided standard normal quantile of `confidence` (1.96 for 0.95)."""
    from scipy.stats import norm  # lazy, as in clopper_pearson

    return float(norm.ppf(1 - (1 - confidence) / 2))


def wilson(successes: int, n: int, confidence: float = CONFIDENCE) -> tuple[float, float]:
    """Wilson score interval of successes/n; (0, 1) when n = 0."""
    if n < 0 or not 0 <= successes <= n:
        raise ValueError(f"need 0 <= successes <= n, got successes={successes}, n={n}")
    if n == 0:
        return 0.0, 1.0
    z = _z(confidence)
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def sample_size(expected_rate: float, half_width: float, confidence: float = CONFIDENCE,
                population: int | None = None, max_n: int = 1_000_000) -> int:
    """Smallest n whose exact Clopper-Pearson interval around round(expected_rate * n) errors is at
    most 2 * half_width wide; capped at `population` (auditing every item leaves no sampling error).

    Raises ValueError for a rate outside [0, 1] or a half width outside (0, 0.5].
    """
    if not 0 <= expected_rate <= 1:
        raise ValueError("the expected error rate must be between 0 and 1")
    if not 0 < half_width <= 0.5:
        raise ValueError("the half width must be in (0, 0.5]")

    def wide_enough(n: int) -> bool:
        low, high = clopper_pearson(min(n, round(expected_rate * n)), n, confidence)
        return high - low <= 2 * half_width

    # The normal approximation is a good first guess; the exact width is not monotone in n by a hair
    # (rounding of the error count), so walk up from a bit below it.
    z = _z(confidence)
    guess = max(1, int(z * z * max(expected_rate * (1 - expected_rate), 1e-4) / half_width**2 * 0.8))
    n = guess
    while n > 1 and wide_enough(n - 1):
        n = max(1, n // 2) if wide_enough(max(1, n // 2)) else n - 1
    while not wide_enough(n):
        n += max(1, n // 200)
        if n > max_n:
            break
    while n > 1 and wide_enough(n - 1):
        n -= 1
    return min(n, population) if population is not None else n


def allocate(population: dict[str, int], size: int) -> dict[str, int]:
    """Proportional allocation of `size` over strata: largest remainders (ties by label), never more
    than a stratum holds; then every non-empty stratum gets at least one item while size allows, taken
    from the largest allocations."""
    total = sum(population.values())
    if size >= total:
        return dict(population)
    labels = sorted(population)
    quotas = {label: size * population[label] / total for label in labels}
    out = {label: min(population[label], int(quotas[label])) for label in labels}
    order = sorted(labels, key=lambda label: (-(quotas[label] - int(quotas[label])), label))
    while sum(out.values()) < size:
        grew = [label for label in order if out[label] < population[label]]
        for label in grew[: size - sum(out.values())]:
            out[label] += 1
    empty = [label for label in labels if out[label] == 0 and population[label] > 0]
    for label in empty:
        largest = max(labels, key=lambda name: (out[name], name))
        if out[largest] <= 1:
            break  # fewer items than strata: the smallest strata go without
        out[largest] -= 1
        out[label] = 1
    return out


# --------------------------------------------------------------------------- audits


@dataclass
class StratumResult:
    label: str  # the source's label
    population: int
    sampled: int
    reviewed: int
    errors: int
    rate: float | None
    low: float
    high: float


@dataclass
class AuditResult:
    audit_id: int
    project_id: int
    source: str
    status: str
    size: int
    seed: int
    reviewed: int
    errors: int
    rate: float | None  # None until an item is reviewed
    low: float
    high: float
    per_label: list[StratumResult] = field(default_factory=list)
    confusions: dict[str, int] = field(default_factory=dict)  # "source -> expert": count, errors only

    @property
    def complete(self) -> bool:
        return self.reviewed >= self.size

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "complete": self.complete}

    def summary(self) -> str:
        if self.rate is None:
            return (f"audit #{self.audit_id} of {self.source}: 0 of {self.size} items reviewed; "
                    "no estimate yet")
        return (f"audit #{self.audit_id} of {self.source}: {self.reviewed} of {self.size} items reviewed; "
                f"error rate {self.rate:.1%} [{self.low:.1%}, {self.high:.1%}] (95% Clopper-Pearson)")


def start_audit(engine: Engine, actor: User, project_id: int, source: str, size: int, seed: int = 0) -> LabelAudit:
    """Draw `size` items carrying `source`'s labels (stratified by that label, seeded) into a new audit
    for blind expert review. Items already in an open audit are not drawn. Items the source's vote
    alone had settled are reopened (their status is resolved again without source votes). Audited."""
    require_role(actor, *LEADS)
    if not 1 <= size <= 100_000:
        raise InputError("an audit takes between 1 and 100,000 items", field="size")

    def work(session: Session) -> LabelAudit:
        project = _project(session, project_id)
        labelled = source_labels(session, project_id, source)
        if not labelled:
            raise NotFound(f"No labels of source '{source}' in project '{project.name}'.")
        busy = set(session.execute(select(Example.id).where(
            Example.project_id == project_id, Example.audit_id.is_not(None))).scalars())
        excluded = set(session.execute(select(Example.id).where(
            Example.project_id == project_id, Example.status == ExampleStatus.excluded.value)).scalars())
        strata: dict[str, list[int]] = defaultdict(list)
        for example_id, label in sorted(labelled.items()):
            if example_id not in busy and example_id not in excluded:
                strata[label].append(example_id)
        if not strata:
            raise Conflict(f"Every item of source '{source}' is already in an open audit or excluded.")
        quota = allocate({label: len(ids) for label, ids in strata.items()}, size)
        rng = np.random.default_rng(seed)
        chosen: list[int] = []
        for label in sorted(strata):
            ids = strata[label]
            picks = rng.choice(len(ids), size=quota[label], replace=False) if quota[label] else []
            chosen.extend(ids[int(i)] for i in picks)
        record = LabelAudit(project_id=project_id, source=source, size=len(chosen), seed=seed,
                            strata={label: {"population": len(strata[label]), "sampled": quota[label]}
                                    for label in sorted(strata)},
                            created_by_id=actor.id)
        session.add(record)
        session.flush()
        for start in range(0, len(chosen), 1000):
            session.execute(update(Example).where(Example.id.in_(chosen[start:start + 1000]))
                            .values(audit_id=record.id, updated_at=utcnow()))
        session.flush()
        _reopen(session, project, chosen)
        audit.record(session, actor, "label_audit.start", "label_audit", record.id, project_id=project_id,
                     after={"source": source, "size": len(chosen), "seed": seed, "strata": record.strata})
        return record

    return run_write(engine, work)


def _reopen(session: Session, project: Project, example_ids: list[int]) -> None:
    """Resolve the drawn items again now that source votes no longer count for them."""

    for example_id in example_ids:
        example = session.get(Example, example_id)
        if example is not None:
            session.refresh(example)
            resolve_example(session, project, example)


def close_audit(engine: Engine, actor: User, audit_id: int) -> LabelAudit:
    """Close an audit: its items leave blind review (the estimate stays readable). Audited."""
    require_role(actor, *LEADS)

    def work(session: Session) -> LabelAudit:
        record = get_or_not_found(session, LabelAudit, audit_id)
        if record.status == AuditStatus.closed:
            return record
        record.status = AuditStatus.closed
        # The items leave blind review; the audit keeps their ids so its estimate stays readable.
        items = audit_items(session, audit_id)
        record.strata = {**record.strata, "_items": items}
        session.add(record)
        session.execute(update(Example).where(Example.audit_id == audit_id).values(audit_id=None))
        session.flush()
        _reopen(session, _project(session, record.project_id), items)  # source votes count again where they do
        audit.record(session, actor, "label_audit.close", "label_audit", audit_id, project_id=record.project_id,
                     after={"status": "closed"})
        return record

    return run_write(engine, work)


def audit_items(session: Session, audit_id: int) -> list[int]:
    return list(session.execute(select(Example.id).where(Example.audit_id == audit_id).order_by(Example.id))
                .scalars())


def audit_result(engine: Engine, actor: User, audit_id: int) -> AuditResult:
    """The audit's estimate so far: reviewed items are those with an expert label (adjudication, or
    the persons' majority); an error is an expert label different from the source's."""
    require_role(actor, *LEADS)
    with read_session(engine) as session:
        record = get_or_not_found(session, LabelAudit, audit_id)
        return _result(session, record)


def _result(session: Session, record: LabelAudit) -> AuditResult:
    ids = audit_items(session, record.id or 0) if record.status == AuditStatus.open else []
    if record.status == AuditStatus.closed:
        ids = [int(i) for i in (record.strata.get("_items") or [])]
    given = source_labels(session, record.project_id, record.source)
    experts = expert_labels(session, record.project_id, ids)
    reviewed: Counter[str] = Counter()
    wrong: Counter[str] = Counter()
    confusions: Counter[str] = Counter()
    for example_id in ids:
        if example_id in experts and example_id in given:
            label = given[example_id]
            reviewed[label] += 1
            if experts[example_id] != label:
                wrong[label] += 1
                confusions[f"{label} -> {experts[example_id]}"] += 1
    n, errors = sum(reviewed.values()), sum(wrong.values())
    low, high = clopper_pearson(errors, n)
    per_label = []
    for label, info in sorted((k, v) for k, v in record.strata.items() if not k.startswith("_")):
        r, e = reviewed[label], wrong[label]
        lo, hi = clopper_pearson(e, r)
        per_label.append(StratumResult(label=label, population=int(info["population"]), sampled=int(info["sampled"]),
                                       reviewed=r, errors=e, rate=e / r if r else None, low=lo, high=hi))
    return AuditResult(audit_id=record.id or 0, project_id=record.project_id, source=record.source,
                       status=AuditStatus(record.status).value, size=record.size, seed=record.seed, reviewed=n,
                       errors=errors, rate=errors / n if n else None, low=low, high=high, per_label=per_label,
                       confusions=dict(confusions.most_common()))


def list_audits(engine: Engine, actor: User, project_id: int, source: str | None = None) -> list[AuditResult]:
    """The project's audits (of one source when given), newest first, with their estimates."""
    require_role(actor, *LEADS)
    with read_session(engine) as session:
        query = select(LabelAudit).where(LabelAudit.project_id == project_id)
        if source is not None:
            query = query.where(LabelAudit.source == source)
        return [_result(session, record) for record in session.execute(query.order_by(LabelAudit.id.desc())).scalars()]


def latest_estimates(session: Session, project_id: int) -> dict[str, AuditResult]:
    """source -> the newest audit with at least one reviewed item (for the version checklist)."""
    out: dict[str, AuditResult] = {}
    for record in session.execute(select(LabelAudit).where(LabelAudit.project_id == project_id)
                                  .order_by(LabelAudit.id.desc())).scalars():
        if record.source in out:
            continue
        result = _result(session, record)
        if result.reviewed:
            out[record.source] = result
    return out


def source_label_measures(engine: Engine, project: Project, example_ids: list[int]) -> dict[str, dict[str, Any]]:
    """For the version checklist: source -> {unreviewed, audit_id, reviewed, rate, low, high}, where
    `unreviewed` counts the given items carrying the source's label and no expert label, and the
    rest is the newest audit of that source with reviewed items (rate None without one)."""
    included = set(example_ids)
    out: dict[str, dict[str, Any]] = {}
    with read_session(engine) as session:
        experts = expert_labels(session, project.id or 0, included)
        estimates = latest_estimates(session, project.id or 0)

        for source in list_sources(session, project.id or 0):
            given = source_labels(session, project.id or 0, source)
            unreviewed = sum(1 for i in given if i in included and i not in experts)
            if not unreviewed:
                continue
            estimate = estimates.get(source)
            out[source] = {"unreviewed": unreviewed, "audit_id": estimate.audit_id if estimate else None,
                           "reviewed": estimate.reviewed if estimate else 0,
                           "rate": estimate.rate if estimate else None,
                           "low": estimate.low if estimate else None, "high": estimate.high if estimate else None}
    return out


def _project(session: Session, project_id: int) -> Project:
    project = get_or_not_found(session, Project, project_id)
    return project


def count_open_audits(engine: Engine, project_id: int) -> int:
    with read_session(engine) as session:
        return int(session.execute(select(func.count()).select_from(LabelAudit).where(
            LabelAudit.project_id == project_id, LabelAudit.status == AuditStatus.open.value)).scalar_one())
