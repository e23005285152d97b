"""Import: upload (or pick a server file), preview, map columns, import with a progress bar."""

import hashlib
from pathlib import Path

import pandas as pd
import streamlit as st

from curation.data.formats import Table, open_table
from curation.data.importer import REPEAT_POLICIES, RESPONSES_AS, import_table
from curation.data.mapping import ColumnMapping, guess_mapping
from curation.data.projects import get_project
from curation.errors import CurationError
from curation.models import Role, TaskType
from curation.settings import get_settings
from ui.page import open_page
from ui.session import current_project, show_flash, switch_project
from ui.widgets import escape_markdown, show_error

NONE = "—"
SINGLE_FIELDS = {
    "text": "Text (classification)",
    "prompt": "Prompt (generation)",
    "response": "Response (generation)",
    "messages": "Chat messages (generation)",
    "label": "Label",
    "annotator": "Annotator (long format: one row per judgement)",
    "annotated_at": "Annotated at",
    "source": "Source",
    "licence": "Licence",
    "split": "Split",
    "score": "Score of the source's label (votes or suggestions)",
}
LABELS_AS = {  # issue 12: what the file's labels mean
    "final": "Final labels (experts will not review them)",
    "vote": "Votes of a source account (experts review the items)",
    "suggestion": "Suggestions of a source (shown to experts per project setting)",
}

user, engine = open_page("Import", Role.lead, Role.admin)
settings = get_settings()
show_flash()


@st.cache_resource(max_entries=4, show_spinner="Reading the file...")
def _open(path: str, modified: float) -> Table:  # `modified` keys the cache on the file's version
    return open_table(path)


def _saved_upload(upload) -> Path:  # type: ignore[no-untyped-def]
    data = upload.getvalue()
    target = settings.data_dir / "uploads" / hashlib.sha256(data).hexdigest()[:16] / Path(upload.name).name
    if not target.exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
    return target


server_dir = settings.data_dir / "imports"
choice = st.radio("File", ["Upload", f"Server folder ({server_dir})"], horizontal=True,
                  help="Large files and save_to_disk folders: copy them into the server folder.")
path: Path | None = None
if choice == "Upload":
    upload = st.file_uploader("JSONL, JSON, CSV, TSV, Parquet or a Label Studio JSON export",
                              type=["jsonl", "ndjson", "json", "csv", "tsv", "parquet"])
    if upload is not None:
        path = _saved_upload(upload)
else:
    entries = sorted(p.name for p in server_dir.iterdir()) if server_dir.is_dir() else []
    picked = st.selectbox("File or folder", [NONE, *entries])
    if picked != NONE:
        path = server_dir / picked
if path is None:
    st.stop()

try:
    table = _open(str(path), path.stat().st_mtime)
except CurationError as error:
    show_error(error)
    st.stop()

st.caption(escape_markdown(f"{table.name}: {table.n_rows:,} rows · {table.file_format} · "
                           f"columns: {', '.join(table.columns)}"))
preview = pd.DataFrame(table.preview(10)).map(lambda v: v if isinstance(v, (str, int, float, bool, type(None))) else str(v))
st.dataframe(preview, hide_index=True, width="stretch")

project = current_project(required=False)
target = st.radio("Into", ["A new project", *( [f"Current project: {project.name}"] if project else [])],
                  index=1 if project else 0, horizontal=True)
new_project = target == "A new project"
if new_project:
    c1, c2 = st.columns(2)
    project_name = c1.text_input("New project name", value=Path(table.name).stem)
    task_type = TaskType(c2.radio("Task type", [t.value for t in TaskType], horizontal=True))
else:
    assert project is not None
    project_name, task_type = project.name, TaskType(project.task_type)

key = f"import.{hashlib.sha256(str(path).encode()).hexdigest()[:10]}.{task_type.value}"
labels_as = st.radio("The file's labels are", list(LABELS_AS), format_func=LABELS_AS.__getitem__,
                     key=f"{key}.labels_as")
if labels_as == "final":
    st.warning("Labels imported as final labels skip the experts: nobody reviews them, and their accuracy is "
               "never measured. Choose votes or suggestions to put them in front of experts.")
responses_as = "review"
if task_type is TaskType.generation:  # issue 17: only an explicit choice skips the experts' review
    responses_as = st.radio("The file's responses are", list(RESPONSES_AS), format_func=RESPONSES_AS.__getitem__,
                            key=f"{key}.responses_as")
    if responses_as == "final":
        st.warning("Responses imported as final skip the experts: experts will not see them, and versions "
                   "include them as they are. Keep them for review unless they were reviewed elsewhere.")
label_source = ""
if labels_as != "final":
    label_source = st.text_input("Source name (who gave these labels, e.g. vendor-2024)", key=f"{key}.label_source")
guess = guess_mapping(table, task_type)
columns = table.columns
st.subheader("Column mapping")
if table.controls:
    # A Label Studio export: one column per question of its labelling config. The user picks the label.
    st.caption("Questions (controls) in this Label Studio export. Pick the one that is the label under "
               "Label (a generation project's answer under Response); the others are kept as metadata, "
               "per annotator.")
    st.dataframe(pd.DataFrame({"question (from_name)": [c.name for c in table.controls],
                               "type": [c.type for c in table.controls],
                               "column": [c.column for c in table.controls]}), hide_index=True)
    if guess.label is None and sum(c.type == "choices" for c in table.controls) > 1:
        st.info("This export answers several choice questions: pick the label's under Label.")
with st.form(f"{key}.form"):
    c1, c2 = st.columns(2)
    ids = c1.multiselect("Item id (several columns together identify an item)", columns, default=guess.id,
                         key=f"{key}.id")
    values: dict[str, str | None] = {}
    for i, (field, label) in enumerate(SINGLE_FIELDS.items()):
        current = getattr(guess, field)
        options = [NONE, *columns]
        chosen = (c1 if i % 2 else c2).selectbox(label, options, index=options.index(current) if current else 0,
                                                  key=f"{key}.{field}")
        values[field] = None if chosen == NONE else chosen
    onehot = st.multiselect("One-hot label columns (label = the part after the common prefix)", columns,
                            default=guess.label_onehot, key=f"{key}.onehot")
    mapped = {*ids, *onehot, *(v for v in values.values() if v)}
    metadata = st.multiselect("Keep as metadata", columns, default=[c for c in columns if c not in mapped],
                              key=f"{key}.meta")
    label_set, overlap_k, rule = "", 2, "majority"
    if new_project:
        c5, c6, c7 = st.columns([3, 1, 1])
        label_set = c5.text_input("Label set, comma-separated in this order (empty: from the file)",
                                  key=f"{key}.label_set")
        overlap_k = int(c6.number_input("Labels per item (k)", min_value=1, max_value=20, value=2,
                                        key=f"{key}.k"))
        rule = c7.selectbox("Final-label rule", ["majority", "unanimous"], key=f"{key}.rule")
    c3, c4 = st.columns(2)
    # Own keys: sharing {key}.source / {key}.licence with the mapping select boxes above raised
    # StreamlitDuplicateElementKey as soon as a file was picked.
    default_source = c3.text_input("Source for rows without one", value=table.name,
                                   key=f"{key}.default_source")
    default_licence = c4.text_input("Licence for rows without one", key=f"{key}.default_licence")
    repeats = st.radio("An annotator who judged an item more than once", list(REPEAT_POLICIES),
                       index=list(REPEAT_POLICIES).index("latest"), horizontal=True, key=f"{key}.repeats",
                       format_func=lambda policy: {"first": "keep the first", "latest": "keep the latest",
                                                   "history": "keep the latest, all in the audit log"}[policy])
    submitted = st.form_submit_button("Import", type="primary")

if submitted:
    # A column picked for a field is not metadata too (the metadata default follows the guess, not the picks).
    picked = {*ids, *onehot, *(v for v in values.values() if v)}
    metadata = [c for c in metadata if c not in picked]
    mapping = ColumnMapping(id=ids, label_onehot=onehot, metadata=metadata, default_source=default_source or None,
                            default_licence=default_licence or None, **values)
    bar = st.progress(0.0, text="Importing...")

    def progress(done: int, total: int) -> None:
        bar.progress(done / max(total, 1), text=f"Importing... {done:,} / {total:,} rows")

    try:
        report = import_table(engine, user, table, mapping, project_name, create=new_project,
                              task_type=task_type, progress=progress, repeats=repeats, labels_as=labels_as,
                              label_source=label_source or None, responses_as=responses_as,
                              labels=[p for p in label_set.split(",") if p.strip()] or None,
                              overlap_k=overlap_k if new_project else None,
                              final_label_rule=rule if new_project else None)
    except CurationError as error:
        bar.empty()
        st.error(escape_markdown(f"Nothing was imported. {error}"))
    else:
        bar.progress(1.0, text="Done")
        if new_project:
            switch_project(get_project(engine, report.project).id)  # the sidebar follows on the next run
        st.success(escape_markdown(f"Imported into '{report.project}': {report.summary()}."))
        for warning in report.warnings:
            st.warning(escape_markdown(warning))
        if report.exact_duplicate_groups:
            st.warning(f"{len(report.exact_duplicate_groups)} groups of rows share exactly the same content.")
            st.dataframe(pd.DataFrame({"rows": [", ".join(map(str, g[:20])) for g in report.exact_duplicate_groups],
                                       "count": [len(g) for g in report.exact_duplicate_groups]}),
                         hide_index=True)
