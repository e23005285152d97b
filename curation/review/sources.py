"""Labels that come from a file or a model rather than from the project's experts (issue 12).

Glossary
- *source*: who gave such labels: a vendor (`vendor-2024`), an earlier labelling round, a model.
- *vote*: a source's label stored as an Annotation by a *source account* (User.kind = source; it can
  never log in or act). Whether it fills one of an item's k slots is the project's
  `source_votes_count`; in a label audit it never does.
- *suggestion*: a source's label (with an optional score) stored in the Suggestion table; never a
  vote, never a final label.
- *blind item*: one whose review never shows suggestions or source votes: the items kept for
  inter-annotator agreement (a fixed, hash-chosen `blind_fraction` of the project) and the items of
  an open label audit.
- *expert label*: the label the project's people settled on, without any source vote: a lead's
  adjudication, else the majority of the persons' annotations.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import ColumnElement, and_, bindparam, func, insert, or_, select, update
from sqlalchemy.engine import Engine
from sqlmodel import Session

from curation.db import read_session
from curation.errors import InputError, PermissionDenied
from curation.models import (
    Adjudication,
    Annotation,
    Example,
    ExampleStatus,
    FinalLabelRule,
    Project,
    Role,
    Suggestion,
    SuggestionDisplay,
    User,
    UserKind,
    utcnow,
)
from curation.review.rules import resolve_status

LABELS_AS = ("final", "vote", "suggestion")
MAX_SOURCE_NAME = 120


def is_source(user: User) -> bool:
    return UserKind(getattr(user, "kind", UserKind.person) or UserKind.person) is UserKind.source


def check_source_name(name: str | None) -> str:
    """The cleaned source name; InputError when it is missing or too long."""
    name = (name or "").strip()
    if not name:
        raise InputError("labels as votes or suggestions need a source name (e.g. vendor-2024)", field="source")
    if len(name) > MAX_SOURCE_NAME:
        raise InputError(f"a source name may have at most {MAX_SOURCE_NAME} characters", field="source")
    return name


def source_account(session: Session, name: str) -> tuple[User, bool]:
    """The source account called `name`, created when missing: (user, created). A person's account
    of that name is refused: its labels would pass for a person's."""
    name = check_source_name(name)
    user = session.execute(select(User).where(User.username == name)).scalars().first()
    if user is not None:
        if not is_source(user):
            raise InputError(f"'{name}' is a person's account, not a source; choose another source name",
                             field="source")
        return user, False
    user = User(username=name, display_name=name, role=Role.annotator, password_hash=None, imported=True,
                kind=UserKind.source)
    session.add(user)
    session.flush()
    return user, True


def counted_condition(project_votes_count: Any, audit_id: Any) -> ColumnElement[bool]:
    """SQL condition on a join of Annotation with User: the annotation fills one of the item's k
    slots. A person's always does; a source's only when the project counts source votes and the
    item is in no label audit (an audit wants k expert judgements)."""
    return or_(User.kind != UserKind.source.value, and_(project_votes_count, audit_id.is_(None)))


# --------------------------------------------------------------------------- blind items


def blind_by_hash(project_id: int, external_id: str, fraction: float) -> bool:
    """Whether an item is among the project's blind agreement items: a stable hash of (project,
    item) below `fraction`. Independent of import order and of every other item."""
    if fraction <= 0:
        return False
    if fraction >= 1:
        return True
    digest = hashlib.sha256(f"{project_id}\x00{external_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 < fraction


def is_blind(project: Project, example: Example) -> bool:
    """Blind items never show suggestions or source votes: agreement items and audit items."""
    return example.audit_id is not None or blind_by_hash(project.id or 0, example.external_id,
                                                         float(project.blind_fraction))


# --------------------------------------------------------------------------- what review shows


@dataclass(frozen=True)
class SuggestionView:
    """One suggestion or source vote as the review screen may show it."""

    source: str
    label: str
    score: float | None
    kind: str  # "suggestion" | "vote"


def visible_suggestions(session: Session, project: Project, example: Example,
                        own_annotation: Annotation | None) -> list[SuggestionView]:
    """What the annotator may see of suggestions and source votes for `example` under the project's
    `suggestion_display`: nothing for blind items or `hidden`; with `after_choice` only once they
    gave their own label; with `beside` always. Highest score first; nothing is pre-selected."""
    display = SuggestionDisplay(project.suggestion_display)
    if display is SuggestionDisplay.hidden or is_blind(project, example):
        return []
    if display is SuggestionDisplay.after_choice and own_annotation is None:
        return []
    rows = [SuggestionView(source, label, score, "suggestion") for source, label, score in session.execute(
        select(Suggestion.source, Suggestion.label, Suggestion.score).where(Suggestion.example_id == example.id))]
    rows += [SuggestionView(name, label, None, "vote") for name, label in session.execute(
        select(User.username, Annotation.label).join(User, User.id == Annotation.annotator_id)
        .where(Annotation.example_id == example.id, User.kind == UserKind.source.value,
               Annotation.label.is_not(None)))]
    return sorted(rows, key=lambda row: (-(row.score if row.score is not None else -1.0), row.source))


# --------------------------------------------------------------------------- expert labels


def expert_labels(session: Session, project_id: int,
                  example_ids: Iterable[int] | None = None) -> dict[int, str]:
    """example id -> the experts' label: the latest adjudication, else the strict majority of the
    persons' annotations (no source votes). Items without one are absent."""
    wanted = set(example_ids) if example_ids is not None else None
    query = (select(Annotation.example_id, Annotation.label).join(User, User.id == Annotation.annotator_id)
             .join(Example, Example.id == Annotation.example_id)
             .where(Example.project_id == project_id, User.kind != UserKind.source.value,
                    Annotation.label.is_not(None)))
    votes: dict[int, Counter[str]] = defaultdict(Counter)
    for example_id, label in session.execute(query):
        if wanted is None or example_id in wanted:
            votes[example_id][label] += 1
    out: dict[int, str] = {}
    for example_id, counts in votes.items():
        (top, n), total = counts.most_common(1)[0], sum(counts.values())
        if n * 2 > total:
            out[example_id] = top
    adjudicated = session.execute(
        select(Adjudication.example_id, Adjudication.final_label).join(Example, Example.id == Adjudication.example_id)
        .where(Example.project_id == project_id).order_by(Adjudication.id))
    for example_id, label in adjudicated:
        if (wanted is None or example_id in wanted) and label is not None:
            out[example_id] = label
    return out


def source_labels(session: Session, project_id: int, source: str) -> dict[int, str]:
    """example id -> the label `source` gave it (its vote, else its suggestion)."""
    out = dict(session.execute(select(Suggestion.example_id, Suggestion.label).where(
        Suggestion.project_id == project_id, Suggestion.source == source)).all())
    out.update(session.execute(
        select(Annotation.example_id, Annotation.label).join(User, User.id == Annotation.annotator_id)
        .join(Example, Example.id == Annotation.example_id)
        .where(Example.project_id == project_id, User.username == source, User.kind == UserKind.source.value,
               Annotation.label.is_not(None))).all())
    return out


def list_sources(session: Session, project_id: int) -> list[str]:
    """Names of the sources with votes or suggestions in the project, sorted."""
    names = set(session.execute(select(Suggestion.source).where(Suggestion.project_id == project_id)
                                .distinct()).scalars())
    # From the (few) source accounts to their annotations (index on annotator, example), not from the
    # project's annotations: a 100k-item project without sources then costs nothing.
    voted = (select(Annotation.id).join(Example, Example.id == Annotation.example_id)
             .where(Annotation.annotator_id == User.id, Example.project_id == project_id).exists())
    names |= set(session.execute(
        select(User.username).where(User.kind == UserKind.source.value, voted)).scalars())
    return sorted(names)


# --------------------------------------------------------------------------- storing at import


@dataclass
class SourceLabelsResult:
    stored: int = 0
    skipped_existing: int = 0
    account_created: bool = False


def store_source_labels(session: Session, project: Project, source: str, labels_as: str,
                        rows: Sequence[tuple[str, str, float | None]], import_id: int | None,
                        now: datetime) -> SourceLabelsResult:
    """Store (external id, label, score) rows of one import as votes of the source account or as
    suggestions of `source`. An item that already has this source's vote or suggestion keeps it
    (importing twice adds nothing). Votes re-resolve their items when the project counts them."""
    if labels_as not in ("vote", "suggestion"):
        raise InputError(f"labels as '{labels_as}': use final, vote or suggestion", field="labels_as")
    result = SourceLabelsResult()
    if not rows:
        return result
    ids = dict(session.execute(select(Example.external_id, Example.id)
                               .where(Example.project_id == project.id)).all())
    wanted = [(ids[external_id], label, score) for external_id, label, score in rows if external_id in ids]
    if labels_as == "suggestion":
        have = set(session.execute(select(Suggestion.example_id).where(
            Suggestion.project_id == project.id, Suggestion.source == source)).scalars())
        new = [{"project_id": project.id, "example_id": example_id, "source": source, "label": label,
                "score": score, "import_id": import_id, "created_at": now}
               for example_id, label, score in wanted if example_id not in have]
        for start in range(0, len(new), 5000):
            session.execute(insert(Suggestion), new[start:start + 5000])
        result.stored, result.skipped_existing = len(new), len(wanted) - len(new)
        return result
    account, result.account_created = source_account(session, source)
    have = set(session.execute(select(Annotation.example_id).where(Annotation.annotator_id == account.id)).scalars())
    new = [{"example_id": example_id, "annotator_id": account.id, "label": label, "response": None,
            "rating": None, "comment": "" if score is None else f"score {score:g}", "flags": [],
            "row_version": 1, "created_at": now, "updated_at": now}
           for example_id, label, score in wanted if example_id not in have]
    for start in range(0, len(new), 5000):
        session.execute(insert(Annotation), new[start:start + 5000])
    result.stored, result.skipped_existing = len(new), len(wanted) - len(new)
    if project.source_votes_count:
        resolve_many(session, project, [row["example_id"] for row in new], now)
    return result


def resolve_many(session: Session, project: Project, example_ids: Sequence[int], now: datetime) -> None:
    """Status and final label of many examples from their counted annotations (the same rule as
    curation.review.resolve_example), in bulk. Excluded and adjudicated items are left alone."""

    ordered = sorted(set(example_ids))
    rule, k = FinalLabelRule(project.final_label_rule), project.overlap_k
    for start in range(0, len(ordered), 1000):
        chunk = ordered[start:start + 1000]
        labels: dict[int, list[str | None]] = defaultdict(list)
        for example_id, label in session.execute(
                select(Annotation.example_id, Annotation.label).join(User, User.id == Annotation.annotator_id)
                .join(Example, Example.id == Annotation.example_id)
                .where(Annotation.example_id.in_(chunk),
                       counted_condition(bool(project.source_votes_count), Example.audit_id))):
            labels[example_id].append(label)
        settled = set(session.execute(select(Adjudication.example_id)
                                      .where(Adjudication.example_id.in_(chunk))).scalars())
        updates = []
        for example_id in chunk:
            if example_id in settled:
                continue
            status, final = resolve_status(labels[example_id], k, rule)
            updates.append({"b_id": example_id, "b_status": status.value, "b_final": final, "b_now": now})
        if updates:
            table = Example.__table__
            session.execute(
                update(table).where(table.c.id == bindparam("b_id"))
                .where(table.c.status != ExampleStatus.excluded.value)
                .values(status=bindparam("b_status"), final_label=bindparam("b_final"),
                        updated_at=bindparam("b_now")), updates)


# --------------------------------------------------------------------------- Label Studio predictions


def label_studio_predictions(path: Path) -> list[tuple[str, str, str, float | None]]:
    """(task id, source, label, score) for every prediction with a `choices` result in a Label Studio
    JSON export. The source is `labelstudio:<model_version>` (or `labelstudio:prediction`)."""
    try:
        tasks = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return []  # the importer has already read (and reported on) the file
    out: list[tuple[str, str, str, float | None]] = []
    for number, task in enumerate(tasks if isinstance(tasks, list) else [], start=1):
        if not isinstance(task, dict):
            continue
        task_id = str(task.get("id", number))
        for prediction in task.get("predictions") or []:
            if not isinstance(prediction, dict):
                continue
            version = str(prediction.get("model_version") or "prediction")[:MAX_SOURCE_NAME - 12]
            overall = prediction.get("score")
            for result in prediction.get("result") or []:
                value = result.get("value") or {}
                if result.get("type") == "choices" and value.get("choices"):
                    score = result.get("score", overall)
                    out.append((task_id, f"labelstudio:{version}", str(value["choices"][0]),
                                float(score) if isinstance(score, (int, float)) else None))
                    break
    return out


def store_predictions(session: Session, project: Project, predictions: Sequence[tuple[str, str, str, float | None]],
                      import_id: int | None, now: datetime) -> int:
    """Store Label Studio predictions as suggestions (labels outside the project's set are dropped).
    Returns how many were added."""
    by_source: dict[str, list[tuple[str, str, float | None]]] = defaultdict(list)
    allowed = set(project.labels)
    for task_id, source, label, score in predictions:
        if not allowed or label in allowed:
            by_source[source].append((task_id, label, score))
    return sum(store_source_labels(session, project, source, "suggestion", rows, import_id, now).stored
               for source, rows in sorted(by_source.items()))


def require_person(user: User) -> None:
    """Source accounts never act: refuse one as the acting user."""
    if is_source(user):
        raise PermissionDenied(f"'{user.username}' is a source account: it carries imported labels and "
                               "cannot log in or act.")


def count_suggestions(engine: Engine, project_id: int) -> int:

    with read_session(engine) as session:
        return int(session.execute(select(func.count()).select_from(Suggestion)
                                   .where(Suggestion.project_id == project_id)).scalar_one())


__all__ = ["LABELS_AS", "SuggestionView", "blind_by_hash", "counted_condition", "expert_labels", "is_blind",
           "is_source", "label_studio_predictions", "list_sources", "source_account", "source_labels",
           "store_predictions", "store_source_labels", "visible_suggestions", "utcnow"]
