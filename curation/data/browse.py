"""The data browser's query: filters, text search and pagination that stays fast at 100k examples.

A page is found with LIMIT/OFFSET over the matching ids only (read from an index on project_id),
and just those rows are loaded, so the last page of 100k rows does not sort or skip 100k full rows;
the count shares the same filtered query.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Select, and_, exists, func, or_, select
from sqlalchemy.engine import Engine

from curation.access.roles import LEADS, require_role
from curation.db import read_session
from curation.models import Annotation, Example, User


@dataclass(frozen=True)
class ExampleFilter:
    """Every field narrows the set; empty means "any". `search` matches text, prompt, response and
    external id, case-insensitively."""

    statuses: tuple[str, ...] = ()
    labels: tuple[str, ...] = ()
    sources: tuple[str, ...] = ()
    splits: tuple[str, ...] = ()
    annotator_id: int | None = None
    search: str = ""
    example_ids: tuple[int, ...] = ()


@dataclass
class Page:
    rows: list[Example] = field(default_factory=list)
    total: int = 0
    page: int = 1
    page_size: int = 50

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.page_size))


def filtered_query(project_id: int, flt: ExampleFilter) -> Select:
    """SELECT Example ... WHERE <project and filters>; callers add order, limit or count."""
    query = select(Example).where(Example.project_id == project_id)
    if flt.statuses:
        query = query.where(Example.status.in_(flt.statuses))
    if flt.labels:
        query = query.where(Example.final_label.in_(flt.labels))
    if flt.sources:
        query = query.where(Example.source.in_(flt.sources))
    if flt.splits:
        query = query.where(Example.split.in_(flt.splits))
    if flt.example_ids:
        query = query.where(Example.id.in_(flt.example_ids))
    if flt.annotator_id is not None:
        query = query.where(exists().where(and_(Annotation.example_id == Example.id,
                                                Annotation.annotator_id == flt.annotator_id)))
    term = flt.search.strip()
    if term:
        escaped = term.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        pattern = f"%{escaped}%"
        query = query.where(or_(*(column.ilike(pattern, escape="\\") for column in
                                  (Example.text, Example.prompt, Example.response, Example.external_id))))
    return query


def browse_examples(engine: Engine, actor: User, project_id: int, flt: ExampleFilter, page: int = 1,
                    page_size: int = 50) -> Page:
    """One page of examples (1-based `page`, clamped to the last page) and the filtered total.

    Leads and admins only: the browser shows final labels and annotators, which annotators must
    not see before they label (blind review)."""
    require_role(actor, *LEADS)
    query = filtered_query(project_id, flt)
    with read_session(engine) as session:
        total = session.execute(select(func.count()).select_from(query.with_only_columns(Example.id).subquery())).scalar_one()
        result = Page(total=total, page_size=page_size)
        result.page = min(max(1, page), result.pages)
        offset = (result.page - 1) * page_size
        # Page through ids only, then load those rows: the offset then skips index entries instead
        # of full rows (SQLite otherwise sorted every matching row to reach the last page).
        page_ids = query.with_only_columns(Example.id).order_by(Example.id).offset(offset).limit(page_size)
        result.rows = list(session.execute(select(Example).where(Example.id.in_(page_ids))
                                           .order_by(Example.id)).scalars())
    return result


def annotators_of(engine: Engine, actor: User, project_id: int) -> list[tuple[int, str]]:
    """(user id, username) of everyone who annotated in the project, for the annotator filter (leads)."""
    require_role(actor, *LEADS)
    with read_session(engine) as session:
        # From the (few) accounts to their annotations (index on annotator, example): stops at the first
        # hit per account instead of reading every annotation of a 100k-item project.
        annotated = (select(Annotation.id).join(Example, Example.id == Annotation.example_id)
                     .where(Annotation.annotator_id == User.id, Example.project_id == project_id).exists())
        rows = session.execute(select(User.id, User.username).where(annotated).order_by(User.username)).all()
    return [(int(i), str(name)) for i, name in rows]


def distinct_values(engine: Engine, actor: User, project_id: int, column: str) -> list[str]:
    """Distinct non-empty values of an Example column (source, split, final_label) for filter menus (leads)."""
    require_role(actor, *LEADS)
    attribute = getattr(Example, column)
    with read_session(engine) as session:
        values = session.execute(select(attribute).where(Example.project_id == project_id,
                                                         attribute.is_not(None)).distinct()).scalars()
        return sorted(str(v) for v in values)


@dataclass(frozen=True)
class AnnotationRow:
    """One annotation of an example as the data browser lists it."""

    annotator: str
    label: str | None
    rating: int | None
    comment: str | None
    flags: tuple[str, ...]
    created_at: Any


def example_annotations(engine: Engine, actor: User, example_id: int) -> list[AnnotationRow]:
    """Every annotation of one example with its annotator's name, oldest first (leads: blind review
    hides other people's labels from annotators)."""
    require_role(actor, *LEADS)
    with read_session(engine) as session:
        rows = session.execute(select(Annotation, User.username).join(User, User.id == Annotation.annotator_id)
                               .where(Annotation.example_id == example_id).order_by(Annotation.created_at)).all()
    return [AnnotationRow(str(name), a.label, a.rating, a.comment, tuple(a.flags or ()), a.created_at)
            for a, name in rows]
