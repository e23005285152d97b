"""Label issues (leads): suspected label errors ranked by cleanlab's confident learning on
cross-validated probabilities and k-nearest-neighbour disagreement; select rows in the table and send
them back to expert review."""

import pandas as pd
import streamlit as st

from curation.errors import CurationError
from curation.models import Role
from curation.quality import label_issue_report, send_to_rereview
from ui.embedding import current_items, freshness, vectors_or_stop
from ui.session import current_project, flash, get_engine, require_user, show_flash
from ui.widgets import escape_markdown, show_error

user = require_user(Role.lead, Role.admin)
engine = get_engine()
project = current_project()
assert project is not None
st.title("Label issues")
show_flash()
key = f"issues.{project.id}"

items = current_items(user, project.id)
if sum(1 for label in items.labels if label) < 4:
    st.info("Label issues need at least a few labelled examples in two or more labels.")
    st.stop()
vectors = vectors_or_stop(project.id, items)


@st.cache_data(show_spinner="Cross-validating a classifier on the embeddings...", max_entries=8)
def _report(fingerprint: str, _items: object, _vectors: object):  # type: ignore[no-untyped-def]
    return label_issue_report(_items, _vectors)  # type: ignore[arg-type]


report = _report(items.fingerprint, items, vectors)
freshness(items)
flagged = report.flagged
m1, m2, m3 = st.columns(3)
m1.metric("Labelled examples scored", report.labelled)
m2.metric("Suspected label errors", len(flagged))
m3.metric("Cross-validation folds", report.folds)
if report.skipped_labels:
    st.caption(escape_markdown("Left out (fewer than 2 examples): " + ", ".join(report.skipped_labels)))
if not flagged:
    st.success("No suspected label errors.")
    st.stop()

table = pd.DataFrame(
    [
        {
            "#": i.example_id,
            "id": i.external_id,
            "score": round(i.score, 3),
            "given": i.given_label,
            "predicted": i.predicted_label,
            "p(given)": round(i.given_probability, 3),
            "neighbours disagree": round(i.knn_disagreement, 2),
            "neighbours say": i.neighbour_label,
            "cleanlab": i.flagged_by_cleanlab,
            "text": i.text,
        }
        for i in flagged
    ]
)
# Rows are chosen by clicking them in the table; the key follows the report, so a new report (after a
# send, or new labels) starts with nothing selected instead of row numbers meant for the old one.
st.caption("Click rows in the table to choose items to send back to expert review.")
table_key = f"{key}.table.{items.fingerprint}"
event = st.dataframe(table, hide_index=True, width="stretch", key=table_key, on_select="rerun",
                     selection_mode="multi-row")
chosen = [flagged[row] for row in event.selection.rows if 0 <= row < len(flagged)]
c1, c2 = st.columns(2)
send = None
if c1.button(f"Send {len(chosen)} selected to re-review", disabled=not chosen, key=f"{key}.send"):
    send = chosen
if c2.button(f"Send all {len(flagged)} suspected to re-review", key=f"{key}.send_all"):
    send = flagged
if send:
    try:
        count = send_to_rereview(engine, user, project.id, send)
        flash(f"Sent {count} items back to expert review (adjudication queue, highest suspicion first).")
        st.session_state.pop(table_key, None)
        st.rerun()
    except CurationError as error:
        show_error(error)
