"""pages/import_data.py: pick a file (server folder or upload), preview, the guessed mapping,
import with exact results in the database, and mapping errors that import nothing."""

from __future__ import annotations

import json
from pathlib import Path

from sqlalchemy.engine import Engine
from sqlmodel import select
from streamlit.testing.v1 import AppTest

from curation.data.projects import create_project
from curation.db import read_session
from curation.models import Example, ImportRecord, Project, User
from curation.settings import get_settings
from tests.pages.helpers import (
    by_label,
    by_label_prefix,
    counts,
    logged_in,
    no_exception,
    project_rows,
    values,
)
from ui.session import PROJECT_KEY

NONE = "—"
TICKETS_CSV = (
    "id,text,label,channel\n"
    "t1,My card was charged twice,billing,email\n"
    "t2,The parcel never arrived,shipping,chat\n"
    't3,"Refund, please",billing,\n'
    "t4,Where is my order?,shipping,email\n"
)
SINGLE = {
    "Text (classification)": "text",
    "Prompt (generation)": "prompt",
    "Response (generation)": "response",
    "Chat messages (generation)": "messages",
    "Label": "label",
    "Annotator (long format: one row per judgement)": "annotator",
    "Annotated at": "annotated_at",
    "Source": "source",
    "Licence": "licence",
    "Split": "split",
}


def _server_file(name: str, content: str) -> Path:
    folder = get_settings().data_dir / "imports"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(content, encoding="utf-8")
    return path


def _open_import_page(at: AppTest, file_name: str) -> AppTest:
    at.switch_page("pages/import_data.py").run()
    no_exception(at)
    choice = by_label(at.radio, "File")
    assert choice.options == ["Upload", f"Server folder ({get_settings().data_dir / 'imports'})"]
    choice.set_value(choice.options[1]).run()
    no_exception(at)
    picker = by_label(at.selectbox, "File or folder")
    assert file_name in picker.options
    picker.select(file_name).run()
    no_exception(at)
    return at


def _mapping(at: AppTest) -> dict[str, object]:
    """The mapping form's current values: field -> column (None for the '—' choice)."""
    out: dict[str, object] = {
        field: (None if by_label(at.selectbox, label).value == NONE else by_label(at.selectbox, label).value)
        for label, field in SINGLE.items()
    }
    out["id"] = by_label_prefix(at.multiselect, "Item id").value
    out["onehot"] = by_label_prefix(at.multiselect, "One-hot label columns").value
    out["metadata"] = by_label(at.multiselect, "Keep as metadata").value
    return out


def _examples(engine: Engine, project: str) -> list[dict[str, object]]:
    with read_session(engine) as session:
        rows = session.exec(
            select(Example).join(Project).where(Project.name == project).order_by(Example.id)
        ).all()
        return [
            {
                "id": e.external_id,
                "text": e.text,
                "status": str(e.status),
                "label": e.final_label,
                "source": e.source,
                "licence": e.licence,
                "meta": e.meta,
            }
            for e in rows
        ]


def test_import_a_server_file_into_a_new_project(engine: Engine, lead: User) -> None:
    _server_file("tickets.csv", TICKETS_CSV)
    at = _open_import_page(logged_in("lena", "lead-password"), "tickets.csv")

    assert values(at.caption) == ["tickets.csv: 4 rows · csv · columns: id, text, label, channel"]
    preview = at.dataframe[0].value
    assert list(preview.columns) == ["id", "text", "label", "channel"]
    assert preview.astype(object).where(preview.notna(), None).to_dict("records") == [
        {"id": "t1", "text": "My card was charged twice", "label": "billing", "channel": "email"},
        {"id": "t2", "text": "The parcel never arrived", "label": "shipping", "channel": "chat"},
        {"id": "t3", "text": "Refund, please", "label": "billing", "channel": None},
        {"id": "t4", "text": "Where is my order?", "label": "shipping", "channel": "email"},
    ]
    into = by_label(at.radio, "Into")
    assert (into.options, into.value) == (["A new project"], "A new project")  # no project exists yet
    assert by_label(at.text_input, "New project name").value == "tickets"
    assert by_label(at.radio, "Task type").value == "classification"
    assert _mapping(at) == {
        "text": "text",
        "prompt": None,
        "response": None,
        "messages": None,
        "label": "label",
        "annotator": None,
        "annotated_at": None,
        "source": None,
        "licence": None,
        "split": None,
        "id": ["id"],
        "onehot": [],
        "metadata": ["channel"],
    }
    assert by_label(at.text_input, "Source for rows without one").value == "tickets.csv"

    by_label(at.text_input, "New project name").input("Support tickets")
    by_label(at.text_input, "Licence for rows without one").input("CC0-1.0")
    by_label(at.button, "Import").click().run()
    no_exception(at)
    assert values(at.error) == []
    assert values(at.success) == [
        "Imported into 'Support tickets': 4 rows read; 4 examples added; 0 annotations added; "
        "4 labels imported as final labels (experts will not review them)."
    ]
    assert [p.value for p in at.progress] == [100]

    assert project_rows(engine) == [
        {
            "name": "Support tickets",
            "task_type": "classification",
            "labels": ["billing", "shipping"],
            "guidelines": "",
            "guidelines_version": 1,
            "overlap_k": 2,
            "final_label_rule": "majority",
            "min_agreement": 0.667,
        }
    ]
    common = {"status": "labelled", "source": "tickets.csv", "licence": "CC0-1.0"}
    assert _examples(engine, "Support tickets") == [
        {
            "id": "t1",
            "text": "My card was charged twice",
            "label": "billing",
            "meta": {"channel": "email"},
            **common,
        },
        {
            "id": "t2",
            "text": "The parcel never arrived",
            "label": "shipping",
            "meta": {"channel": "chat"},
            **common,
        },
        {"id": "t3", "text": "Refund, please", "label": "billing", "meta": {}, **common},
        {
            "id": "t4",
            "text": "Where is my order?",
            "label": "shipping",
            "meta": {"channel": "email"},
            **common,
        },
    ]
    with read_session(engine) as session:
        record = session.exec(select(ImportRecord)).one()
    assert (
        record.file_name,
        record.file_format,
        record.examples_added,
        record.annotations_added,
        record.actor_id,
    ) == ("tickets.csv", "csv", 4, 0, lead.id)
    assert counts(engine)["Example"] == 4

    # On the next run the sidebar follows to the new project, and "Into" offers it.
    at.run()
    no_exception(at)
    new_id = _project_ids(engine)[0]
    assert at.session_state[PROJECT_KEY] == new_id
    assert by_label(at.sidebar.selectbox, "Project").value == new_id
    assert by_label(at.radio, "Into").value == "Current project: Support tickets"

    # Importing the same file again into it adds nothing.
    by_label(at.button, "Import").click().run()
    no_exception(at)
    assert values(at.success) == [
        "Imported into 'Support tickets': 4 rows read; 0 examples added; "
        "0 annotations added; 4 examples already present (skipped)."
    ]
    assert counts(engine)["Example"] == 4


def test_unknown_label_imports_nothing_until_the_mapping_is_fixed(engine: Engine, lead: User) -> None:
    create_project(engine, lead, "Support", labels=["billing", "shipping"])
    # "label" holds a raw label outside the project's set on row 3; "category" holds the curated one.
    _server_file(
        "tickets.csv",
        "id,message,label,category\n"
        "1,charged twice,billing,billing\n"
        "2,late parcel,shipping,shipping\n"
        "3,money back please,refund,billing\n",
    )
    at = _open_import_page(logged_in("lena", "lead-password"), "tickets.csv")
    into = by_label(at.radio, "Into")
    assert (into.options, into.value) == (
        ["A new project", "Current project: Support"],
        "Current project: Support",
    )
    mapping = _mapping(at)
    assert (mapping["text"], mapping["label"], mapping["id"], mapping["metadata"]) == (
        "message",
        "label",
        ["id"],
        ["category"],
    )
    before, projects_before = counts(engine), project_rows(engine)

    by_label(at.button, "Import").click().run()
    no_exception(at)
    assert values(at.success) == []
    assert values(at.error) == [
        "Nothing was imported. tickets.csv, row 3, field 'label': unknown label 'refund' "
        "(project labels: billing, shipping)"
    ]
    assert counts(engine) == before
    assert project_rows(engine) == projects_before

    by_label(at.selectbox, "Label").select("category")
    by_label(at.multiselect, "Keep as metadata").set_value(["label"])
    by_label(at.button, "Import").click().run()
    no_exception(at)
    assert values(at.error) == []
    assert values(at.success) == [
        "Imported into 'Support': 3 rows read; 3 examples added; 0 annotations added; "
        "3 labels imported as final labels (experts will not review them)."
    ]
    common = {"status": "labelled", "source": "tickets.csv", "licence": None}
    assert _examples(engine, "Support") == [
        {"id": "1", "text": "charged twice", "label": "billing", "meta": {"label": "billing"}, **common},
        {"id": "2", "text": "late parcel", "label": "shipping", "meta": {"label": "shipping"}, **common},
        {"id": "3", "text": "money back please", "label": "billing", "meta": {"label": "refund"}, **common},
    ]
    assert project_rows(engine)[0]["labels"] == ["billing", "shipping"]
    assert counts(engine)["ImportRecord"] == before["ImportRecord"] + 1


def test_text_mapped_to_a_list_column_imports_nothing_and_creates_no_project(
    engine: Engine, lead: User
) -> None:
    lines = [
        {"id": "a", "text": "hello there", "tags": ["greeting"], "label": "greet"},
        {"id": "b", "text": "bye now", "tags": ["farewell", "short"], "label": "leave"},
    ]
    _server_file("chat.jsonl", "".join(json.dumps(line) + "\n" for line in lines))
    at = _open_import_page(logged_in("lena", "lead-password"), "chat.jsonl")
    assert values(at.caption) == ["chat.jsonl: 2 rows · jsonl · columns: id, text, tags, label"]
    # Lists show as their text in the preview.
    assert at.dataframe[0].value["tags"].tolist() == ["['greeting']", "['farewell', 'short']"]
    before = counts(engine)

    by_label(at.selectbox, "Text (classification)").select("tags")
    by_label(at.button, "Import").click().run()
    no_exception(at)
    assert values(at.error) == [
        "Nothing was imported. chat.jsonl, row 1, field 'text': column 'tags' holds list, not text; the first "
        'such value is ["greeting"]'
    ]
    assert counts(engine) == before
    assert project_rows(engine) == []  # the new project was not created either

    by_label(at.selectbox, "Text (classification)").select("text")
    by_label(at.multiselect, "Keep as metadata").set_value(["tags"])
    by_label(at.button, "Import").click().run()
    no_exception(at)
    assert values(at.success) == ["Imported into 'chat': 2 rows read; 2 examples added; 0 annotations added; "
                                  "2 labels imported as final labels (experts will not review them)."]
    assert project_rows(engine)[0]["labels"] == ["greet", "leave"]  # taken from the file, in order
    assert _examples(engine, "chat") == [
        {
            "id": "a",
            "text": "hello there",
            "status": "labelled",
            "label": "greet",
            "source": "chat.jsonl",
            "licence": None,
            "meta": {"tags": ["greeting"]},
        },
        {
            "id": "b",
            "text": "bye now",
            "status": "labelled",
            "label": "leave",
            "source": "chat.jsonl",
            "licence": None,
            "meta": {"tags": ["farewell", "short"]},
        },
    ]


def test_a_row_error_in_a_new_project_rolls_back_the_project(engine: Engine, lead: User) -> None:
    _server_file("dupes.csv", "id,text\n1,first\n2,second\n1,third\n")
    at = _open_import_page(logged_in("lena", "lead-password"), "dupes.csv")
    before = counts(engine)
    by_label(at.button, "Import").click().run()
    no_exception(at)
    assert values(at.error) == [
        "Nothing was imported. dupes.csv, row 3, field 'id': id '1' is also on row 1; ids must be unique"
    ]
    assert counts(engine) == before
    assert project_rows(engine) == []


def test_upload_a_file(engine: Engine, lead: User) -> None:
    at = logged_in("lena", "lead-password")
    at.switch_page("pages/import_data.py").run()
    no_exception(at)
    assert by_label(at.radio, "File").value == "Upload"
    at.file_uploader[0].upload("uploaded.csv", TICKETS_CSV.encode(), "text/csv").run()
    no_exception(at)
    assert values(at.caption) == ["uploaded.csv: 4 rows · csv · columns: id, text, label, channel"]
    saved = list((get_settings().data_dir / "uploads").rglob("uploaded.csv"))
    assert len(saved) == 1 and saved[0].read_text(encoding="utf-8") == TICKETS_CSV
    by_label(at.button, "Import").click().run()
    no_exception(at)
    assert values(at.success) == [
        "Imported into 'uploaded': 4 rows read; 4 examples added; 0 annotations added; "
        "4 labels imported as final labels (experts will not review them)."
    ]
    assert [e["id"] for e in _examples(engine, "uploaded")] == ["t1", "t2", "t3", "t4"]


def test_an_unreadable_server_file_shows_the_error(engine: Engine, lead: User) -> None:
    _server_file("broken.jsonl", '{"id": 1, "text": "ok"}\n{"id": 2, "text": \n')
    at = _open_import_page(logged_in("lena", "lead-password"), "broken.jsonl")
    assert len(at.error) == 1 and values(at.error)[0].startswith("broken.jsonl: line 2: malformed JSON")
    assert at.dataframe.len == 0 and counts(engine)["Project"] == 0


def _project_ids(engine: Engine) -> list[int]:
    with read_session(engine) as session:
        return [p.id for p in session.exec(select(Project)).all() if p.id is not None]


def test_label_studio_questions_are_listed_and_the_label_is_picked(engine: Engine, lead: User) -> None:
    def answer(who: int, at: str, topic: str, mood: str, topic_first: bool = True) -> dict[str, object]:
        results = [{"from_name": "topic", "to_name": "text", "type": "choices", "value": {"choices": [topic]}},
                   {"from_name": "sentiment", "to_name": "text", "type": "choices", "value": {"choices": [mood]}}]
        return {"completed_by": who, "created_at": at, "result": results if topic_first else results[::-1]}

    tasks = [{"id": 1, "data": {"text": "charged twice"}, "annotations": [
        answer(3, "2024-05-01T10:00:00Z", "Billing", "Negative"),
        answer(4, "2024-05-01T11:00:00Z", "Billing", "Negative", topic_first=False),
        answer(4, "2024-05-01T12:00:00Z", "Refund", "Negative", topic_first=False)]}]
    _server_file("ls-two.json", json.dumps(tasks))
    at = _open_import_page(logged_in("lena", "lead-password"), "ls-two.json")

    controls = at.dataframe[1].value
    assert controls.to_dict("records") == [
        {"question (from_name)": "topic", "type": "choices", "column": "topic"},
        {"question (from_name)": "sentiment", "type": "choices", "column": "sentiment"}]
    assert values(at.info) == ["This export answers several choice questions: pick the label's under Label."]
    assert _mapping(at)["label"] is None
    by_label(at.selectbox, "Label").select("topic")
    repeats = by_label(at.radio, "An annotator who judged an item more than once")
    assert (repeats.options, repeats.value) == (
        ["keep the first", "keep the latest", "keep the latest, all in the audit log"], "latest")
    repeats.set_value("first")
    by_label(at.text_input, "New project name").input("LS topics")
    by_label(at.button, "Import").click().run()
    no_exception(at)
    assert values(at.success) == [
        "Imported into 'LS topics': 3 rows read; 1 examples added; 2 annotations added; 1 repeat annotations "
        "resolved: the first judgement kept; 2 annotator accounts created."]
    with read_session(engine) as session:
        example = session.exec(select(Example).join(Project).where(Project.name == "LS topics")).one()
    assert (example.final_label, example.meta) == (
        "Billing", {"sentiment": {"labelstudio:3": "Negative", "labelstudio:4": "Negative"}})


def test_labels_as_suggestions_of_a_source_with_label_set_k_and_rule(engine: Engine, lead: User) -> None:
    """Issue 12: the file's labels become suggestions of a named source; the new project takes the
    label set in the given order, k and the rule; the summary says what became of the labels."""
    from curation.models import Suggestion

    _server_file("tickets.csv", TICKETS_CSV.replace("id,text,label,channel", "id,text,label,conf")
                 .replace(",email\n", ",0.9\n").replace(",chat\n", ",0.4\n").replace("billing,\n", "billing,\n"))
    at = _open_import_page(logged_in("lena", "lead-password"), "tickets.csv")
    labels_as = by_label(at.radio, "The file's labels are")
    assert labels_as.value == "final"
    assert any("skip the experts" in w for w in values(at.warning))
    labels_as.set_value("suggestion").run()
    no_exception(at)
    assert not any("skip the experts" in w for w in values(at.warning))
    by_label_prefix(at.text_input, "Source name").input("vendor-2024")
    by_label(at.selectbox, "Score of the source's label (votes or suggestions)").select("conf")
    by_label_prefix(at.text_input, "Label set").input("shipping, billing, other")
    by_label(at.number_input, "Labels per item (k)").set_value(3)
    by_label(at.selectbox, "Final-label rule").select("unanimous")
    by_label(at.button, "Import").click().run()
    no_exception(at)
    assert values(at.error) == []
    assert values(at.success) == [
        "Imported into 'tickets': 4 rows read; 4 examples added; 0 annotations added; "
        "4 labels imported as suggestions of vendor-2024."]
    rows = project_rows(engine)
    assert [(r["labels"], r["overlap_k"], r["final_label_rule"]) for r in rows] == [
        (["shipping", "billing", "other"], 3, "unanimous")]
    assert {e["id"]: (e["status"], e["label"]) for e in _examples(engine, "tickets")} == {
        "t1": ("new", None), "t2": ("new", None), "t3": ("new", None), "t4": ("new", None)}
    with read_session(engine) as session:
        suggestions = session.exec(select(Example.external_id, Suggestion.source, Suggestion.label, Suggestion.score)
                                   .join(Example, Example.id == Suggestion.example_id)
                                   .order_by(Example.external_id)).all()
    assert [tuple(r) for r in suggestions] == [("t1", "vendor-2024", "billing", 0.9),
                                               ("t2", "vendor-2024", "shipping", 0.4),
                                               ("t3", "vendor-2024", "billing", None),
                                               ("t4", "vendor-2024", "shipping", 0.9)]


def test_generation_responses_are_for_review_unless_imported_as_final(engine: Engine, lead: User) -> None:
    """Issue 17: a generation file's responses wait for the experts by default; importing them as
    final is an explicit choice, warned about and said in the summary."""
    _server_file("replies.csv", "id,prompt,response\nr1,Where is my parcel?,It ships today.\n"
                                "r2,Can I pay by card?,Yes.\nr3,Hello?,\n")
    at = _open_import_page(logged_in("lena", "lead-password"), "replies.csv")
    by_label(at.radio, "Task type").set_value("generation").run()
    no_exception(at)
    responses_as = by_label(at.radio, "The file's responses are")
    assert responses_as.value == "review"
    assert not any("skip the experts: experts will not see them" in w for w in values(at.warning))
    responses_as.set_value("final").run()
    no_exception(at)
    assert any("Responses imported as final skip the experts" in w for w in values(at.warning))
    by_label(at.button, "Import").click().run()
    no_exception(at)
    assert values(at.error) == []
    assert values(at.success) == [
        "Imported into 'replies': 3 rows read; 3 examples added; 0 annotations added; "
        "2 responses imported as final: experts will not see them; "
        "1 item without a response left for experts to review."]
    assert {e["id"]: e["status"] for e in _examples(engine, "replies")} == {
        "r1": "labelled", "r2": "labelled", "r3": "new"}
