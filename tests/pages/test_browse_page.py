"""pages/browse.py: filters (status, label, search, annotator), pagination, opening an example,
and dataset text that looks like HTML shown only as literal text."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine
from streamlit.testing.v1 import AppTest

from curation.data.formats import open_table
from curation.data.importer import import_table
from curation.data.mapping import ColumnMapping
from curation.data.projects import create_project
from curation.models import User
from tests.pages.helpers import by_label, by_label_prefix, logged_in, markup_values, no_exception, values

IMG = "<img src=x onerror=alert(1)>"
SCRIPT = "<script>alert(1)</script>"


def _label(i: int) -> str | None:
    return {0: "billing", 1: "shipping"}.get(i % 3)


@pytest.fixture
def tickets(engine: Engine, lead: User, tmp_path: Path) -> int:
    """62 examples: t001..t060 (every third unlabelled, "parcel" in every tenth), then two with markup."""
    project = create_project(engine, lead, "Tickets", labels=["billing", "shipping"])
    rows = [
        {
            "id": f"t{i:03d}",
            "text": f"Ticket {i}: " + ("my parcel is late" if i % 10 == 0 else "a question"),
            "label": _label(i),
            "split": "train" if i <= 50 else "test",
        }
        for i in range(1, 61)
    ]
    rows += [
        {"id": "x1", "text": IMG, "label": None, "split": "test"},
        {"id": "x2", "text": SCRIPT, "label": None, "split": "test"},
    ]
    path = tmp_path / "tickets.jsonl"
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    import_table(
        engine,
        lead,
        open_table(path),
        ColumnMapping(
            id=["id"], text="text", label="label", split="split", metadata=[], default_source="helpdesk"
        ),
        "Tickets",
    )
    # Two annotators label t003 (disagreeing) and one labels x1.
    votes = tmp_path / "votes.csv"
    votes.write_text(
        "id,annotator,label\nt003,ann1,billing\nt003,ann2,shipping\nx1,ann1,billing\n", encoding="utf-8"
    )
    import_table(
        engine,
        lead,
        open_table(votes),
        ColumnMapping(id=["id"], annotator="annotator", label="label"),
        "Tickets",
    )
    assert project.id is not None
    return project.id


def _browser(tickets: int) -> AppTest:
    at = logged_in("lena", "lead-password")
    at.switch_page("pages/browse.py").run()
    no_exception(at)
    assert values(at.title) == ["Data browser"]
    return at


def _page_label(at: AppTest) -> str:
    return by_label_prefix(at.number_input, "Page (of").label


def _ids(at: AppTest) -> list[str]:
    return at.dataframe[0].value["id"].tolist()


def test_first_page_and_paging(tickets: int) -> None:
    at = _browser(tickets)
    assert _page_label(at) == "Page (of 2) · 62 examples"
    table = at.dataframe[0].value
    assert list(table.columns) == ["#", "id", "status", "label", "content", "source", "split"]
    assert _ids(at) == [f"t{i:03d}" for i in range(1, 51)]
    first = table.iloc[0].to_dict()
    assert {k: first[k] for k in ("id", "status", "label", "content", "source", "split")} == {
        "id": "t001",
        "status": "🟢 labelled",
        "label": "shipping",
        "content": "Ticket 1: a question",
        "source": "helpdesk",
        "split": "train",
    }
    t003 = table[table["id"] == "t003"].iloc[0]
    assert (t003["status"], t003["label"]) == ("🔴 disputed", "")

    by_label_prefix(at.number_input, "Page (of").set_value(2).run()
    no_exception(at)
    assert _ids(at) == [f"t{i:03d}" for i in range(51, 61)] + ["x1", "x2"]
    assert _page_label(at) == "Page (of 2) · 62 examples"

    by_label(at.selectbox, "Rows per page").select(25).run()
    no_exception(at)
    assert _page_label(at) == "Page (of 3) · 62 examples"
    assert _ids(at) == [f"t{i:03d}" for i in range(26, 51)]


def test_filters_by_status_label_and_search(tickets: int) -> None:
    at = _browser(tickets)
    by_label(at.multiselect, "Status").set_value(["labelled"]).run()
    no_exception(at)
    labelled = [f"t{i:03d}" for i in range(1, 61) if _label(i) and i != 3]  # t003 became disputed
    assert _page_label(at) == f"Page (of 1) · {len(labelled)} examples"
    assert _ids(at) == labelled
    assert set(at.dataframe[0].value["status"]) == {"🟢 labelled"}

    assert by_label(at.multiselect, "Final label").options == ["billing", "shipping"]
    by_label(at.multiselect, "Final label").set_value(["billing"]).run()
    billing = [f"t{i:03d}" for i in range(1, 61) if _label(i) == "billing" and i != 3]
    assert _page_label(at) == f"Page (of 1) · {len(billing)} examples"
    assert _ids(at) == billing

    by_label(at.text_input, "Search text").input("PARCEL").run()  # case-insensitive
    no_exception(at)
    assert _page_label(at) == "Page (of 1) · 2 examples"
    assert _ids(at) == ["t030", "t060"]

    by_label(at.multiselect, "Status").set_value([]).run()
    by_label(at.multiselect, "Final label").set_value([]).run()
    assert _page_label(at) == "Page (of 1) · 6 examples"
    assert _ids(at) == ["t010", "t020", "t030", "t040", "t050", "t060"]

    by_label(at.text_input, "Search text").input("no such words").run()
    no_exception(at)
    assert _page_label(at) == "Page (of 1) · 0 examples"
    assert at.dataframe[0].value.empty
    assert "Click a row to open its example." not in values(at.caption)


def test_split_and_annotator_filters(tickets: int) -> None:
    at = _browser(tickets)
    by_label(at.multiselect, "Split").set_value(["test"]).run()
    assert _page_label(at) == "Page (of 1) · 12 examples"
    annotator = by_label(at.selectbox, "Annotated by")
    assert annotator.options == ["anyone", "ann1", "ann2"]
    annotator.select_index(1).run()  # ann1
    no_exception(at)
    assert _ids(at) == ["x1"]
    by_label(at.multiselect, "Split").set_value([]).run()
    assert _ids(at) == ["t003", "x1"]


def test_a_page_past_the_end_is_clamped_when_filters_shrink_the_set(tickets: int) -> None:
    at = _browser(tickets)
    by_label_prefix(at.number_input, "Page (of").set_value(2).run()
    by_label(at.text_input, "Search text").input("parcel").run()
    no_exception(at)
    assert _page_label(at) == "Page (of 1) · 6 examples"
    assert by_label_prefix(at.number_input, "Page (of").value == 1
    assert _ids(at) == ["t010", "t020", "t030", "t040", "t050", "t060"]


def _click_row(at: AppTest, index: int) -> AppTest:
    """What a click on the table's row `index` sends: the selection state of the keyed dataframe."""
    table = at.dataframe[0]
    assert table.key, "the examples table must be keyed to be selectable"
    at.session_state[table.key] = {"selection": {"rows": [index], "columns": [], "cells": []}}
    return at.run()


def test_open_an_example_by_clicking_its_row(tickets: int) -> None:
    at = _browser(tickets)
    assert not [s for s in at.selectbox if s.label == "Open example"]  # no separate list of rows
    assert "Click a row to open its example." in values(at.caption)
    assert _ids(at)[2] == "t003"
    _click_row(at, 2)
    no_exception(at)
    assert "Ticket 3: a question" in values(at.text)
    assert any(
        c.startswith("#") and "· t003 · disputed · source: helpdesk · licence: —" in c
        for c in values(at.caption)
    )
    annotations = at.dataframe[1].value
    assert annotations[["annotator", "label"]].to_dict("records") == [
        {"annotator": "ann1", "label": "billing"},
        {"annotator": "ann2", "label": "shipping"},
    ]


def test_markup_in_examples_is_shown_as_literal_text_only(tickets: int) -> None:
    at = _browser(tickets)
    by_label(at.text_input, "Search text").input("alert(1)").run()
    no_exception(at)
    assert _ids(at) == ["x1", "x2"]
    # The table holds the literal strings.
    assert at.dataframe[0].value["content"].tolist() == [IMG, SCRIPT]
    for index, literal in ((0, IMG), (1, SCRIPT)):
        _click_row(at, index)
        no_exception(at)
        assert literal in values(at.text)
        rendered = markup_values(at)
        for fragment in (literal, "onerror", "<script", "<img"):
            assert not any(fragment in value for value in rendered), (fragment, rendered)
        # the only HTML on the page is the app's own session-cookie script (ui/session.py), never data
        assert [html.value.startswith("<script>document.cookie = 'lcw_session=") for html in at.html] == [True]


# --------------------------------------------------------------------------- links: ?item=


def _example_id(engine: Engine, project_id: int, external_id: str) -> int:
    from sqlalchemy import select

    from curation.db import read_session
    from curation.models import Example

    with read_session(engine) as session:
        return int(session.execute(select(Example.id).where(Example.project_id == project_id,
                                                            Example.external_id == external_id)).scalar_one())


def _browser_at(item: int | str) -> AppTest:
    """The Data browser opened by a link `?item=...` (what a reload or a sent link starts with)."""
    at = logged_in("lena", "lead-password")
    at.query_params["item"] = str(item)
    at.switch_page("pages/browse.py").run()
    no_exception(at)
    return at


def _shown_caption(at: AppTest) -> str:
    return next(c for c in values(at.caption) if c.startswith("#"))


def test_a_link_opens_its_example_and_the_url_follows_the_example_on_screen(engine: Engine, tickets: int) -> None:
    t003 = _example_id(engine, tickets, "t003")
    at = _browser_at(t003)
    # Not on a row of the table: the link alone opens it, with its text, labels, annotations and history.
    assert _shown_caption(at) == (f"#{t003} · t003 · disputed · source: helpdesk · licence: — · final label: —")
    assert "Opened by its link: click a row to open another." in values(at.caption)
    assert "Click a row to open its example." not in values(at.caption)
    assert any(c.startswith("Link to this example: ") and c.endswith(f"?item={t003}`") for c in values(at.caption))
    assert "Ticket 3: a question" in values(at.text)
    assert at.dataframe[1].value[["annotator", "label"]].to_dict("records") == [
        {"annotator": "ann1", "label": "billing"},
        {"annotator": "ann2", "label": "shipping"},
    ]
    assert [e.label for e in at.expander if e.label == "History"] == ["History"]
    assert at.query_params["item"] == str(t003)

    _click_row(at, 0)  # a click opens another example, and the URL names it
    no_exception(at)
    t001 = _example_id(engine, tickets, "t001")
    assert _shown_caption(at) == f"#{t001} · t001 · labelled · source: helpdesk · licence: — · final label: shipping"
    assert "Ticket 1: a question" in values(at.text)
    assert "Ticket 3: a question" not in values(at.text)
    assert at.query_params["item"] == str(t001)

    at.session_state[at.dataframe[0].key] = {"selection": {"rows": [], "columns": [], "cells": []}}
    at.run()  # the row deselected: nothing open, nothing in the URL (the link does not come back)
    no_exception(at)
    assert not [c for c in values(at.caption) if c.startswith("#")]
    assert "item" not in at.query_params


def test_a_reload_keeps_the_clicked_example(engine: Engine, tickets: int) -> None:
    at = _browser(tickets)
    _click_row(at, 1)
    t002 = _example_id(engine, tickets, "t002")
    assert at.query_params["item"] == str(t002)
    reloaded = _browser_at(at.query_params["item"])  # a reload: a new session on the same URL
    assert _shown_caption(reloaded).startswith(f"#{t002} · t002 · ")
    assert "Ticket 2: a question" in values(reloaded.text)


def test_a_link_to_a_missing_example_says_so(engine: Engine, tickets: int) -> None:
    at = _browser_at(999_999)
    assert values(at.error) == ["No example with id 999999."]
    assert not [c for c in values(at.caption) if c.startswith("#")]
    assert "item" not in at.query_params
    assert _ids(at)[:2] == ["t001", "t002"]  # the browser itself still works


def test_a_link_to_another_projects_example_switches_to_that_project(
        engine: Engine, lead: User, tickets: int, tmp_path: Path) -> None:
    other = create_project(engine, lead, "Another", labels=["a", "b"])
    path = tmp_path / "another.csv"
    path.write_text("id,text\na1,the other project's text\n", encoding="utf-8")
    import_table(engine, lead, open_table(path), ColumnMapping(id=["id"], text="text"), "Another")
    assert other.id is not None
    a1 = _example_id(engine, other.id, "a1")
    at = logged_in("lena", "lead-password")
    at.switch_page("pages/browse.py").run()
    at.sidebar.selectbox[0].select(tickets).run()  # the first project by name is "Another": pick Tickets
    assert _ids(at)[0] == "t001"
    at.query_params["item"] = str(a1)  # then a link to the other project's example
    at.run()
    no_exception(at)
    assert _shown_caption(at).startswith(f"#{a1} · a1 · ")
    assert "the other project's text" in values(at.text)
    assert _ids(at) == ["a1"]  # the table is the other project's now
    assert at.query_params["item"] == str(a1)


def test_the_opened_example_shows_its_history(engine: Engine, lead: User, tickets: int) -> None:
    from curation.review.adjudication import adjudicate

    t003 = _example_id(engine, tickets, "t003")
    adjudicate(engine, lead, t003, reason="the customer asks about a charge", final_label="billing")
    at = _browser_at(t003)
    assert _shown_caption(at) == f"#{t003} · t003 · labelled · source: helpdesk · licence: — · final label: billing"
    history = at.dataframe[2].value  # after the examples and the annotations
    assert [(row["by"], row["action"]) for row in history.to_dict("records")][-1] == ("lena", "example.adjudicate")
    assert "the customer asks about a charge" in history["after"].iloc[-1]
