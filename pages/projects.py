"""Projects: the list with their figures; leads create and edit (task type, labels, guidelines, k)."""

import pandas as pd
import streamlit as st

from curation.data.projects import create_project, list_projects, update_project
from curation.errors import CurationError
from curation.models import FinalLabelRule, Role, TaskType
from ui.objective import objective_form
from ui.page import open_page
from ui.session import current_project, flash, show_flash, switch_project
from ui.stats import current_project_stats
from ui.widgets import escape_markdown, show_error

user, engine = open_page("Projects")
is_lead = user.role in (Role.lead, Role.admin)
show_flash()
projects = list_projects(engine, user)
if projects:
    rows = []
    all_stats = {}  # computed once per project per run: the current project's panel below reuses it
    for project in projects:
        stats = all_stats[project.id] = current_project_stats(engine, user, project.id)
        rows.append({
            "project": project.name,
            "task": project.task_type,
            "labels": ", ".join(project.labels),
            "k": project.overlap_k,
            "examples": stats["examples"],
            "labelled": stats["by_status"].get("labelled", 0),
            "disputed": stats["by_status"].get("disputed", 0),
            "annotations": stats["annotations"],
        })
    st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch")

project = current_project(required=False)
if project is not None:
    st.subheader(project.name)
    stats = all_stats.get(project.id) if projects else None
    stats = stats or current_project_stats(engine, user, project.id)
    cols = st.columns(4)
    cols[0].metric("Examples", stats["examples"])
    cols[1].metric("Annotations", stats["annotations"])
    cols[2].metric("Annotators", stats["annotators"])
    cols[3].metric("Exact-duplicate groups", stats["exact_duplicate_groups"])
    left, right = st.columns(2)
    left.caption("By status")
    left.dataframe(pd.DataFrame(stats["by_status"].items(), columns=["status", "examples"]), hide_index=True)
    right.caption("By final label")
    right.dataframe(pd.DataFrame(stats["by_label"].items(), columns=["label", "examples"]), hide_index=True)
    with st.expander(f"Guidelines (version {project.guidelines_version})", expanded=not is_lead):
        st.markdown(project.guidelines or "_No guidelines yet._")  # written by a lead; raw HTML stays off

    if is_lead:
        with st.form(f"edit-{project.id}"):
            st.markdown("**Edit project**")
            labels = st.text_area("Labels (one per line)", "\n".join(project.labels),
                                  disabled=project.task_type == TaskType.generation)
            guidelines = st.text_area("Guidelines (markdown)", project.guidelines, height=200)
            c1, c2, c3 = st.columns(3)
            k = c1.number_input("Annotators per item (k)", 1, 20, project.overlap_k)
            rule = c2.selectbox("Final label rule", [r.value for r in FinalLabelRule],
                                index=[r.value for r in FinalLabelRule].index(project.final_label_rule))
            min_agreement = c3.number_input("Approval threshold (Krippendorff's alpha)", 0.0, 1.0,
                                            float(project.min_agreement), step=0.01)
            ordered = st.checkbox("Labels are ordered (a scale, in the order listed)", bool(project.labels_ordered),
                                  disabled=project.task_type == TaskType.generation,
                                  help="e.g. a severity scale: agreement is then measured at the ordinal level by "
                                       "default, on the Agreement page and in the version checklist")
            if st.form_submit_button("Save changes"):
                try:
                    update_project(engine, user, project.id, labels=labels.splitlines(), guidelines=guidelines,
                                   overlap_k=int(k), final_label_rule=rule, min_agreement=float(min_agreement),
                                   labels_ordered=bool(ordered))
                    flash("Saved.")
                    st.rerun()
                except CurationError as error:
                    show_error(error)

    objective_form(engine, user, project, is_lead)

if is_lead:
    # The fields keep what was typed when creating fails (a taken name, one label), and are emptied
    # once the project exists, ready for the next one.
    new_fields = ("create-project.name", "create-project.task", "create-project.labels",
                  "create-project.guidelines", "create-project.k")
    with st.form("create-project", clear_on_submit=False):
        st.markdown("**New project**")
        name = st.text_input("Name", key=new_fields[0])
        task = st.radio("Task type", [t.value for t in TaskType], horizontal=True, key=new_fields[1],
                        help="classification: a label per text; generation: prompt/response or chat pairs")
        labels = st.text_area("Labels (one per line; empty: taken from the first import)", key=new_fields[2])
        guidelines = st.text_area("Guidelines (markdown)", key=new_fields[3])
        k = st.number_input("Annotators per item (k)", 1, 20, 2, key=new_fields[4])
        if st.form_submit_button("Create project", type="primary"):
            try:
                created = create_project(engine, user, name, TaskType(task), labels.splitlines(), guidelines, int(k))
                switch_project(created.id)
                flash(escape_markdown(f"Created project '{created.name}'."))
                for field_key in new_fields:
                    st.session_state.pop(field_key, None)
                st.rerun()
            except CurationError as error:
                show_error(error)
elif not projects:
    st.info("No projects yet: a lead creates them.")
