"""The data browser's query on both databases: every filter, search with LIKE wildcards taken
literally, case-insensitive matching, and pagination with clamping."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import update
from sqlalchemy.engine import Engine

from curation.data.browse import ExampleFilter, annotators_of, browse_examples, distinct_values
from curation.data.formats import open_table
from curation.data.importer import import_table
from curation.data.mapping import ColumnMapping
from curation.data.projects import create_project, get_project
from curation.db import write_session
from curation.errors import PermissionDenied
from curation.models import Example, Project, User
from tests.conftest import BOTH_BACKENDS

TEXTS = {
    "e01": "Refund for order, 50% off",
    "e02": "snake_case column name",
    "e03": "snakeXcase typo",
    "e04": "UPPER CASE SHOUTING",
    "e05": "path C:\\temp\\file",
    "e06": "where is my parcel",
    "e07": "Parcel delayed again",
    "e08": "card declined",
    "e09": "password reset",
    "e10": "hello there",
}


@pytest.fixture
def project(engine: Engine, lead: User, tmp_path: Path) -> Project:
    """Ten examples (web: e01-e05, email: e06-e10; odd ids train, even test) and annotations:
    e01 labelled billing, e02 disputed, e03 in review, e06 labelled shipping, e09 excluded, rest new."""
    create_project(engine, lead, "Browse", labels=["billing", "shipping"], overlap_k=2)
    wide = tmp_path / "browse.jsonl"
    wide.write_text("".join(json.dumps({"id": i, "text": t, "source": "web" if n <= 5 else "email",
                                        "split": "train" if n % 2 else "test"}) + "\n"
                            for n, (i, t) in enumerate(TEXTS.items(), start=1)))
    import_table(engine, lead, open_table(wide), ColumnMapping(id=["id"], text="text", source="source",
                                                               split="split"), "Browse")
    votes = tmp_path / "votes.csv"
    votes.write_text("id,annotator,label\ne01,ann1,billing\ne01,ann2,billing\ne02,ann1,billing\ne02,ann2,shipping\n"
                     "e03,ann1,shipping\ne06,ann2,shipping\ne06,ann1,shipping\n")
    import_table(engine, lead, open_table(votes), ColumnMapping(id=["id"], annotator="annotator", label="label"),
                 "Browse")
    with write_session(engine) as session:
        session.execute(update(Example).where(Example.external_id == "e09").values(status="excluded"))
    return get_project(engine, "Browse")


def ids(engine: Engine, lead: User, project: Project, page_size: int = 100, page: int = 1, **filters) -> list[str]:
    result = browse_examples(engine, lead, project.id, ExampleFilter(**filters), page=page, page_size=page_size)
    return [row.external_id for row in result.rows]


@BOTH_BACKENDS
def test_filters(engine: Engine, lead: User, project: Project) -> None:
    everything = sorted(TEXTS)
    assert ids(engine, lead, project) == everything
    assert ids(engine, lead, project, statuses=("labelled",)) == ["e01", "e06"]
    assert ids(engine, lead, project, statuses=("disputed", "in_review")) == ["e02", "e03"]
    assert ids(engine, lead, project, statuses=("new",)) == ["e04", "e05", "e07", "e08", "e10"]
    assert ids(engine, lead, project, statuses=("excluded",)) == ["e09"]
    assert ids(engine, lead, project, labels=("shipping",)) == ["e06"]
    assert ids(engine, lead, project, labels=("billing", "shipping")) == ["e01", "e06"]
    assert ids(engine, lead, project, sources=("web",)) == ["e01", "e02", "e03", "e04", "e05"]
    assert ids(engine, lead, project, splits=("test",)) == ["e02", "e04", "e06", "e08", "e10"]
    ann1, ann2 = (uid for uid, _ in annotators_of(engine, lead, project.id))
    assert ids(engine, lead, project, annotator_id=ann1) == ["e01", "e02", "e03", "e06"]
    assert ids(engine, lead, project, annotator_id=ann2) == ["e01", "e02", "e06"]
    assert ids(engine, lead, project, annotator_id=lead.id) == []
    assert ids(engine, lead, project, sources=("web",), statuses=("labelled",)) == ["e01"]
    assert ids(engine, lead, project, sources=("email",), splits=("train",), annotator_id=ann2) == []
    first_two = tuple(row.id for row in browse_examples(engine, lead, project.id, ExampleFilter(), 1, 2).rows)
    assert ids(engine, lead, project, example_ids=first_two) == ["e01", "e02"]
    assert ids(engine, lead, project, labels=("no-such-label",)) == []


SEARCHES = [
    ("%", ["e01"]),  # a literal percent sign, not "anything"
    ("50%", ["e01"]),
    ("_", ["e02"]),  # a literal underscore, not "any one character"
    ("snake_case", ["e02"]),
    ("\\", ["e05"]),  # a literal backslash (the escape character itself)
    ("c:\\temp", ["e05"]),
    ("PARCEL", ["e06", "e07"]),  # case-insensitive
    ("upper case", ["e04"]),
    ("  parcel  ", ["e06", "e07"]),  # surrounding blanks ignored
    ("e1", ["e10"]),  # matches the external id too
    ("nothing like this", []),
    ("", sorted(TEXTS)),
]


@BOTH_BACKENDS
def test_search(engine: Engine, lead: User, project: Project) -> None:
    got = {term: ids(engine, lead, project, search=term) for term, _ in SEARCHES}
    assert got == dict(SEARCHES)


@BOTH_BACKENDS
def test_pagination(engine: Engine, lead: User, project: Project) -> None:
    pages = [browse_examples(engine, lead, project.id, ExampleFilter(), page=n, page_size=3) for n in (1, 2, 3, 4)]
    assert [[r.external_id for r in p.rows] for p in pages] == [
        ["e01", "e02", "e03"], ["e04", "e05", "e06"], ["e07", "e08", "e09"], ["e10"]]
    assert {(p.total, p.pages, p.page_size) for p in pages} == {(10, 4, 3)}
    assert [p.page for p in pages] == [1, 2, 3, 4]
    for asked, got in ((99, 4), (5, 4), (0, 1), (-3, 1)):
        page = browse_examples(engine, lead, project.id, ExampleFilter(), page=asked, page_size=3)
        assert page.page == got
        assert [r.external_id for r in page.rows] == ([["e01", "e02", "e03"], ["e10"]][got == 4])
    exact = browse_examples(engine, lead, project.id, ExampleFilter(), page=2, page_size=5)
    assert (exact.total, exact.pages, [r.external_id for r in exact.rows]) == (
        10, 2, ["e06", "e07", "e08", "e09", "e10"])
    filtered = browse_examples(engine, lead, project.id, ExampleFilter(sources=("web",)), page=2, page_size=2)
    assert (filtered.total, filtered.pages, [r.external_id for r in filtered.rows]) == (5, 3, ["e03", "e04"])
    empty = browse_examples(engine, lead, project.id, ExampleFilter(search="zzz"), page=7, page_size=3)
    assert (empty.total, empty.pages, empty.page, empty.rows) == (0, 1, 1, [])


@BOTH_BACKENDS
def test_other_projects_stay_out_and_menus(engine: Engine, lead: User, project: Project, tmp_path: Path) -> None:
    other = tmp_path / "other.jsonl"
    other.write_text(json.dumps({"id": "e01", "text": "parcel in another project", "source": "fax"}) + "\n")
    create_project(engine, lead, "Other", labels=["x", "y"])
    import_table(engine, lead, open_table(other), ColumnMapping(id=["id"], text="text", source="source"), "Other")
    assert ids(engine, lead, project, search="parcel") == ["e06", "e07"]
    assert browse_examples(engine, lead, project.id, ExampleFilter()).total == 10
    assert distinct_values(engine, lead, project.id, "source") == ["email", "web"]
    assert distinct_values(engine, lead, project.id, "split") == ["test", "train"]
    assert distinct_values(engine, lead, project.id, "final_label") == ["billing", "shipping"]
    assert [name for _, name in annotators_of(engine, lead, project.id)] == ["ann1", "ann2"]
    assert annotators_of(engine, lead, get_project(engine, "Other").id) == []


def test_filter_menus_are_for_leads(engine: Engine, annotator: User, project: Project) -> None:
    """The menus list annotators and final labels, which annotators must not see (blind review)."""
    with pytest.raises(PermissionDenied):
        annotators_of(engine, annotator, project.id)
    with pytest.raises(PermissionDenied):
        distinct_values(engine, annotator, project.id, "final_label")


def test_an_examples_annotations_are_for_leads(engine: Engine, lead: User, annotator: User, project: Project) -> None:
    from curation.data.browse import example_annotations

    [e02] = browse_examples(engine, lead, project.id, ExampleFilter(search="e02")).rows
    rows = example_annotations(engine, lead, e02.id)
    assert sorted((r.annotator, r.label) for r in rows) == [("ann1", "billing"), ("ann2", "shipping")]
    with pytest.raises(PermissionDenied):
        example_annotations(engine, annotator, e02.id)


def test_an_example_by_its_id_is_for_leads_and_a_missing_id_is_named(
        engine: Engine, lead: User, annotator: User, project: Project) -> None:
    from curation.data.browse import example_by_id
    from curation.errors import NotFound

    e02 = next(row for row in browse_examples(engine, lead, project.id, ExampleFilter(search="e02")).rows)
    assert e02.id is not None
    found = example_by_id(engine, lead, e02.id)
    assert (found.external_id, found.text, found.status, found.project_id) == (
        "e02", "snake_case column name", "disputed", project.id)
    with pytest.raises(PermissionDenied):
        example_by_id(engine, annotator, e02.id)
    with pytest.raises(NotFound, match=r"^No example with id 987654\.$"):
        example_by_id(engine, lead, 987654)
