"""Label issues (leads): suspected label errors ranked by out-of-sample classifier probabilities and
k-nearest-neighbour disagreement, each with a proposed label; choose who re-reviews (leads or
annotators) and send items back; items experts decided are shown apart and not sent again."""

import pandas as pd
import streamlit as st

from curation.embeddings.label_issues_job import label_issues_state, report_from_result
from curation.embeddings.quality import LabelIssue, LabelIssueReport
from curation.errors import CurationError
from curation.models import RereviewBy, Role
from curation.review.rereview import (
    estimated_wrong_share,
    expert_confirmed_ids,
    pending_rereview_count,
    send_for_rereview,
    set_rereview_by,
    suspected_left,
)
from ui.embedding import current_items, freshness, vectors_or_stop, wait_for_task
from ui.page import open_project_page
from ui.session import flash, show_flash
from ui.widgets import escape_markdown, show_error

user, engine, project = open_project_page("Label issues", Role.lead, Role.admin)
show_flash()
key = f"issues.{project.id}"

items = current_items(user, project.id)
if sum(1 for label in items.labels if label) < 4:
    st.info("Label issues need at least a few labelled examples in two or more labels.")
    st.stop()
vectors_or_stop(project.id, items)  # every text embedded (or the embedding job's panel, and stop)


@st.cache_resource(show_spinner=False, max_entries=8)
def _report(path: str, _result: dict) -> LabelIssueReport:  # type: ignore[type-arg]
    return report_from_result(_result)  # one task file per data fingerprint: its path keys the report (read-only)


# Scored in a background task per data fingerprint (it covers every final label), so after each batch
# of expert decisions the rest is re-scored, with progress that survives a reload; a finished task is
# the cache of its report (curation/embeddings/label_issues_job.py).
state = label_issues_state(project.id, items.fingerprint)
wait_for_task(state, lambda: label_issues_state(project.id, items.fingerprint, start=False),
              what="Scoring the label issues",
              waiting="Scoring the labelled examples in the background (cross-validating a classifier on the "
                      "embeddings); the results appear here when ready (you may leave or reload this page).")
report = _report(state["path"], state["result"])
freshness(items)
confirmed = expert_confirmed_ids(engine, user, project.id)
flagged = report.flagged
left = suspected_left(report, confirmed)
confirmed_flagged = [i for i in flagged if i.example_id in confirmed]
m1, m2, m3, m4, m5 = st.columns(5)
m1.metric("Labelled examples scored", report.labelled)
m2.metric("Suspected label errors", len(left), help="suspected items an expert has not decided yet; the "
          "version checklist counts the same")
m3.metric("Confirmed by experts", len(confirmed_flagged), help="still look suspicious, but an expert decided "
          "them: not sent again unless you ask explicitly")
m4.metric("Waiting for re-review", pending_rereview_count(engine, user, project.id))
m5.metric("Estimated wrong labels left", f"{estimated_wrong_share(report, confirmed):.1%}",
          help="items cleanlab's confident learning flags that no expert has decided, over the items "
               "scored (expert-decided items count as right)")
st.caption(f"Scored by {report.folds}-fold cross-validation of a softmax regression on the embeddings, "
           "and each item's nearest neighbours.")
if report.skipped_labels:
    st.caption(escape_markdown("Left out (fewer than 2 examples): " + ", ".join(report.skipped_labels)))

who_names = {RereviewBy.leads.value: "Leads (adjudication queue, with the evidence)",
             RereviewBy.annotators.value: "Annotators (k fresh blind labels; earlier labels and suspicion hidden)"}
current_who = RereviewBy(project.rereview_by).value
who = st.radio("Who re-reviews items sent back", list(who_names), index=list(who_names).index(current_who),
               format_func=who_names.__getitem__, horizontal=True, key=f"{key}.who.{current_who}")
if who != current_who:
    try:
        set_rereview_by(engine, user, project.id, who)
        flash(f"Items sent back now go to: {who_names[who]}.")
        st.rerun()
    except CurationError as error:
        show_error(error)


def _table(issues: list[LabelIssue]) -> pd.DataFrame:
    return pd.DataFrame(
        [
            {
                "#": i.example_id,
                "id": i.external_id,
                "score": round(i.score, 3),
                "given": i.given_label,
                "proposed": i.proposed_label,
                "confidence": round(i.proposed_confidence, 2),
                "p(given)": round(i.given_probability, 3),
                "neighbours disagree": round(i.knn_disagreement, 2),
                "neighbours say": i.neighbour_label,
                "text": i.text,
            }
            for i in issues
        ]
    )


def _send(issues: list[LabelIssue], *, force: bool = False) -> None:
    try:
        result = send_for_rereview(engine, user, project.id, issues, force=force)
        flash(result.message())
        st.session_state.pop(f"{key}.table.{items.fingerprint}", None)
        st.session_state.pop(f"{key}.again", None)
        st.rerun()
    except CurationError as error:
        show_error(error)


if confirmed_flagged:
    with st.expander(f"Confirmed by experts ({len(confirmed_flagged)})"):
        st.caption("An expert decided these after they were flagged; they are not sent again unless you choose "
                   "them here.")
        st.dataframe(_table(confirmed_flagged), hide_index=True, width="stretch")
        by_confirmed = {i.example_id: i for i in confirmed_flagged}
        again = st.multiselect("Send again explicitly", list(by_confirmed), key=f"{key}.again",
                               format_func=lambda i: f"#{i} · {by_confirmed[i].external_id}")
        if st.button(f"Send {len(again)} confirmed items again", disabled=not again, key=f"{key}.send_again"):
            _send([by_confirmed[i] for i in again], force=True)

if not left:
    st.success("No suspected label errors left.")
    st.stop()

st.caption("Click rows in the table to choose items to send back for re-review.")
table_key = f"{key}.table.{items.fingerprint}"
event = st.dataframe(_table(left), hide_index=True, width="stretch", key=table_key, on_select="rerun",
                     selection_mode="multi-row")
chosen = [left[row] for row in event.selection.rows if 0 <= row < len(left)]
c1, c2, c3 = st.columns(3)
if c1.button(f"Send {len(chosen)} selected to re-review", disabled=not chosen, key=f"{key}.send"):
    _send(chosen)
top = c2.number_input("Highest-ranked", min_value=1, max_value=len(left), value=min(50, len(left)), step=1,
                      key=f"{key}.top")
if c2.button(f"Send the top {int(top)} to re-review", key=f"{key}.send_top"):
    _send(left[: int(top)])
if c3.button(f"Send all {len(left)} suspected to re-review", key=f"{key}.send_all"):
    _send(left)
