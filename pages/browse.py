"""Data browser (leads): filter by status, label, annotator, source and split, search text, page
through, open one example (click its row, or a link `?item=123`) with its annotations and history,
and export the selection. The URL names the example on screen, so a reload keeps it."""

import tempfile
from pathlib import Path

import pandas as pd
import streamlit as st

from curation.data.browse import (
    ExampleFilter,
    annotators_of,
    browse_examples,
    example_annotations,
    example_by_id,
)
from curation.data.export import EXPORT_FORMATS, export_project, zip_folder
from curation.errors import CurationError
from curation.icons import STATUS_ICONS
from curation.models import Example, ExampleStatus, Role
from ui.links import link_caption, requested_id, show_in_url
from ui.page import open_project_page
from ui.session import switch_project
from ui.stats import filter_values
from ui.widgets import escape_markdown, preview_text, show_error, show_example, show_history, show_json

user, engine, project = open_project_page("Data browser", Role.lead, Role.admin)
key = f"browse.{project.id}"
LINKED = "browse.linked"  # the example id a link (?item=) opened: shown until a row is clicked
asked = requested_id("browse", "item")
if asked is not None:
    st.session_state[LINKED] = asked

with st.container(border=True):
    c1, c2, c3, c4 = st.columns(4)
    statuses = c1.multiselect("Status", [s.value for s in ExampleStatus], key=f"{key}.status")
    labels = c2.multiselect("Final label", filter_values(engine, user, project.id, "final_label"), key=f"{key}.label")
    sources = c3.multiselect("Source", filter_values(engine, user, project.id, "source"), key=f"{key}.source")
    splits = c4.multiselect("Split", filter_values(engine, user, project.id, "split"), key=f"{key}.split")
    c5, c6, c7 = st.columns([2, 1, 1])
    search = c5.text_input("Search text", key=f"{key}.search", placeholder="words in the text, prompt, response or id")
    people = dict(annotators_of(engine, user, project.id))
    annotator = c6.selectbox("Annotated by", [None, *people], format_func=lambda i: "anyone" if i is None else people[i],
                             key=f"{key}.annotator")
    page_size = c7.selectbox("Rows per page", [25, 50, 100, 200], index=1, key=f"{key}.size")

selection = ExampleFilter(statuses=tuple(statuses), labels=tuple(labels), sources=tuple(sources),
                          splits=tuple(splits), annotator_id=annotator, search=search)
page_number = st.session_state.get(f"{key}.page", 1)
page = browse_examples(engine, user, project.id, selection, page_number, page_size)

if st.session_state.get(f"{key}.page", 1) != page.page:
    st.session_state[f"{key}.page"] = page.page  # clamped after the filters shrank the set
nav1, nav2, nav3 = st.columns([1, 2, 1])
nav2.number_input(f"Page (of {page.pages:,}) · {page.total:,} examples", 1, page.pages, page.page, key=f"{key}.page")
table = pd.DataFrame([{
    "#": example.id,
    "id": example.external_id,
    "status": f"{STATUS_ICONS.get(example.status, '')} {example.status}",
    "label": example.final_label or "",
    "content": preview_text(example),
    "source": example.source or "",
    "split": example.split or "",
} for example in page.rows])
# A row is opened by clicking it in the table; the selection is keyed by the page and filters, so a
# new page of rows starts with none selected instead of a stale row number.
table_key = f"{key}.table.{page.page}.{page_size}.{hash(selection)}"
event = st.dataframe(table, hide_index=True, width="stretch", key=table_key, on_select="rerun",
                     selection_mode="single-row")
picked = [row for row in event.selection.rows if 0 <= row < len(page.rows)]
example: Example | None = None
if picked:
    example = page.rows[picked[0]]
    st.session_state.pop(LINKED, None)  # a click replaces the linked example
elif st.session_state.get(LINKED) is not None:
    try:
        example = example_by_id(engine, user, st.session_state[LINKED])
    except CurationError as error:
        st.session_state.pop(LINKED, None)
        show_error(error)
    if example is not None and example.project_id != project.id:
        st.info(f"Item #{example.id} belongs to another project: switching to it.")
        switch_project(example.project_id)
        st.rerun()
show_in_url("browse", "item", example.id if example is not None else None)
if page.rows and example is None:
    st.caption("Click a row to open its example.")
if example is not None:
    with st.container(border=True):
        st.caption(escape_markdown(f"#{example.id} · {example.external_id} · {example.status} · "
                                   f"source: {example.source or '—'} · licence: {example.licence or '—'} · "
                                   f"final label: {example.final_label or '—'}"))
        link_caption("item", example.id, "example")
        if not picked:
            st.caption("Opened by its link: click a row to open another.")
        show_example(example)
        rows = example_annotations(engine, user, example.id)
        if rows:
            st.dataframe(pd.DataFrame([{"annotator": a.annotator, "label": a.label or "", "rating": a.rating,
                                        "comment": a.comment, "flags": ", ".join(a.flags),
                                        "at": a.created_at} for a in rows]), hide_index=True)
        if example.meta:
            with st.expander("Metadata"):
                show_json(example.meta)
        show_history(engine, user, example.id)

with st.expander(f"Export these {page.total:,} examples"):
    fmt = st.selectbox("Format", EXPORT_FORMATS, key=f"{key}.format",
                       help="generation projects export chat `messages` (TRL SFTTrainer format); hf is a zipped "
                            "DatasetDict folder (save_to_disk)")
    include_excluded = st.checkbox("Include excluded examples", key=f"{key}.excluded")
    if st.button("Prepare export", key=f"{key}.export"):
        try:
            with tempfile.TemporaryDirectory() as tmp:
                out = Path(tmp) / f"{project.name}.{fmt if fmt != 'hf' else 'dataset'}"
                count = export_project(engine, user, project.id, out, fmt, selection, include_excluded)
                if fmt == "hf":
                    name, data = zip_folder(out)
                else:
                    data, name = out.read_bytes(), out.name
            st.download_button(f"Download {count:,} records ({name})", data, file_name=name)
        except CurationError as error:
            show_error(error)
