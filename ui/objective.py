"""The project's objective on the Projects page: what success means, stated before review."""

from __future__ import annotations

import json

import streamlit as st
from sqlalchemy.engine import Engine

from curation.errors import CurationError
from curation.evaluation.objective import FORMAT_KINDS, describe, metrics_for, set_objective
from curation.models import Project, User
from ui.session import flash
from ui.widgets import escape_markdown, show_error


def objective_form(engine: Engine, user: User, project: Project, is_lead: bool) -> None:
    objective = project.objective or {}
    st.markdown("**Objective** " + escape_markdown(describe(objective)))
    if objective and not objective.get("before_review", True):
        st.warning("This objective was stated after review had begun: state it before looking at the data.")
    if not is_lead:
        return
    metrics = metrics_for(project.task_type)
    keys = list(metrics)
    with st.form(f"objective-{project.id}"):
        st.caption("Every run shows this as one line: metric, value, 95% interval, target, met or not. "
                   "State it before any data is reviewed.")
        c1, c2, c3 = st.columns(3)
        metric = c1.selectbox("Objective metric", keys, format_func=metrics.get,
                              index=keys.index(objective["metric"]) if objective.get("metric") in keys else 0)
        label = None
        if str(project.task_type) != "generation":
            labels = list(project.labels) or ["(no labels)"]
            label = c2.selectbox("Label (for F1 of one label)", labels,
                                 index=labels.index(objective["label"]) if objective.get("label") in labels else 0)
        target = c3.number_input("Target", 0.0, 100.0, float(objective.get("target", 0.8)), step=0.01)
        format_kind, format_spec = None, None
        if str(project.task_type) == "generation":
            fmt = objective.get("format") or {}
            kinds = list(FORMAT_KINDS)
            f1, f2 = st.columns([1, 2])
            format_kind = f1.selectbox("Format (for format validity)", kinds, format_func=FORMAT_KINDS.get,
                                       index=kinds.index(fmt["kind"]) if fmt.get("kind") in kinds else 0)
            spec = fmt.get("spec", "")
            format_spec = f2.text_area("Regular expression or JSON schema",
                                       spec if isinstance(spec, str) else json.dumps(spec, indent=2), height=90,
                                       help="format validity: the share of responses that fully match the "
                                            "expression, or parse as JSON and validate against the schema")
        if st.form_submit_button("Save objective"):
            try:
                set_objective(engine, user, project.id, metric, float(target),
                              label=label if metric == "label_f1" else None,
                              format_kind=format_kind if metric == "format_validity" else None,
                              format_spec=format_spec if metric == "format_validity" else None)
                flash("Objective saved.")
                st.rerun()
            except CurationError as error:
                show_error(error)
