"""Each source against the experts' final labels (issue 12, item 2): accuracy with a Wilson 95%
interval, Cohen's kappa with a seeded bootstrap interval, and accuracy per expert label; plus the
project's source settings and which items were kept blind for agreement.

Only items with an expert label (curation.sources.expert_labels: adjudication, else the persons'
majority) enter; a source's own vote never makes an item's expert label.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
from sqlalchemy import case, func, select
from sqlalchemy.engine import Engine
from sqlmodel import Session

from curation.access import audit
from curation.access.roles import LEADS, require_role
from curation.agreement.coefficients import cohen_kappa
from curation.agreement.statistics import bootstrap_interval
from curation.db import read_session
from curation.errors import InputError
from curation.lookup import get_or_not_found
from curation.models import (
    AuditStatus,
    Example,
    ExampleStatus,
    LabelAudit,
    Project,
    Suggestion,
    SuggestionDisplay,
    User,
    utcnow,
)
from curation.retry import run_write
from curation.review.audits import wilson
from curation.review.sources import blind_by_hash, expert_labels, list_sources, source_labels


@dataclass
class LabelAccuracy:
    label: str  # the experts' label
    n: int
    agree: int
    accuracy: float | None
    low: float
    high: float


@dataclass
class SourceAccuracy:
    source: str
    n: int  # items with both the source's label and an expert label
    agree: int
    accuracy: float | None
    low: float
    high: float
    kappa: float | None
    kappa_low: float | None
    kappa_high: float | None
    per_label: list[LabelAccuracy] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def summary(self) -> str:
        if self.accuracy is None:
            return f"{self.source}: no item has both its label and an expert label yet"
        kappa = "" if self.kappa is None else f"; Cohen's kappa {self.kappa:.2f}"
        if self.kappa is not None and self.kappa_low is not None and self.kappa_high is not None:
            kappa += f" [{self.kappa_low:.2f}, {self.kappa_high:.2f}]"
        return (f"{self.source} agrees with experts on {self.accuracy:.0%} [{self.low:.0%}, {self.high:.0%}] "
                f"of {self.n} items{kappa}")


def compare(pairs: list[tuple[str, str]], source: str, n_resamples: int = 1000, seed: int = 0) -> SourceAccuracy:
    """Accuracy and kappa of (source label, expert label) pairs. Kappa is None when undefined (one
    category only); its interval None when fewer than two items."""
    n = len(pairs)
    agree = sum(1 for given, expert in pairs if given == expert)
    low, high = wilson(agree, n)
    kappa = kappa_low = kappa_high = None
    if n:
        given = np.array([p[0] for p in pairs], dtype=object)
        expert = np.array([p[1] for p in pairs], dtype=object)
        value = cohen_kappa(given, expert)
        if np.isfinite(value):
            kappa = float(value)
            if n >= 2:
                lo, hi = bootstrap_interval(np.stack([given, expert], axis=1), "cohen_kappa",
                                            n_resamples=n_resamples, seed=seed)
                kappa_low = float(lo) if np.isfinite(lo) else None
                kappa_high = float(hi) if np.isfinite(hi) else None
    per_label = []
    for label in sorted({expert for _, expert in pairs}):
        items = [(g, e) for g, e in pairs if e == label]
        hits = sum(1 for g, e in items if g == e)
        lo, hi = wilson(hits, len(items))
        per_label.append(LabelAccuracy(label, len(items), hits, hits / len(items), lo, hi))
    return SourceAccuracy(source=source, n=n, agree=agree, accuracy=agree / n if n else None, low=low, high=high,
                          kappa=kappa, kappa_low=kappa_low, kappa_high=kappa_high, per_label=per_label)


def source_report(engine: Engine, actor: User, project_id: int, n_resamples: int = 1000,
                  seed: int = 0) -> list[SourceAccuracy]:
    """Every source of the project against the experts' labels (leads)."""
    require_role(actor, *LEADS)
    with read_session(engine) as session:
        get_or_not_found(session, Project, project_id)
        sources = list_sources(session, project_id)
        experts = expert_labels(session, project_id) if sources else {}  # one pass over every annotation
        out = []
        for source in sources:
            given = source_labels(session, project_id, source)
            pairs = [(given[i], experts[i]) for i in sorted(given) if i in experts]
            out.append(compare(pairs, source, n_resamples, seed))
    return out


@dataclass
class BlindSummary:
    fraction: float
    blind_items: int  # of the project's items, not excluded
    items: int
    blind_external_ids: list[str]  # the first ones, for the page


def blind_summary(engine: Engine, actor: User, project_id: int, show: int = 50) -> BlindSummary:
    """Which items were kept blind for agreement (never shown suggestions or source votes)."""
    require_role(actor, *LEADS)
    with read_session(engine) as session:
        project = get_or_not_found(session, Project, project_id)
        rows = session.execute(select(Example.external_id, Example.audit_id).where(
            Example.project_id == project_id, Example.status != ExampleStatus.excluded.value)
            .order_by(Example.id)).all()
    blind = [e for e, audit_id in rows
             if audit_id is not None or blind_by_hash(project_id, e, float(project.blind_fraction))]
    return BlindSummary(fraction=float(project.blind_fraction), blind_items=len(blind), items=len(rows),
                        blind_external_ids=blind[:show])


def sources_version(engine: Engine, project_id: int) -> str:
    """A cheap fingerprint of what `source_report` and `blind_summary` read beyond the agreement data
    (`curation.agreement.loading.data_version`): suggestions and label audits. A cache keyed on both
    strings is never stale."""
    with read_session(engine) as session:
        suggestions = session.execute(select(func.count(Suggestion.id), func.max(Suggestion.id)).where(
            Suggestion.project_id == project_id)).one()
        audits = session.execute(select(  # closing an audit makes its items no longer blind
            func.count(LabelAudit.id), func.max(LabelAudit.id),
            func.sum(case((LabelAudit.status == AuditStatus.open.value, 1), else_=0))).where(
            LabelAudit.project_id == project_id)).one()
    return "|".join(str(part) for part in (*suggestions, *audits))


def set_source_settings(engine: Engine, actor: User, project_id: int, *,
                        suggestion_display: SuggestionDisplay | str | None = None,
                        source_votes_count: bool | None = None, blind_fraction: float | None = None,
                        max_source_error: float | None = None) -> Project:
    """Change the project's source settings (leads). Audited with before and after."""
    require_role(actor, *LEADS)
    if blind_fraction is not None and not 0 <= blind_fraction <= 1:
        raise InputError("the blind share must be between 0 and 1", field="blind_fraction")
    if max_source_error is not None and not 0 < max_source_error < 1:
        raise InputError("the error threshold must be between 0 and 1", field="max_source_error")

    def work(session: Session) -> Project:
        project = get_or_not_found(session, Project, project_id)
        names = ("suggestion_display", "source_votes_count", "blind_fraction", "max_source_error")
        before = {name: getattr(project, name) for name in names}
        if suggestion_display is not None:
            project.suggestion_display = SuggestionDisplay(suggestion_display)
        if source_votes_count is not None:
            project.source_votes_count = bool(source_votes_count)
        if blind_fraction is not None:
            project.blind_fraction = float(blind_fraction)
        if max_source_error is not None:
            project.max_source_error = float(max_source_error)
        project.updated_at = utcnow()
        session.add(project)
        after = {name: getattr(project, name) for name in names}
        audit.record(session, actor, "project.source_settings", "project", project.id, project_id=project.id,
                     before={k: str(v) for k, v in before.items()}, after={k: str(v) for k, v in after.items()})
        return project

    return run_write(engine, work)
